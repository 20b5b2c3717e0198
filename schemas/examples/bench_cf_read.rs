//! Reading counterfactual shards the way each kind of training run needs them, against reading
//! every column and every variant (what the trainer's loader did before column projection), side
//! by side in the same run: `just bench-cf-read`.
//!
//! Usage: bench_cf_read DIR SPLIT STRATEGY REPEATS. For each run kind, alternately REPEATS times:
//! the whole row groups (`read_row_group` + every variant), then the projected read:
//! - `images` (FT, LP, online FD): the image columns alone;
//! - `clean-targets` (FT+KD, FT+FD on clean images): everything but `variants`;
//! - `one-strategy` (masked FD): every column, variants of STRATEGY only.
//!
//! Prints one JSON object: rows, and per kind the best seconds of each path and their ratio.
//! The best of the repeats is the estimate least disturbed by other work on the machine.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use cfkit_schemas::fields::{COUNTERFACTUAL_COLUMNS, VARIANTS};
use cfkit_schemas::{
    batch_to_counterfactuals, batch_to_counterfactuals_select, batch_to_images, Manifest,
    ShardReader, VariantSelect,
};

/// One pass over every row group; returns (seconds, rows, a checksum of what was read so that
/// no path can skip work).
fn pass(
    readers: &[ShardReader],
    kind: &str,
    strategy: &str,
    whole: bool,
) -> Result<(f64, u64, u64)> {
    let t0 = Instant::now();
    let (mut rows, mut sum) = (0u64, 0u64);
    for r in readers {
        for g in 0..r.num_row_groups() {
            let batches = if whole {
                r.read_row_group(g, 1024)?
            } else {
                let skip: &[&str] = match kind {
                    "images" => &COUNTERFACTUAL_COLUMNS,
                    "clean-targets" => &[VARIANTS],
                    _ => &[],
                };
                r.read_row_group_except(g, 1024, skip)?
            };
            for b in &batches {
                rows += b.num_rows() as u64;
                if kind == "images" && !whole {
                    for rec in batch_to_images(b, r.path())? {
                        sum = sum.wrapping_add(rec.image.bytes.len() as u64);
                    }
                    continue;
                }
                let recs = match (whole, kind) {
                    (true, _) => batch_to_counterfactuals(b, r.path())?,
                    (false, "clean-targets") => {
                        batch_to_counterfactuals_select(b, r.path(), VariantSelect::None)?
                    }
                    _ => batch_to_counterfactuals_select(
                        b,
                        r.path(),
                        VariantSelect::Strategy(strategy),
                    )?,
                };
                for rec in recs {
                    sum = sum.wrapping_add(rec.base.image.bytes.len() as u64);
                    if kind == "one-strategy" {
                        let v = rec.variants.iter().find(|v| v.strategy == strategy);
                        sum = sum.wrapping_add(v.map_or(0, |v| v.image.bytes.len() as u64));
                    }
                }
            }
        }
    }
    Ok((t0.elapsed().as_secs_f64(), rows, sum))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, split, strategy, repeats] = args.as_slice() else {
        anyhow::bail!("usage: bench_cf_read DIR SPLIT STRATEGY REPEATS");
    };
    let dir = Path::new(dir);
    let repeats: usize = repeats.parse().context("REPEATS must be a number")?;
    let manifest = Manifest::read(dir)?;
    let entry = manifest
        .splits
        .get(split.as_str())
        .with_context(|| format!("{}: no split '{split}'", dir.display()))?;
    let readers = entry
        .shards
        .iter()
        .map(|s| ShardReader::open(&dir.join(&s.file)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = serde_json::Map::new();
    let mut total_rows = 0;
    for kind in ["images", "clean-targets", "one-strategy"] {
        let (mut whole, mut projected) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..repeats.max(1) {
            let (tw, rows, sw) = pass(&readers, kind, strategy, true)?;
            let (tp, _, sp) = pass(&readers, kind, strategy, false)?;
            anyhow::ensure!(sw == sp, "{kind}: the two paths read different bytes");
            (whole, projected, total_rows) = (whole.min(tw), projected.min(tp), rows);
        }
        out.insert(
            kind.into(),
            serde_json::json!({"whole_s": whole, "projected_s": projected, "speedup": whole / projected}),
        );
    }
    out.insert("rows".into(), total_rows.into());
    out.insert("strategy".into(), strategy.as_str().into());
    out.insert("repeats".into(), repeats.into());
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
