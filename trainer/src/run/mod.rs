//! `cfkit train` as an object, in named parts: a [`TrainingRun`] opens (data, model, resume
//! point, run directory: `open`), trains epochs (micro-batches through the objective, optimizer
//! steps, the metrics log and the checkpointer's policy: `epoch`), ends each epoch (validation,
//! the best checkpoint, the epoch's line, one save of `last`) and finishes (evaluation of the
//! best checkpoint, the report). One process or one rank of several ([`parallel`]) runs the same
//! loop. See the crate docs for the run directory's layout.

mod checkpointer;
mod ddp;
mod deferred;
pub mod dir;
mod epoch;
pub mod init;
pub mod metrics;
mod open;
mod parallel;
mod plan;
pub mod profile;
mod progress;
pub mod record;
pub mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::ProgressBar;
use tch::Device;

use crate::checkpoint::CheckpointInfo;
use crate::config::{ResolvedEvalSet, TrainConfig};
use crate::data::{RowRef, Skipped, SplitSource};
use crate::error::Result;
use crate::eval::Evaluator;
use crate::objective::Objective;
use crate::optim::Optimizer;
use crate::student::Student;
use checkpointer::{Checkpointer, Slot};
use metrics::MetricsLog;
use parallel::Parallel;
use record::RngRecord;
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
    /// How the first epoch's order mixes classes, next to a permutation.
    mixing: crate::data::mixing::MixingRecord,
    /// The ids of the rows held out of the training split for validation, sorted (empty with no
    /// hold-out).
    holdout_ids: Vec<String>,
}

impl RunData {
    fn val_rows(&self) -> usize {
        self.val.as_ref().map(|v| v.1.len()).unwrap_or(0)
    }
}

/// What is trained and how: the model, its optimizer and the method's objective, on a device.
struct Learner {
    device: Device,
    student: Student,
    optimizer: Optimizer,
    objective: Objective,
    /// Autocast (bf16 on CUDA when configured) around forward and loss.
    autocast: Option<tch::Device>,
}

/// What the writer (rank 0, or the only process) holds of the run directory: its lock, held
/// until the run is dropped, and the logs.
struct Writer {
    _lock: cfkit_outdir::DirLock,
    log: MetricsLog,
}

/// What the run shows while it trains: the progress bar (rank 0, unless quiet) and, with
/// `--profile`, the time split of the steps.
struct Console {
    bar: ProgressBar,
    quiet: bool,
    profile: Option<profile::Profile>,
}

/// Training time: when this process started training, and the seconds of earlier parts of a
/// resumed run.
struct Clock {
    started: Instant,
    before: f64,
}

impl Clock {
    fn total(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }
}

/// A training run between `open` and `finish`.
pub struct TrainingRun<'a> {
    cfg: &'a TrainConfig,
    config_hash: String,
    plan: StepPlan,
    parallel: Parallel,
    data: RunData,
    learner: Learner,
    progress: Progress,
    /// The training statistics still on the device (read where a window, checkpoint or epoch
    /// ends).
    deferred: deferred::DeferredStats,
    /// Rows of the current optimizer step the loader skipped (this rank's, until the step ends).
    pending_skipped: Vec<Skipped>,
    checkpointer: Checkpointer,
    /// Rank 0's hold on the run directory (other ranks send it what they have to log).
    writer: Option<Writer>,
    console: Console,
    clock: Clock,
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

    /// Reads the statistics of every finished step from the device into the epoch's sums.
    fn flush_stats(&mut self) -> Result<()> {
        self.deferred.flush(&mut self.progress.stats)
    }

    /// The checkpoint sidecar at the current position, with `metrics_bytes` of metrics logged.
    fn checkpoint_info(&self, metrics_bytes: u64) -> CheckpointInfo {
        let (p, student) = (&self.progress, &self.learner.student);
        CheckpointInfo {
            format: String::new(),
            model: student.model.clone(),
            vision_config: student.config().clone(),
            classes: student.classes.clone(),
            method: self.plan.method.name().into(),
            config_hash: self.config_hash.clone(),
            step: p.step,
            epoch: p.epoch,
            next_batch: p.next_batch,
            seed: self.cfg.train.seed,
            rng: Some(RngRecord::new(self.cfg.train.seed)),
            progress: Some(p.clone()),
            derived: None,
            best: p.best,
            metrics_bytes,
            has_optimizer: false,
            weights_blake3: String::new(),
            head_blake3: String::new(),
        }
    }

    /// Syncs both logs, records their lengths and the training time, and saves the checkpoint
    /// `slot`. Only rank 0 saves; the others go on (every rank holds the same weights and
    /// position).
    fn save(&mut self, slot: Slot) -> Result<()> {
        self.flush_stats()?;
        self.progress.train_seconds = self.clock.total();
        let Some(w) = &mut self.writer else {
            return Ok(());
        };
        let (metrics_bytes, quarantine_bytes) = w.log.sync()?;
        self.progress.quarantine_bytes = Some(quarantine_bytes);
        let info = self.checkpoint_info(metrics_bytes);
        let l = &self.learner;
        self.checkpointer.save(slot, &l.student, &l.optimizer, info)
    }

    /// Evaluates the best-validation checkpoint (the last one without validation) on the
    /// configured sets and writes the report. In a data-parallel run rank 0 does this alone;
    /// the other ranks return a report without evaluation.
    pub fn finish(self) -> Result<TrainReport> {
        self.console.bar.finish_and_clear();
        let p = &self.progress;
        let evaluated = self.checkpointer.dir(match p.best {
            Some(_) => Slot::Best,
            None => Slot::Last,
        });
        let device = self.learner.device;
        let eval = if self.parallel.is_writer() {
            let (final_model, _) = crate::checkpoint::load_student(&evaluated, device)?;
            Evaluator::new(&final_model, self.cfg.train.eval_batch_size, device)
                .sets(&self.data.eval_sets)?
        } else {
            crate::eval::EvalReport::new(Vec::new())
        };
        let report = TrainReport {
            out: self.checkpointer.out().to_path_buf(),
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
        if self.parallel.is_writer() {
            write_report(self.checkpointer.out(), &report)?;
            if let Some(mut p) = self.console.profile {
                p.host_reads = self.deferred.reads;
                p.write(self.checkpointer.out())?;
            }
        }
        Ok(report)
    }
}
