//! `cfkit convert`: CLIP weights — safetensors with Hugging Face or open_clip/OpenAI names, or
//! a TorchScript archive such as OpenAI's `ViT-B-32.pt` — to cfkit's layout: the vision tower
//! as `model.safetensors` (Hugging Face names) + `config.json`, and with a head file a complete
//! checkpoint (head and sidecar too) that `eval`, `wise-ft` and `train` take as the zero-shot
//! model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cfkit_models::clip::VISION_PREFIXES;
use cfkit_models::weights::{
    file_blake3, load_into, named_tensors, read_hf_weights, write_safetensors,
};
use cfkit_models::{VisionConfig, VisionTransformer};
use serde::Serialize;
use tch::{nn, Device};

use crate::checkpoint::{self, CheckpointInfo, Derived, CONFIG_FILE, MODEL_FILE};
use crate::error::{Result, TrainError};
use crate::student::Student;

/// What `convert` wrote.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConvertReport {
    pub out: PathBuf,
    /// Vision tensors written.
    pub tensors: usize,
    /// A complete checkpoint (a head was given), not only the tower.
    pub checkpoint: bool,
    pub source_blake3: String,
}

/// Converts `weights` for the vision config `config` (named `model`) into `out`, which must not
/// exist or be empty (nothing already there is replaced).
pub fn convert(
    model: &str,
    config: &VisionConfig,
    weights: &Path,
    head: Option<&Path>,
    out: &Path,
) -> Result<ConvertReport> {
    let occupied = out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| TrainError::io(out, e))?
            .next()
            .is_some();
    if occupied {
        return Err(TrainError::Checkpoint {
            path: out.to_path_buf(),
            message: "exists and is not empty; choose a new --out (convert never replaces files)"
                .into(),
        });
    }
    let source_blake3 = file_blake3(weights)?;
    let derived = Derived::Convert {
        model: model.to_string(),
        weights: weights.to_path_buf(),
        weights_blake3: source_blake3.clone(),
        head: head.map(Path::to_path_buf),
    };
    if let Some(head) = head {
        let student = Student::load(model, config, weights, head, Device::Cpu)?;
        let info = CheckpointInfo::derived(&student, "zeroshot", derived);
        let source = format!("convert:{}", head.display());
        checkpoint::save(out, &student, &source, None, info)?;
        return Ok(ConvertReport {
            out: out.to_path_buf(),
            tensors: student.vision_tensors().len(),
            checkpoint: true,
            source_blake3,
        });
    }
    let vs = nn::VarStore::new(Device::Cpu);
    let _tower = VisionTransformer::new(&vs.root(), config)?;
    let file = read_hf_weights(weights)?;
    load_into(&vs, weights, &file.tensors, &VISION_PREFIXES)?;
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    let tensors = named_tensors(&vs, &VISION_PREFIXES);
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(&out.join(MODEL_FILE), &tensors, &meta)?;
    let text = serde_json::to_string_pretty(&checkpoint::hf_config(config)).expect("json") + "\n";
    let path = out.join(CONFIG_FILE);
    std::fs::write(&path, text).map_err(|e| TrainError::io(&path, e))?;
    Ok(ConvertReport {
        out: out.to_path_buf(),
        tensors: tensors.len(),
        checkpoint: false,
        source_blake3,
    })
}
