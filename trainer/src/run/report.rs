//! The final report of a run: `report.json` and `report.md`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::BestVal;
use crate::error::{Result, TrainError};
use crate::eval::{background_table, markdown_table, EvalReport};
use crate::run::dir;

/// What a finished run reports.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrainReport {
    /// The run directory.
    pub out: PathBuf,
    /// The training method.
    pub method: String,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Epochs of the whole run (LP-FT: probe + fine-tune).
    pub epochs: usize,
    /// Training rows (after the validation hold-out).
    pub train_rows: usize,
    /// Validation rows.
    pub val_rows: usize,
    /// The best validation result (null without validation).
    pub best: Option<BestVal>,
    /// The checkpoint the evaluation used.
    pub evaluated: PathBuf,
    /// Top-1 of the evaluated checkpoint on every configured set, and the means.
    pub eval: EvalReport,
    /// Training time over every resumed part of the run, seconds.
    pub train_seconds: f64,
}

pub fn write_report(out: &Path, report: &TrainReport) -> Result<()> {
    cfkit_outdir::write_json(&out.join(dir::REPORT_JSON), report)?;
    let mut md = format!(
        "# cfkit train: {}\n\n{} steps over {} epochs, {} training images, {} validation images.\n",
        report.method, report.steps, report.epochs, report.train_rows, report.val_rows
    );
    if let Some(b) = report.best {
        md += &format!(
            "Best validation top-1 {:.2}% at step {} (epoch {}); evaluated checkpoint: `{}`.\n",
            100.0 * b.top1,
            b.step,
            b.epoch + 1,
            report.evaluated.display()
        );
    }
    md += &format!("Training took {:.1} s.\n\n", report.train_seconds);
    md += &markdown_table(&report.eval);
    md += &background_table(&report.eval);
    let path = out.join(dir::REPORT_MD);
    std::fs::write(&path, md).map_err(|e| TrainError::io(&path, e))
}
