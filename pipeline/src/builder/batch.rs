//! One device batch of the counterfactual builder: teacher features, logits and CAM of the clean
//! images, masks and donors per strategy and variant, refill, and the teacher features of every
//! counterfactual (DESIGN §3).
//!
//! Seeds: every (batch, strategy, variant) has a seed `hash(config seed, shard, batch, strategy,
//! variant)`; the donor draw uses it directly and image `i`'s random mask uses `hash(seed, i)`. The
//! seed and the donor ids are stored with each variant, so any counterfactual can be recomputed
//! from the shard it lives in.

use cfkit_counterfactual::step::{CamModel, CounterfactualStep, Counterfactuals};
use cfkit_counterfactual::{rows_f32, CamMethod};
use cfkit_models::{ClassificationHead, VisionTransformer};
use cfkit_schemas::{
    decode_image_sized, encode_png, CounterfactualRecord, ImageRecord, RgbPixels, StoredImage,
    Variant,
};
use rayon::prelude::*;
use tch::{Device, Tensor};

use crate::error::{PipelineError, Result};
use cfkit_counterfactual::rng::hash_keys;
use cfkit_counterfactual::strategy::Strategy;

/// The teacher on its device.
pub struct Teacher<'a> {
    pub vision: &'a VisionTransformer,
    pub head: &'a ClassificationHead,
    pub device: Device,
    pub cam: CamMethod,
}

impl<'a> Teacher<'a> {
    /// The counterfactual step with the teacher as both the CAM model and the frozen teacher.
    pub fn step(&self) -> CounterfactualStep<'a> {
        CounterfactualStep {
            cam_model: CamModel {
                vision: self.vision,
                head: self.head,
                cam: self.cam,
            },
            teacher: self.vision,
        }
    }
}

/// What a batch needs besides its images.
pub struct BatchSpec<'a> {
    pub strategies: &'a [Strategy],
    pub variants: usize,
    pub seed: u64,
    pub shard: usize,
    pub batch: usize,
    pub store_logits: bool,
    /// Variants without pixels (the reader recomposes them).
    pub compact: bool,
}

/// The seed of one (batch, strategy, variant) draw.
pub fn variant_seed(seed: u64, shard: usize, batch: usize, strategy: usize, variant: usize) -> u64 {
    hash_keys(&[
        seed,
        shard as u64,
        batch as u64,
        strategy as u64,
        variant as u64,
    ])
}

/// uint8 HWC images -> CLIP-normalised input (shared with the trainer).
pub use cfkit_models::vision::pixels_to_input as to_model_input;

/// Stage 1 (CPU, rayon): the batch's stored images decoded to uint8 HWC pixels. Rows whose image
/// cannot be used are set aside with a reason (the run quarantines them and goes on).
pub struct DecodedBatch {
    pub rows: Vec<ImageRecord>,
    pub pixels: Vec<Vec<u8>>,
    /// (id, reason) of the rows left out.
    pub rejected: Vec<(String, String)>,
}

/// Decodes the rows' images; each must be `size`×`size`. If bad images leave fewer than two
/// good rows, those are set aside too (a batch is its own donor pool and needs two images).
pub(crate) fn decode_batch(rows: Vec<ImageRecord>, size: usize) -> DecodedBatch {
    let decoded: Vec<std::result::Result<Vec<u8>, String>> = rows
        .par_iter()
        .map(|r| decode_image_sized(&r.image.bytes, size as u32).map_err(|e| e.to_string()))
        .collect();
    let mut out = DecodedBatch {
        rows: Vec::with_capacity(rows.len()),
        pixels: Vec::with_capacity(rows.len()),
        rejected: Vec::new(),
    };
    for (r, d) in rows.into_iter().zip(decoded) {
        match d {
            Ok(p) => {
                out.rows.push(r);
                out.pixels.push(p);
            }
            Err(reason) => out.rejected.push((r.id, reason)),
        }
    }
    if !out.rejected.is_empty() && out.rows.len() < 2 {
        for r in out.rows.drain(..) {
            out.rejected.push((
                r.id,
                "no donor left in its batch after bad images were removed".into(),
            ));
        }
        out.pixels.clear();
    }
    out
}

/// One variant of every image of a batch, before PNG encoding.
struct PendingVariant {
    variant: i32,
    strategy: String,
    seed: u64,
    masks: Vec<Vec<bool>>,
    donors: Vec<Vec<String>>,
    images: Vec<Vec<u8>>,
    features: Vec<Vec<f32>>,
}

