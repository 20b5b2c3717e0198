//! Checkpoint directories.
//!
//! ```text
//! <ckpt>/model.safetensors      vision tower, Hugging Face CLIPVisionModelWithProjection names
//! <ckpt>/config.json            a transformers CLIPVisionConfig (model_type clip_vision_model)
//! <ckpt>/head.safetensors       the classification head (cfkit head format, class names inside)
//! <ckpt>/optimizer.safetensors  AdamW moments and step counts (resumable checkpoints only)
//! <ckpt>/checkpoint.json        the sidecar: config hash, step, epoch, loader position, seeds
//! ```
//!
//! `transformers.CLIPVisionModelWithProjection.from_pretrained(<ckpt>)` loads the tower. A
//! checkpoint is written into `<ckpt>.tmp` and swapped into place (`<ckpt>` → `<ckpt>.old`,
//! `.tmp` → `<ckpt>`, `.old` removed), so a crash at any moment leaves a complete `<ckpt>` or a
//! complete `<ckpt>.old`, which [`resolve`] falls back to.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cfkit_models::weights::{file_blake3, read_safetensors, write_safetensors};
use cfkit_models::{save_head, HeadInfo, VisionConfig};
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::error::{Result, TrainError};
use crate::optim::Optimizer;
use crate::run::record::RngRecord;
use crate::run::Progress;
use crate::student::Student;

pub(crate) const MODEL_FILE: &str = "model.safetensors";
pub(crate) const CONFIG_FILE: &str = "config.json";
pub(crate) const HEAD_FILE: &str = "head.safetensors";
pub(crate) const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub(crate) const SIDECAR_FILE: &str = "checkpoint.json";
/// Sidecar format tag; bump when fields change meaning. Version 1 kept the position and the
/// draw keys (or, for a derived checkpoint, its provenance) under one `rng` field; it is still
/// read ([`CheckpointInfo::from_json`]).
pub(crate) const FORMAT: &str = "cfkit-checkpoint/2";
const FORMAT_V1: &str = "cfkit-checkpoint/1";

/// The best validation result so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BestVal {
    /// Validation top-1.
    pub top1: f64,
    /// Optimizer steps taken then.
    pub step: usize,
    pub epoch: usize,
}

/// The JSON sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckpointInfo {
    /// `cfkit-checkpoint/2` (`/1` is still read).
    pub format: String,
    /// Model name as configured (preset or config file).
    pub model: String,
    /// The vision tower's shape (as `config.json` has it, for transformers).
    pub vision_config: VisionConfig,
    /// The head's classes, in label order.
    pub classes: Vec<String>,
    /// Training method (`ft`, `lp`, `scratch`...).
    pub method: String,
    /// Hash of the run's resolved config.
    pub config_hash: String,
    /// Optimizer steps taken.
    pub step: usize,
    /// The epoch to continue in (== epochs when training finished).
    pub epoch: usize,
    /// Loader position: micro-batches of `epoch` already consumed.
    pub next_batch: usize,
    pub seed: u64,
    /// Trained checkpoints: how every random draw of the run is keyed (there is no mutable RNG
    /// state: see `data::plan`), so a reader knows what the seed determines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rng: Option<RngRecord>,
    /// Trained checkpoints: where the run stands — what `--resume` continues from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Checkpoints made from others rather than trained (`wise-ft`, `convert`): what from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived: Option<Derived>,
    /// The best validation result of the run so far.
    pub best: Option<BestVal>,
    /// Length of `metrics.jsonl` when this checkpoint was taken (resume truncates to it).
    pub metrics_bytes: u64,
    /// Whether `optimizer.safetensors` is present.
    pub has_optimizer: bool,
    /// blake3 of `model.safetensors` (checked on every load).
    pub weights_blake3: String,
    /// blake3 of `head.safetensors` (checked on every load).
    pub head_blake3: String,
}

/// What a derived checkpoint was made from; its identity hash is the checkpoint's
/// `config_hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Derived {
    /// `cfkit wise-ft`: `(1-α)·zeroshot + α·finetuned`.
    WiseFt {
        alpha: f64,
        zeroshot: SourceCheckpoint,
        finetuned: SourceCheckpoint,
    },
    /// `cfkit convert`: vision weights (and a head) in cfkit's layout.
    Convert {
        model: String,
        weights: PathBuf,
        weights_blake3: String,
        head: Option<PathBuf>,
    },
}

/// A checkpoint another was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SourceCheckpoint {
    pub dir: PathBuf,
    pub weights_blake3: String,
    pub head_blake3: String,
}

impl CheckpointInfo {
    /// The sidecar of a checkpoint made from others rather than trained (`wise-ft`, `convert`):
    /// no steps, no optimizer, and what it was made from as its provenance and identity.
    pub fn derived(student: &Student, method: &str, derived: Derived) -> Self {
        CheckpointInfo {
            format: String::new(),
            model: student.model.clone(),
            vision_config: student.config().clone(),
            classes: student.classes.clone(),
            method: method.into(),
            config_hash: cfkit_schemas::identity_hash(&derived),
            step: 0,
            epoch: 0,
            next_batch: 0,
            seed: 0,
            rng: None,
            progress: None,
            derived: Some(derived),
            best: None,
            metrics_bytes: 0,
            has_optimizer: false,
            weights_blake3: String::new(),
            head_blake3: String::new(),
        }
    }
}

