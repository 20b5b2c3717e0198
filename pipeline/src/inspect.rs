//! `cfkit inspect`: a contact sheet of counterfactual shards — one row per sample: original | CAM
//! heat map | mask | each counterfactual — with a text legend (labels, strategies, donor labels),
//! and summary statistics (mask-ratio distribution per strategy, donor-class histogram, same-class
//! donors, and with the generator's ground truth the masks' overlap with the object).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use cfkit_counterfactual::refill::recompose;
use cfkit_schemas::{
    decode_image, encode_png, CounterfactualRecord, Manifest, RgbPixels, ShardKind, ShardReader,
};
use serde::Serialize;

use crate::error::{PipelineError, Result};

/// Pixels between cells of the sheet.
const GAP: usize = 4;
/// Mask-ratio histogram bins over [0, 1].
const BINS: usize = 10;

/// Per-strategy mask statistics.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct StrategyStats {
    pub variants: usize,
    pub mask_ratio_mean: f64,
    /// Counts of mask ratios in [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0].
    pub mask_ratio_histogram: [usize; BINS],
    /// Donor class name -> patches (multi fill) or images (single fill) drawn from it.
    pub donor_classes: BTreeMap<String, usize>,
    /// Variants whose donor is the image itself (possible with single fill, as in the reference).
    pub self_donors: usize,
    /// Donor draws (patches with multi fill, images with single fill) from the row's own class,
    /// and the rate among all donor draws: a refill from the same class keeps the label's
    /// evidence, so a high rate weakens the counterfactual.
    pub same_class_donors: usize,
    pub same_class_donor_rate: f64,
    /// With the generator's ground truth (`scene_truth` datasets): variants measured, and the
    /// mean IoU of the mask with the object's patches (a patch is object when half its pixels
    /// are) and with the background's, and the mean share of the object's patches masked.
    /// Object strategies should hit the object, context strategies the background.
    pub truth_variants: usize,
    pub object_iou_mean: Option<f64>,
    pub background_iou_mean: Option<f64>,
    pub object_masked_mean: Option<f64>,
}

/// |a ∧ b| / |a ∨ b| (0 for two empty masks).
fn iou(a: &[bool], b: impl Iterator<Item = bool>) -> f64 {
    let (mut inter, mut union) = (0usize, 0usize);
    for (x, y) in a.iter().zip(b) {
        inter += usize::from(*x && y);
        union += usize::from(*x || y);
    }
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

/// Adds variant `mask`'s overlap with the row's object patches to `st`.
fn add_truth(st: &mut StrategyStats, mask: &[bool], object: &[bool]) {
    let on = |o: &[bool]| o.iter().filter(|&&b| b).count();
    *st.object_iou_mean.get_or_insert(0.0) += iou(mask, object.iter().copied());
    *st.background_iou_mean.get_or_insert(0.0) += iou(mask, object.iter().map(|&b| !b));
    let hit = mask.iter().zip(object).filter(|(m, o)| **m && **o).count();
    *st.object_masked_mean.get_or_insert(0.0) += hit as f64 / on(object).max(1) as f64;
    st.truth_variants += 1;
}

/// What `inspect` found.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct InspectReport {
    pub split: String,
    pub rows: usize,
    pub shown: usize,
    pub strategies: BTreeMap<String, StrategyStats>,
    /// One line per shown row: id, label, and per variant strategy + donor classes.
    pub legend: Vec<String>,
}