/// Stage 2 output: everything but the encoded counterfactual images.
pub struct ComputedBatch {
    rows: Vec<ImageRecord>,
    features: Vec<Vec<f32>>,
    logits: Option<Vec<Vec<f32>>>,
    cams: Vec<Vec<f32>>,
    variants: Vec<PendingVariant>,
    image_size: u32,
    compact: bool,
}

/// Stage 2 (the device): teacher features, logits and CAM of the clean images; masks, donors and
/// refill per strategy and variant; teacher features of every counterfactual.
pub fn compute_batch(
    teacher: &Teacher,
    decoded: DecodedBatch,
    spec: &BatchSpec,
) -> Result<ComputedBatch> {
    let DecodedBatch {
        rows,
        pixels: images,
        ..
    } = decoded;
    let step = teacher.step();
    let image_size = step.grid()?.image_size;
    let norm = teacher.vision.config.normalize();
    let x = to_model_input(&images, image_size, &norm, teacher.device);
    let labels = Tensor::from_slice(&rows.iter().map(|r| r.label).collect::<Vec<_>>())
        .to_device(teacher.device);
    let (features, logits) = {
        let _g = tch::no_grad_guard();
        let f = teacher.vision.features(&x)?;
        let l = teacher.head.forward(&f);
        (rows_f32(&f)?, rows_f32(&l)?)
    };
    let cams = step.cams(&x, &labels)?;

    let mut variants: Vec<PendingVariant> = Vec::new();
    for (si, strategy) in spec.strategies.iter().enumerate() {
        for k in 0..spec.variants {
            let seed = variant_seed(spec.seed, spec.shard, spec.batch, si, k);
            let Counterfactuals {
                draw,
                teacher_features,
                ..
            } = step.draw(&images, &cams, strategy, seed, teacher.device)?;
            let donors: Vec<Vec<String>> = draw
                .donors
                .iter()
                .map(|d| d.iter().map(|&j| rows[j].id.clone()).collect())
                .collect();
            variants.push(PendingVariant {
                variant: (si * spec.variants + k) as i32,
                strategy: strategy.to_string(),
                seed,
                masks: draw.masks,
                donors,
                images: draw.images,
                features: rows_f32(&teacher_features)?,
            });
        }
    }
    Ok(ComputedBatch {
        rows,
        features,
        logits: spec.store_logits.then_some(logits),
        cams,
        variants,
        image_size: image_size as u32,
        compact: spec.compact,
    })
}

/// Stage 3 (CPU, rayon): PNG-encodes the counterfactual images and assembles the records.
pub fn encode_batch(batch: ComputedBatch) -> Result<Vec<CounterfactualRecord>> {
    let ComputedBatch {
        rows,
        features,
        logits,
        cams,
        variants,
        image_size,
        compact,
    } = batch;
    let n = rows.len();
    let mut per_row: Vec<Vec<Variant>> = vec![Vec::with_capacity(variants.len()); n];
    for v in variants {
        let pngs: Vec<Vec<u8>> = v
            .images
            .par_iter()
            .map(|p| {
                if compact {
                    return Ok(Vec::new());
                }
                encode_png(&RgbPixels {
                    width: image_size,
                    height: image_size,
                    pixels: p.clone(),
                })
                .map_err(PipelineError::from)
            })
            .collect::<Result<_>>()?;
        for (i, ((png, feat), (mask, donor_ids))) in pngs
            .into_iter()
            .zip(v.features)
            .zip(v.masks.into_iter().zip(v.donors))
            .enumerate()
        {
            per_row[i].push(Variant {
                variant: v.variant,
                strategy: v.strategy.clone(),
                mask,
                donor_ids,
                seed: v.seed,
                image: StoredImage {
                    bytes: png,
                    path: String::new(),
                },
                teacher_feature: feat,
            });
        }
    }
    let mut logits = logits.map(|l| l.into_iter());
    Ok(rows
        .into_iter()
        .zip(per_row)
        .zip(features.into_iter().zip(cams))
        .map(
            |((base, variants), (teacher_feature, cam))| CounterfactualRecord {
                teacher_feature,
                teacher_logits: logits.as_mut().and_then(|l| l.next()),
                cam,
                variants,
                base,
            },
        )
        .collect())
}
