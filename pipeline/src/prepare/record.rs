//! What `cfkit prepare` and `cfkit demo-data` record: the identity of an image dataset (its
//! manifest's `config` and `config_hash`: what changes the rows) and `run.json` (that identity,
//! per-split reports, and the inputs' locations, which do not change the rows).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{OutputOptions, PrepareOptions, SplitReport};
use crate::error::{PipelineError, Result};
use crate::fashionshift::FashionShiftConfig;

/// The identity of a `prepare` dataset: the listed source, its classes and the options.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrepareIdentity {
    /// Always `prepare`.
    pub command: String,
    /// The source listing (ImageFolder root or manifest, and how it was listed).
    pub source: String,
    pub classes: Vec<String>,
    pub options: PrepareOptions,
}

/// The identity of a `demo-data` dataset: the generator's parameters, the Fashion-MNIST garments
/// by content (not by path), the splits and the shard sizes.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DemoDataIdentity {
    /// Always `demo-data`.
    pub command: String,
    pub fashionshift: FashionShiftConfig,
    /// [`crate::fashionshift::FashionMnist::fingerprint`] of the garments used.
    pub fashion_mnist_blake3: String,
    pub splits: Vec<String>,
    pub output: OutputOptions,
}

/// Where `demo-data` read and wrote besides its shards (recorded, not part of the identity).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DemoDataInputs {
    pub fashion_mnist: PathBuf,
    /// The PNG ImageFolder tree also written, if any.
    pub image_folder: Option<PathBuf>,
}

/// `run.json` of an image dataset.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetRecord<C> {
    /// `cfkit` version that wrote it.
    pub cfkit: String,
    /// The dataset's identity (as its manifest records it).
    pub config: C,
    pub config_hash: String,
    pub splits: Vec<SplitReport>,
    /// `demo-data`: the inputs' locations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<DemoDataInputs>,
}

impl<C: Serialize> DatasetRecord<C> {
    pub fn new(config: C, splits: Vec<SplitReport>, inputs: Option<DemoDataInputs>) -> Self {
        DatasetRecord {
            cfkit: env!("CARGO_PKG_VERSION").into(),
            config_hash: cfkit_schemas::identity_hash(&config),
            config,
            splits,
            inputs,
        }
    }

    /// Writes `out/run.json` (atomically).
    pub fn write(&self, out: &Path) -> Result<()> {
        Ok(cfkit_outdir::write_json(&out.join(RUN_FILE), self)?)
    }
}

impl<C: for<'de> Deserialize<'de>> DatasetRecord<C> {
    /// Reads `dir/run.json`; the error names the file.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(RUN_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| PipelineError::io(&path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| PipelineError::Input(format!("'{}': {e}", path.display())))
    }
}

/// The run record's file name.
pub const RUN_FILE: &str = "run.json";