/// Reads every row of `split` in `dir` (a counterfactual dataset) for the statistics and draws the
/// first `n` rows into `out` (PNG).
pub fn inspect(dir: &Path, split: &str, n: usize, out: &Path) -> Result<InspectReport> {
    let manifest = Manifest::read(dir)?;
    if manifest.kind != ShardKind::Counterfactuals {
        return Err(PipelineError::Input(format!(
            "'{}' holds image shards; inspect needs counterfactual shards (cfkit build-counterfactuals)",
            dir.display()
        )));
    }
    let entry = manifest.split(dir, split)?;
    let mut stats: BTreeMap<String, StrategyStats> = BTreeMap::new();
    let mut shown: Vec<CounterfactualRecord> = Vec::new();
    let mut rows = 0;
    let mut legend = Vec::new();
    for s in &entry.shards {
        let records = ShardReader::open(&dir.join(&s.file))?.read_counterfactuals()?;
        // Donors come from the same shard: their labels are found here.
        let class_of: HashMap<&str, &str> = records
            .iter()
            .map(|r| (r.base.id.as_str(), r.base.class_name.as_str()))
            .collect();
        for r in &records {
            for v in &r.variants {
                let st = stats.entry(v.strategy.clone()).or_default();
                let grid = (v.mask.len() as f64).sqrt().round() as usize;
                if let Some(object) = r.base.truth.as_ref().and_then(|t| t.object_patches(grid)) {
                    add_truth(st, &v.mask, &object);
                }
                let ratio =
                    v.mask.iter().filter(|m| **m).count() as f64 / v.mask.len().max(1) as f64;
                st.variants += 1;
                st.mask_ratio_mean += ratio;
                st.mask_ratio_histogram[((ratio * BINS as f64) as usize).min(BINS - 1)] += 1;
                for d in &v.donor_ids {
                    let c = class_of
                        .get(d.as_str())
                        .copied()
                        .unwrap_or("(not in shard)");
                    *st.donor_classes.entry(c.to_string()).or_default() += 1;
                    if c == r.base.class_name {
                        st.same_class_donors += 1;
                    }
                }
                if v.donor_ids.len() == 1 && v.donor_ids[0] == r.base.id {
                    st.self_donors += 1;
                }
            }
        }
        rows += records.len();
        let take = n.saturating_sub(shown.len()).min(records.len());
        legend.extend(
            records[..take]
                .iter()
                .enumerate()
                .map(|(k, r)| legend_line(shown.len() + k, r, &class_of)),
        );
        drop(class_of);
        let mut picked: Vec<CounterfactualRecord> = records[..take].to_vec();
        materialize_compact(&mut picked, &records)?;
        shown.extend(picked);
    }
    for st in stats.values_mut() {
        st.mask_ratio_mean /= st.variants.max(1) as f64;
        let draws: usize = st.donor_classes.values().sum();
        st.same_class_donor_rate = st.same_class_donors as f64 / draws.max(1) as f64;
        let n = st.truth_variants.max(1) as f64;
        for m in [
            &mut st.object_iou_mean,
            &mut st.background_iou_mean,
            &mut st.object_masked_mean,
        ] {
            if let Some(v) = m.as_mut() {
                *v /= n;
            }
        }
    }
    let sheet = contact_sheet(&shown)?;
    let png = encode_png(&sheet)?;
    std::fs::write(out, png).map_err(|e| PipelineError::io(out, e))?;
    Ok(InspectReport {
        split: split.to_string(),
        rows,
        shown: shown.len(),
        strategies: stats,
        legend,
    })
}

fn legend_line(row: usize, r: &CounterfactualRecord, class_of: &HashMap<&str, &str>) -> String {
    let variants: Vec<String> = r
        .variants
        .iter()
        .map(|v| {
            let mut donors: Vec<&str> = v
                .donor_ids
                .iter()
                .map(|d| class_of.get(d.as_str()).copied().unwrap_or("?"))
                .collect();
            donors.sort_unstable();
            donors.dedup();
            let donors = if donors.is_empty() {
                "no fill".to_string()
            } else {
                donors.join("/")
            };
            format!("{}#{} <- {donors}", v.strategy, v.variant)
        })
        .collect();
    format!(
        "row {row}: {} [{}] | {}",
        r.base.id,
        r.base.class_name,
        variants.join(" | ")
    )
}

/// Blue (0) to red (1), green fixed low: a simple, monotone heat colour for CAM values in [0, 1].
fn heat(v: f32) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0);
    [(255.0 * v) as u8, 40, (255.0 * (1.0 - v)) as u8]
}

