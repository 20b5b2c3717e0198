//! `cfkit train` as an object: a [`TrainingRun`] opens (data, model, resume point, run
//! directory), trains epochs (steps, logging, resumable checkpoints), ends each epoch (validation,
//! best checkpoint, epoch metrics, one save of `last`) and finishes (evaluation of the best
//! checkpoint, report). See the crate docs for the run directory's layout.

mod ddp;
pub mod dir;
mod epoch;
pub mod init;
mod open;
mod plan;
mod profile;
mod progress;
pub mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use tch::Device;

use crate::checkpoint::{self, CheckpointInfo};
use crate::config::{ResolvedEvalSet, TrainConfig};
use crate::data::{RowRef, SplitSource};
use crate::error::Result;
use crate::eval::evaluate_sets;
use crate::objective::Objective;
use crate::optim::Optimizer;
use crate::student::Student;
use cfkit_outdir::JsonLines;
use init::rng_record;
use report::{write_report, TrainReport};

pub use cfkit_distributed::{gloo_available, nccl_available, DistConfig};
pub use plan::StepPlan;
pub use progress::{EpochStats, Progress, StepSums};

/// How to run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Run directory (required: from --out or the config's [output]).
    pub out: PathBuf,
    pub resume: bool,
    /// No progress bars or per-epoch lines.
    pub quiet: bool,
    /// Time the phases of every step and write `profile.json` (see `run::profile`).
    pub profile: bool,
    /// The device this process trains on (a data-parallel rank's own GPU on CUDA).
    pub device: Device,
    /// This process is one rank of a data-parallel run (from the launcher's environment:
    /// [`DistConfig::from_launcher`]). Rank 0 writes the run directory, which every rank must
    /// see (a shared file system) to resume.
    pub dist: Option<DistConfig>,
}

/// Trains as configured; see the crate docs for the run directory layout.
pub fn train(cfg: &TrainConfig, opts: &TrainOptions) -> Result<TrainReport> {
    let mut run = TrainingRun::open(cfg, opts)?;
    while !run.finished() {
        run.train_epoch()?;
        run.end_epoch()?;
    }
    run.finish()
}

/// The rows a run trains and validates on, and the sets it is evaluated on.
struct RunData {
    source: Arc<SplitSource>,
    train_rows: Vec<RowRef>,
    /// Validation source and rows (hold-out of the training split, or a split of its own).
    val: Option<(Arc<SplitSource>, Vec<RowRef>)>,
    eval_sets: Vec<ResolvedEvalSet>,
}

impl RunData {
    fn val_rows(&self) -> usize {
        self.val.as_ref().map(|v| v.1.len()).unwrap_or(0)
    }
}

/// The run's append-only logs.
struct Logs {
    metrics: JsonLines,
    quarantine: JsonLines,
}

/// A training run between `open` and `finish`.
pub struct TrainingRun<'a> {
    /// The run directory's writer lock (rank 0's), held until the run is dropped.
    _lock: Option<cfkit_outdir::DirLock>,
    /// The other ranks of a data-parallel run.
    ddp: Option<ddp::Ddp>,
    cfg: &'a TrainConfig,
    out: PathBuf,
    quiet: bool,
    device: Device,
    config_hash: String,
    data: RunData,
    plan: StepPlan,
    student: Student,
    optimizer: Optimizer,
    objective: Objective,
    /// Autocast (bf16 on CUDA when configured) around forward and loss.
    autocast: bool,
    progress: Progress,
    /// The current optimizer step's sums and skipped rows (this rank's, until the step ends).
    pending: StepSums,
    pending_skipped: Vec<crate::data::Skipped>,
    /// The logs (rank 0 only: other ranks send it what they have to log).
    logs: Option<Logs>,
    bar: ProgressBar,
    /// The time split of the steps (`--profile`).
    profile: Option<profile::Profile>,
    /// When this process started training, and the training seconds of earlier parts.
    started: Instant,
    seconds_before: f64,
}

impl TrainingRun<'_> {
    /// Whether every epoch is done.
    pub fn finished(&self) -> bool {
        self.progress.epoch >= self.plan.total_epochs
    }

    /// Where the run stands.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Whether this process writes the run directory (rank 0, or the only process).
    pub fn is_writer(&self) -> bool {
        self.ddp.as_ref().is_none_or(|d| d.rank() == 0)
    }

    /// The checkpoint sidecar at the current position, with `metrics_bytes` of metrics logged.
    fn checkpoint_info(&self, metrics_bytes: u64) -> CheckpointInfo {
        let p = &self.progress;
        CheckpointInfo {
            format: String::new(),
            model: self.student.model.clone(),
            vision_config: self.student.config().clone(),
            classes: self.student.classes.clone(),
            method: self.plan.method.name().into(),
            config_hash: self.config_hash.clone(),
            step: p.step,
            epoch: p.epoch,
            next_batch: p.next_batch,
            seed: self.cfg.train.seed,
            rng: serde_json::json!({"keys": rng_record(self.cfg.train.seed), "progress": p}),
            best: p.best,
            metrics_bytes,
            has_optimizer: false,
            weights_blake3: String::new(),
            head_blake3: String::new(),
        }
    }

    /// Syncs both logs, records their lengths and the training time, and saves a checkpoint into
    /// `dir` (`last`, with the optimizer, or `best`, without).
    /// Only rank 0 saves; the others go on (every rank holds the same weights and position).
    fn save(&mut self, dir: &str, with_optimizer: bool) -> Result<()> {
        self.progress.train_seconds = self.seconds_before + self.started.elapsed().as_secs_f64();
        let Some(logs) = &mut self.logs else {
            return Ok(());
        };
        let len = logs.metrics.sync()?;
        self.progress.quarantine_bytes = Some(logs.quarantine.sync()?);
        checkpoint::save(
            &self.out.join(dir),
            &self.student,
            "trained",
            with_optimizer.then_some(&self.optimizer),
            self.checkpoint_info(len),
        )
        .map(|_| ())
    }

    /// Evaluates the best-validation checkpoint (the last one without validation) on the
    /// configured sets and writes the report. In a data-parallel run rank 0 does this alone;
    /// the other ranks return a report without evaluation.
    pub fn finish(self) -> Result<TrainReport> {
        self.bar.finish_and_clear();
        let p = &self.progress;
        let evaluated = match p.best {
            Some(_) => self.out.join(dir::BEST_DIR),
            None => self.out.join(dir::LAST_DIR),
        };
        let eval = if self.is_writer() {
            let (final_model, _) = checkpoint::load_student(&evaluated, self.device)?;
            evaluate_sets(
                &final_model,
                &self.data.eval_sets,
                self.cfg.train.eval_batch_size,
                self.device,
            )?
        } else {
            crate::eval::EvalReport::new(Vec::new())
        };
        let report = TrainReport {
            out: self.out.clone(),
            method: self.plan.method.name().into(),
            steps: p.step,
            epochs: self.plan.total_epochs,
            train_rows: self.plan.train_rows,
            val_rows: self.data.val_rows(),
            best: p.best,
            evaluated,
            eval,
            // Over every part of a resumed run, up to the last epoch's checkpoint (so a finished
            // run rerun with --resume reports the same time).
            train_seconds: p.train_seconds,
        };
        if self.is_writer() {
            write_report(&self.out, &report)?;
            if let Some(p) = self.profile {
                p.write(&self.out)?;
            }
        }
        Ok(report)
    }
}
