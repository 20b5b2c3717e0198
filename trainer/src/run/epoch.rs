//! One epoch of a training run: micro-batches through the objective, optimizer steps with the
//! metrics log and the checkpointer's policy, then the epoch's end (validation, best checkpoint,
//! epoch metrics, LP-FT's switch to fine-tuning, one save of `last`).

use std::sync::Arc;
use std::time::Instant;

use tch::Kind;

use super::checkpointer::Slot;
use super::metrics::{MetricsLine, Phase, Stage};
use super::open::make_optimizer;
use super::{EpochStats, TrainingRun};
use crate::checkpoint::BestVal;
use crate::data::{epoch_order, Batch, BatchStream, ModelInput, Skipped};
use crate::error::Result;
use crate::eval::{Evaluator, Scoring};
use crate::optim::schedule::Schedule;
use crate::optim::StepInfo;

/// Statistics entries kept on the device at most before they are read (a logging window of
/// thousands of steps would otherwise hold thousands of small device tensors).
const MAX_DEFERRED: usize = 4096;

/// Share of an epoch's training time spent waiting for the loader above which a run warns.
const LOADER_WAIT_WARN: f64 = 0.1;

/// Start of the current logging window (not saved: a resumed run times a new one), and the
/// window's rows already counted then (a resumed run's checkpoint carries them).
struct Window {
    start: Instant,
    rows_before: u64,
}

