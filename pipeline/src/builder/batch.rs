//! One device batch of the counterfactual builder: teacher features, logits and CAM of the clean
//! images, masks and donors per strategy and variant, refill, and the teacher features of every
//! counterfactual (DESIGN §3).
//!
//! Seeds: every (batch, strategy, variant) has a seed `hash(config seed, shard, batch, strategy,
//! variant)`; the donor draw uses it directly and image `i`'s random mask uses `hash(seed, i)`. The
//! seed and the donor ids are stored with each variant, so any counterfactual can be recomputed
//! from the shard it lives in.

use cfkit_counterfactual::batch_draw::draw_batch;
use cfkit_counterfactual::step::{CamModel, CounterfactualStep};
use cfkit_counterfactual::teacher_batch::{clean_pass, draw_features};
use cfkit_counterfactual::{rows_f32, CamMethod, CounterfactualError};
use cfkit_distributed::aten::autocast_bf16;
use cfkit_models::pixels_tensor;
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
    /// bf16 autocast for the teacher's passes on this device (`None`: float32).
    pub autocast: Option<Device>,
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

/// Stage 2 (the device): one teacher pass over the clean images (features, logits and CAM), every
/// (strategy, variant) draw of the batch at once on the device (masks, donors, refill:
/// [`draw_batch`], the host draw's bytes), the teacher's features of all counterfactuals in a few
/// large forwards; then everything is read back once. The clean pixels go up once, as uint8.
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
    let grid = step.grid()?;
    let image_size = grid.image_size;
    let norm = teacher.vision.config.normalize();
    let device = teacher.device;
    let pixels = pixels_tensor(&images, image_size).to_device(device);
    drop(images);
    let host_labels: Vec<i64> = rows.iter().map(|r| r.label).collect();
    let labels = Tensor::from_slice(&host_labels).to_device(device);
    let clean = clean_pass(
        teacher.vision,
        teacher.head,
        teacher.cam,
        &norm.input(&pixels),
        &labels,
        &host_labels,
        teacher.autocast,
    )?;
    let mut draws = Vec::with_capacity(spec.strategies.len() * spec.variants);
    for (si, strategy) in spec.strategies.iter().enumerate() {
        for k in 0..spec.variants {
            let seed = variant_seed(spec.seed, spec.shard, spec.batch, si, k);
            draws.push((*strategy, seed));
        }
    }
    let drawn = draw_batch(&pixels, &clean.cam, &draws, grid)?;
    let strategies: Vec<Strategy> = draws.iter().map(|d| d.0).collect();
    let variant_features = autocast_bf16(teacher.autocast, || {
        draw_features(
            teacher.vision,
            &norm,
            &drawn.images,
            &drawn.masks,
            &strategies,
        )
    })?;

    // The one read-back of the batch (the first copy waits for the device, the rest follow).
    let features = rows_f32(&clean.features)?;
    let logits = spec
        .store_logits
        .then(|| rows_f32(&clean.logits))
        .transpose()?;
    let cams = rows_f32(&clean.cam)?;
    let (v, n, p) = (draws.len(), rows.len(), grid.num_patches());
    let host = |t: &Tensor| t.to_device(Device::Cpu).reshape([-1]);
    let torch = |e: tch::TchError| PipelineError::from(CounterfactualError::from(e));
    let masks: Vec<bool> = Vec::try_from(host(&drawn.masks)).map_err(torch)?;
    let feats = rows_f32(&variant_features.reshape([(v * n) as i64, -1]))?;
    // Compact shards store no counterfactual pixels: those stay on the device.
    let pixels_out: Option<Vec<u8>> = (!spec.compact)
        .then(|| Vec::try_from(host(&drawn.images)))
        .transpose()
        .map_err(torch)?;
    let bytes = grid.image_bytes();
    let mut feats = feats.into_iter();
    let mut variants: Vec<PendingVariant> = Vec::with_capacity(v);
    for (vi, ((strategy, seed), donors)) in draws.iter().zip(drawn.donors).enumerate() {
        let donors: Vec<Vec<String>> = donors
            .iter()
            .map(|d| d.iter().map(|&j| rows[j].id.clone()).collect())
            .collect();
        let images = match &pixels_out {
            Some(all) => (0..n)
                .map(|i| all[(vi * n + i) * bytes..(vi * n + i + 1) * bytes].to_vec())
                .collect(),
            None => vec![Vec::new(); n],
        };
        variants.push(PendingVariant {
            variant: vi as i32,
            strategy: strategy.to_string(),
            seed: *seed,
            masks: (0..n)
                .map(|i| masks[(vi * n + i) * p..(vi * n + i + 1) * p].to_vec())
                .collect(),
            donors,
            images,
            features: feats.by_ref().take(n).collect(),
        });
    }
    Ok(ComputedBatch {
        rows,
        features,
        logits,
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
