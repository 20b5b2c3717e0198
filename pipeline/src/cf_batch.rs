//! One device batch of the counterfactual builder: teacher features, logits and CAM of the clean
//! images, masks and donors per strategy and variant, refill, and the teacher features of every
//! counterfactual (DESIGN §3).
//!
//! Seeds: every (batch, strategy, variant) has a seed `hash(config seed, shard, batch, strategy,
//! variant)`; the donor draw uses it directly and image `i`'s random mask uses `hash(seed, i)`. The
//! seed and the donor ids are stored with each variant, so any counterfactual can be recomputed
//! from the shard it lives in.

use cfkit_models::{compute_cam, CamMethod, ClassificationHead, VisionForward, VisionTransformer};
use cfkit_schemas::{
    decode_image, encode_png, CounterfactualRecord, ImageRecord, RgbPixels, StoredImage, Variant,
};
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

use crate::error::{PipelineError, Result};
use crate::refill::PatchGrid;
use crate::rng::hash_keys;
use crate::strategy::{FillKind, Strategy};
use cfkit_models::counterfactual::draw::{
    draw_counterfactuals, key_mask_tensor, CounterfactualDraw,
};

/// The teacher on its device.
pub struct Teacher<'a> {
    pub vision: &'a VisionTransformer,
    pub head: &'a ClassificationHead,
    pub device: Device,
    pub cam: CamMethod,
}

/// What a batch needs besides its images.
pub struct BatchSpec<'a> {
    pub strategies: &'a [Strategy],
    pub variants: usize,
    pub seed: u64,
    pub shard: usize,
    pub batch: usize,
    pub store_logits: bool,
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

fn rows_f32(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let (n, d) = t.size2().map_err(|e| PipelineError::Input(e.to_string()))?;
    let flat =
        Vec::<f32>::try_from(t.view([-1])).map_err(|e| PipelineError::Input(e.to_string()))?;
    Ok((0..n as usize)
        .map(|i| flat[i * d as usize..(i + 1) * d as usize].to_vec())
        .collect())
}

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
pub fn decode_batch(rows: Vec<ImageRecord>, size: usize) -> DecodedBatch {
    let decoded: Vec<std::result::Result<Vec<u8>, String>> = rows
        .par_iter()
        .map(|r| {
            let img = decode_image(&r.image.bytes).map_err(|e| e.to_string())?;
            if img.width as usize != size || img.height as usize != size {
                return Err(format!(
                    "image is {}x{}, the teacher takes {size}x{size}",
                    img.width, img.height
                ));
            }
            Ok(img.pixels)
        })
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
    let cfg = &teacher.vision.config;
    let grid = PatchGrid::new(cfg.image_size as usize, cfg.patch_size as usize)?;
    let x = to_model_input(&images, grid.image_size, teacher.device);
    let labels = Tensor::from_slice(&rows.iter().map(|r| r.label).collect::<Vec<_>>())
        .to_device(teacher.device);
    let (features, logits) = {
        let _g = tch::no_grad_guard();
        let f = teacher.vision.features(&x)?;
        let l = teacher.head.forward(&f);
        (rows_f32(&f)?, rows_f32(&l)?)
    };
    let cams = rows_f32(&compute_cam(
        teacher.vision,
        teacher.head,
        &x,
        &labels,
        teacher.cam,
    )?)?;

    let mut variants: Vec<PendingVariant> = Vec::new();
    for (si, strategy) in spec.strategies.iter().enumerate() {
        for k in 0..spec.variants {
            let seed = variant_seed(spec.seed, spec.shard, spec.batch, si, k);
            let CounterfactualDraw {
                masks,
                donors,
                images: cf_images,
            } = draw_counterfactuals(&images, &cams, strategy, seed, grid)?;
            let donors: Vec<Vec<String>> = donors
                .iter()
                .map(|d| d.iter().map(|&j| rows[j].id.clone()).collect())
                .collect();
            let feats = {
                let _g = tch::no_grad_guard();
                let xc = to_model_input(&cf_images, grid.image_size, teacher.device);
                let out = if strategy.fill == FillKind::None {
                    // Masked keys hidden in every block; the class token's output equals dropping
                    // the masked tokens (they never reach any other token).
                    let m = key_mask_tensor(&masks, teacher.device)?;
                    teacher
                        .vision
                        .forward_with(
                            &xc,
                            VisionForward {
                                key_mask: Some(&m),
                                ..Default::default()
                            },
                        )?
                        .features
                } else {
                    teacher.vision.features(&xc)?
                };
                rows_f32(&out)?
            };
            variants.push(PendingVariant {
                variant: (si * spec.variants + k) as i32,
                strategy: strategy.to_string(),
                seed,
                masks,
                donors,
                images: cf_images,
                features: feats,
            });
        }
    }
    Ok(ComputedBatch {
        rows,
        features,
        logits: spec.store_logits.then_some(logits),
        cams,
        variants,
        image_size: grid.image_size as u32,
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
    } = batch;
    let n = rows.len();
    let mut per_row: Vec<Vec<Variant>> = vec![Vec::with_capacity(variants.len()); n];
    for v in variants {
        let pngs: Vec<Vec<u8>> = v
            .images
            .par_iter()
            .map(|p| {
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
