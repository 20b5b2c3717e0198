//! The config of `cfkit train` (TOML), resolved and validated before anything runs.

pub mod method;
pub mod model;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use cfkit_config::paths::resolve;
use cfkit_config::ConfigFile;
use cfkit_models::DeviceSpec;

use crate::error::Result;
use crate::optim::schedule::ScheduleConfig;
use crate::optim::OptimConfig;
pub use cfkit_distributed::precision::Precision;

pub use method::{DistillConfig, DistillImages, DistillMode, LpFtConfig, Method, VariantChoice};
pub use model::ModelSource;

/// Where the training data comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset directory (manifest.json + data/).
    pub shards: PathBuf,
    #[serde(default = "default_split")]
    pub split: String,
    /// Rows held out of `split` for validation: stratified by class and keyed by each row's id,
    /// so every method trained on the same images holds out the same rows (`cfkit_schemas::
    /// holdout`). 0 with no `val_split`: no validation, the last checkpoint is evaluated.
    #[serde(default)]
    pub val_holdout: usize,
    /// The seed of that draw (the reference's `--data_split_seed`, 0 by default: one hold-out
    /// for every run seed).
    #[serde(default)]
    pub holdout_seed: u64,
    /// Or: a split used as validation set (e.g. what `cfkit prepare --holdout` wrote).
    #[serde(default)]
    pub val_split: Option<String>,
    /// The dataset directory of `val_split` when it is not `shards` (a counterfactual run
    /// validates on the clean shards' hold-out split).
    #[serde(default)]
    pub val_shards: Option<PathBuf>,
    /// Rows in the shuffle buffer (see `data::plan`).
    #[serde(default = "default_buffer")]
    pub shuffle_buffer: usize,
    /// Batches decoded ahead of the step.
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
    /// Drop each epoch's last partial batch, as the reference's `DataLoader(drop_last=True)`
    /// does (the default); `false` trains on it too.
    #[serde(default = "yes")]
    pub drop_last: bool,
}

/// The loop.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoopConfig {
    pub method: Method,
    pub epochs: usize,
    /// Images per optimizer step.
    pub batch_size: usize,
    /// Images per forward/backward; `batch_size` must be a multiple (gradient accumulation).
    #[serde(default)]
    pub micro_batch_size: Option<usize>,
    #[serde(default)]
    pub seed: u64,
    /// auto, cpu, cuda, cuda:N.
    #[serde(default)]
    pub device: DeviceSpec,
    /// auto (bf16 on CUDA, fp32 elsewhere), bf16 (autocast), tf32 (float32 with TF32 on NVIDIA
    /// GPUs: the reference's PyTorch 1.11 default) or fp32 (TF32 off); see
    /// [`Precision`]. `cfkit train` records the resolved one.
    #[serde(default)]
    pub precision: Precision,
    /// Steps between metrics lines.
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Steps between resumable checkpoints (also written at every epoch end).
    #[serde(default = "default_ckpt_every")]
    pub checkpoint_every: usize,
    /// Also a resumable checkpoint once this many minutes of training have passed since the last
    /// one, whichever comes first: a fast run need not spend its time writing large checkpoints
    /// every few steps, a slow one is not left long without one (e.g. 30 with a large
    /// `checkpoint_every`). Unset: by steps only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_minutes: Option<f64>,
    /// Images per evaluation forward.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Validate every this many epochs (and at the last).
    #[serde(default = "one")]
    pub val_every_epochs: usize,
}

/// One named evaluation set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalSetConfig {
    pub name: String,
    /// Dataset directory; defaults to `[eval] shards`, then `[data] shards`.
    #[serde(default)]
    pub shards: Option<PathBuf>,
    /// Split; defaults to `name`.
    #[serde(default)]
    pub split: Option<String>,
    /// An OOD set (else ID); defaults to `name` starting with "ood".
    #[serde(default)]
    pub ood: Option<bool>,
    /// Shown but counted in neither the ID nor the OOD mean (a near-distribution set that keeps
    /// the training shortcut); defaults to `name` ending with "-near" (see `eval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apart: Option<bool>,
    /// Restrict logits to the set's classes before argmax (ImageNet-R/-A protocol).
    #[serde(default)]
    pub restrict: bool,
    /// JSON `{set class: [model classes]}`: a prediction is correct if it is any mapped class
    /// (ObjectNet protocol).
    #[serde(default)]
    pub label_map: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    #[serde(default)]
    pub shards: Option<PathBuf>,
    #[serde(default)]
    pub sets: Vec<EvalSetConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Run directory (overridden by --out).
    #[serde(default)]
    pub out: Option<PathBuf>,
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelSource,
    pub data: DataConfig,
    pub train: LoopConfig,
    #[serde(default)]
    pub optim: OptimConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub output: OutputConfig,
    #[serde(default)]
    pub distill: Option<DistillConfig>,
    #[serde(default)]
    pub lp_ft: Option<LpFtConfig>,
}

fn default_split() -> String {
    "train".into()
}
fn default_buffer() -> usize {
    16_384
}
fn default_prefetch() -> usize {
    4
}
fn yes() -> bool {
    true
}
fn default_log_every() -> usize {
    10
}
fn default_ckpt_every() -> usize {
    100
}
fn default_eval_batch() -> usize {
    256
}
fn one() -> usize {
    1
}

