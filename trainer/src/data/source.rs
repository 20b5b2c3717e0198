//! One split of a shard dataset, opened for streaming: its shards (sizes checked against the
//! manifest), row groups, classes and a fingerprint of exactly which files it reads.

use std::path::{Path, PathBuf};

use cfkit_schemas::{Manifest, ShardKind, ShardReader};

use crate::run::record::SourceRecord;

use crate::error::{Result, TrainError};

/// A row group of the split: which shard, which group in it, how many rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupInfo {
    pub shard: u32,
    pub group: u32,
    pub rows: u32,
}

/// An opened split.
#[derive(Debug)]
pub struct SplitSource {
    pub dir: PathBuf,
    pub split: String,
    pub kind: ShardKind,
    pub classes: Vec<String>,
    /// Side of the stored (preprocessed) images.
    pub image_size: u32,
    /// The resize that made them (the first shard's metadata).
    pub resize: cfkit_schemas::Resize,
    pub shards: Vec<ShardReader>,
    /// Row groups in (shard, group) order.
    pub groups: Vec<GroupInfo>,
    /// Identity hash of the manifest's (file, rows, bytes, blake3) of this split's shards.
    pub fingerprint: String,
    /// The dataset's config hash (manifest).
    pub config_hash: String,
    /// Counterfactual datasets: the teacher and how the variants were drawn (the shards'
    /// dataset metadata).
    pub teacher: Option<cfkit_schemas::TeacherInfo>,
    pub method: Option<cfkit_schemas::CounterfactualMethod>,
}

impl SplitSource {
    /// Opens `split` of the dataset in `dir`. Every shard must exist with the manifest's size and
    /// row count (`cfkit verify` checks content hashes; this is the cheap check a run does).
    pub fn open(dir: &Path, split: &str) -> Result<Self> {
        let manifest = Manifest::read(dir)?;
        let entry = manifest.split(dir, split)?;
        if entry.shards.is_empty() || entry.rows == 0 {
            return Err(TrainError::Data(format!(
                "split '{split}' of '{}' is empty",
                dir.display()
            )));
        }
        let mut shards = Vec::with_capacity(entry.shards.len());
        let mut groups = Vec::new();
        let mut image_size = None;
        for (si, s) in entry.shards.iter().enumerate() {
            let path = dir.join(&s.file);
            let meta = std::fs::metadata(&path).map_err(|e| TrainError::io(&path, e))?;
            if meta.len() != s.bytes {
                return Err(TrainError::Data(format!(
                    "'{}' is {} bytes, the manifest says {}: the dataset changed or is incomplete (run `cfkit verify {}`)",
                    path.display(),
                    meta.len(),
                    s.bytes,
                    dir.display()
                )));
            }
            let reader = ShardReader::open(&path)?;
            if reader.num_rows() != s.rows {
                return Err(TrainError::Data(format!(
                    "'{}' has {} rows, the manifest says {}",
                    path.display(),
                    reader.num_rows(),
                    s.rows
                )));
            }
            let info = reader.info();
            if info.classes != entry.classes {
                return Err(TrainError::Data(format!(
                    "'{}' lists other classes than the manifest's split '{split}'",
                    path.display()
                )));
            }
            if *image_size.get_or_insert(info.image_size) != info.image_size {
                return Err(TrainError::Data(format!(
                    "'{}' holds {} px images, other shards of '{split}' hold {} px",
                    path.display(),
                    info.image_size,
                    image_size.unwrap_or_default()
                )));
            }
            for (g, rows) in reader.row_group_rows().into_iter().enumerate() {
                groups.push(GroupInfo {
                    shard: si as u32,
                    group: g as u32,
                    rows: rows as u32,
                });
            }
            shards.push(reader);
        }
        let fingerprint = cfkit_schemas::identity_hash(&entry.shards);
        let teacher = shards.first().and_then(|r| r.info().teacher.clone());
        let resize = shards.first().map(|r| r.info().resize).unwrap_or_default();
        let method = shards.first().and_then(|r| r.info().method.clone());
        Ok(SplitSource {
            dir: dir.to_path_buf(),
            split: split.to_string(),
            kind: manifest.kind,
            classes: entry.classes.clone(),
            image_size: image_size.unwrap_or_default(),
            resize,
            shards,
            groups,
            fingerprint,
            config_hash: manifest.config_hash,
            teacher,
            method,
        })
    }

