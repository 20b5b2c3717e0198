//! `cfkit merge DIR`: joins the manifest parts of `build-counterfactuals --num-workers N` workers
//! (all writing into DIR) into `manifest.json`, after checking that they belong to one config, that
//! every worker is there, that no shard is claimed twice, that every listed shard file exists with
//! its recorded size, and, when the source dataset is readable, that every source shard was built.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cfkit_outdir::{DirLock, LOCK_FILE};
use cfkit_schemas::layout::{parse_worker_manifest_name, MANIFEST_FILE};
use cfkit_schemas::Manifest;
use serde::Serialize;

use super::pieces::pieces;
use super::record::BuildIdentity;
use super::Workers;
use crate::error::{PipelineError, Result};

/// What `merge` joined.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct MergeReport {
    pub workers: usize,
    pub shards: usize,
    pub rows: u64,
    /// Whether the source dataset could be read to check coverage.
    pub coverage_checked: bool,
}

/// Each worker's manifest part: worker index -> (worker count it was written for, file).
type Parts = BTreeMap<usize, (usize, PathBuf)>;

/// Workers still writing into `dir` (their locks are held) would leave their manifest parts
/// incomplete: refuse to merge, naming them.
fn refuse_running_workers(dir: &Path) -> Result<()> {
    let running: Vec<String> = DirLock::holders(dir)
        .into_iter()
        .filter(|(name, _)| name != LOCK_FILE)
        .map(|(name, h)| format!("{name} held by {h}"))
        .collect();
    if running.is_empty() {
        return Ok(());
    }
    Err(PipelineError::Input(format!(
        "'{}' is still being written by {} worker(s) ({}): merge when they have finished",
        dir.display(),
        running.len(),
        running.join("; ")
    )))
}

/// A worker whose manifest part exists but whose completion marker does not (stopped, killed,
/// still running) has not listed all its shards: refuse, naming it.
fn refuse_unfinished_workers(dir: &Path, count: usize, parts: &Parts) -> Result<()> {
    let mut unfinished = Vec::new();
    for (&index, (_, path)) in parts {
        let hash = Manifest::read_file(path)?.config_hash;
        if !super::done::marked(dir, Workers { count, index }, &hash) {
            unfinished.push(index);
        }
    }
    if unfinished.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = unfinished
        .iter()
        .map(|&index| Workers { count, index }.done_name())
        .collect();
    Err(PipelineError::Input(format!(
        "workers {unfinished:?} of {count} have not finished in '{}' (no {}): rerun them (a \
         rerun resumes), then merge",
        dir.display(),
        names.join(", ")
    )))
}

/// Joins the worker manifests in `dir` into `dir/manifest.json`.
pub fn merge(dir: &Path) -> Result<MergeReport> {
    let _lock = DirLock::acquire(dir, "")?;
    refuse_running_workers(dir)?;
    let (count, parts) = worker_parts(dir)?;
    refuse_unfinished_workers(dir, count, &parts)?;
    let (merged, owner) = join_parts(dir, &parts)?;
    if dir.join(MANIFEST_FILE).exists() {
        let existing = Manifest::read(dir)?;
        if existing.config_hash != merged.config_hash {
            return Err(PipelineError::Input(format!(
                "'{}' already holds a manifest of another config",
                dir.display()
            )));
        }
    }
    let coverage_checked = check_coverage(&merged, &owner, count)?;
    merged.write(dir)?;
    Ok(MergeReport {
        workers: count,
        shards: owner.len(),
        rows: merged.splits.values().map(|e| e.rows).sum(),
        coverage_checked,
    })
}

