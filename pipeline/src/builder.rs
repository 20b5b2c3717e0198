//! `cfkit build-counterfactuals`: image shards + frozen teacher -> counterfactual shards.
//!
//! One output shard per input shard, with the same name (`<split>-NNNNN-of-MMMMM.parquet`), so
//! donors (drawn within a batch) always live in the same shard as their recipients. The manifest
//! is rewritten after every completed shard; a rerun with the same config skips the shards it
//! lists (after checking their blake3) and redoes the rest; a rerun with another config into the
//! same directory is refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use cfkit_models::weights::file_blake3;
use cfkit_models::{load_head, resolve_config, CamMethod, ClipModel, Towers};
use cfkit_schemas::layout::MANIFEST_FILE;
use cfkit_schemas::{
    config_hash, counterfactuals_to_batch, shard_schema, CounterfactualDims, DatasetInfo, Manifest,
    ShardKind, ShardReader, ShardWriter, TeacherInfo, WriterOptions, SCHEMA_VERSION,
};
use serde::Serialize;

use crate::build_config::BuildConfig;
use crate::cf_batch::{
    compute_batch, decode_batch, encode_batch, BatchSpec, ComputedBatch, DecodedBatch, Teacher,
};
use crate::error::{PipelineError, Result};
use crate::prepare::check_existing;
pub use crate::run_options::{Pipelining, RunOptions, Workers};
use crate::split_writer::progress_bar;
use crossbeam_channel::bounded;

/// Mask-ratio statistics of one strategy.
#[derive(Debug, Clone, Serialize, Default)]
pub struct MaskStats {
    pub variants: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// What a build did.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub rows: u64,
    pub shards_written: usize,
    pub shards_skipped: usize,
    pub bytes: u64,
    pub seconds: f64,
    pub images_per_s: f64,
    /// Fraction of the wall time the device stage was busy (teacher passes, CAMs, masks, refill),
    /// with decode and PNG encode running concurrently on other threads.
    pub device_busy_fraction: f64,
    pub device: String,
    /// Input rows left out (undecodable images), listed in `quarantine/<shard>.jsonl`.
    pub quarantined: u64,
    pub mask_ratio: BTreeMap<String, MaskStats>,
}

/// `quarantine/<shard>.jsonl`: the rows of one input shard that were left out, with reasons
/// (rewritten with its shard, so reruns and workers never mix entries). Removed when empty.
fn write_quarantine(out: &Path, shard_file: &str, rejected: &[(String, String)]) -> Result<()> {
    let name = Path::new(shard_file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| shard_file.replace('/', "_"));
    let path = out.join("quarantine").join(format!("{name}.jsonl"));
    if rejected.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(PipelineError::io(&path, e)),
            _ => Ok(()),
        };
    }
    let dir = out.join("quarantine");
    std::fs::create_dir_all(&dir).map_err(|e| PipelineError::io(&dir, e))?;
    let text: String = rejected
        .iter()
        .map(|(id, reason)| {
            serde_json::json!({"id": id, "shard": shard_file, "reason": reason}).to_string() + "\n"
        })
        .collect();
    std::fs::write(&path, text).map_err(|e| PipelineError::io(&path, e))
}

/// Rows listed in the quarantine files of `shards`.
fn count_quarantined(out: &Path, shards: &[&str]) -> u64 {
    shards
        .iter()
        .filter_map(|f| {
            let stem = Path::new(f).file_stem()?.to_string_lossy().into_owned();
            std::fs::read_to_string(out.join("quarantine").join(format!("{stem}.jsonl"))).ok()
        })
        .map(|t| t.lines().count() as u64)
        .sum()
}

/// Per strategy: (variants, sum of mask ratios, min, max).
type StrategyStats = BTreeMap<String, (u64, f64, f64, f64)>;

fn add_mask_stats(stats: &mut StrategyStats, records: &[cfkit_schemas::CounterfactualRecord]) {
    for r in records {
        for v in &r.variants {
            let ratio = v.mask.iter().filter(|&&m| m).count() as f64 / v.mask.len().max(1) as f64;
            let st = stats.entry(v.strategy.clone()).or_insert((
                0,
                0.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ));
            *st = (st.0 + 1, st.1 + ratio, st.2.min(ratio), st.3.max(ratio));
        }
    }
}

