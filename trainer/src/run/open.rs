//! Opening a training run: data, model (fresh or from the resume checkpoint), checks that they
//! fit, optimizer, objective, and only then the run directory with its record and logs.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cfkit_outdir::{crash_point, DirLock};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tch::Device;

use super::checkpointer::{Checkpointer, Slot};
use super::deferred::DeferredStats;
use super::metrics::MetricsLog;
use super::parallel::Parallel;
use super::record::{DataRecord, EvalSetRecord, HoldoutRecord, RngRecord, RunRecord};
use super::Writer;
use super::{Clock, Console, Learner, Progress, RunData, StepPlan, TrainOptions, TrainingRun};
use crate::checkpoint;
use crate::config::TrainConfig;
use crate::data::mixing::{mixing_record, WARN_BELOW};
use crate::data::{epoch_order, stratified_holdout, SplitSource};
use crate::error::{Result, TrainError};
use crate::eval::all_rows;
use crate::objective::Objective;
use crate::optim::{OptimConfig, Optimizer};
use crate::run::dir::{self, Existing};
use crate::run::init::{init_record, init_student};
use crate::student::Student;

impl<'a> TrainingRun<'a> {
    /// Opens the run in `opts.out`: a fresh run, or with `opts.resume` the run of the same config
    /// already there, from its last checkpoint. Nothing is written before data, model and config
    /// have been checked (a failed start leaves nothing that a corrected rerun would refuse).
    ///
    /// A data-parallel rank (`opts.dist`) first meets the others and checks that they run the
    /// same config; rank 0 alone locks, checks and writes the directory and tells the others
    /// whether to resume from its checkpoint.
    pub fn open(cfg: &'a TrainConfig, opts: &TrainOptions) -> Result<Self> {
        let config_hash = cfg.hash();
        let device = opts.device;
        let parallel = Parallel::start(opts.dist.as_ref(), &config_hash)?;
        let writer = parallel.is_writer();
        let out = opts.out.clone();
        let (lock, resume) = claim_dir(&parallel, &out, &config_hash, opts.resume)?;
        let data = open_data(cfg)?;
        let eval_records = eval_records(&data)?;

        let checkpointer = Checkpointer::new(
            &out,
            cfg.train.checkpoint_every,
            cfg.train.checkpoint_minutes,
        );
        let last_dir = checkpointer.dir(Slot::Last);
        let resume_from = if resume {
            checkpoint::resolve(&last_dir)
        } else {
            None
        };
        if resume && !writer && resume_from.is_none() {
            return Err(TrainError::Distributed(format!(
                "rank 0 resumes from '{}', which this rank cannot read: every rank must see the \
                 run directory (a shared file system)",
                last_dir.display()
            )));
        }
        let (mut student, mut progress, metrics_bytes) = match &resume_from {
            Some(dir) => restore(dir, &config_hash, device)?,
            None => (
                init_student(cfg, &data.source.classes, device)?,
                Progress::default(),
                0,
            ),
        };
        check_student_fits(cfg, &student, &data.source)?;

        let autocast = cfg.train.precision.prepare(device);
        let objective = Objective::new(cfg, &data.source, device, parallel.rank())?;
        let plan = StepPlan::new(cfg, data.train_rows.len(), parallel.world())?;
        convert_position(cfg, &plan, &mut progress);
        let mut optimizer = make_optimizer(cfg, &mut student, plan.probing(progress.epoch));
        if let Some(dir) = &resume_from {
            checkpoint::load_optimizer(dir, &mut optimizer)?;
        }
        parallel.start_together(&student, &progress)?;

        // run.json first (atomically), so that a run stopped at any later moment of its set-up
        // is recognised as this config's and resumed (`--resume`).
        if resume_from.is_none() && writer {
            let mut record = run_record(cfg, &config_hash, device, &plan, &objective, &data)?;
            record.distributed =
                parallel.record(&plan, device, opts.dist.as_ref().map(|d| d.timeout));
            record.data.eval = eval_records;
            cfkit_outdir::write_json(&out.join(dir::RUN_FILE), &record)?;
            crash_point("train:run.json");
        }
        // After run.json (a directory holding it is this run's), on every start: the same bytes.
        if writer && !data.holdout_ids.is_empty() {
            let text: String = data
                .holdout_ids
                .iter()
                .map(|id| format!("{id}\n"))
                .collect();
            cfkit_outdir::write_atomic(&out.join(dir::HOLDOUT_FILE), text.as_bytes())?;
        }
        let writer = match lock {
            Some(lock) => Some(Writer {
                _lock: lock,
                log: open_logs(&out, metrics_bytes, &progress)?,
            }),
            None => None,
        };
        // Only rank 0 shows progress.
        let quiet = opts.quiet || writer.is_none();
        let bar = progress_bar(quiet, plan.total_steps);
        bar.set_position(progress.step as u64);
        Ok(TrainingRun {
            cfg,
            config_hash,
            plan,
            parallel,
            data,
            learner: Learner {
                device,
                student,
                optimizer,
                objective,
                autocast,
            },
            clock: Clock {
                started: Instant::now(),
                before: progress.train_seconds,
            },
            progress,
            deferred: DeferredStats::default(),
            pending_skipped: Vec::new(),
            checkpointer,
            writer,
            console: Console {
                bar,
                quiet,
                profile: opts.profile.then(Default::default),
            },
        })
    }
}

