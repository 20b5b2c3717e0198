//! cfkit-models: CLIP-style vision and text transformers in tch, the classification and zero-shot
//! heads, weight loading (safetensors, OpenAI TorchScript) and presets. The paper's method on top
//! of them (CAMs, masks, refills) is cfkit-counterfactual.
//!
//! Variable names mirror Hugging Face transformers' CLIP (`vision_model.encoder.layers.N.self_attn.q_proj`,
//! …), so checkpoints round-trip with the PyTorch ecosystem; open_clip/OpenAI names are accepted on load.

pub mod clip;
pub mod config;
pub mod device;
pub mod error;
pub mod head;
pub mod layers;
pub mod open_clip;
pub mod templates;
pub mod text;
pub mod tokenizer;
pub mod torchscript;
pub mod vision;
pub mod weights;
pub mod zeroshot;

pub use clip::{ClipModel, Towers};
pub use config::{
    names_a_path, preset, resolve_config, Activation, ClipConfig, TextConfig, VisionConfig, PRESETS,
};
pub use device::DeviceSpec;
pub use error::{ModelError, Result};
pub use head::{load_head, save_head, ClassificationHead, HeadInfo};
pub use tokenizer::Tokenizer;
pub use vision::{
    clip_normalize, pixels_tensor, pixels_to_input, Normalize, VisionForward, VisionOutput,
    VisionTransformer,
};
pub use zeroshot::{build_zeroshot_head, load_class_names, load_prompt_names, ZeroShotSpec};
