//! Model configurations and named presets.
//!
//! Field names follow Hugging Face's `CLIPVisionConfig` / `CLIPTextConfig`, so the `vision_config`
//! and `text_config` objects of a transformers `config.json` deserialize directly.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Layer-norm epsilon of CLIP (OpenAI and Hugging Face both use 1e-5).
pub(crate) const CLIP_LAYER_NORM_EPS: f64 = 1e-5;

/// Configuration of a CLIP-style vision transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VisionConfig {
    /// Token width.
    pub hidden_size: i64,
    /// MLP hidden width (4 × hidden_size in every CLIP model).
    pub intermediate_size: i64,
    pub num_attention_heads: i64,
    pub num_hidden_layers: i64,
    /// Input side in pixels (square).
    pub image_size: i64,
    pub patch_size: i64,
    /// Width of the projected image embedding.
    pub projection_dim: i64,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// MLP activation: `quick_gelu` (every OpenAI CLIP) or `gelu` (some open_clip models).
    #[serde(default)]
    pub hidden_act: Activation,
    /// Per-channel (RGB) mean its inputs are normalised with, `x / 255` scale (CLIP's unless the
    /// model's preprocessing says otherwise: open_clip's `preprocess_cfg`; the names are those of
    /// transformers' CLIPImageProcessor). Left out of config.json when CLIP's.
    #[serde(default = "clip_mean", skip_serializing_if = "is_clip_mean")]
    pub image_mean: [f64; 3],
    /// Per-channel standard deviation, as `image_mean`.
    #[serde(default = "clip_std", skip_serializing_if = "is_clip_std")]
    pub image_std: [f64; 3],
    /// How its images are fitted to the square (CLIP's unless its preprocessing says otherwise);
    /// the data it trains or is scored on must have been prepared the same way.
    #[serde(default, skip_serializing_if = "cfkit_schemas::Resize::is_clip")]
    pub image_resize: cfkit_schemas::Resize,
}

fn clip_mean() -> [f64; 3] {
    crate::vision::CLIP_MEAN
}
fn clip_std() -> [f64; 3] {
    crate::vision::CLIP_STD
}
fn is_clip_mean(v: &[f64; 3]) -> bool {
    *v == crate::vision::CLIP_MEAN
}
fn is_clip_std(v: &[f64; 3]) -> bool {
    *v == crate::vision::CLIP_STD
}

/// MLP activation of a transformer block.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(1.702 x)` (Radford et al. 2021).
    #[default]
    QuickGelu,
    /// Exact erf GELU.
    Gelu,
}

/// Configuration of a CLIP text transformer (causal, pooled at the end-of-text token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TextConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_attention_heads: i64,
    pub num_hidden_layers: i64,
    /// Context length (77 in every CLIP model).
    pub max_position_embeddings: i64,
    pub projection_dim: i64,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub hidden_act: Activation,
    /// Id of `<|endoftext|>`; the text feature is read at its first occurrence.
    #[serde(default = "default_eos")]
    pub eos_token_id: i64,
}

fn default_eps() -> f64 {
    CLIP_LAYER_NORM_EPS
}

fn default_eos() -> i64 {
    crate::tokenizer::EOT_TOKEN as i64
}

impl VisionConfig {
    /// How uint8 pixels become this model's input.
    pub fn normalize(&self) -> crate::vision::Normalize {
        crate::vision::Normalize {
            mean: self.image_mean,
            std: self.image_std,
        }
    }

    /// Patches per side of the grid.
    pub fn grid_size(&self) -> i64 {
        self.image_size / self.patch_size
    }

