//! The run's logs, both append-only JSON lines written by rank 0 alone: `metrics.jsonl` (a
//! [`MetricsLine`] per logging window and per epoch) and `quarantine.jsonl` (a
//! [`QuarantineLine`] per row the loader could not use). A resumed run truncates both to the
//! lengths its checkpoint recorded, so nothing is logged twice.

use std::path::Path;

use cfkit_outdir::JsonLines;
use serde::{Deserialize, Serialize};

use super::dir;
use crate::data::Skipped;
use crate::error::Result;

/// One line of `metrics.jsonl`, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricsLine {
    /// The logging window that ends at optimizer step `step` (every `log_every` steps).
    Step {
        /// Optimizer steps taken (counted from 1).
        step: usize,
        /// The epoch, counted from 0.
        epoch: usize,
        /// Mean training loss over the window's rows.
        loss: f64,
        /// Mean unweighted distillation term (distilling methods; null otherwise).
        distill: Option<f64>,
        /// The learning rate of the window's last step.
        lr: f64,
        /// Adam's β1 at that step (cycled by the one-cycle schedule; null otherwise).
        beta1: Option<f64>,
        /// Mean gradient norm before clipping.
        grad_norm: f64,
        /// Training images per second over the window, every rank's rows counted.
        images_per_s: f64,
    },
    /// The end of epoch `epoch`.
    Epoch {
        epoch: usize,
        step: usize,
        /// Mean training loss over the epoch's rows.
        train_loss: f64,
        /// Mean unweighted distillation term over the epoch (distilling methods).
        train_distill: Option<f64>,
        /// Whether the epoch trained the head only or the whole model.
        phase: Phase,
        /// Training top-1 over the epoch's rows (on the fly, as the weights moved).
        train_top1: f64,
        /// Validation top-1 when validated this epoch.
        val_top1: Option<f64>,
        /// Best validation top-1 so far.
        best_val_top1: Option<f64>,
    },
}

/// Whether an epoch trained the head only (LP, LP-FT's probe) or the whole model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Probe,
    FineTune,
}

/// One line of `quarantine.jsonl`: a row left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QuarantineLine {
    /// The row's id and shard file.
    pub id: String,
    pub shard: String,
    /// Why it could not be used (a decode error, a damaged row).
    pub reason: String,
    pub epoch: usize,
    /// Training or validation.
    pub stage: Stage,
}

/// Where a row was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Train,
    Validation,
}

/// Both logs of a run (rank 0's).
pub(super) struct MetricsLog {
    metrics: JsonLines,
    quarantine: JsonLines,
}

impl MetricsLog {
    /// Opens the logs of the run in `out`, truncated to the lengths a resumed checkpoint
    /// recorded (`quarantine_bytes` `None`: kept whole, as checkpoints before it was recorded).
    pub(super) fn open(
        out: &Path,
        metrics_bytes: u64,
        quarantine_bytes: Option<u64>,
    ) -> Result<Self> {
        Ok(MetricsLog {
            metrics: JsonLines::open(&out.join(dir::METRICS_FILE), metrics_bytes)?,
            quarantine: JsonLines::open(
                &out.join(dir::QUARANTINE_FILE),
                quarantine_bytes.unwrap_or(u64::MAX),
            )?,
        })
    }

    pub(super) fn metrics(&mut self, line: &MetricsLine) -> Result<()> {
        Ok(self.metrics.write(line)?)
    }

    pub(super) fn skipped(&mut self, rows: &[Skipped], epoch: usize, stage: Stage) -> Result<()> {
        for s in rows {
            self.quarantine.write(&QuarantineLine {
                id: s.id.clone(),
                shard: s.shard.clone(),
                reason: s.reason.clone(),
                epoch,
                stage,
            })?;
        }
        Ok(())
    }

    /// Syncs both logs to disk; their lengths (metrics, quarantine), which a checkpoint records.
    pub(super) fn sync(&mut self) -> Result<(u64, u64)> {
        Ok((self.metrics.sync()?, self.quarantine.sync()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_tagged_by_kind_and_read_back() {
        let step = MetricsLine::Step {
            step: 10,
            epoch: 0,
            loss: 1.5,
            distill: None,
            lr: 1e-3,
            beta1: Some(0.9),
            grad_norm: 2.0,
            images_per_s: 100.0,
        };
        let text = serde_json::to_string(&step).unwrap();
        assert!(text.starts_with(r#"{"kind":"step","step":10,"#), "{text}");
        assert!(text.contains(r#""distill":null"#), "{text}");
        assert_eq!(serde_json::from_str::<MetricsLine>(&text).unwrap(), step);
        let epoch: MetricsLine = serde_json::from_str(
            r#"{"kind":"epoch","epoch":1,"step":20,"train_loss":1.0,"train_distill":null,
                "phase":"fine-tune","train_top1":0.5,"val_top1":null,"best_val_top1":0.4}"#,
        )
        .unwrap();
        assert!(matches!(
            epoch,
            MetricsLine::Epoch {
                phase: Phase::FineTune,
                ..
            }
        ));
    }
}
