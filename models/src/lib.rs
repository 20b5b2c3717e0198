//! cfkit-models: CLIP-style vision and text transformers in tch, the classification and zero-shot
//! heads, class-activation maps, weight loading and presets.
//!
//! Variable names mirror Hugging Face transformers' CLIP (`vision_model.encoder.layers.N.self_attn.q_proj`,
//! …), so checkpoints round-trip with the PyTorch ecosystem; open_clip/OpenAI names are accepted on load.

pub mod cam;
pub mod clip;
pub mod config;
pub mod counterfactual;
pub mod doctor;
pub mod error;
pub mod head;
pub mod layers;
pub mod parity;
pub mod rows;
pub mod templates;
pub mod text;
pub mod tokenizer;
pub mod torchscript;
pub mod vision;
pub mod weights;
pub mod zeroshot;

pub use cam::{compute_cam, CamMethod};
pub use clip::{ClipModel, Towers};
pub use config::{
    preset, resolve_config, Activation, ClipConfig, TextConfig, VisionConfig, PRESETS,
};
pub use error::{ModelError, Result};
pub use head::{load_head, save_head, ClassificationHead, HeadInfo};
pub use rows::rows_f32;
pub use tokenizer::Tokenizer;
pub use vision::{
    clip_normalize, pixels_to_input, VisionForward, VisionOutput, VisionTransformer, CLIP_MEAN,
    CLIP_STD,
};
pub use zeroshot::{
    build_zeroshot_head, load_class_names, load_prompt_names, zeroshot_weights, ZeroShotSpec,
};

/// Parses a device name: `auto` (CUDA when available, else CPU), `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(name: &str) -> Result<tch::Device> {
    match name {
        "auto" => Ok(tch::Device::cuda_if_available()),
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" => cuda(0),
        other => match other
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<usize>().ok())
        {
            Some(i) => cuda(i),
            None => Err(ModelError::Input(format!(
                "unknown device '{other}' (expected auto, cpu, cuda or cuda:N)"
            ))),
        },
    }
}

fn cuda(i: usize) -> Result<tch::Device> {
    let n = tch::Cuda::device_count() as usize;
    if i >= n {
        return Err(ModelError::Input(format!(
            "device cuda:{i} requested but {n} CUDA device(s) are visible"
        )));
    }
    Ok(tch::Device::Cuda(i))
}