/// Compact shards store variants without pixels: recompose the shown ones (as PNG) from the clean
/// images of their shard, as the trainer's loader does.
fn materialize_compact(
    picked: &mut [CounterfactualRecord],
    shard: &[CounterfactualRecord],
) -> Result<()> {
    let png: HashMap<&str, &[u8]> = shard
        .iter()
        .map(|r| (r.base.id.as_str(), r.base.image.bytes.as_slice()))
        .collect();
    let decode = |id: &str| -> Result<Vec<u8>> {
        let bytes = png.get(id).ok_or_else(|| {
            PipelineError::Input(format!("donor '{id}' is not in the row's shard"))
        })?;
        Ok(decode_image(bytes)?.pixels)
    };
    for r in picked.iter_mut() {
        let own = decode_image(&r.base.image.bytes)?;
        for v in r.variants.iter_mut().filter(|v| v.image.bytes.is_empty()) {
            let donors: Vec<Vec<u8>> = v
                .donor_ids
                .iter()
                .map(|d| decode(d))
                .collect::<Result<_>>()?;
            let refs: Vec<&[u8]> = donors.iter().map(Vec::as_slice).collect();
            let pixels = recompose(&own.pixels, &v.mask, &refs, own.width as usize)?;
            v.image.bytes = encode_png(&RgbPixels {
                width: own.width,
                height: own.height,
                pixels,
            })?;
        }
    }
    Ok(())
}

fn contact_sheet(rows: &[CounterfactualRecord]) -> Result<RgbPixels> {
    if rows.is_empty() {
        return Err(PipelineError::Input("no rows to draw".into()));
    }
    let first = decode_image(&rows[0].base.image.bytes)?;
    let s = first.width as usize;
    let cols = 3 + rows.iter().map(|r| r.variants.len()).max().unwrap_or(0);
    let (w, h) = (cols * (s + GAP) + GAP, rows.len() * (s + GAP) + GAP);
    let mut px = vec![255u8; w * h * 3];
    let mut put = |row: usize, col: usize, img: &[u8]| {
        for y in 0..s {
            let dst = ((GAP + row * (s + GAP) + y) * w + GAP + col * (s + GAP)) * 3;
            px[dst..dst + s * 3].copy_from_slice(&img[y * s * 3..(y + 1) * s * 3]);
        }
    };
    for (i, r) in rows.iter().enumerate() {
        let orig = decode_image(&r.base.image.bytes)?;
        if orig.width as usize != s || orig.height as usize != s {
            return Err(PipelineError::Input(format!(
                "row '{}' is not {s}x{s}",
                r.base.id
            )));
        }
        let side = (r.cam.len() as f64).sqrt() as usize;
        if side * side != r.cam.len() || side == 0 || !s.is_multiple_of(side) {
            return Err(PipelineError::Input(format!(
                "row '{}': {} CAM values do not form a square grid over {s} px",
                r.base.id,
                r.cam.len()
            )));
        }
        let patch = s / side;
        let cell = |y: usize, x: usize| (y / patch) * side + x / patch;
        let mut cam_img = orig.pixels.clone();
        let mut mask_img = orig.pixels.clone();
        let mask = r
            .variants
            .first()
            .map(|v| v.mask.clone())
            .unwrap_or_default();
        for y in 0..s {
            for x in 0..s {
                let o = (y * s + x) * 3;
                let c = heat(r.cam[cell(y, x)]);
                for k in 0..3 {
                    cam_img[o + k] = ((u16::from(orig.pixels[o + k]) + u16::from(c[k])) / 2) as u8;
                    // Masked patches (of the first variant) shown white, the rest dimmed.
                    mask_img[o + k] = if mask.get(cell(y, x)).copied().unwrap_or(false) {
                        255
                    } else {
                        orig.pixels[o + k] / 3
                    };
                }
            }
        }
        put(i, 0, &orig.pixels);
        put(i, 1, &cam_img);
        put(i, 2, &mask_img);
        for (j, v) in r.variants.iter().enumerate() {
            put(i, 3 + j, &decode_image(&v.image.bytes)?.pixels);
        }
    }
    Ok(RgbPixels {
        width: w as u32,
        height: h as u32,
        pixels: px,
    })
}