/// Rank 0 locks the run directory for the whole run (released when the process ends) and checks
/// it can hold this run; every rank learns whether rank 0 resumes.
fn claim_dir(
    parallel: &Parallel,
    out: &Path,
    config_hash: &str,
    resume: bool,
) -> Result<(Option<DirLock>, bool)> {
    let (lock, existing) = if parallel.is_writer() {
        let lock = DirLock::acquire(out, "")?;
        (Some(lock), Some(dir::check(out, config_hash, resume)?))
    } else {
        (None, None)
    };
    let resume = parallel.rank0_flag(existing == Some(Existing::SameConfig))?;
    Ok((lock, resume))
}

/// A position saved by a run with another number of ranks, in this plan's micro-batches
/// (checkpoints are taken at step boundaries, and the steps are the same rows whatever the
/// ranks); the position then records this plan's ranks and accumulation.
fn convert_position(cfg: &TrainConfig, plan: &StepPlan, progress: &mut Progress) {
    let saved_accum = progress
        .accum
        .unwrap_or(cfg.train.batch_size / cfg.micro_batch());
    progress.next_batch = plan.resume_batch(progress.next_batch, saved_accum);
    (progress.world, progress.accum) = (Some(plan.world), Some(plan.accum));
}

/// `run.json` of a fresh run (without the ranks and the evaluation sets, which the caller adds).
fn run_record(
    cfg: &TrainConfig,
    config_hash: &str,
    device: Device,
    plan: &StepPlan,
    objective: &Objective,
    data: &RunData,
) -> Result<RunRecord> {
    Ok(RunRecord {
        command: "train".into(),
        cfkit_version: env!("CARGO_PKG_VERSION").into(),
        // HEAD of the checkout the binary was built from (build.rs).
        cfkit_commit: env!("CFKIT_GIT_COMMIT").into(),
        config: cfg.clone(),
        config_hash: config_hash.to_string(),
        seed: cfg.train.seed,
        rng: RngRecord::new(cfg.train.seed),
        device: format!("{device:?}"),
        threads: tch::get_num_threads(),
        method: plan.method,
        objective: objective.record(),
        lp_epochs: plan.lp_epochs,
        init: init_record(cfg)?,
        data: DataRecord {
            train: data.source.record(),
            train_rows: plan.train_rows,
            epoch_rows: plan.epoch_rows,
            val_rows: data.val_rows(),
            val_source: data.val.as_ref().map(|v| v.0.record()),
            eval: Vec::new(),
            mixing: data.mixing,
            holdout: (!data.holdout_ids.is_empty()).then(|| HoldoutRecord::of(&data.holdout_ids)),
        },
        distributed: None,
        steps_per_epoch: plan.steps_per_epoch,
        total_steps: plan.total_steps,
        accumulation: plan.accum,
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    })
}

/// What run.json records of each evaluation set; opening them now makes a missing set fail
/// before training, not after.
fn eval_records(data: &RunData) -> Result<Vec<EvalSetRecord>> {
    data.eval_sets
        .iter()
        .map(|set| {
            let s = SplitSource::open(&set.shards, &set.split)?;
            Ok(EvalSetRecord {
                name: set.name.clone(),
                ood: set.ood,
                data: s.record(),
            })
        })
        .collect()
}

/// The checkpoints directory and the logs, truncated to the resumed checkpoint's lengths.
fn open_logs(out: &Path, metrics_bytes: u64, progress: &Progress) -> Result<MetricsLog> {
    std::fs::create_dir_all(out.join("checkpoints")).map_err(|e| TrainError::io(out, e))?;
    crash_point("train:checkpoints");
    let log = MetricsLog::open(out, metrics_bytes, progress.quarantine_bytes)?;
    crash_point("train:logs");
    Ok(log)
}