    /// Number of patch tokens (the class token excluded).
    pub fn num_patches(&self) -> i64 {
        self.grid_size() * self.grid_size()
    }
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_attention_heads),
            ("num_hidden_layers", self.num_hidden_layers),
            ("image_size", self.image_size),
            ("patch_size", self.patch_size),
            ("projection_dim", self.projection_dim),
        ];
        for (name, value) in positive {
            if value <= 0 {
                return Err(ModelError::Config(format!(
                    "vision {name} must be > 0, got {value}"
                )));
            }
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(ModelError::Config(format!(
                "vision hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if self.image_size % self.patch_size != 0 {
            return Err(ModelError::Config(format!(
                "vision image_size {} is not divisible by patch_size {}",
                self.image_size, self.patch_size
            )));
        }
        Ok(())
    }
}

impl TextConfig {
    pub fn validate(&self) -> Result<()> {
        if self.hidden_size <= 0 || self.num_attention_heads <= 0 || self.vocab_size <= 0 {
            return Err(ModelError::Config("text sizes must be > 0".into()));
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(ModelError::Config(format!(
                "text hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        Ok(())
    }
}

/// A vision tower with, for real CLIP models, its text tower.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClipConfig {
    pub vision_config: VisionConfig,
    #[serde(default)]
    pub text_config: Option<TextConfig>,
}

/// Names accepted by [`preset`].
pub const PRESETS: [&str; 7] = [
    "tiny",
    "vit-b-32",
    "vit-b-16",
    "vit-l-14",
    "vit-b-32-gelu",
    "vit-b-16-gelu",
    "vit-l-14-gelu",
];

fn vision(width: i64, layers: i64, heads: i64, image: i64, patch: i64, proj: i64) -> VisionConfig {
    VisionConfig {
        hidden_size: width,
        intermediate_size: 4 * width,
        num_attention_heads: heads,
        num_hidden_layers: layers,
        image_size: image,
        patch_size: patch,
        projection_dim: proj,
        layer_norm_eps: CLIP_LAYER_NORM_EPS,
        hidden_act: Activation::QuickGelu,
        image_mean: clip_mean(),
        image_std: clip_std(),
        image_resize: Default::default(),
    }
}

fn text(width: i64, layers: i64, heads: i64, proj: i64) -> TextConfig {
    TextConfig {
        vocab_size: crate::tokenizer::VOCAB_SIZE as i64,
        hidden_size: width,
        intermediate_size: 4 * width,
        num_attention_heads: heads,
        num_hidden_layers: layers,
        max_position_embeddings: crate::tokenizer::CONTEXT_LENGTH as i64,
        projection_dim: proj,
        layer_norm_eps: CLIP_LAYER_NORM_EPS,
        hidden_act: Activation::QuickGelu,
        eos_token_id: crate::tokenizer::EOT_TOKEN as i64,
    }
}

/// Named model shapes.
///
/// The ViT-B/32, B/16 and L/14 numbers are those of OpenAI's released CLIP models (Radford et
/// al. 2021, table 20). `tiny` is cfkit's FashionShift demo model: 56×56 inputs in 8×8 patches give
/// the same 7×7 grid as ViT-B/32 at 224 px; width 128, 4 blocks and 4 heads keep CPU training to
/// minutes. It has no text tower: its zero-shot head is trained (DESIGN §6). The `-gelu` presets
/// are the same shapes with exact GELU in both towers: open_clip's LAION-2B and DataComp models
/// (`ViT-B-32`, `ViT-B-16`, `ViT-L-14` in open_clip's model_configs, which set no `quick_gelu`).
pub fn preset(name: &str) -> Result<ClipConfig> {
    if let Some(base) = name.strip_suffix("-gelu") {
        if base != "tiny" && PRESETS.contains(&base) {
            let mut cfg = preset(base)?;
            cfg.vision_config.hidden_act = Activation::Gelu;
            if let Some(t) = cfg.text_config.as_mut() {
                t.hidden_act = Activation::Gelu;
            }
            return Ok(cfg);
        }
    }
    let cfg = match name {
        "tiny" => ClipConfig {
            vision_config: vision(128, 4, 4, 56, 8, 128),
            text_config: None,
        },
        "vit-b-32" => ClipConfig {
            vision_config: vision(768, 12, 12, 224, 32, 512),
            text_config: Some(text(512, 12, 8, 512)),
        },
        "vit-b-16" => ClipConfig {
            vision_config: vision(768, 12, 12, 224, 16, 512),
            text_config: Some(text(512, 12, 8, 512)),
        },
        "vit-l-14" => ClipConfig {
            vision_config: vision(1024, 24, 16, 224, 14, 768),
            text_config: Some(text(768, 12, 12, 768)),
        },
        other => {
            return Err(ModelError::UnknownPreset {
                name: other.to_string(),
                known: PRESETS.join(", "),
            })
        }
    };
    Ok(cfg)
}

/// Reads a transformers-style `config.json` (with `vision_config` and optionally `text_config`)
/// or a cfkit config of the same shape.
pub(crate) fn load_config_json(path: &std::path::Path) -> Result<ClipConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| ModelError::Config(format!("'{}': {e}", path.display())))
}

/// True when a config's model `name` is a file or folder (a config JSON, an open_clip model
/// folder) to resolve against the config's directory, not a preset name: it ends in `.json`,
/// has a path separator, or names something under `base`.
pub fn names_a_path(name: &str, base: &std::path::Path) -> bool {
    !PRESETS.contains(&name)
        && (name.ends_with(".json") || name.contains('/') || base.join(name).exists())
}

/// A preset name, a path to a config JSON file (transformers' or cfkit's), or open_clip's
/// `open_clip_config.json` (or the model directory holding it: [`crate::open_clip`]).
pub fn resolve_config(name_or_path: &str) -> Result<ClipConfig> {
    let path = std::path::Path::new(name_or_path);
    if let Some(oc) = crate::open_clip::config_path(path) {
        // The preprocessing travels in the vision config (mean, std, resize).
        return Ok(crate::open_clip::load(&oc)?.0);
    }
    if name_or_path.ends_with(".json") || path.is_file() {
        load_config_json(path)
    } else {
        preset(name_or_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_have_expected_grids() {
        assert_eq!(preset("tiny").unwrap().vision_config.grid_size(), 7);
        assert_eq!(preset("vit-b-32").unwrap().vision_config.grid_size(), 7);
        assert_eq!(preset("vit-b-16").unwrap().vision_config.grid_size(), 14);
        assert_eq!(preset("vit-l-14").unwrap().vision_config.grid_size(), 16);
        for name in PRESETS {
            preset(name).unwrap().vision_config.validate().unwrap();
        }
    }

    #[test]
    fn unknown_preset_names_the_known_ones() {
        let err = preset("vit-h-14").unwrap_err().to_string();
        assert!(
            err.contains("vit-h-14") && err.contains("vit-b-32"),
            "{err}"
        );
    }

    #[test]
    fn hf_vision_config_deserializes() {
        let json = r#"{"vision_config": {"hidden_size": 64, "intermediate_size": 256,
            "num_attention_heads": 4, "num_hidden_layers": 2, "image_size": 32, "patch_size": 8,
            "projection_dim": 16, "hidden_act": "quick_gelu"}}"#;
        let cfg: ClipConfig = serde_json::from_str(json).unwrap();
        assert_eq!(cfg.vision_config.num_patches(), 16);
        assert_eq!(cfg.vision_config.layer_norm_eps, 1e-5);
        let bad = VisionConfig {
            patch_size: 7,
            ..cfg.vision_config
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("patch_size"));
    }
}
