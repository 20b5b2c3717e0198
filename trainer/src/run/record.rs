//! `run.json`: what a training run records about itself when it starts — the resolved config and
//! its identity hash, the seeds and how every draw is keyed, the device, the objective, where the
//! weights came from, the data it reads (with fingerprints) and the step plan. Written once,
//! atomically, before the first step; `--resume` and `wise-ft` read it back through
//! [`RunRecord`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{DistillConfig, Method, TrainConfig};
use crate::error::{Result, TrainError};

/// `run.json` of a training run.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunRecord {
    /// Always `train`.
    pub command: String,
    /// The `cfkit` version that wrote it.
    pub cfkit_version: String,
    /// HEAD of the checkout the binary was built from ("unknown" outside one).
    pub cfkit_commit: String,
    /// The resolved config (paths as resolved against the config file).
    pub config: TrainConfig,
    /// Its identity hash ([`TrainConfig::hash`]).
    pub config_hash: String,
    /// `[train] seed`: every draw of the run is keyed by it.
    pub seed: u64,
    /// How every draw is keyed.
    pub rng: RngRecord,
    /// The device of rank 0 (`Cpu`, `Cuda(0)`).
    pub device: String,
    /// libtorch's intra-op threads.
    pub threads: i32,
    /// The training method (`ft`, `lp`, `lp-ft`, `ft-kd`, `ft-fd`).
    pub method: Method,
    /// The loss, with the distillation term and its teacher.
    pub objective: ObjectiveRecord,
    /// LP-FT: epochs of linear probing before fine-tuning (0 otherwise).
    pub lp_epochs: usize,
    /// Where the initial weights came from.
    pub init: InitRecord,
    /// The rows the run reads, with fingerprints.
    pub data: DataRecord,
    /// Data-parallel runs: the ranks and how they share a step (null for one process).
    pub distributed: Option<DistributedRecord>,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// Optimizer steps of the whole run.
    pub total_steps: usize,
    /// Micro-batches per optimizer step (per rank).
    pub accumulation: usize,
    /// When the run started (Unix seconds).
    pub started_unix: u64,
}

/// How every random draw of a run is keyed: there is no mutable RNG state, each draw hashes the
/// seed with what it is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RngRecord {
    pub seed: u64,
    pub init: String,
    pub holdout: String,
    pub epoch_order: String,
}

impl RngRecord {
    pub fn new(seed: u64) -> Self {
        RngRecord {
            seed,
            init: "torch manual_seed(seed) before building a from-scratch model".into(),
            holdout: "blake3(holdout_seed, 'cfkit.holdout', id): the smallest keys of each class \
                      ([data] holdout_seed, not the run seed)"
                .into(),
            epoch_order: "splitmix64(seed, fnv1a64('cfkit.epoch'), epoch)".into(),
        }
    }
}

/// The objective of a run: its method and, for distilling methods, the distillation term.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ObjectiveRecord {
    pub method: Method,
    #[serde(flatten)]
    pub distill: Option<DistillRecord>,
}

/// The distillation term of `ft-kd` and `ft-fd`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DistillRecord {
    /// The loss in words.
    pub loss: String,
    /// The `[distill]` section.
    pub distill: DistillConfig,
    /// The counterfactual strategy of masked distillation (null: clean images).
    pub strategy: Option<String>,
    /// The frozen teacher (online mode and KD; null offline FD, which reads stored features).
    pub teacher: Option<TeacherRecord>,
    /// Offline masked distillation: how the stored variants cover the epochs.
    pub stored_variants: Option<StoredVariants>,
}

/// A frozen teacher checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TeacherRecord {
    pub dir: PathBuf,
    pub weights_blake3: String,
    pub head_blake3: String,
}

/// The counterfactual variants stored per image and strategy, against the run's epochs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoredVariants {
    pub per_image: u64,
    pub epochs: u64,
    /// Every epoch sees counterfactuals no earlier epoch saw (`variant = "epoch"`, K >= epochs).
    pub fresh_every_epoch: bool,
}

/// Where the run's initial weights came from, with the hashes of the files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum InitRecord {
    Checkpoint {
        dir: PathBuf,
        weights_blake3: String,
        head_blake3: String,
    },
    Files {
        weights: PathBuf,
        head: PathBuf,
        weights_blake3: String,
        head_blake3: String,
    },
    Scratch {
        model: String,
        head_init_scale: f64,
    },
}

/// The rows a run reads.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DataRecord {
    pub train: SourceRecord,
    /// Rows of the training split after the validation hold-out.
    pub train_rows: usize,
    /// Rows each epoch trains on (whole batches only with `drop_last`).
    pub epoch_rows: usize,
    pub val_rows: usize,
    /// The validation split when it is not the training split's hold-out.
    pub val_source: Option<SourceRecord>,
    pub eval: Vec<EvalSetRecord>,
    /// How the first epoch's batches mix classes, next to a uniform permutation's.
    pub mixing: crate::data::mixing::MixingRecord,
    /// The validation rows held out of the training split (null: no hold-out).
    pub holdout: Option<HoldoutRecord>,
}

/// Which rows a run held out for validation: their ids are listed, sorted, in `holdout-ids.txt`
/// of the run directory; runs that hold out the same images have the same `ids_blake3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HoldoutRecord {
    pub rows: usize,
    /// blake3 of `holdout-ids.txt` (the sorted ids, one per line).
    pub ids_blake3: String,
}

impl HoldoutRecord {
    /// The record of `ids` (sorted).
    pub fn of(ids: &[String]) -> Self {
        let mut h = blake3::Hasher::new();
        for id in ids {
            h.update(id.as_bytes());
            h.update(b"\n");
        }
        HoldoutRecord {
            rows: ids.len(),
            ids_blake3: h.finalize().to_hex().to_string(),
        }
    }
}

/// One split of a shard dataset, with the fingerprint of exactly which files were read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SourceRecord {
    pub dir: PathBuf,
    pub split: String,
    pub rows: usize,
    pub shards: usize,
    pub row_groups: usize,
    /// Identity hash of the split's shard list (files, rows, bytes, blake3).
    pub fingerprint: String,
    /// The `config_hash` of the dataset's manifest.
    pub dataset_config_hash: String,
}

/// An evaluation set of the run.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvalSetRecord {
    pub name: String,
    pub ood: bool,
    pub data: SourceRecord,
}

/// How the ranks of a data-parallel run share a step.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DistributedRecord {
    /// `gloo`, or `nccl` for CUDA gradients.
    pub backend: String,
    /// Ranks.
    pub world_size: usize,
    /// Images per optimizer step over every rank.
    pub global_batch: usize,
    /// Images per optimizer step on each rank.
    pub rank_batch: usize,
    /// Images per forward/backward on each rank.
    pub rank_micro_batch: usize,
    /// Gradient all-reduce bucket size (torch DDP's 25 MiB).
    pub gradient_bucket_bytes: usize,
    /// Longest wait of any collective, seconds.
    pub timeout_s: f64,
}

impl RunRecord {
    /// Reads `run.json` from `dir`; the error names the file.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(super::dir::RUN_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| TrainError::Config(format!("'{}': {e}", path.display())))
    }
}