impl CheckpointInfo {
    /// Reads a sidecar of this format or of version 1 (whose `rng` held `{keys, progress}` for
    /// a trained checkpoint, or the provenance of a derived one).
    pub(crate) fn from_json(text: &str) -> std::result::Result<Self, String> {
        let mut v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if v["format"] == FORMAT_V1 {
            let o = v.as_object_mut().ok_or("not a JSON object")?;
            let rng = o.remove("rng").unwrap_or_default();
            if rng.get("progress").is_some() {
                o.insert("rng".into(), rng["keys"].clone());
                o.insert("progress".into(), rng["progress"].clone());
            } else if !rng.is_null() {
                o.insert("derived".into(), rng);
            }
            o.insert("format".into(), FORMAT.into());
        }
        serde_json::from_value(v).map_err(|e| e.to_string())
    }
}

/// The transformers `config.json` of a vision tower (`CLIPVisionConfig`).
#[derive(Serialize)]
pub(crate) struct HfVisionConfig<'a> {
    architectures: [&'static str; 1],
    model_type: &'static str,
    num_channels: u32,
    #[serde(flatten)]
    config: &'a VisionConfig,
}

pub(crate) fn hf_config(cfg: &VisionConfig) -> HfVisionConfig<'_> {
    HfVisionConfig {
        architectures: ["CLIPVisionModelWithProjection"],
        model_type: "clip_vision_model",
        num_channels: 3,
        config: cfg,
    }
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("serialisable") + "\n";
    std::fs::write(path, text).map_err(|e| TrainError::io(path, e))
}

/// Writes a checkpoint of `student` (and `optimizer`, if given) to `dir`, atomically as described
/// in the module docs. Fills in the blake3 fields of `info`.
pub fn save(
    dir: &Path,
    student: &Student,
    head_source: &str,
    optimizer: Option<&Optimizer>,
    mut info: CheckpointInfo,
) -> Result<CheckpointInfo> {
    let tmp = sibling(dir, "tmp");
    let old = sibling(dir, "old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(&tmp.join(MODEL_FILE), &student.vision_tensors(), &meta)?;
    write_json(&tmp.join(CONFIG_FILE), &hf_config(student.config()))?;
    let head_info = HeadInfo {
        classes: student.classes.clone(),
        source: head_source.to_string(),
        text_weights_blake3: None,
        templates: Vec::new(),
        logit_scale: None,
        hash: String::new(),
    };
    save_head(&tmp.join(HEAD_FILE), &student.head, &head_info)?;
    info.has_optimizer = optimizer.is_some();
    if let Some(opt) = optimizer {
        write_safetensors(
            &tmp.join(OPTIMIZER_FILE),
            &opt.state_tensors(),
            &HashMap::new(),
        )?;
    }
    info.format = FORMAT.into();
    info.weights_blake3 = file_blake3(&tmp.join(MODEL_FILE))?;
    info.head_blake3 = file_blake3(&tmp.join(HEAD_FILE))?;
    write_json(&tmp.join(SIDECAR_FILE), &info)?;
    sync_dir(&tmp)?;
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        std::fs::rename(dir, &old).map_err(|e| TrainError::io(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| TrainError::io(dir, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    }
    Ok(info)
}

fn sibling(dir: &Path, ext: &str) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(format!(".{ext}"));
    PathBuf::from(s)
}

fn sync_dir(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| TrainError::io(dir, e))? {
        let path = entry.map_err(|e| TrainError::io(dir, e))?.path();
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| TrainError::io(&path, e))?;
    }
    Ok(())
}

/// The complete checkpoint at `dir`, or at `dir.old` after a crash mid-swap; `None` if neither.
pub fn resolve(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), sibling(dir, "old")]
        .into_iter()
        .find(|d| d.join(SIDECAR_FILE).is_file())
}

/// Reads a checkpoint's sidecar and checks its format and file hashes.
pub fn read_info(dir: &Path) -> Result<CheckpointInfo> {
    let path = dir.join(SIDECAR_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    let info = CheckpointInfo::from_json(&text)
        .map_err(|e| TrainError::checkpoint(dir, format!("{SIDECAR_FILE}: {e}")))?;
    if info.format != FORMAT {
        return Err(TrainError::checkpoint(
            dir,
            format!(
                "format '{}', this cfkit reads '{FORMAT}' and '{FORMAT_V1}'",
                info.format
            ),
        ));
    }
    for (file, want) in [
        (MODEL_FILE, &info.weights_blake3),
        (HEAD_FILE, &info.head_blake3),
    ] {
        let got = file_blake3(&dir.join(file))?;
        if &got != want {
            return Err(TrainError::checkpoint(
                dir,
                format!("{file} does not match its blake3 in {SIDECAR_FILE}: the file was changed or is corrupt"),
            ));
        }
    }
    Ok(info)
}

/// Loads the model of a checkpoint directory.
pub fn load_student(dir: &Path, device: Device) -> Result<(Student, CheckpointInfo)> {
    let info = read_info(dir)?;
    let student = Student::load(
        &info.model,
        &info.vision_config,
        &dir.join(MODEL_FILE),
        &dir.join(HEAD_FILE),
        device,
    )?;
    if student.classes != info.classes {
        return Err(TrainError::checkpoint(
            dir,
            "head.safetensors lists other classes than checkpoint.json",
        ));
    }
    Ok((student, info))
}

/// Restores the optimizer state of a checkpoint.
pub(crate) fn load_optimizer(dir: &Path, optimizer: &mut Optimizer) -> Result<()> {
    let path = dir.join(OPTIMIZER_FILE);
    let file = read_safetensors(&path)?;
    optimizer
        .load_state(&file.tensors)
        .map_err(|m| TrainError::checkpoint(dir, format!("{OPTIMIZER_FILE}: {m}")))
}
