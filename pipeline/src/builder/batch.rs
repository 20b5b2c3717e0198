//! One device batch of the counterfactual builder: teacher features, logits and CAM of the clean
//! images, masks and donors per strategy and variant, refill, and the teacher features of every
//! counterfactual (DESIGN §3).
//!
//! Seeds: every (batch, strategy, variant) has a seed `hash(config seed, shard, batch, strategy,
//! variant)`; the donor draw uses it directly and image `i`'s random mask uses `hash(seed, i)`. The
//! seed and the donor ids are stored with each variant, so any counterfactual can be recomputed
//! from the shard it lives in.

use cfkit_counterfactual::batch_draw::{draw_batch, BatchDraws};
use cfkit_counterfactual::refill::PatchGrid;
use cfkit_counterfactual::step::{CamModel, CounterfactualStep};
use cfkit_counterfactual::teacher_batch::{clean_pass, draw_features, DrawUnit};
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

/// Stage 2 (the device) for one donor pool: [`compute_pools`] of one.
pub fn compute_batch(
    teacher: &Teacher,
    decoded: DecodedBatch,
    spec: &BatchSpec,
) -> Result<ComputedBatch> {
    let mut out = compute_pools(teacher, vec![(spec.batch, decoded)], spec)?;
    Ok(out.pop().expect("one pool in, one out"))
}

/// Stage 2 (the device) for several donor pools at once (`(batch index, decoded rows)`, each its
/// own pool: donors never cross pools): the clean pixels go up once, as uint8; one teacher pass
/// over all of them gives features, logits and CAM; every (strategy, variant) draw of each pool
/// is made on the device by batched gathers ([`draw_batch`], the host draw's bytes); the teacher's
/// features of all counterfactuals run in forwards of up to 1,024 images across pools; then
/// everything is read back once. `spec.batch` is replaced by each pool's index.
pub fn compute_pools(
    teacher: &Teacher,
    pools: Vec<(usize, DecodedBatch)>,
    spec: &BatchSpec,
) -> Result<Vec<ComputedBatch>> {
    let step = teacher.step();
    let grid = step.grid()?;
    let image_size = grid.image_size;
    let norm = teacher.vision.config.normalize();
    let device = teacher.device;
    let all: Vec<&Vec<u8>> = pools.iter().flat_map(|(_, d)| &d.pixels).collect();
    let pixels = pixels_tensor(&all, image_size).to_device(device);
    drop(all);
    let host_labels: Vec<i64> = pools
        .iter()
        .flat_map(|(_, d)| d.rows.iter().map(|r| r.label))
        .collect();
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
    // Each pool's draws on its slice of the batch.
    let mut drawn = Vec::with_capacity(pools.len());
    let mut seeds = Vec::with_capacity(pools.len());
    let mut at = 0i64;
    for (b, d) in &pools {
        let n = d.rows.len() as i64;
        let mut draws = Vec::with_capacity(spec.strategies.len() * spec.variants);
        for (si, strategy) in spec.strategies.iter().enumerate() {
            for k in 0..spec.variants {
                draws.push((*strategy, variant_seed(spec.seed, spec.shard, *b, si, k)));
            }
        }
        let pool_pixels = pixels.narrow(0, at, n);
        drawn.push(draw_batch(
            &pool_pixels,
            &clean.cam.narrow(0, at, n),
            &draws,
            grid,
        )?);
        seeds.push(draws);
        at += n;
    }
    let images: Vec<Vec<Tensor>> = drawn
        .iter()
        .map(|d| (0..d.images.size()[0]).map(|v| d.images.get(v)).collect())
        .collect();
    let masks: Vec<Vec<Tensor>> = drawn
        .iter()
        .map(|d| (0..d.masks.size()[0]).map(|v| d.masks.get(v)).collect())
        .collect();
    let mut units = Vec::new();
    for (p, draws) in seeds.iter().enumerate() {
        for (v, (strategy, _)) in draws.iter().enumerate() {
            units.push(DrawUnit {
                images: &images[p][v],
                masks: &masks[p][v],
                strategy: *strategy,
            });
        }
    }
    let unit_features = autocast_bf16(teacher.autocast, || {
        draw_features(teacher.vision, &norm, &units)
    })?;
    drop(units);

    // The one read-back (the first copy waits for the device, the rest follow).
    let features = rows_f32(&clean.features)?;
    let logits = spec
        .store_logits
        .then(|| rows_f32(&clean.logits))
        .transpose()?;
    let cams = rows_f32(&clean.cam)?;
    let mut unit_features = unit_features.into_iter();
    let (mut features, mut logits, mut cams) = (
        features.into_iter(),
        logits.map(|l| l.into_iter()),
        cams.into_iter(),
    );
    let mut out = Vec::with_capacity(pools.len());
    for (((_, decoded), d), draws) in pools.into_iter().zip(drawn).zip(seeds) {
        let n = decoded.rows.len();
        let variants = read_variants(
            &decoded.rows,
            d,
            &draws,
            &mut unit_features,
            grid,
            spec.compact,
        )?;
        out.push(ComputedBatch {
            features: features.by_ref().take(n).collect(),
            logits: logits.as_mut().map(|l| l.by_ref().take(n).collect()),
            cams: cams.by_ref().take(n).collect(),
            rows: decoded.rows,
            variants,
            image_size: image_size as u32,
            compact: spec.compact,
        });
    }
    Ok(out)
}

/// One pool's draws read back: masks, donor ids, images (none for compact shards) and the
/// teacher's features (the next of `features` per draw).
fn read_variants(
    rows: &[ImageRecord],
    d: BatchDraws,
    draws: &[(Strategy, u64)],
    features: &mut impl Iterator<Item = Tensor>,
    grid: PatchGrid,
    compact: bool,
) -> Result<Vec<PendingVariant>> {
    let (n, p, bytes) = (rows.len(), grid.num_patches(), grid.image_bytes());
    let host = |t: &Tensor| t.to_device(Device::Cpu).reshape([-1]);
    let torch = |e: tch::TchError| PipelineError::from(CounterfactualError::from(e));
    let all_masks: Vec<bool> = Vec::try_from(host(&d.masks)).map_err(torch)?;
    // Compact shards store no counterfactual pixels: those stay on the device.
    let all_pixels: Option<Vec<u8>> = (!compact)
        .then(|| Vec::try_from(host(&d.images)))
        .transpose()
        .map_err(torch)?;
    let mut variants = Vec::with_capacity(draws.len());
    for (vi, ((strategy, seed), donors)) in draws.iter().zip(d.donors).enumerate() {
        let slice = |i: usize, len: usize| (vi * n + i) * len..(vi * n + i + 1) * len;
        let images = match &all_pixels {
            Some(all) => (0..n).map(|i| all[slice(i, bytes)].to_vec()).collect(),
            None => vec![Vec::new(); n],
        };
        let f = features.next().ok_or_else(|| {
            PipelineError::Input("the teacher returned fewer draws than were made".into())
        })?;
        variants.push(PendingVariant {
            variant: vi as i32,
            strategy: strategy.to_string(),
            seed: *seed,
            masks: (0..n).map(|i| all_masks[slice(i, p)].to_vec()).collect(),
            donors: donors
                .iter()
                .map(|d| d.iter().map(|&j| rows[j].id.clone()).collect())
                .collect(),
            images,
            features: rows_f32(&f)?,
        });
    }
    Ok(variants)
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
