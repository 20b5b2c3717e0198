//! `manifest.json`: what a dataset directory holds — schema version, the resolved config and its
//! hash, and per split the shards with their rows, bytes and blake3.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SchemaError};
use crate::fields::SCHEMA_VERSION;
use crate::identity::identity_hash;
use crate::layout::MANIFEST_FILE;
use crate::metadata::ShardKind;
use crate::writer::ShardSummary;

/// One split of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SplitEntry {
    pub classes: Vec<String>,
    pub rows: u64,
    pub shards: Vec<ShardSummary>,
}

/// The manifest of a dataset directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Manifest {
    pub schema_version: u32,
    pub kind: ShardKind,
    /// `cfkit <version>` that wrote it.
    pub created_by: String,
    /// The resolved config of the run.
    pub config: serde_json::Value,
    /// [`identity_hash`] of `config`.
    pub config_hash: String,
    #[serde(default)]
    pub teacher_blake3: Option<String>,
    pub splits: BTreeMap<String, SplitEntry>,
}

impl Manifest {
    pub fn new(kind: ShardKind, config: serde_json::Value, created_by: &str) -> Self {
        Manifest {
            schema_version: SCHEMA_VERSION,
            kind,
            created_by: created_by.to_string(),
            config_hash: identity_hash(&config),
            config,
            teacher_blake3: None,
            splits: BTreeMap::new(),
        }
    }

    /// Reads `dir/manifest.json` and checks its version.
    pub fn read(dir: &Path) -> Result<Self> {
        Self::read_file(&dir.join(MANIFEST_FILE))
    }

    /// Reads a manifest file of any name (e.g. a worker's part) and checks its version.
    pub fn read_file(path: &Path) -> Result<Self> {
        let path = path.to_path_buf();
        let text = std::fs::read_to_string(&path).map_err(|e| SchemaError::io(&path, e))?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| SchemaError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if m.schema_version != SCHEMA_VERSION {
            return Err(SchemaError::Manifest {
                path,
                message: format!(
                    "schema version {} is not supported (this cfkit reads version {SCHEMA_VERSION})",
                    m.schema_version
                ),
            });
        }
        if identity_hash(&m.config) != m.config_hash {
            return Err(SchemaError::Manifest {
                path,
                message: "config_hash does not match the stored config (the manifest was edited)"
                    .into(),
            });
        }
        Ok(m)
    }

    /// The entry of `split`; the error (for the manifest in `dir`) lists the splits there are.
    pub fn split(&self, dir: &Path, split: &str) -> Result<&SplitEntry> {
        self.splits.get(split).ok_or_else(|| SchemaError::Manifest {
            path: dir.join(MANIFEST_FILE),
            message: format!(
                "no split '{split}' (it has: {})",
                self.splits.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Writes `dir/manifest.json` atomically (temporary file, sync, rename).
    pub fn write(&self, dir: &Path) -> Result<()> {
        self.write_file(&dir.join(MANIFEST_FILE))
    }

    /// Writes a manifest file of any name atomically (temporary file, sync, rename).
    pub fn write_file(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let path = path.to_path_buf();
        let text = serde_json::to_string_pretty(self).expect("manifest serialises");
        std::fs::create_dir_all(dir).map_err(|e| SchemaError::io(dir, e))?;
        std::fs::write(&tmp, text + "\n").map_err(|e| SchemaError::io(&tmp, e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| SchemaError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| SchemaError::io(&path, e))
    }

    /// Adds a closed shard to its split (creating the split).
    pub fn add_shard(&mut self, split: &str, classes: &[String], shard: ShardSummary) {
        let entry = self
            .splits
            .entry(split.to_string())
            .or_insert_with(|| SplitEntry {
                classes: classes.to_vec(),
                rows: 0,
                shards: Vec::new(),
            });
        entry.shards.retain(|s| s.file != shard.file);
        entry.shards.push(shard);
        entry.shards.sort_by(|a, b| a.file.cmp(&b.file));
        entry.rows = entry.shards.iter().map(|s| s.rows).sum();
    }
}
