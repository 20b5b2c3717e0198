//! `quarantine/<shard>.jsonl`: the rows of one input shard that a build left out, with reasons.
//! Rewritten with its shard, so reruns and workers never mix entries; removed when empty.

use std::path::{Path, PathBuf};

use crate::error::{PipelineError, Result};

fn path_of(out: &Path, shard_file: &str) -> PathBuf {
    let name = Path::new(shard_file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| shard_file.replace('/', "_"));
    out.join("quarantine").join(format!("{name}.jsonl"))
}

/// Writes (or removes, when `rejected` is empty) the quarantine file of `shard_file`.
pub(super) fn write(out: &Path, shard_file: &str, rejected: &[(String, String)]) -> Result<()> {
    let path = path_of(out, shard_file);
    if rejected.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(PipelineError::io(&path, e)),
            _ => Ok(()),
        };
    }
    let dir = out.join("quarantine");
    std::fs::create_dir_all(&dir).map_err(|e| PipelineError::io(&dir, e))?;
    let text: String = rejected
        .iter()
        .map(|(id, reason)| {
            let line = super::record::BuildQuarantineLine {
                id: id.clone(),
                shard: shard_file.to_string(),
                reason: reason.clone(),
            };
            serde_json::to_string(&line).expect("quarantine lines serialise") + "\n"
        })
        .collect();
    std::fs::write(&path, text).map_err(|e| PipelineError::io(&path, e))
}

/// Rows listed in the quarantine files of `shards`.
pub(super) fn count<'a>(out: &Path, shards: impl IntoIterator<Item = &'a str>) -> u64 {
    shards
        .into_iter()
        .filter_map(|f| std::fs::read_to_string(path_of(out, f)).ok())
        .map(|t| t.lines().count() as u64)
        .sum()
}