fn merge_mask_stats(into: &mut StrategyStats, from: StrategyStats) {
    for (k, (n, sum, min, max)) in from {
        let st = into
            .entry(k)
            .or_insert((0, 0.0, f64::INFINITY, f64::NEG_INFINITY));
        *st = (st.0 + n, st.1 + sum, st.2.min(min), st.3.max(max));
    }
}

/// Splits `n` rows into batches of `size`, folding a last batch of one row into the previous one
/// (a donor pool needs two images).
pub fn batch_bounds(n: usize, size: usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = (0..n)
        .step_by(size.max(1))
        .map(|s| (s, (s + size).min(n)))
        .collect();
    if out.len() >= 2 && out.last().is_some_and(|(s, e)| e - s == 1) {
        let (_, e) = out.pop().expect("non-empty");
        out.last_mut().expect("non-empty").1 = e;
    }
    out
}

/// Runs the build described by `cfg` into `out` (the part of `opts.workers`).
pub fn build_counterfactuals(
    cfg: &BuildConfig,
    out: &Path,
    opts: RunOptions,
) -> Result<BuildReport> {
    let RunOptions {
        quiet,
        workers,
        pipelining,
    } = opts;
    let start = Instant::now();
    let strategies = cfg.strategies()?;
    let c = &cfg.counterfactuals;
    let device =
        cfkit_models::parse_device(&c.device).map_err(|e| PipelineError::Input(e.to_string()))?;
    let cam: CamMethod = c
        .cam
        .parse()
        .map_err(|e: cfkit_models::ModelError| PipelineError::Input(e.to_string()))?;

    let source = Manifest::read(&cfg.source.shards)?;
    let entry = source.splits.get(&cfg.source.split).ok_or_else(|| {
        PipelineError::Input(format!(
            "'{}' has no split '{}' (it has: {})",
            cfg.source.shards.join(MANIFEST_FILE).display(),
            cfg.source.split,
            source.splits.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let model_cfg = resolve_config(&cfg.teacher.model)?;
    let model = ClipModel::load(&model_cfg, &cfg.teacher.weights, Towers::Vision, device)?;
    let (head, head_info) = load_head(&cfg.teacher.head, device)?;
    if head_info.classes != entry.classes {
        return Err(PipelineError::Input(format!(
            "the teacher head '{}' has classes {:?}…, the source split has {:?}…: they must be the same list",
            cfg.teacher.head.display(),
            &head_info.classes[..head_info.classes.len().min(3)],
            &entry.classes[..entry.classes.len().min(3)]
        )));
    }
    let teacher_info = TeacherInfo {
        model: cfg.teacher.model.clone(),
        weights_blake3: file_blake3(&cfg.teacher.weights)?,
        head_blake3: file_blake3(&cfg.teacher.head)?,
    };
    let mut resolved = serde_json::to_value(cfg).expect("config serialises");
    resolved["output"] = serde_json::Value::Null; // where the output goes does not change it
    let config = serde_json::json!({
        "command": "build-counterfactuals",
        "config": resolved,
        "source_config_hash": source.config_hash,
        "teacher": teacher_info,
    });
    let hash = config_hash(&config);
    check_existing(out, &hash)?;
    let manifest_path = out.join(workers.manifest_name());
    let mut manifest = if manifest_path.exists() {
        let m = Manifest::read_file(&manifest_path)?;
        if m.config_hash != hash {
            return Err(PipelineError::Input(format!(
                "'{}' was written with another config: choose another --out or remove it",
                manifest_path.display()
            )));
        }
        m
    } else {
        let mut m = Manifest::new(
            ShardKind::Counterfactuals,
            config.clone(),
            &format!("cfkit {}", env!("CARGO_PKG_VERSION")),
        );
        m.teacher_blake3 = Some(teacher_info.weights_blake3.clone());
        m
    };
    let vision = model.vision()?;
    let info = DatasetInfo {
        schema_version: SCHEMA_VERSION,
        kind: ShardKind::Counterfactuals,
        split: cfg.source.split.clone(),
        classes: entry.classes.clone(),
        image_size: vision.config.image_size as u32,
        preprocessing: format!("as the source dataset ({})", cfg.source.shards.display()),
        source: format!("shards:{}", cfg.source.shards.display()),
        seed: Some(c.seed),
        config_hash: Some(hash.clone()),
        teacher: Some(teacher_info),
        method: Some(serde_json::json!({
            "cam": c.cam, "strategies": strategies.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "variants_per_strategy": c.variants, "batch_size": c.batch_size, "donor_pool": "batch",
        })),
    };
    let dims = CounterfactualDims {
        num_patches: vision.config.num_patches() as i32,
        feature_dim: vision.config.projection_dim as i32,
    };
    let schema = shard_schema(&info, Some(dims));
    let options = WriterOptions {
        row_group_bytes: cfg
            .output
            .row_group_bytes
            .unwrap_or(cfkit_schemas::writer::DEFAULT_ROW_GROUP_BYTES),
        ..Default::default()
    };
    let teacher = Teacher {
        vision,
        head: &head,
        device,
        cam,
    };
    let my_rows: u64 = entry
        .shards
        .iter()
        .enumerate()
        .filter(|(k, _)| workers.takes(*k))
        .map(|(_, s)| s.rows)
        .sum();
    let pipelined = match pipelining {
        Pipelining::On => true,
        Pipelining::Off => false,
        Pipelining::Auto => device.is_cuda(),
    };
    let pb = progress_bar(my_rows, &format!("cf {}", cfg.source.split), quiet);
    let (mut rows, mut written, mut skipped, mut device_s) = (0u64, 0usize, 0usize, 0f64);
    let mut stats = StrategyStats::new();
    let done: BTreeMap<String, _> = manifest
        .splits
        .get(&cfg.source.split)
        .map(|e| {
            e.shards
                .iter()
                .map(|s| (s.file.clone(), s.clone()))
                .collect()
        })
        .unwrap_or_default();
    for (k, shard) in entry.shards.iter().enumerate() {
        if !workers.takes(k) {
            continue;
        }
        if let Some(prev) = done.get(&shard.file) {
            if ShardReader::open_verified(&out.join(&prev.file), prev.bytes, &prev.blake3).is_ok() {
                skipped += 1;
                rows += prev.rows;
                pb.inc(shard.rows);
                continue;
            }
        }
        let reader = ShardReader::open_verified(
            &cfg.source.shards.join(&shard.file),
            shard.bytes,
            &shard.blake3,
        )?;
        let images = reader.read_images()?;
        let writer = ShardWriter::try_new(out, Path::new(&shard.file), schema.clone(), options)?;
        let size = vision.config.image_size as usize;
        let bounds = batch_bounds(images.len(), c.batch_size);
        let spec_of = |b: usize| BatchSpec {
            strategies: &strategies,
            variants: c.variants,
            seed: c.seed,
            shard: k,
            batch: b,
            store_logits: c.store_logits,
        };
        // Three stages joined by bounded channels: decode (rayon) -> device (this thread) ->
        // encode (rayon) + write. Each channel holds two batches, so at most ~6 batches are in
        // memory and the device never waits for PNG work.
        let mut rejected: Vec<(String, String)> = Vec::new();
        // The device stage of one batch: set rejected rows aside, compute, time it.
        let mut shard_device_s = 0.0;
        let busy_since = Instant::now();
        let mut device_step =
            |b: usize, mut decoded: DecodedBatch| -> Result<Option<ComputedBatch>> {
                rejected.append(&mut decoded.rejected);
                if decoded.rows.is_empty() {
                    return Ok(None);
                }
                let t0 = Instant::now();
                let computed = compute_batch(&teacher, decoded, &spec_of(b))?;
                shard_device_s += t0.elapsed().as_secs_f64();
                let busy = shard_device_s / busy_since.elapsed().as_secs_f64().max(1e-9);
                pb.set_message(format!("device busy {:.0}%", 100.0 * busy));
                Ok(Some(computed))
            };
        let (writer, shard_stats, shard_rows) = if pipelined {
            std::thread::scope(|scope| {
                let (tx_dec, rx_dec) = bounded::<DecodedBatch>(2);
                let (tx_enc, rx_enc) = bounded::<ComputedBatch>(2);
                let images = &images;
                scope.spawn(move || {
                    for (s, e) in bounds {
                        if tx_dec
                            .send(decode_batch(images[s..e].to_vec(), size))
                            .is_err()
                        {
                            return;
                        }
                    }
                });
                let schema = &schema;
                let enc_pb = pb.clone();
                let encoder = scope.spawn(move || -> Result<_> {
                    let mut writer = writer;
                    let mut stats = StrategyStats::new();
                    let mut rows = 0u64;
                    for computed in rx_enc {
                        let records = encode_batch(computed)?;
                        add_mask_stats(&mut stats, &records);
                        writer.write(&counterfactuals_to_batch(schema, &records)?)?;
                        rows += records.len() as u64;
                        enc_pb.inc(records.len() as u64);
                    }
                    Ok((writer, stats, rows))
                });
                for (b, decoded) in rx_dec.into_iter().enumerate() {
                    let Some(computed) = device_step(b, decoded)? else {
                        continue;
                    };
                    if tx_enc.send(computed).is_err() {
                        break; // the encoder failed; its error is returned below
                    }
                }
                drop(tx_enc);
                let (writer, stats, rows) = encoder
                    .join()
                    .map_err(|_| PipelineError::Input("the encoder thread panicked".into()))??;
                Ok::<_, PipelineError>((writer, stats, rows))
            })?
        } else {
            let mut writer = writer;
            let (mut st, mut n) = (StrategyStats::new(), 0u64);
            for (b, (s, e)) in bounds.into_iter().enumerate() {
                let decoded = decode_batch(images[s..e].to_vec(), size);
                let Some(computed) = device_step(b, decoded)? else {
                    continue;
                };
                let records = encode_batch(computed)?;
                add_mask_stats(&mut st, &records);
                writer.write(&counterfactuals_to_batch(&schema, &records)?)?;
                n += records.len() as u64;
                pb.inc(records.len() as u64);
            }
            (writer, st, n)
        };
        device_s += shard_device_s;
        rows += shard_rows;
        merge_mask_stats(&mut stats, shard_stats);
        write_quarantine(out, &shard.file, &rejected)?;
        let summary = writer.close()?;
        manifest.add_shard(&cfg.source.split, &entry.classes, summary);
        manifest.write_file(&manifest_path)?;
        written += 1;
    }
    pb.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let bytes = manifest
        .splits
        .get(&cfg.source.split)
        .map(|e| e.shards.iter().map(|s| s.bytes).sum())
        .unwrap_or(0);
    let report = BuildReport {
        rows,
        shards_written: written,
        shards_skipped: skipped,
        bytes,
        seconds,
        images_per_s: rows as f64 / seconds.max(1e-9),
        device_busy_fraction: (device_s / seconds.max(1e-9)).min(1.0),
        device: format!("{device:?}"),
        quarantined: count_quarantined(
            out,
            &entry
                .shards
                .iter()
                .enumerate()
                .filter(|(k, _)| workers.takes(*k))
                .map(|(_, s)| s.file.as_str())
                .collect::<Vec<_>>(),
        ),
        mask_ratio: stats
            .into_iter()
            .map(|(k, (n, sum, min, max))| {
                (
                    k,
                    MaskStats {
                        variants: n,
                        mean: sum / n.max(1) as f64,
                        min,
                        max,
                    },
                )
            })
            .collect(),
    };
    let run = serde_json::json!({"cfkit": env!("CARGO_PKG_VERSION"), "config": config, "config_hash": hash, "report": report});
    let path = out.join(workers.run_name());
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&run).expect("json") + "\n",
    )
    .map_err(|e| PipelineError::io(&path, e))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::batch_bounds;

    #[test]
    fn a_lone_last_image_joins_the_previous_batch() {
        assert_eq!(batch_bounds(10, 4), vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(batch_bounds(9, 4), vec![(0, 4), (4, 9)]);
        assert_eq!(batch_bounds(1, 4), vec![(0, 1)]);
        assert_eq!(batch_bounds(0, 4), vec![]);
    }
}