    /// A model of `config` can read these images: they are its input size and were made by its
    /// resize (a model whose preprocessing is not CLIP's needs data prepared its way). The
    /// error names both and the `prepare` options that make the data fit.
    pub fn check_fits(&self, config: &cfkit_models::VisionConfig) -> Result<()> {
        let size = config.image_size as u32;
        let wanted = config.image_resize;
        if self.image_size == size && self.resize == wanted {
            return Ok(());
        }
        let flags = |r: &cfkit_schemas::Resize| {
            let v = serde_json::to_value(r).expect("a resize serialises");
            format!(
                "--image-size {size} --resize-mode {} --interpolation {} --fill {}",
                v["mode"].as_str().unwrap_or_default(),
                v["interpolation"].as_str().unwrap_or_default(),
                r.fill
            )
        };
        Err(TrainError::Data(format!(
            "split '{}' of '{}' holds {} px images made with {}; the model takes {size} px images made with {} (prepare the data with {})",
            self.split,
            self.dir.display(),
            self.image_size,
            self.resize,
            wanted,
            flags(&wanted)
        )))
    }

    pub fn num_rows(&self) -> usize {
        self.groups.iter().map(|g| g.rows as usize).sum()
    }

    /// Labels of every row group (label column only), checked against the class list.
    pub fn labels(&self) -> Result<Vec<Vec<i64>>> {
        let c = self.classes.len() as i64;
        self.groups
            .iter()
            .map(|g| {
                let reader = &self.shards[g.shard as usize];
                let labels = reader.read_labels(g.group as usize)?;
                if let Some(bad) = labels.iter().find(|l| **l < 0 || **l >= c) {
                    return Err(TrainError::Data(format!(
                        "'{}' row group {}: label {bad} is outside 0..{c}",
                        reader.path().display(),
                        g.group
                    )));
                }
                Ok(labels)
            })
            .collect()
    }

    /// The `id` of every row, by row group (the source file's path: the same in clean and
    /// counterfactual shards of the same images).
    pub fn ids(&self) -> Result<Vec<Vec<String>>> {
        self.groups
            .iter()
            .map(|g| Ok(self.shards[g.shard as usize].read_ids(g.group as usize)?))
            .collect()
    }

    /// Counterfactual datasets built with `compact = true`: variants stored without pixels (the
    /// loader recomposes them, `data::compact`).
    pub fn compact(&self) -> bool {
        self.method.as_ref().is_some_and(|m| m.compact())
    }

    /// Counterfactual datasets: the strategies their variants were drawn with, in variant order
    /// (from the shards' dataset metadata).
    pub fn strategies(&self) -> Result<Vec<String>> {
        match (self.kind, &self.method) {
            (ShardKind::Counterfactuals, Some(m)) => Ok(m.strategies.clone()),
            (ShardKind::Counterfactuals, None) => Err(TrainError::Data(format!(
                "'{}': the shards do not record their counterfactual method (metadata \
                 cfkit.dataset: method.strategies)",
                self.dir.display()
            ))),
            (ShardKind::Images, _) => Err(TrainError::Data(format!(
                "'{}' holds plain images, not counterfactuals with teacher features: build them \
                 with `cfkit build-counterfactuals`, or use [distill] mode = \"online\"",
                self.dir.display()
            ))),
        }
    }

    /// Counterfactual datasets: the variants stored per strategy and image.
    pub fn variants_per_strategy(&self) -> Option<u64> {
        self.method.as_ref().map(|m| m.variants_per_strategy as u64)
    }

    /// Counterfactual datasets: blake3 of the teacher head they were built with.
    pub(crate) fn teacher_head_blake3(&self) -> Option<String> {
        self.teacher.as_ref().map(|t| t.head_blake3.clone())
    }

    /// What this split is, for run records.
    pub fn record(&self) -> SourceRecord {
        SourceRecord {
            dir: self.dir.clone(),
            split: self.split.clone(),
            rows: self.num_rows(),
            shards: self.shards.len(),
            row_groups: self.groups.len(),
            fingerprint: self.fingerprint.clone(),
            dataset_config_hash: self.config_hash.clone(),
        }
    }
}