/// The worker count of the manifest parts in `dir`, and each worker's part; every worker of
/// that count must have written one.
fn worker_parts(dir: &Path) -> Result<(usize, Parts)> {
    let mut parts: Parts = BTreeMap::new();
    let mut counts = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(|e| PipelineError::io(dir, e))? {
        let entry = entry.map_err(|e| PipelineError::io(dir, e))?;
        if let Some((i, n)) = parse_worker_manifest_name(&entry.file_name().to_string_lossy()) {
            counts.insert(n);
            parts.insert(i, (n, entry.path()));
        }
    }
    let count = match counts.len() {
        0 => {
            return Err(PipelineError::Input(format!(
                "'{}' holds no worker manifests (manifest.worker-I-of-N.json)",
                dir.display()
            )))
        }
        1 => *counts.iter().next().expect("one"),
        _ => {
            return Err(PipelineError::Input(format!(
                "'{}' holds manifests of runs with different --num-workers ({counts:?})",
                dir.display()
            )))
        }
    };
    let missing: Vec<usize> = (0..count).filter(|i| !parts.contains_key(i)).collect();
    if !missing.is_empty() {
        return Err(PipelineError::Input(format!(
            "workers {missing:?} of {count} have not written their manifest in '{}' (run them, then merge)",
            dir.display()
        )));
    }
    Ok((count, parts))
}

/// The parts joined into one manifest (one config; no shard listed twice; every listed file
/// there with its recorded size), and which worker wrote each shard.
fn join_parts(dir: &Path, parts: &Parts) -> Result<(Manifest, BTreeMap<String, usize>)> {
    let mut merged: Option<Manifest> = None;
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (_, path)) in parts {
        let m = Manifest::read_file(path)?;
        let target = merged.get_or_insert_with(|| {
            let mut t = Manifest::new(m.kind, m.config.clone(), &m.created_by);
            t.teacher_blake3 = m.teacher_blake3.clone();
            t
        });
        if m.config_hash != target.config_hash || m.kind != target.kind {
            return Err(PipelineError::Input(format!(
                "'{}' was written with another config (hash {}…) than worker 0 ({}…): the workers do not belong to one run",
                path.display(),
                &m.config_hash[..12],
                &target.config_hash[..12]
            )));
        }
        for (split, entry) in &m.splits {
            for shard in &entry.shards {
                if let Some(other) = owner.insert(shard.file.clone(), *i) {
                    return Err(PipelineError::Input(format!(
                        "shard '{}' is listed by workers {other} and {i}",
                        shard.file
                    )));
                }
                let file = dir.join(&shard.file);
                let len = std::fs::metadata(&file)
                    .map_err(|e| PipelineError::io(&file, e))?
                    .len();
                if len != shard.bytes {
                    return Err(PipelineError::Input(format!(
                        "'{}' is {len} bytes, worker {i}'s manifest says {}",
                        file.display(),
                        shard.bytes
                    )));
                }
                target.add_shard(split, &entry.classes, shard.clone());
            }
        }
    }
    Ok((merged.expect("at least one part"), owner))
}

/// Whether every piece of every worker (`pieces`: the whole source split, cut as the workers
/// cut it) has its output, when the source dataset is readable here; an error names the pieces
/// that lack one.
fn check_coverage(
    merged: &Manifest,
    owner: &BTreeMap<String, usize>,
    count: usize,
) -> Result<bool> {
    let identity: BuildIdentity = serde_json::from_value(merged.config.clone()).map_err(|e| {
        PipelineError::Input(format!(
            "the workers' manifests do not record a counterfactual build's config: {e}"
        ))
    })?;
    let (src, split) = (
        &identity.config.source.shards,
        &identity.config.source.split,
    );
    let Ok(sm) = Manifest::read(src) else {
        return Ok(false);
    };
    let entry = sm.split(src, split)?;
    let batch = identity.config.counterfactuals.batch_size;
    let expected: Vec<(usize, String)> = (0..count)
        .flat_map(|index| {
            pieces(entry, batch, Workers { count, index })
                .into_iter()
                .map(move |p| (index, p.file))
        })
        .collect();
    let lacking: Vec<String> = expected
        .iter()
        .filter(|(_, f)| !owner.contains_key(f))
        .map(|(w, f)| format!("{f} (worker {w})"))
        .collect();
    if !lacking.is_empty() {
        return Err(PipelineError::Input(format!(
            "{} of {} pieces of the source split have no output yet (first: {}); rerun those \
             workers, then merge",
            lacking.len(),
            expected.len(),
            lacking[0]
        )));
    }
    Ok(true)
}
