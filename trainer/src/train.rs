//! `cfkit train`: the loop (FT / LP, from scratch or from a checkpoint), validation, resumable
//! checkpoints, metrics and the final report.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use cfkit_models::parse_device;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use tch::Kind;

use crate::checkpoint::{self, BestVal, CheckpointInfo};
use crate::config::{Method, TrainConfig};
use crate::data::{epoch_order, stratified_holdout, BatchStream, RowRef, SplitSource};
use crate::error::{Result, TrainError};
use crate::eval::{evaluate_sets, evaluate_source, Scoring};
use crate::init::{init_record, init_student, rng_record};
use crate::objective::Objective;
use crate::optim::{OptimConfig, Optimizer};
use crate::report::{write_report, TrainReport};
use crate::run_dir::{self, Existing, JsonLines};
use crate::schedule::Schedule;
use crate::student::Student;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Run directory (required: from --out or the config's [output]).
    pub out: PathBuf,
    pub resume: bool,
    /// No progress bars or per-epoch lines.
    pub quiet: bool,
}

/// Running sums of an epoch (and of the current logging window), saved in checkpoints so that a
/// resumed run logs exactly what an uninterrupted one does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub loss_sum: f64,
    pub correct: u64,
    pub rows: u64,
    pub window_loss_sum: f64,
    pub window_rows: u64,
    pub window_grad_norm_sum: f64,
    pub window_steps: u64,
    /// Sums of the unweighted distillation term (distilling methods).
    #[serde(default)]
    pub distill_sum: f64,
    #[serde(default)]
    pub window_distill_sum: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct Progress {
    step: usize,
    epoch: usize,
    next_batch: usize,
    best: Option<BestVal>,
    stats: EpochStats,
    /// Length of quarantine.jsonl at this checkpoint (a resumed run truncates to it, so rows
    /// skipped again after the checkpoint are not logged twice).
    #[serde(default)]
    quarantine_bytes: Option<u64>,
    /// Training seconds so far, over every resumed part of the run.
    #[serde(default)]
    train_seconds: f64,
}

