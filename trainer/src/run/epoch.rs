//! One epoch of a training run: micro-batches through the objective, optimizer steps with
//! logging and periodic checkpoints, then the epoch's end (validation, best checkpoint, epoch
//! metrics, LP-FT's switch to fine-tuning, one save of `last`).

use std::sync::Arc;
use std::time::Instant;

use tch::Kind;

use super::open::make_optimizer;
use super::{EpochStats, TrainingRun};
use crate::checkpoint::BestVal;
use crate::data::{epoch_order, Batch, BatchStream, Skipped};
use crate::error::Result;
use crate::eval::{evaluate_source, Scoring};
use crate::optim::schedule::Schedule;
use crate::optim::StepInfo;
use crate::run::dir;

/// Start of the current logging window (not saved: a resumed run times a new one), and the
/// window's rows already counted then (a resumed run's checkpoint carries them).
struct Window {
    start: Instant,
    rows_before: u64,
}

impl TrainingRun<'_> {
    /// Trains the rest of the current epoch (from `next_batch` when resumed mid-epoch).
    pub fn train_epoch(&mut self) -> Result<()> {
        let epoch = self.progress.epoch;
        let cfg = self.cfg;
        self.bar
            .set_prefix(format!("epoch {}/{}", epoch + 1, self.plan.total_epochs));
        let order = epoch_order(
            &self.data.train_rows,
            cfg.train.seed,
            epoch as u64,
            cfg.data.shuffle_buffer,
        );
        // This rank's slice of every step. drop_last: the epoch's last partial batch (of its
        // own order) is not trained on.
        let rank = self.ddp.as_ref().map_or(0, |d| d.rank());
        let order = Arc::new(self.plan.rank_order(&order, rank));
        let stream = BatchStream::start(
            self.data.source.clone(),
            order,
            self.plan.micro,
            self.progress.next_batch,
            cfg.data.prefetch,
            self.device,
            self.objective.extras(epoch),
        );
        let mut window = Window {
            start: Instant::now(),
            rows_before: self.progress.stats.window_rows,
        };
        let mut stream = stream;
        loop {
            let t0 = Instant::now();
            let Some(batch) = stream.next() else { break };
            if let Some(p) = &mut self.profile {
                p.loader_wait_s += t0.elapsed().as_secs_f64();
            }
            let batch = batch?;
            self.pending_skipped.extend(batch.skipped.iter().cloned());
            if !batch.is_empty() {
                self.micro_step(&batch)?;
            }
            let mb = batch.index;
            self.progress.next_batch = mb + 1;
            if self.plan.completes_step(mb) {
                self.optimizer_step(&mut window)?;
            }
        }
        Ok(())
    }

    /// Forward, loss and backward of one non-empty micro-batch; its loss is scaled by its share
    /// of the optimizer step's rows, so accumulated gradients are those of the whole step.
    fn micro_step(&mut self, batch: &Batch) -> Result<()> {
        let epoch = self.progress.epoch;
        // Forward and loss under autocast (bf16 on CUDA when configured); backward outside it,
        // as torch.autocast prescribes.
        let t0 = Instant::now();
        let out = tch::autocast(self.autocast, || {
            self.objective.step(&self.student, batch, epoch)
        })?;
        let t1 = Instant::now();
        let share = batch.len() as f64 / self.plan.step_rows(batch.index) as f64;
        (&out.loss * share).backward();
        if let Some(p) = &mut self.profile {
            p.micro_batches += 1;
            p.images += batch.len() as u64;
            p.forward_loss_s += (t1 - t0).as_secs_f64();
            p.cam_s += out.cam_seconds;
            p.teacher_s += out.teacher_seconds;
            p.backward_s += t1.elapsed().as_secs_f64();
        }
        let correct = out
            .logits
            .argmax(-1, false)
            .eq_tensor(&batch.labels)
            .sum(Kind::Int64)
            .int64_value(&[]) as u64;
        self.pending.add_batch(
            batch.len(),
            out.loss.double_value(&[]),
            out.distill,
            correct,
        );
        Ok(())
    }

    /// The optimizer step that the last micro-batch completed, then its metrics line and
    /// checkpoint when due.
    fn optimizer_step(&mut self, window: &mut Window) -> Result<()> {
        // Data-parallel: every rank's gradients averaged, sums added and skipped rows sent to
        // rank 0 (which logs them).
        let t0 = Instant::now();
        let mut sums = std::mem::take(&mut self.pending);
        let mut skipped = std::mem::take(&mut self.pending_skipped);
        if let Some(d) = &self.ddp {
            d.average_gradients(&self.optimizer.parameters())?;
            sums = d.sum_step(sums)?;
            skipped = d.gather_skipped(skipped)?;
        }
        if let Some(p) = &mut self.profile {
            p.allreduce_s += t0.elapsed().as_secs_f64();
        }
        self.progress.stats.add_step(&sums);
        self.log_skipped(&skipped, "train")?;
        let t0 = Instant::now();
        let (sched, local_step) = self.plan.schedule_at(self.progress.step);
        let info = self.optimizer.step(local_step, sched);
        let beta1 = sched.beta1(local_step);
        self.optimizer.zero_grad();
        if let Some(p) = &mut self.profile {
            p.optimizer_steps += 1;
            p.optimizer_s += t0.elapsed().as_secs_f64();
        }
        let p = &mut self.progress;
        p.step += 1;
        p.stats.window_grad_norm_sum += info.grad_norm;
        p.stats.window_steps += 1;
        self.bar.set_position(p.step as u64);
        if p.step.is_multiple_of(self.cfg.train.log_every) {
            self.log_window(&info, beta1, window)?;
        }
        if self
            .progress
            .step
            .is_multiple_of(self.cfg.train.checkpoint_every)
        {
            self.save(dir::LAST_DIR, true)?;
        }
        Ok(())
    }

    /// One "step" line of metrics.jsonl for the window that ends now.
    fn log_window(&mut self, info: &StepInfo, beta1: Option<f64>, w: &mut Window) -> Result<()> {
        let p = &mut self.progress;
        let secs = w.start.elapsed().as_secs_f64();
        let (loss, distill, grad_norm) = p.stats.window_means(self.objective.distills());
        // Images of every rank, since this process timed the window.
        let ips = (p.stats.window_rows - w.rows_before) as f64 / secs.max(1e-9);
        let record = serde_json::json!({
            "kind": "step", "step": p.step, "epoch": p.epoch,
            "loss": loss, "distill": distill, "lr": info.lr,
            "beta1": beta1,
            "grad_norm": grad_norm,
            "images_per_s": ips,
        });
        if let Some(logs) = &mut self.logs {
            logs.metrics.write(&record)?;
        }
        self.bar
            .set_message(format!("loss {loss:.4} lr {:.2e} {ips:.0} img/s", info.lr));
        p.stats.reset_window();
        *w = Window {
            start: Instant::now(),
            rows_before: 0,
        };
        Ok(())
    }

    fn log_skipped(&mut self, skipped: &[Skipped], stage: &str) -> Result<()> {
        let Some(logs) = &mut self.logs else {
            return Ok(());
        };
        for s in skipped {
            logs.quarantine.write(&serde_json::json!({
                "id": s.id, "shard": s.shard, "reason": s.reason,
                "epoch": self.progress.epoch, "stage": stage,
            }))?;
        }
        Ok(())
    }

    /// Validation top-1 when due this epoch (every `val_every_epochs` and at the last). The
    /// ranks of a data-parallel run score every `world`-th row each and add their counts.
    fn validate(&mut self) -> Result<Option<f64>> {
        let epoch = self.progress.epoch;
        let due = (epoch + 1).is_multiple_of(self.cfg.train.val_every_epochs)
            || epoch + 1 == self.plan.total_epochs;
        let Some((vs, rows)) = self.data.val.as_ref().filter(|_| due) else {
            return Ok(None);
        };
        let scoring = Scoring::new(&vs.classes, &self.student.classes, false, None)?;
        let (rank, world) = self.ddp.as_ref().map_or((0, 1), |d| (d.rank(), d.world()));
        let mine = rows.iter().skip(rank).step_by(world).copied().collect();
        let s = evaluate_source(
            &self.student,
            vs.clone(),
            Some(mine),
            &scoring,
            self.cfg.train.eval_batch_size,
            self.device,
        )?;
        let (mut n, mut c, mut skipped) = (s.images, s.correct, s.skipped);
        if let Some(d) = &self.ddp {
            (n, c) = d.sum_counts(n, c)?;
            skipped = d.gather_skipped(skipped)?;
        }
        self.log_skipped(&skipped, "validation")?;
        Ok(Some(c as f64 / n.max(1) as f64))
    }

    /// The epoch's end: validation and the best checkpoint, the epoch's metrics line, LP-FT's
    /// switch from probing to fine-tuning, and the resumable checkpoint of the next epoch.
    pub fn end_epoch(&mut self) -> Result<()> {
        let epoch = self.progress.epoch;
        let val_top1 = self.validate()?;
        if let Some(v) = val_top1 {
            if self.progress.best.is_none_or(|b| v > b.top1) {
                self.progress.best = Some(BestVal {
                    top1: v,
                    step: self.progress.step,
                    epoch,
                });
                self.save(dir::BEST_DIR, false)?;
            }
        }
        let distills = self.objective.distills();
        let (train_loss, train_distill, train_top1) = self.progress.stats.epoch_means(distills);
        let record = serde_json::json!({
            "kind": "epoch", "epoch": epoch, "step": self.progress.step,
            "train_loss": train_loss,
            "train_distill": train_distill,
            "phase": if self.plan.probing(epoch) { "probe" } else { "fine-tune" },
            "train_top1": train_top1,
            "val_top1": val_top1,
            "best_val_top1": self.progress.best.map(|b| b.top1),
        });
        if let Some(logs) = &mut self.logs {
            logs.metrics.write(&record)?;
        }
        if !self.quiet {
            let total = self.plan.total_epochs;
            let val = val_top1
                .map(|v| format!(", val top-1 {:.2}%", 100.0 * v))
                .unwrap_or_default();
            self.bar.suspend(|| {
                eprintln!(
                    "epoch {}/{total}: train loss {train_loss:.4}, train top-1 {:.2}%{val}",
                    epoch + 1,
                    100.0 * train_top1,
                )
            });
        }
        let p = &mut self.progress;
        p.epoch += 1;
        p.next_batch = 0;
        p.stats = EpochStats::default();
        if !self.finished() && self.plan.probing(self.progress.epoch) != self.plan.probing(epoch) {
            // LP-FT: the probe is done; the whole model trains from here, with a fresh optimizer
            // (saved below, so a resumed run continues with this one).
            self.optimizer = make_optimizer(self.cfg, &mut self.student, false);
        }
        self.save(dir::LAST_DIR, true)
    }
}