impl TrainingRun<'_> {
    /// Trains the rest of the current epoch (from `next_batch` when resumed mid-epoch).
    pub(crate) fn train_epoch(&mut self) -> Result<()> {
        let epoch = self.progress.epoch;
        let cfg = self.cfg;
        self.console
            .bar
            .set_prefix(format!("epoch {}/{}", epoch + 1, self.plan.total_epochs));
        let order = epoch_order(
            &self.data.train_rows,
            cfg.train.seed,
            epoch as u64,
            cfg.data.shuffle_buffer,
        );
        // This rank's slice of every step. drop_last: the epoch's last partial batch (of its
        // own order) is not trained on.
        let order = Arc::new(self.plan.rank_order(&order, self.parallel.rank()));
        let mut stream = BatchStream::start(
            self.data.source.clone(),
            order,
            self.plan.micro,
            self.progress.next_batch,
            cfg.data.prefetch,
            ModelInput::of(self.learner.student.config(), self.learner.device),
            self.learner.objective.extras(epoch),
        );
        let mut window = Window {
            start: Instant::now(),
            rows_before: self.progress.stats.window_rows,
        };
        let (epoch_start, mut waited) = (Instant::now(), 0.0);
        loop {
            let t0 = Instant::now();
            let Some(batch) = stream.next() else { break };
            let wait = t0.elapsed().as_secs_f64();
            waited += wait;
            if let Some(p) = &mut self.console.profile {
                p.loader_wait_s += wait;
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
        self.warn_loader_wait(epoch, waited, epoch_start.elapsed().as_secs_f64());
        Ok(())
    }

    /// Says when the step waited for the loader for more than [`LOADER_WAIT_WARN`] of the
    /// epoch's training time: the GPU (or CPU) idles while images are decoded.
    fn warn_loader_wait(&self, epoch: usize, waited: f64, total: f64) {
        // The first batches of an epoch are always waited for (the loader starts with the
        // epoch); below 10 s nothing is said.
        if self.console.quiet || total < 10.0 || waited <= LOADER_WAIT_WARN * total {
            return;
        }
        self.console.bar.suspend(|| {
            eprintln!(
                "warning: epoch {}: training waited {waited:.0} s of {total:.0} s ({:.0} %) for                  the loader: images are decoded slower than the device trains on them. Give the                  loader more cores (RAYON_NUM_THREADS), raise [data] prefetch, or use compact                  counterfactual shards ([counterfactuals] compact = true); `--profile` splits the                  step",
                epoch + 1,
                100.0 * waited / total
            )
        });
    }

    /// Forward, loss and backward of one non-empty micro-batch; its loss is scaled by its share
    /// of the optimizer step's rows, so accumulated gradients are those of the whole step.
    fn micro_step(&mut self, batch: &Batch) -> Result<()> {
        let epoch = self.progress.epoch;
        let l = &self.learner;
        // Forward and loss under bf16 autocast (precision bf16, auto on CUDA); backward outside
        // it, as torch.autocast prescribes.
        let t0 = Instant::now();
        let out = cfkit_distributed::aten::autocast_bf16(l.autocast, || {
            l.objective.step(&l.student, batch, epoch)
        })?;
        let t1 = Instant::now();
        let share = batch.len() as f64 / self.plan.step_rows(batch.index) as f64;
        (&out.loss * share).backward();
        if let Some(p) = &mut self.console.profile {
            p.micro_batches += 1;
            p.images += batch.len() as u64;
            p.forward_loss_s += (t1 - t0).as_secs_f64();
            p.cam_s += out.cam_seconds;
            p.teacher_s += out.teacher_seconds;
            p.backward_s += t1.elapsed().as_secs_f64();
        }
        // Statistics stay on the device until a window, checkpoint or epoch ends (no wait here).
        let correct = out
            .logits
            .argmax(-1, false)
            .eq_tensor(&batch.labels)
            .sum(Kind::Int64);
        self.deferred
            .micro(batch.len(), &out.loss, out.distill.as_ref(), &correct);
        Ok(())
    }

    /// The optimizer step that the last micro-batch completed, then its metrics line and
    /// checkpoint when due.
    fn optimizer_step(&mut self, window: &mut Window) -> Result<()> {
        // Data-parallel: every rank's gradients averaged, sums added and skipped rows sent to
        // rank 0 (which logs them).
        let t0 = Instant::now();
        let skipped = std::mem::take(&mut self.pending_skipped);
        let params = self.learner.optimizer.parameters();
        let skipped = self
            .parallel
            .finish_step(&params, &mut self.deferred, skipped)?;
        if let Some(p) = &mut self.console.profile {
            p.allreduce_s += t0.elapsed().as_secs_f64();
        }
        self.log_skipped(&skipped, Stage::Train)?;
        let t0 = Instant::now();
        let (sched, local_step) = self.plan.schedule_at(self.progress.step);
        let info = self.learner.optimizer.step(local_step, sched)?;
        let beta1 = sched.beta1(local_step);
        self.learner.optimizer.zero_grad();
        if let Some(p) = &mut self.console.profile {
            p.optimizer_steps += 1;
            p.optimizer_s += t0.elapsed().as_secs_f64();
        }
        self.deferred.step_end(&info.grad_norm);
        let p = &mut self.progress;
        p.step += 1;
        self.console.bar.set_position(p.step as u64);
        if p.step.is_multiple_of(self.cfg.train.log_every) {
            self.log_window(&info, beta1, window)?;
        } else if self.deferred.pending() >= MAX_DEFERRED {
            self.flush_stats()?;
        }
        if self.checkpointer.due(self.progress.step) {
            self.save(Slot::Last)?;
        }
        Ok(())
    }

    /// One "step" line of metrics.jsonl for the window that ends now.
    fn log_window(&mut self, info: &StepInfo, beta1: Option<f64>, w: &mut Window) -> Result<()> {
        self.flush_stats()?;
        let p = &mut self.progress;
        let secs = w.start.elapsed().as_secs_f64();
        let (loss, distill, grad_norm) = p.stats.window_means(self.learner.objective.distills());
        // Images of every rank, since this process timed the window.
        let ips = (p.stats.window_rows - w.rows_before) as f64 / secs.max(1e-9);
        let line = MetricsLine::Step {
            step: p.step,
            epoch: p.epoch,
            loss,
            distill,
            lr: info.lr,
            beta1,
            grad_norm,
            images_per_s: ips,
        };
        if let Some(w) = &mut self.writer {
            w.log.metrics(&line)?;
        }
        self.console
            .bar
            .set_message(format!("loss {loss:.4} lr {:.2e} {ips:.0} img/s", info.lr));
        p.stats.reset_window();
        *w = Window {
            start: Instant::now(),
            rows_before: 0,
        };
        Ok(())
    }

    fn log_skipped(&mut self, skipped: &[Skipped], stage: Stage) -> Result<()> {
        match &mut self.writer {
            Some(w) => w.log.skipped(skipped, self.progress.epoch, stage),
            None => Ok(()),
        }
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
        let l = &self.learner;
        let scoring = Scoring::new(&vs.classes, &l.student.classes, false, None)?;
        let evaluator = Evaluator::new(&l.student, self.cfg.train.eval_batch_size, l.device);
        let s = evaluator.score(vs.clone(), Some(self.parallel.share(rows)), &scoring)?;
        let (n, c, skipped) = self
            .parallel
            .gather_validation(s.images, s.correct, s.skipped)?;
        self.log_skipped(&skipped, Stage::Validation)?;
        Ok(Some(c as f64 / n.max(1) as f64))
    }

    /// The epoch's end: validation and the best checkpoint, the epoch's metrics line, LP-FT's
    /// switch from probing to fine-tuning, and the resumable checkpoint of the next epoch.
    pub(crate) fn end_epoch(&mut self) -> Result<()> {
        self.flush_stats()?;
        let epoch = self.progress.epoch;
        let val_top1 = self.validate()?;
        if let Some(v) = val_top1 {
            if self.progress.best.is_none_or(|b| v > b.top1) {
                self.progress.best = Some(BestVal {
                    top1: v,
                    step: self.progress.step,
                    epoch,
                });
                self.save(Slot::Best)?;
            }
        }
        let distills = self.learner.objective.distills();
        let (train_loss, train_distill, train_top1) = self.progress.stats.epoch_means(distills);
        let line = MetricsLine::Epoch {
            epoch,
            step: self.progress.step,
            train_loss,
            train_distill,
            phase: if self.plan.probing(epoch) {
                Phase::Probe
            } else {
                Phase::FineTune
            },
            train_top1,
            val_top1,
            best_val_top1: self.progress.best.map(|b| b.top1),
        };
        if let Some(w) = &mut self.writer {
            w.log.metrics(&line)?;
        }
        if !self.console.quiet {
            let total = self.plan.total_epochs;
            let val = val_top1
                .map(|v| format!(", val top-1 {:.2}%", 100.0 * v))
                .unwrap_or_default();
            self.console.bar.suspend(|| {
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
            let l = &mut self.learner;
            l.optimizer = make_optimizer(self.cfg, &mut l.student, false);
        }
        self.save(Slot::Last)
    }
}
