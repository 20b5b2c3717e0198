//! Where a training run stands: the counters saved in every checkpoint, so that a resumed run
//! logs and trains exactly what an uninterrupted one does.

use serde::{Deserialize, Serialize};

use crate::checkpoint::BestVal;

/// Running sums of an epoch (and of the current logging window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// Sums of one optimizer step's micro-batches (of one rank until the ranks add theirs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepSums {
    pub rows: u64,
    pub loss_sum: f64,
    pub distill_sum: f64,
    pub correct: u64,
}

impl StepSums {
    /// Adds one micro-batch of `rows` rows: its mean loss, distillation term and correct count.
    pub(crate) fn add_batch(&mut self, rows: usize, loss: f64, distill: Option<f64>, correct: u64) {
        let n = rows as f64;
        self.loss_sum += loss * n;
        self.distill_sum += distill.unwrap_or(0.0) * n;
        self.correct += correct;
        self.rows += rows as u64;
    }

    /// As four numbers (for an all-reduce), and back.
    pub(crate) fn to_array(self) -> [f64; 4] {
        [
            self.rows as f64,
            self.loss_sum,
            self.distill_sum,
            self.correct as f64,
        ]
    }

    pub(crate) fn from_array(a: [f64; 4]) -> Self {
        StepSums {
            rows: a[0].round() as u64,
            loss_sum: a[1],
            distill_sum: a[2],
            correct: a[3].round() as u64,
        }
    }
}

impl EpochStats {
    /// Adds the sums of one optimizer step (over every rank).
    pub(crate) fn add_step(&mut self, s: &StepSums) {
        self.distill_sum += s.distill_sum;
        self.window_distill_sum += s.distill_sum;
        self.loss_sum += s.loss_sum;
        self.window_loss_sum += s.loss_sum;
        self.correct += s.correct;
        self.rows += s.rows;
        self.window_rows += s.rows;
    }

    /// Mean loss, distillation term (when `distills`) and grad norm of the logging window.
    pub(crate) fn window_means(&self, distills: bool) -> (f64, Option<f64>, f64) {
        let rows = self.window_rows.max(1) as f64;
        (
            self.window_loss_sum / rows,
            distills.then(|| self.window_distill_sum / rows),
            self.window_grad_norm_sum / self.window_steps.max(1) as f64,
        )
    }

    /// Starts a new logging window.
    pub(crate) fn reset_window(&mut self) {
        self.window_loss_sum = 0.0;
        self.window_rows = 0;
        self.window_grad_norm_sum = 0.0;
        self.window_steps = 0;
        self.window_distill_sum = 0.0;
    }

    /// Mean training loss, distillation term (when `distills`) and top-1 of the epoch so far.
    pub(crate) fn epoch_means(&self, distills: bool) -> (f64, Option<f64>, f64) {
        let rows = self.rows.max(1) as f64;
        (
            self.loss_sum / rows,
            distills.then(|| self.distill_sum / rows),
            self.correct as f64 / rows,
        )
    }
}

/// The run's position, stored as `rng.progress` in each checkpoint's sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
pub struct Progress {
    pub step: usize,
    pub epoch: usize,
    /// Micro-batches of `epoch` already consumed.
    pub next_batch: usize,
    pub best: Option<BestVal>,
    pub stats: EpochStats,
    /// Length of quarantine.jsonl at this checkpoint (a resumed run truncates to it, so rows
    /// skipped again after the checkpoint are not logged twice).
    #[serde(default)]
    pub quarantine_bytes: Option<u64>,
    /// Training seconds so far, over every resumed part of the run.
    #[serde(default)]
    pub train_seconds: f64,
    /// Ranks and micro-batches per step (per rank) of the run that saved this position, so that
    /// a run resumed with another number of ranks converts `next_batch` (absent: one process).
    #[serde(default)]
    pub world: Option<usize>,
    #[serde(default)]
    pub accum: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_reset_and_epochs_keep_their_sums() {
        let mut s = EpochStats::default();
        let mut step = StepSums::default();
        step.add_batch(2, 1.0, Some(0.5), 1);
        step.add_batch(6, 3.0, Some(1.5), 3);
        assert_eq!(StepSums::from_array(step.to_array()), step);
        s.add_step(&step);
        s.window_grad_norm_sum = 4.0;
        s.window_steps = 2;
        assert_eq!(s.window_means(true), (2.5, Some(1.25), 2.0));
        assert_eq!(s.window_means(false).1, None);
        s.reset_window();
        assert_eq!(s.window_means(true), (0.0, Some(0.0), 0.0));
        // 2·1 + 6·3 = 20 over 8 rows; 4 of 8 correct.
        assert_eq!(s.epoch_means(true), (2.5, Some(1.25), 0.5));
    }
}
