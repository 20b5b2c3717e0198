//! Scoring an evaluation suite (`cfkit eval --suite imagenet`): every prepared set of the suite
//! with its own protocol (class subset, many-to-one label map), one report with the paper's
//! table. Finding and preprocessing the sets is cfkit-pipeline's (`suite::prepare_suite`); the
//! binary hands each prepared set over as a [`SuiteSet`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tch::Device;

use super::{paper_table, EvalReport, Evaluator, Scoring};
use crate::data::SplitSource;
use crate::error::{Result, TrainError};
use crate::student::Student;

/// One set of a suite, ready to score.
#[derive(Debug, Clone)]
pub struct SuiteSet {
    /// The set's shards (a split of an image-shard dataset).
    pub shards: PathBuf,
    pub split: String,
    /// How its labels map to the model's classes.
    pub scoring: Scoring,
    /// What the suite report records of it (`images` is filled in when scored).
    pub record: SuiteSetRecord,
}

/// What `suite-<name>.json` records of one set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SuiteSetRecord {
    /// The set's name (`imagenet-r`, ...).
    pub set: String,
    /// Where its images were found.
    pub dir: PathBuf,
    /// Its preprocessed shards.
    pub shards: PathBuf,
    /// In-distribution (ImageNet val) rather than OOD.
    pub id: bool,
    /// Images scored.
    pub images: usize,
    /// Images of the standard release (a partial copy scores fewer).
    pub expected_images: usize,
    /// Files that could not be used (listed in the shards' quarantine).
    pub quarantined: usize,
    /// Class folders of the standard release that are absent.
    pub missing_classes: usize,
    /// Folders present but outside the protocol (not scored).
    pub unscored_folders: usize,
    /// The class subset logits are restricted to (ImageNet-R/-A), by size.
    pub restricted_to_classes: Option<usize>,
    /// Pixels cut from every side before preprocessing (ObjectNet: 2).
    pub border_crop_px: u32,
}

/// `suite-<name>.json`: a checkpoint's scores on a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SuiteReport {
    /// The suite's name (`imagenet`).
    pub suite: String,
    /// The checkpoint scored.
    pub checkpoint: PathBuf,
    /// Top-1 per set and the means.
    pub report: EvalReport,
    /// Per set: where it was found and what was scored.
    pub sets: Vec<SuiteSetRecord>,
    /// The paper's table row (Markdown), as `suite-<name>.md` holds it.
    pub table: String,
}

/// Scores `student` (the checkpoint in `checkpoint`) on every set of `suite`, in order; a set
/// that scores fewer images than its standard release is noted on stderr unless `quiet`.
pub fn score_suite(
    student: &Student,
    suite: &str,
    checkpoint: &Path,
    sets: Vec<SuiteSet>,
    batch_size: usize,
    device: Device,
    quiet: bool,
) -> Result<SuiteReport> {
    let evaluator = Evaluator::new(student, batch_size, device);
    let mut results = Vec::new();
    let mut records = Vec::new();
    for s in sets {
        let source = Arc::new(SplitSource::open(&s.shards, &s.split)?);
        let mut record = s.record;
        let r = evaluator.scored(&record.set, (!record.id, false), source, &s.scoring)?;
        record.images = r.images;
        if r.images != record.expected_images && !quiet {
            eprintln!(
                "note: {}: {} images scored, the standard release has {} ({} quarantined, {} class folders absent)",
                record.set, r.images, record.expected_images, record.quarantined, record.missing_classes
            );
        }
        records.push(record);
        results.push(r);
    }
    let report = EvalReport::new(results);
    let table = paper_table(&checkpoint.display().to_string(), &report);
    Ok(SuiteReport {
        suite: suite.to_string(),
        checkpoint: checkpoint.to_path_buf(),
        report,
        sets: records,
        table,
    })
}

/// Writes `suite-<name>.md` (the table) and `suite-<name>.json` (the report) into `out`.
pub fn write_suite_report(out: &Path, report: &SuiteReport) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    let md = out.join(format!("suite-{}.md", report.suite));
    std::fs::write(&md, &report.table).map_err(|e| TrainError::io(&md, e))?;
    cfkit_outdir::write_json(&out.join(format!("suite-{}.json", report.suite)), report)?;
    Ok(())
}
