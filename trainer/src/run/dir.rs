//! The run directory: its record (`run.json`), the metrics log (`metrics.jsonl`), the quarantine
//! log, and the rules for reusing a directory (same config + `--resume` only).

use std::path::Path;

use super::record::RunRecord;
use crate::error::{Result, TrainError};

pub const RUN_FILE: &str = "run.json";
/// The ids of the validation rows held out of the training split, sorted, one per line.
pub const HOLDOUT_FILE: &str = "holdout-ids.txt";
pub(crate) const METRICS_FILE: &str = "metrics.jsonl";
pub(crate) const QUARANTINE_FILE: &str = "quarantine.jsonl";
pub(crate) const REPORT_JSON: &str = "report.json";
pub(crate) const REPORT_MD: &str = "report.md";
pub(crate) const LAST_DIR: &str = "checkpoints/last";
pub(crate) const BEST_DIR: &str = "checkpoints/best";

/// What the directory holds before the run starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Existing {
    /// Absent or empty: a fresh run.
    Fresh,
    /// A run of the same config (resumable with `--resume`).
    SameConfig,
}

/// Checks that `out` can hold a run of the config with hash `config_hash`.
pub fn check(out: &Path, config_hash: &str, resume: bool) -> Result<Existing> {
    let run = out.join(RUN_FILE);
    if !run.exists() {
        if !holds_only_setup(out)? {
            return Err(TrainError::Config(format!(
                "'{}' is not empty and holds no {RUN_FILE}: choose a new --out directory",
                out.display()
            )));
        }
        return Ok(Existing::Fresh);
    }
    let found = RunRecord::read(out)?.config_hash;
    let found = found.as_str();
    if found != config_hash {
        return Err(TrainError::Config(format!(
            "'{}' holds a run of another config (hash {}…, this config {}…): choose a new --out directory",
            out.display(),
            &found[..found.len().min(12)],
            &config_hash[..12]
        )));
    }
    if !resume {
        return Err(TrainError::Config(format!(
            "'{}' already holds a run of this config: pass --resume to continue it, or choose a new --out",
            out.display()
        )));
    }
    Ok(Existing::SameConfig)
}

/// Whether `out` is absent, empty, or holds only what a run's own set-up leaves when it is
/// stopped before `run.json` is in place (lock files, a half-written `run.json.tmp`, an empty
/// `checkpoints/`): a rerun takes such a directory over.
fn holds_only_setup(out: &Path) -> Result<bool> {
    let entries = match std::fs::read_dir(out) {
        Ok(it) => it,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(TrainError::io(out, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| TrainError::io(out, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = cfkit_outdir::is_lock_file(&name)
            || name == format!("{RUN_FILE}.tmp")
            || (name == "checkpoints"
                && std::fs::read_dir(entry.path()).is_ok_and(|mut d| d.next().is_none()));
        if !ours {
            return Ok(false);
        }
    }
    Ok(true)
}
