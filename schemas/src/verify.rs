//! `cfkit verify`: checks a dataset directory against its manifest — every listed shard exists,
//! has the recorded size and blake3, opens as a cfkit shard of this schema version and split, and
//! holds the recorded number of rows; shard files the manifest does not list are reported too.

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::layout::{parse_shard_name, DATA_DIR, TMP_SUFFIX};
use crate::manifest::Manifest;
use crate::reader::ShardReader;

/// One problem with one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Problem {
    pub file: String,
    pub reason: String,
}

/// What `verify_dataset` found.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct VerifyReport {
    pub shards: usize,
    pub rows: u64,
    pub problems: Vec<Problem>,
    /// Leftover `*.tmp` files of interrupted writes (harmless; a rerun replaces them).
    pub temporary_files: Vec<String>,
    /// Processes writing the directory right now (lock file and holder): what was checked may
    /// change under them. Filled in by the caller, which knows the directory's locks
    /// (cfkit-outdir); empty here.
    pub writers: Vec<String>,
}

/// Verifies `dir`. Errors only when the manifest itself cannot be read.
pub fn verify_dataset(dir: &Path) -> Result<VerifyReport> {
    let manifest = Manifest::read(dir)?;
    let mut report = VerifyReport {
        shards: 0,
        rows: 0,
        problems: Vec::new(),
        temporary_files: Vec::new(),
        writers: Vec::new(),
    };
    let mut listed = std::collections::HashSet::new();
    for (split, entry) in &manifest.splits {
        let mut split_rows = 0;
        for s in &entry.shards {
            listed.insert(s.file.clone());
            report.shards += 1;
            let path = dir.join(&s.file);
            let problem = |reason: String| Problem {
                file: s.file.clone(),
                reason,
            };
            if !path.exists() {
                report
                    .problems
                    .push(problem("listed in the manifest but missing".into()));
                continue;
            }
            match ShardReader::open_verified(&path, s.bytes, &s.blake3) {
                Err(e) => report.problems.push(problem(e.to_string())),
                Ok(r) => {
                    if r.info().split != *split {
                        report.problems.push(problem(format!(
                            "holds split '{}', the manifest says '{split}'",
                            r.info().split
                        )));
                    }
                    if r.info().kind != manifest.kind {
                        report.problems.push(problem(format!(
                            "holds {:?} rows, the manifest says {:?}",
                            r.info().kind,
                            manifest.kind
                        )));
                    }
                    if r.num_rows() != s.rows {
                        report.problems.push(problem(format!(
                            "{} rows, the manifest says {}",
                            r.num_rows(),
                            s.rows
                        )));
                    }
                    split_rows += r.num_rows();
                }
            }
        }
        if split_rows != entry.rows && report.problems.is_empty() {
            report.problems.push(Problem {
                file: split.clone(),
                reason: format!(
                    "split has {split_rows} rows, the manifest says {}",
                    entry.rows
                ),
            });
        }
        report.rows += split_rows;
    }
    if let Ok(entries) = std::fs::read_dir(dir.join(DATA_DIR)) {
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let rel = format!("{DATA_DIR}/{name}");
            if name.ends_with(TMP_SUFFIX) {
                report.temporary_files.push(rel);
            } else if parse_shard_name(&name).is_some() && !listed.contains(&rel) {
                report.problems.push(Problem {
                    file: rel,
                    reason: "shard file is not listed in the manifest".into(),
                });
            }
        }
    }
    Ok(report)
}
