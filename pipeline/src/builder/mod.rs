//! `cfkit build-counterfactuals`: image shards + frozen teacher -> counterfactual shards.
//!
//! One output shard per input shard, with the same name (`<split>-NNNNN-of-MMMMM.parquet`), so
//! donors (drawn within a batch) always live in the same shard as their recipients; workers that
//! split a shard write its batch ranges as pieces ([`pieces`]). The manifest is rewritten after
//! every completed piece; a rerun with the same config skips the pieces it lists (after checking
//! their blake3) and redoes the rest; a rerun with another config into the same directory is
//! refused.
//!
//! A build is an object: [`Build::open`] (config hash, teacher, manifest to resume), then
//! [`Build::piece`] for each piece of this worker, then [`Build::finish`] (report, run.json).

pub mod batch;
pub mod config;
pub mod done;
pub mod merge;
mod open;
pub mod pieces;
mod quarantine;
pub mod record;
mod shard;
mod stats;
pub mod workers;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cfkit_models::{ClassificationHead, ClipModel};
use cfkit_schemas::{Manifest, SplitEntry, WriterOptions};
use indicatif::ProgressBar;
use serde::Serialize;
use tch::Device;

pub use config::BuildConfig;
pub use stats::{random_same_class_rate, DonorStats, MaskStats};

use crate::error::Result;
use stats::StrategyStats;
pub use workers::{Pipelining, RunOptions, WorkerSource, Workers};

/// What a build did.
#[derive(Debug, Clone, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct BuildReport {
    /// Rows (source images) written by this worker.
    pub rows: u64,
    /// Output shards (or pieces of shards) written by this run.
    pub shards_written: usize,
    /// Output shards (or pieces) already complete (kept).
    pub shards_skipped: usize,
    /// Bytes of the split's shards in the worker's manifest.
    pub bytes: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// Source images per second.
    pub images_per_s: f64,
    /// Fraction of the wall time the device stage was busy (teacher passes, CAMs, masks, refill,
    /// and the wait for the batch's one read-back, so on a GPU about the GPU's busy time), with
    /// decode and PNG encode running concurrently on other threads.
    pub device_busy_fraction: f64,
    /// Source images per second after the first device batch (set-up, the teacher's load and
    /// the first batch left out; 0 with a single batch).
    #[serde(default)]
    pub warm_images_per_s: f64,
    /// `device_busy_fraction` over the same span.
    #[serde(default)]
    pub warm_device_busy_fraction: f64,
    /// The device of the teacher passes (`Cpu`, `Cuda(0)`).
    pub device: String,
    /// Input rows left out (undecodable images), listed in `quarantine/<shard>.jsonl`.
    pub quarantined: u64,
    /// Per strategy: the fraction of patches masked, over every variant written.
    pub mask_ratio: BTreeMap<String, MaskStats>,
    /// Per strategy: donors drawn, how many were the recipient itself, and how many of the
    /// others share its class, over every variant written (no entry, or 0 draws, for strategies
    /// without donors).
    #[serde(default)]
    pub donors: BTreeMap<String, DonorStats>,
    /// The same-class rate donors drawn at random from the rows written would have (about the
    /// sum over classes of p_c squared); a strategy's rate far above it means donor pools of
    /// few classes (rows stored in class order).
    #[serde(default)]
    pub random_donor_same_class_rate: f64,
}

impl BuildReport {
    /// The report of a rerun that found the worker finished: nothing written, `skipped` shards
    /// kept, in `seconds`.
    fn into_rerun(self, skipped: usize, seconds: f64) -> Self {
        BuildReport {
            shards_written: 0,
            shards_skipped: skipped,
            seconds,
            images_per_s: 0.0,
            device_busy_fraction: 0.0,
            warm_images_per_s: 0.0,
            warm_device_busy_fraction: 0.0,
            ..self
        }
    }
}

/// Runs the build described by `cfg` into `out` (the part of `opts.workers`).
pub fn build_counterfactuals(
    cfg: &BuildConfig,
    out: &Path,
    opts: RunOptions,
) -> Result<BuildReport> {
    let mut build = match Build::open(cfg, out, opts)? {
        Opened::Finished(report) => return Ok(report),
        Opened::Ready(build) => build,
    };
    for piece in build.my_pieces() {
        build.piece(&piece)?;
    }
    build.finish()
}