impl TrainConfig {
    /// Reads and validates a config file ([`cfkit_config::load`]): `section.key=value`
    /// overrides first (`value` is a TOML value, anything else a string), relative paths
    /// resolved against the file's directory.
    pub fn load_with(path: &Path, overrides: &[String]) -> Result<Self> {
        Ok(cfkit_config::load(path, overrides)?)
    }

    /// [`TrainConfig::load_with`] without overrides.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, &[])
    }

    /// The distillation teacher's checkpoint directory (online mode and KD).
    pub(crate) fn teacher_dir(&self) -> Option<&Path> {
        self.distill
            .as_ref()
            .and_then(|d| d.teacher.as_deref())
            .or(self.model.checkpoint())
    }

    /// Epochs of the whole run (LP-FT: probe epochs + FT epochs).
    pub(crate) fn total_epochs(&self) -> usize {
        self.train.epochs + self.lp_ft.as_ref().map(|l| l.lp_epochs).unwrap_or(0)
    }

    pub(crate) fn micro_batch(&self) -> usize {
        self.train.micro_batch_size.unwrap_or(self.train.batch_size)
    }

    /// The identity hash of the run this config describes (`run.json`'s `config_hash`, what
    /// `--resume` compares): [`cfkit_schemas::identity_hash`] of the resolved config without its
    /// `[output]` section (where a run is written does not change it).
    pub fn hash(&self) -> String {
        let mut identity = serde_json::to_value(self).expect("config serialises");
        if let Some(o) = identity.as_object_mut() {
            o.remove("output");
        }
        cfkit_schemas::identity_hash(&identity)
    }

    /// The resolved evaluation sets: (name, shards dir, split, ood, restrict, label_map).
    pub(crate) fn eval_sets(&self) -> Vec<ResolvedEvalSet> {
        self.eval
            .sets
            .iter()
            .map(|s| ResolvedEvalSet {
                name: s.name.clone(),
                shards: s
                    .shards
                    .clone()
                    .or_else(|| self.eval.shards.clone())
                    .unwrap_or_else(|| self.data.shards.clone()),
                split: s.split.clone().unwrap_or_else(|| s.name.clone()),
                ood: s.ood.unwrap_or(crate::eval::default_role(&s.name).0),
                apart: s.apart.unwrap_or(crate::eval::default_role(&s.name).1),
                restrict: s.restrict,
                label_map: s.label_map.clone(),
            })
            .collect()
    }
}

impl ConfigFile for TrainConfig {
    fn resolve_paths(&mut self, base: &Path) {
        self.model.resolve_paths(base);
        resolve(base, &mut self.data.shards);
        if let Some(p) = &mut self.data.val_shards {
            resolve(base, p);
        }
        if let Some(p) = &mut self.eval.shards {
            resolve(base, p);
        }
        for s in &mut self.eval.sets {
            for p in [&mut s.shards, &mut s.label_map].into_iter().flatten() {
                resolve(base, p);
            }
        }
        if let Some(p) = &mut self.output.out {
            resolve(base, p);
        }
        if let Some(p) = self.distill.as_mut().and_then(|d| d.teacher.as_mut()) {
            resolve(base, p);
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let t = &self.train;
        if t.epochs == 0 {
            return Err("[train] epochs must be >= 1".into());
        }
        if t.batch_size == 0 {
            return Err("[train] batch_size must be >= 1".into());
        }
        if let Some(mb) = t.micro_batch_size {
            if mb == 0 || !t.batch_size.is_multiple_of(mb) {
                return Err(format!(
                    "[train] batch_size ({}) must be a positive multiple of micro_batch_size ({mb})",
                    t.batch_size
                ));
            }
        }
        if t.checkpoint_every == 0 || t.log_every == 0 || t.val_every_epochs == 0 {
            return Err(
                "[train] checkpoint_every, log_every and val_every_epochs must be >= 1".into(),
            );
        }
        if t.checkpoint_minutes
            .is_some_and(|m| !(m > 0.0 && m.is_finite()))
        {
            return Err("[train] checkpoint_minutes must be a positive number of minutes".into());
        }
        if self.data.val_holdout > 0 && self.data.val_split.is_some() {
            return Err("[data] val_holdout and val_split exclude each other".into());
        }
        if self.data.val_shards.is_some() && self.data.val_split.is_none() {
            return Err("[data] val_shards names where val_split lives: set val_split too".into());
        }
        let mut names = std::collections::HashSet::new();
        for s in &self.eval.sets {
            if !names.insert(&s.name) {
                return Err(format!("[eval] set '{}' is listed twice", s.name));
            }
        }
        self.schedule
            .validate()
            .map_err(|e| format!("[schedule] {e}"))?;
        method::validate_method(
            self.train.method,
            self.distill.as_ref(),
            self.lp_ft.as_ref(),
            self.model.checkpoint().is_some(),
        )
    }
}

/// An evaluation set with every default applied.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ResolvedEvalSet {
    pub name: String,
    pub shards: PathBuf,
    pub split: String,
    pub ood: bool,
    pub apart: bool,
    pub restrict: bool,
    pub label_map: Option<PathBuf>,
}
