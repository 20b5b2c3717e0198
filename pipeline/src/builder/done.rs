//! The completion marker of a build worker: `done.json` (one worker) or
//! `done.worker-I-of-N.json`, written last — after every shard of the worker is in its manifest
//! part and its run record is written — with the config hash and the report. A rerun of a
//! finished worker (a requeued array task) exits at once with it; `cfkit merge` waits for every
//! worker's marker.

use std::path::Path;

use cfkit_schemas::Manifest;

use super::pieces::Piece;
use super::{BuildReport, Workers};
use crate::error::{PipelineError, Result};

/// `done.json` (or `done.worker-I-of-N.json`): a build worker's completion marker.
#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Marker {
    /// The build's identity hash.
    pub config_hash: String,
    /// What the worker built.
    pub report: BuildReport,
}

/// Writes the marker of `workers` (atomically: a temporary name, then a rename).
pub fn write(out: &Path, workers: Workers, hash: &str, report: &BuildReport) -> Result<()> {
    let path = out.join(workers.done_name());
    let tmp = out.join(format!("{}.tmp", workers.done_name()));
    let marker = Marker {
        config_hash: hash.to_string(),
        report: report.clone(),
    };
    let text = serde_json::to_string_pretty(&marker).expect("serialisable") + "\n";
    std::fs::write(&tmp, text).map_err(|e| PipelineError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| PipelineError::io(&path, e))
}

/// The report of a worker of the build with `hash` that finished: its marker is there, of this
/// config, and every piece of its part (`pieces`) is listed in `manifest` and present with its
/// recorded size (a deleted shard makes the worker unfinished again, so the rerun redoes it).
pub fn finished(
    out: &Path,
    workers: Workers,
    hash: &str,
    manifest: &Manifest,
    pieces: &[Piece],
    split: &str,
) -> Option<BuildReport> {
    let text = std::fs::read_to_string(out.join(workers.done_name())).ok()?;
    let marker: Marker = serde_json::from_str(&text).ok()?;
    if marker.config_hash != hash {
        return None;
    }
    let listed = |file: &str| {
        manifest
            .splits
            .get(split)
            .and_then(|e| e.shards.iter().find(|s| s.file == file))
            .is_some_and(|s| std::fs::metadata(out.join(&s.file)).is_ok_and(|m| m.len() == s.bytes))
    };
    pieces
        .iter()
        .all(|p| listed(&p.file))
        .then_some(marker.report)
}

/// Whether worker `workers` of the build whose manifest part has `hash` has its marker.
pub fn marked(out: &Path, workers: Workers, hash: &str) -> bool {
    std::fs::read_to_string(out.join(workers.done_name()))
        .ok()
        .and_then(|t| serde_json::from_str::<Marker>(&t).ok())
        .is_some_and(|m| m.config_hash == hash)
}