/// Trains as configured; see the crate docs for the run directory layout.
pub fn train(cfg: &TrainConfig, opts: &TrainOptions) -> Result<TrainReport> {
    let device = parse_device(&cfg.train.device)?;
    let cfg_json = cfg.to_json();
    let config_hash = cfg.hash();
    let out = &opts.out;
    let existing = run_dir::check(out, &config_hash, opts.resume)?;

    // Data: training rows, validation rows (hold-out or split), evaluation sets (opened now so
    // that a missing set fails before training, not after).
    let source = Arc::new(SplitSource::open(&cfg.data.shards, &cfg.data.split)?);
    let labels = source.labels()?;
    let (train_rows, holdout) = stratified_holdout(
        &labels,
        source.classes.len(),
        cfg.data.val_holdout,
        cfg.train.seed,
    );
    if train_rows.is_empty() {
        return Err(TrainError::Data(format!(
            "no training rows left in split '{}' after holding out {}",
            cfg.data.split, cfg.data.val_holdout
        )));
    }
    let val: Option<(Arc<SplitSource>, Vec<RowRef>)> = match &cfg.data.val_split {
        Some(split) => {
            let s = Arc::new(SplitSource::open(&cfg.data.shards, split)?);
            let rows = crate::eval::all_rows(&s);
            Some((s, rows))
        }
        None if !holdout.is_empty() => Some((source.clone(), holdout)),
        None => None,
    };
    let eval_sets = cfg.eval_sets();
    let mut eval_records = Vec::new();
    for set in &eval_sets {
        let s = SplitSource::open(&set.shards, &set.split)?;
        eval_records
            .push(serde_json::json!({"name": set.name, "ood": set.ood, "data": s.describe()}));
    }

    // The checkpoint to resume from, if any.
    let last_dir = out.join(run_dir::LAST_DIR);
    let resume_from = match existing {
        Existing::SameConfig => checkpoint::resolve(&last_dir),
        Existing::Fresh => None,
    };
    let (mut student, progress, metrics_bytes) = match &resume_from {
        Some(dir) => {
            let (s, info) = checkpoint::load_student(dir, device)?;
            if info.config_hash != config_hash {
                return Err(TrainError::checkpoint(
                    dir,
                    "was written by a run of another config",
                ));
            }
            let p: Progress = serde_json::from_value(info.rng["progress"].clone())
                .map_err(|e| TrainError::checkpoint(dir, format!("progress record: {e}")))?;
            (s, p, info.metrics_bytes)
        }
        None => (
            init_student(cfg, &source.classes, device)?,
            Progress::default(),
            0,
        ),
    };
    if student.classes != source.classes {
        return Err(TrainError::Data(format!(
            "the model's classes ({}…) differ from split '{}' of '{}' ({}…)",
            student
                .classes
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            cfg.data.split,
            cfg.data.shards.display(),
            source
                .classes
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if student.config().image_size as u32 != source.image_size {
        return Err(TrainError::Data(format!(
            "split '{}' holds {} px images; the model takes {} px",
            cfg.data.split,
            source.image_size,
            student.config().image_size
        )));
    }

    let method = cfg.train.method;
    let autocast = cfg.train.precision.prepare(device)?;
    let objective = Objective::new(cfg, &source, device)?;
    // LP-FT probes for `lp_epochs` (its own schedule), then fine-tunes for `epochs`.
    let lp_epochs = cfg.lp_ft.as_ref().map(|l| l.lp_epochs).unwrap_or(0);
    let total_epochs = cfg.total_epochs();
    let probing = |epoch: usize| method == Method::Lp || epoch < lp_epochs;
    let micro = cfg.micro_batch();
    let accum = cfg.train.batch_size / micro;
    let n_train = train_rows.len();
    let steps_per_epoch = n_train.div_ceil(cfg.train.batch_size);
    let micro_per_epoch = n_train.div_ceil(micro);
    let total_steps = steps_per_epoch * total_epochs;
    let schedule = cfg.schedule.build(steps_per_epoch * cfg.train.epochs)?;
    let lp_schedule = match &cfg.lp_ft {
        Some(l) => Some(l.lp_schedule.build(steps_per_epoch * lp_epochs)?),
        None => None,
    };
    // The schedule of a step and the step's index in it.
    let lp_steps = steps_per_epoch * lp_epochs;
    let schedule_at = |step: usize| match &lp_schedule {
        Some(lp) if step < lp_steps => (lp, step),
        _ => (&schedule, step.saturating_sub(lp_steps)),
    };
    let make_optimizer = |student: &mut Student, probe: bool| {
        let mut optim_cfg: OptimConfig = cfg.optim;
        student.set_backbone_trainable(!probe);
        if probe {
            optim_cfg.weight_decay = 0.0;
        }
        Optimizer::new(Optimizer::trainable(&student.vs), optim_cfg)
    };
    let mut optimizer = make_optimizer(&mut student, probing(progress.epoch));
    if let Some(dir) = &resume_from {
        checkpoint::load_optimizer(dir, &mut optimizer)?;
    }

    // Only now, with data, model and config checked, does the run directory come to exist (a
    // failed start leaves nothing that a corrected rerun would refuse as "not empty").
    std::fs::create_dir_all(out.join("checkpoints")).map_err(|e| TrainError::io(out, e))?;
    if resume_from.is_none() {
        let record = serde_json::json!({
            "command": "train",
            "cfkit_version": env!("CARGO_PKG_VERSION"),
            // HEAD of the checkout the binary was built from (build.rs).
            "cfkit_commit": env!("CFKIT_GIT_COMMIT"),
            "config": cfg_json,
            "config_hash": config_hash,
            "seed": cfg.train.seed,
            "rng": rng_record(cfg.train.seed),
            "device": format!("{device:?}"),
            "threads": tch::get_num_threads(),
            "method": method.name(),
            "objective": objective.describe(),
            "lp_epochs": lp_epochs,
            "init": init_record(cfg)?,
            "data": {
                "train": source.describe(),
                "train_rows": n_train,
                "val_rows": val.as_ref().map(|v| v.1.len()).unwrap_or(0),
                "val_source": val.as_ref().map(|v| v.0.describe()),
                "eval": eval_records,
            },
            "steps_per_epoch": steps_per_epoch,
            "total_steps": total_steps,
            "accumulation": accum,
            "started_unix": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        });
        run_dir::write_json(&out.join(run_dir::RUN_FILE), &record)?;
    }
    let mut metrics = JsonLines::open(&out.join(run_dir::METRICS_FILE), metrics_bytes)?;
    let mut quarantine = JsonLines::open(
        &out.join(run_dir::QUARANTINE_FILE),
        progress.quarantine_bytes.unwrap_or(u64::MAX),
    )?;

    let bar = if opts.quiet {
        ProgressBar::hidden()
    } else {
        let b =
            ProgressBar::with_draw_target(Some(total_steps as u64), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} steps {msg} ({elapsed} / ~{duration})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        b
    };
    bar.set_position(progress.step as u64);

    let started = Instant::now();
    let mut p = progress;
    let seconds_before = p.train_seconds;
    let (model_name, vision_config, classes) = (
        student.model.clone(),
        student.config().clone(),
        student.classes.clone(),
    );
    let ckpt_info = |p: &Progress, metrics_bytes: u64| CheckpointInfo {
        format: String::new(),
        model: model_name.clone(),
        vision_config: vision_config.clone(),
        classes: classes.clone(),
        method: method.name().into(),
        config_hash: config_hash.clone(),
        step: p.step,
        epoch: p.epoch,
        next_batch: p.next_batch,
        seed: cfg.train.seed,
        rng: serde_json::json!({"keys": rng_record(cfg.train.seed), "progress": p}),
        best: p.best,
        metrics_bytes,
        has_optimizer: false,
        weights_blake3: String::new(),
        head_blake3: String::new(),
    };

    while p.epoch < total_epochs {
        let epoch = p.epoch;
        bar.set_prefix(format!("epoch {}/{}", epoch + 1, total_epochs));
        let order = Arc::new(epoch_order(
            &train_rows,
            cfg.train.seed,
            epoch as u64,
            cfg.data.shuffle_buffer,
        ));
        let stream = BatchStream::start_with(
            source.clone(),
            order,
            micro,
            p.next_batch,
            cfg.data.prefetch,
            device,
            objective.extras(epoch),
        );
        let mut window_start = Instant::now();
        let mut window_images = 0usize;
        for batch in stream {
            let batch = batch?;
            for s in &batch.skipped {
                quarantine.write(&serde_json::json!({"id": s.id, "shard": s.shard, "reason": s.reason, "epoch": epoch, "stage": "train"}))?;
            }
            let mb = batch.index;
            let step_in_epoch = mb / accum;
            let step_rows = cfg
                .train
                .batch_size
                .min(n_train - step_in_epoch * cfg.train.batch_size);
            if !batch.is_empty() {
                // Forward and loss under autocast (bf16 on CUDA when configured); backward
                // outside it, as torch.autocast prescribes.
                let out = tch::autocast(autocast, || objective.step(&student, &batch, epoch))?;
                let scaled = &out.loss * (batch.len() as f64 / step_rows as f64);
                scaled.backward();
                let l = out.loss.double_value(&[]);
                if let Some(dl) = out.distill {
                    p.stats.distill_sum += dl * batch.len() as f64;
                    p.stats.window_distill_sum += dl * batch.len() as f64;
                }
                let correct = out
                    .logits
                    .argmax(-1, false)
                    .eq_tensor(&batch.labels)
                    .sum(Kind::Int64)
                    .int64_value(&[]) as u64;
                p.stats.loss_sum += l * batch.len() as f64;
                p.stats.window_loss_sum += l * batch.len() as f64;
                p.stats.correct += correct;
                p.stats.rows += batch.len() as u64;
                p.stats.window_rows += batch.len() as u64;
                window_images += batch.len();
            }
            p.next_batch = mb + 1;
            let step_done = (mb + 1) % accum == 0 || mb + 1 == micro_per_epoch;
            if !step_done {
                continue;
            }
            let (sched, local_step) = schedule_at(p.step);
            let info = optimizer.step(local_step, sched);
            optimizer.zero_grad();
            p.step += 1;
            p.stats.window_grad_norm_sum += info.grad_norm;
            p.stats.window_steps += 1;
            bar.set_position(p.step as u64);
            if p.step % cfg.train.log_every == 0 {
                let secs = window_start.elapsed().as_secs_f64();
                let loss = p.stats.window_loss_sum / p.stats.window_rows.max(1) as f64;
                let ips = window_images as f64 / secs.max(1e-9);
                let distill = objective
                    .distills()
                    .then(|| p.stats.window_distill_sum / p.stats.window_rows.max(1) as f64);
                metrics.write(&serde_json::json!({
                    "kind": "step", "step": p.step, "epoch": epoch,
                    "loss": loss, "distill": distill, "lr": info.lr,
                    "beta1": sched.beta1(local_step),
                    "grad_norm": p.stats.window_grad_norm_sum / p.stats.window_steps.max(1) as f64,
                    "images_per_s": ips,
                }))?;
                bar.set_message(format!("loss {loss:.4} lr {:.2e} {ips:.0} img/s", info.lr));
                p.stats.window_loss_sum = 0.0;
                p.stats.window_rows = 0;
                p.stats.window_grad_norm_sum = 0.0;
                p.stats.window_steps = 0;
                p.stats.window_distill_sum = 0.0;
                window_start = Instant::now();
                window_images = 0;
            }
            if p.step % cfg.train.checkpoint_every == 0 {
                let len = metrics.sync()?;
                p.quarantine_bytes = Some(quarantine.sync()?);
                p.train_seconds = seconds_before + started.elapsed().as_secs_f64();
                checkpoint::save(
                    &last_dir,
                    &student,
                    "trained",
                    Some(&optimizer),
                    ckpt_info(&p, len),
                )?;
            }
        }
        // Epoch end: validation, best checkpoint, epoch metrics, resumable checkpoint.
        let last_epoch = epoch + 1 == total_epochs;
        let val_top1 = match &val {
            Some((vs, rows)) if (epoch + 1) % cfg.train.val_every_epochs == 0 || last_epoch => {
                let scoring = Scoring::new(&vs.classes, &student.classes, false, None)?;
                let (n, c, skipped) = evaluate_source(
                    &student,
                    vs.clone(),
                    Some(rows.clone()),
                    &scoring,
                    cfg.train.eval_batch_size,
                    device,
                )?;
                for s in &skipped {
                    quarantine.write(&serde_json::json!({"id": s.id, "shard": s.shard, "reason": s.reason, "epoch": epoch, "stage": "validation"}))?;
                }
                Some(c as f64 / n.max(1) as f64)
            }
            _ => None,
        };
        if let Some(v) = val_top1 {
            if p.best.is_none_or(|b| v > b.top1) {
                p.best = Some(BestVal {
                    top1: v,
                    step: p.step,
                    epoch,
                });
                let len = metrics.sync()?;
                p.quarantine_bytes = Some(quarantine.sync()?);
                p.train_seconds = seconds_before + started.elapsed().as_secs_f64();
                checkpoint::save(
                    &out.join(run_dir::BEST_DIR),
                    &student,
                    "trained",
                    None,
                    ckpt_info(&p, len),
                )?;
            }
        }
        let st = p.stats;
        metrics.write(&serde_json::json!({
            "kind": "epoch", "epoch": epoch, "step": p.step,
            "train_loss": st.loss_sum / st.rows.max(1) as f64,
            "train_distill": objective.distills().then(|| st.distill_sum / st.rows.max(1) as f64),
            "phase": if probing(epoch) { "probe" } else { "fine-tune" },
            "train_top1": st.correct as f64 / st.rows.max(1) as f64,
            "val_top1": val_top1,
            "best_val_top1": p.best.map(|b| b.top1),
        }))?;
        if !opts.quiet {
            bar.suspend(|| {
                eprintln!(
                    "epoch {}/{}: train loss {:.4}, train top-1 {:.2}%{}",
                    epoch + 1,
                    total_epochs,
                    st.loss_sum / st.rows.max(1) as f64,
                    100.0 * st.correct as f64 / st.rows.max(1) as f64,
                    val_top1
                        .map(|v| format!(", val top-1 {:.2}%", 100.0 * v))
                        .unwrap_or_default()
                )
            });
        }
        p.epoch += 1;
        p.next_batch = 0;
        p.stats = EpochStats::default();
        if p.epoch < total_epochs && probing(p.epoch) != probing(epoch) {
            // LP-FT: the probe is done; the whole model trains from here, with a fresh optimizer
            // (saved below, so a resumed run continues with this one).
            optimizer = make_optimizer(&mut student, false);
        }
        let len = metrics.sync()?;
        p.quarantine_bytes = Some(quarantine.sync()?);
        p.train_seconds = seconds_before + started.elapsed().as_secs_f64();
        checkpoint::save(
            &last_dir,
            &student,
            "trained",
            Some(&optimizer),
            ckpt_info(&p, len),
        )?;
    }
    bar.finish_and_clear();
    // Over every part of a resumed run, up to the last epoch's checkpoint (so a finished run
    // rerun with --resume reports the same time).
    let train_seconds = p.train_seconds;

    // Evaluate the best-validation checkpoint (the last one without validation).
    let evaluated = match p.best {
        Some(_) => out.join(run_dir::BEST_DIR),
        None => last_dir.clone(),
    };
    let (final_model, _) = checkpoint::load_student(&evaluated, device)?;
    let eval = evaluate_sets(&final_model, &eval_sets, cfg.train.eval_batch_size, device)?;
    let report = TrainReport {
        out: out.clone(),
        method: method.name().into(),
        steps: p.step,
        epochs: total_epochs,
        train_rows: n_train,
        val_rows: val.as_ref().map(|v| v.1.len()).unwrap_or(0),
        best: p.best,
        evaluated,
        eval,
        train_seconds,
    };
    write_report(out, &report)?;
    Ok(report)
}
