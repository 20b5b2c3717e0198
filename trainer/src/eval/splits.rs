//! `cfkit eval` on the splits of one dataset directory: which splits it scores when none are
//! named, and how each becomes a named evaluation set.

use std::path::{Path, PathBuf};

use cfkit_schemas::Manifest;

use crate::config::ResolvedEvalSet;
use crate::error::Result;

/// The protocol applied to every split (ImageNet variants: `restrict` for -R/-A, a label map for
/// ObjectNet).
#[derive(Debug, Clone, Default)]
pub struct SplitProtocol {
    /// Splits that count as OOD; empty: those named `ood*`.
    pub ood: Vec<String>,
    /// Splits reported apart (in neither mean); empty: those named `*-near`.
    pub apart: Vec<String>,
    /// Restrict logits to each split's classes before argmax.
    pub restrict: bool,
    /// JSON `{set class: [model classes]}`.
    pub label_map: Option<PathBuf>,
}

/// The splits of `dir` scored when none are named: every split named `test*` or `ood*`, else
/// every split.
pub fn default_splits(dir: &Path) -> Result<Vec<String>> {
    let manifest = Manifest::read(dir)?;
    let named: Vec<String> = manifest
        .splits
        .keys()
        .filter(|s| s.starts_with("test") || s.starts_with("ood"))
        .cloned()
        .collect();
    Ok(if named.is_empty() {
        manifest.splits.keys().cloned().collect()
    } else {
        named
    })
}

/// Each of `splits` of `dir` as an evaluation set named after it.
pub fn split_sets(dir: &Path, splits: &[String], protocol: &SplitProtocol) -> Vec<ResolvedEvalSet> {
    splits
        .iter()
        .map(|split| ResolvedEvalSet {
            name: split.clone(),
            shards: dir.to_path_buf(),
            split: split.clone(),
            ood: if protocol.ood.is_empty() {
                super::default_role(split).0
            } else {
                protocol.ood.contains(split)
            },
            apart: if protocol.apart.is_empty() {
                super::default_role(split).1
            } else {
                protocol.apart.contains(split)
            },
            restrict: protocol.restrict,
            label_map: protocol.label_map.clone(),
        })
        .collect()
}
