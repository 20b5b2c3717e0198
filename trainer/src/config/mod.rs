//! The config of `cfkit train` (TOML), resolved and validated before anything runs.

pub mod method;
pub mod precision;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::optim::schedule::ScheduleConfig;
use crate::optim::OptimConfig;
use precision::Precision;

pub use method::{DistillConfig, DistillImages, DistillMode, LpFtConfig, Method, VariantChoice};

/// The model and where its initial weights come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Preset name or config JSON; ignored when `checkpoint` is set (the checkpoint says).
    #[serde(default)]
    pub name: Option<String>,
    /// A cfkit checkpoint directory to start from (e.g. the demo teacher).
    #[serde(default)]
    pub checkpoint: Option<PathBuf>,
    /// Or: vision weights (Hugging Face or open_clip names) ...
    #[serde(default)]
    pub weights: Option<PathBuf>,
    /// ... and a head file (`cfkit zeroshot-head`).
    #[serde(default)]
    pub head: Option<PathBuf>,
    /// From scratch only: the head's initial row norm (its temperature; see `Student::scratch`).
    #[serde(default = "default_head_scale")]
    pub head_init_scale: f64,
}

/// Where the training data comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset directory (manifest.json + data/).
    pub shards: PathBuf,
    #[serde(default = "default_split")]
    pub split: String,
    /// Rows held out of `split` for validation (stratified, seeded). 0 with no `val_split`: no
    /// validation, the last checkpoint is evaluated.
    #[serde(default)]
    pub val_holdout: usize,
    /// Or: a separate split of the same dataset used as validation set.
    #[serde(default)]
    pub val_split: Option<String>,
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
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    #[serde(default = "default_device")]
    pub device: String,
    /// fp32 (the recipe's precision) or bf16 (autocast, CUDA only).
    #[serde(default)]
    pub precision: Precision,
    /// Steps between metrics lines.
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Steps between resumable checkpoints (also written at every epoch end).
    #[serde(default = "default_ckpt_every")]
    pub checkpoint_every: usize,
    /// Images per evaluation forward.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Validate every this many epochs (and at the last).
    #[serde(default = "one")]
    pub val_every_epochs: usize,
}

/// One named evaluation set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalSetConfig {
    pub name: String,
    /// Dataset directory; defaults to `[eval] shards`, then `[data] shards`.
    #[serde(default)]
    pub shards: Option<PathBuf>,
    /// Split; defaults to `name`.
    #[serde(default)]
    pub split: Option<String>,
    /// Counts toward the OOD mean; defaults to `name` starting with "ood".
    #[serde(default)]
    pub ood: Option<bool>,
    /// Restrict logits to the set's classes before argmax (ImageNet-R/-A protocol).
    #[serde(default)]
    pub restrict: bool,
    /// JSON `{set class: [model classes]}`: a prediction is correct if it is any mapped class
    /// (ObjectNet protocol).
    #[serde(default)]
    pub label_map: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    #[serde(default)]
    pub shards: Option<PathBuf>,
    #[serde(default)]
    pub sets: Vec<EvalSetConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Run directory (overridden by --out).
    #[serde(default)]
    pub out: Option<PathBuf>,
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelConfig,
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

fn default_head_scale() -> f64 {
    10.0
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
fn default_device() -> String {
    "auto".into()
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
    /// Reads and validates a config file; relative paths in it are resolved against the
    /// directory of the file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, &[])
    }

    /// As [`TrainConfig::load`], with `section.key=value` overrides applied first (`value` is a
    /// TOML value; anything that does not parse as one is taken as a string).
    pub fn load_with(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        let mut doc: toml::Table = toml::from_str(&text)
            .map_err(|e| TrainError::Config(format!("'{}': {e}", path.display())))?;
        for o in overrides {
            cfkit_schemas::overrides::apply_override(&mut doc, o).map_err(TrainError::Config)?;
        }
        let mut cfg: TrainConfig = doc
            .try_into()
            .map_err(|e| TrainError::Config(format!("'{}': {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.resolve_paths(base);
        cfg.validate()
            .map_err(|e| TrainError::Config(format!("'{}': {e}", path.display())))?;
        Ok(cfg)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for p in [
            &mut self.model.checkpoint,
            &mut self.model.weights,
            &mut self.model.head,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        fix(&mut self.data.shards);
        if let Some(p) = &mut self.eval.shards {
            fix(p);
        }
        for s in &mut self.eval.sets {
            for p in [&mut s.shards, &mut s.label_map].into_iter().flatten() {
                fix(p);
            }
        }
        if let Some(p) = &mut self.output.out {
            fix(p);
        }
        if let Some(p) = self.distill.as_mut().and_then(|d| d.teacher.as_mut()) {
            fix(p);
        }
        if let Some(name) = &self.model.name {
            if name.ends_with(".json") {
                self.model.name = Some(base.join(name).display().to_string());
            }
        }
    }

    /// Checks what can be checked without data.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let m = &self.model;
        match (&m.checkpoint, &m.weights, &m.head) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
            (None, None, None) if m.name.is_some() => {}
            (None, None, None) => return Err(
                "[model] needs `name` (train from scratch), `checkpoint`, or `weights` + `head`"
                    .into(),
            ),
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err("[model] `weights` and `head` go together".into())
            }
            _ => return Err("[model] `checkpoint` excludes `weights` and `head`".into()),
        }
        if (m.weights.is_some() || m.checkpoint.is_none()) && m.name.is_none() {
            return Err(
                "[model] `name` (preset or config.json) is required unless `checkpoint` is given"
                    .into(),
            );
        }
        if !(m.head_init_scale > 0.0 && m.head_init_scale.is_finite()) {
            return Err("[model] head_init_scale must be > 0".into());
        }
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
        if self.data.val_holdout > 0 && self.data.val_split.is_some() {
            return Err("[data] val_holdout and val_split exclude each other".into());
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
            self.model.checkpoint.is_some(),
        )
    }

    /// The distillation teacher's checkpoint directory (online mode and KD).
    pub fn teacher_dir(&self) -> Option<&Path> {
        self.distill
            .as_ref()
            .and_then(|d| d.teacher.as_deref())
            .or(self.model.checkpoint.as_deref())
    }

    /// Epochs of the whole run (LP-FT: probe epochs + FT epochs).
    pub fn total_epochs(&self) -> usize {
        self.train.epochs + self.lp_ft.as_ref().map(|l| l.lp_epochs).unwrap_or(0)
    }

    pub fn micro_batch(&self) -> usize {
        self.train.micro_batch_size.unwrap_or(self.train.batch_size)
    }

    /// The canonical JSON of the config (paths as resolved).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("config serialises")
    }

    /// blake3 of [`TrainConfig::to_json`]: what `run.json` records and `--resume` compares.
    pub fn hash(&self) -> String {
        cfkit_schemas::config_hash(&self.to_json())
    }

    /// The resolved evaluation sets: (name, shards dir, split, ood, restrict, label_map).
    pub fn eval_sets(&self) -> Vec<ResolvedEvalSet> {
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
                ood: s.ood.unwrap_or_else(|| s.name.starts_with("ood")),
                restrict: s.restrict,
                label_map: s.label_map.clone(),
            })
            .collect()
    }
}

/// An evaluation set with every default applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedEvalSet {
    pub name: String,
    pub shards: PathBuf,
    pub split: String,
    pub ood: bool,
    pub restrict: bool,
    pub label_map: Option<PathBuf>,
}