/// Splits `n` rows into batches of `size`, folding a last batch of one row into the previous one
/// (a donor pool needs two images).
pub(crate) fn batch_bounds(n: usize, size: usize) -> Vec<(usize, usize)> {
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

/// A build opened: ready to run, or this worker finished it before (its marker and shards are
/// there): the report of that run, as a rerun that skipped every shard.
#[allow(clippy::large_enum_variant)] // one value per process
pub enum Opened<'a> {
    Ready(Build<'a>),
    Finished(BuildReport),
}

/// What has been done so far.
#[derive(Default)]
struct Tally {
    rows: u64,
    written: usize,
    skipped: usize,
    device_s: f64,
    stats: StrategyStats,
    /// When the run's first device batch was done: the warm rates count from there.
    warm: Option<WarmStart>,
}

/// The end of the first device batch (CUDA set-up, the teacher's load and the first kernels'
/// selection are behind), its rows and device seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WarmStart {
    pub(crate) at: Instant,
    pub(crate) rows: u64,
    pub(crate) device_s: f64,
}

/// An open build: the teacher on its device, the source split, the manifest being written.
pub struct Build<'a> {
    /// This worker's writer lock on the output directory, held until the build is dropped.
    _lock: cfkit_outdir::DirLock,
    cfg: &'a BuildConfig,
    out: PathBuf,
    opts: RunOptions,
    device: Device,
    model: ClipModel,
    head: ClassificationHead,
    /// The source split's entry of the source manifest.
    entry: SplitEntry,
    /// The build's identity (run.json, manifest) and its hash.
    config: record::BuildIdentity,
    hash: String,
    manifest: Manifest,
    manifest_path: PathBuf,
    schema: arrow_schema::SchemaRef,
    writer_options: WriterOptions,
    pb: ProgressBar,
    start: Instant,
    tally: Tally,
}

impl Build<'_> {
    /// The pieces of the input this worker builds.
    pub(crate) fn my_pieces(&self) -> Vec<pieces::Piece> {
        pieces::pieces(
            &self.entry,
            self.cfg.counterfactuals.batch_size,
            self.opts.workers,
        )
    }

    /// The report of the whole build, also written to this worker's run.json.
    pub fn finish(self) -> Result<BuildReport> {
        self.pb.finish_and_clear();
        let seconds = self.start.elapsed().as_secs_f64();
        let split = &self.cfg.source.split;
        let bytes = self
            .manifest
            .splits
            .get(split)
            .map(|e| e.shards.iter().map(|s| s.bytes).sum())
            .unwrap_or(0);
        let mine = self.my_pieces();
        let t = self.tally;
        let (donors, random_donor_same_class_rate) = t.stats.donors();
        let report = BuildReport {
            rows: t.rows,
            shards_written: t.written,
            shards_skipped: t.skipped,
            bytes,
            seconds,
            images_per_s: t.rows as f64 / seconds.max(1e-9),
            device_busy_fraction: (t.device_s / seconds.max(1e-9)).min(1.0),
            warm_images_per_s: t.warm.map_or(0.0, |w| {
                (t.rows - w.rows.min(t.rows)) as f64 / w.at.elapsed().as_secs_f64().max(1e-9)
            }),
            warm_device_busy_fraction: t.warm.map_or(0.0, |w| {
                ((t.device_s - w.device_s) / w.at.elapsed().as_secs_f64().max(1e-9)).clamp(0.0, 1.0)
            }),
            device: format!("{:?}", self.device),
            quarantined: quarantine::count(&self.out, mine.iter().map(|p| p.file.as_str())),
            mask_ratio: t.stats.summary(),
            donors,
            random_donor_same_class_rate,
        };
        let run = record::BuildRecord {
            cfkit: env!("CARGO_PKG_VERSION").into(),
            config: self.config,
            config_hash: self.hash.clone(),
            report: report.clone(),
            workers: record::WorkerRecord {
                index: self.opts.workers.index,
                count: self.opts.workers.count,
                source: self.opts.worker_source,
            },
        };
        cfkit_outdir::write_json(&self.out.join(self.opts.workers.run_name()), &run)?;
        // Also when this worker had nothing to build: merge wants every worker's part.
        self.manifest.write_file(&self.manifest_path)?;
        done::write(&self.out, self.opts.workers, &self.hash, &report)?;
        Ok(report)
    }
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