/// Training rows, validation rows (hold-out or split) and the evaluation sets, opened now so that
/// a missing set fails before training, not after.
fn open_data(cfg: &TrainConfig) -> Result<RunData> {
    let source = Arc::new(SplitSource::open(&cfg.data.shards, &cfg.data.split)?);
    let labels = source.labels()?;
    let ids = if cfg.data.val_holdout > 0 {
        source.ids()?
    } else {
        labels
            .iter()
            .map(|g| vec![String::new(); g.len()])
            .collect()
    };
    let (train_rows, holdout) = stratified_holdout(
        &labels,
        &ids,
        source.classes.len(),
        cfg.data.val_holdout,
        cfg.data.holdout_seed,
    );
    if train_rows.is_empty() {
        return Err(TrainError::Data(format!(
            "no training rows left in split '{}' after holding out {}",
            cfg.data.split, cfg.data.val_holdout
        )));
    }
    let holdout_ids = if holdout.is_empty() {
        Vec::new()
    } else {
        let mut held: Vec<String> = holdout
            .iter()
            .map(|r| ids[r.group as usize][r.row as usize].clone())
            .collect();
        held.sort_unstable();
        held
    };
    let val = match &cfg.data.val_split {
        Some(split) => {
            let dir = cfg.data.val_shards.as_ref().unwrap_or(&cfg.data.shards);
            let s = Arc::new(SplitSource::open(dir, split)?);
            if s.classes != source.classes {
                return Err(TrainError::Data(format!(
                    "validation split '{split}' of '{}' has other classes than split '{}' of '{}'",
                    dir.display(),
                    cfg.data.split,
                    cfg.data.shards.display()
                )));
            }
            let rows = all_rows(&s);
            Some((s, rows))
        }
        None if !holdout.is_empty() => Some((source.clone(), holdout)),
        None => None,
    };
    let first = epoch_order(&train_rows, cfg.train.seed, 0, cfg.data.shuffle_buffer);
    let mixing = mixing_record(&first, &labels, cfg.train.batch_size, cfg.train.seed);
    if mixing.order.batches >= 2 && mixing.ratio < WARN_BELOW {
        eprintln!(
            "warning: batches of {} rows of split '{}' hold {:.0} classes on average where a \
             random permutation gives {:.0} ({:.0} %): its rows are stored close to class order \
             (prepared from class folders by an earlier cfkit, or written by another tool) \
             and the shuffle buffer of {} rows cannot mix them; prepare the split again (cfkit \
             prepare stores rows in a seeded random order) or raise [data] shuffle_buffer",
            mixing.batch_size,
            cfg.data.split,
            mixing.order.mean_distinct_classes,
            mixing.permutation.mean_distinct_classes,
            100.0 * mixing.ratio,
            cfg.data.shuffle_buffer
        );
    }
    Ok(RunData {
        source,
        train_rows,
        val,
        eval_sets: cfg.eval_sets(),
        mixing,
        holdout_ids,
    })
}

/// The student, progress and metrics length of the checkpoint in `dir`, which must have been
/// written by a run of this config.
fn restore(dir: &Path, config_hash: &str, device: Device) -> Result<(Student, Progress, u64)> {
    let (s, info) = checkpoint::load_student(dir, device)?;
    if info.config_hash != config_hash {
        return Err(TrainError::checkpoint(
            dir,
            "was written by a run of another config",
        ));
    }
    let p = info.progress.clone().ok_or_else(|| {
        TrainError::checkpoint(
            dir,
            "has no training position (it was not written by `train`)",
        )
    })?;
    Ok((s, p, info.metrics_bytes))
}

/// The model's classes, input size and resize must be the training split's.
fn check_student_fits(cfg: &TrainConfig, student: &Student, source: &SplitSource) -> Result<()> {
    let first3 = |c: &[String]| c.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if student.classes != source.classes {
        return Err(TrainError::Data(format!(
            "the model's classes ({}…) differ from split '{}' of '{}' ({}…)",
            first3(&student.classes),
            cfg.data.split,
            cfg.data.shards.display(),
            first3(&source.classes),
        )));
    }
    source.check_fits(student.config())
}

/// AdamW over the trainable parameters: the head only while probing (weight decay 0), else all.
pub(super) fn make_optimizer(cfg: &TrainConfig, student: &mut Student, probe: bool) -> Optimizer {
    let mut optim_cfg: OptimConfig = cfg.optim;
    student.set_backbone_trainable(!probe);
    if probe {
        optim_cfg.weight_decay = 0.0;
    }
    Optimizer::new(Optimizer::trainable(&student.vs), optim_cfg)
}

fn progress_bar(quiet: bool, total_steps: usize) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(Some(total_steps as u64), ProgressDrawTarget::stderr());
    b.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps {msg} ({elapsed} / ~{duration})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    b
}
