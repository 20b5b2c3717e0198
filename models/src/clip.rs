//! A CLIP model: the vision tower, and for real CLIP checkpoints the text tower and logit scale,
//! in one VarStore whose variable names are Hugging Face's.

use std::path::Path;

use tch::{nn, Device, Tensor};

use crate::config::ClipConfig;
use crate::error::{ModelError, Result};
use crate::text::TextTransformer;
use crate::vision::VisionTransformer;
use crate::weights::{load_into, read_hf_weights};

/// Name prefixes of the vision tower's variables.
pub const VISION_PREFIXES: [&str; 2] = ["vision_model.", "visual_projection."];
/// Name prefixes of the text tower's variables.
pub(crate) const TEXT_PREFIXES: [&str; 3] = ["text_model.", "text_projection.", "logit_scale"];

/// Which towers to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Towers {
    Vision,
    Text,
    Both,
}

/// The model and the VarStore that owns its variables.
pub struct ClipModel {
    pub vs: nn::VarStore,
    pub config: ClipConfig,
    pub vision: Option<VisionTransformer>,
    pub text: Option<TextTransformer>,
    /// `logit_scale` (a log value; `exp()` is the temperature of zero-shot logits), with the text tower.
    pub logit_scale: Option<Tensor>,
}

impl std::fmt::Debug for ClipModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipModel")
            .field("config", &self.config)
            .finish()
    }
}

impl ClipModel {
    /// Randomly initialised towers on `device`.
    pub fn new(config: &ClipConfig, towers: Towers, device: Device) -> Result<Self> {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let vision = match towers {
            Towers::Vision | Towers::Both => {
                Some(VisionTransformer::new(&root, &config.vision_config)?)
            }
            Towers::Text => None,
        };
        let (text, logit_scale) = match towers {
            Towers::Text | Towers::Both => {
                let tc = config.text_config.as_ref().ok_or_else(|| {
                    ModelError::Config(
                        "this model config has no text_config (no text tower)".into(),
                    )
                })?;
                // ln(1/0.07), CLIP's initial temperature (Radford et al. 2021).
                let scale = root.var("logit_scale", &[], nn::Init::Const((1.0f64 / 0.07).ln()));
                (Some(TextTransformer::new(&root, tc)?), Some(scale))
            }
            Towers::Vision => (None, None),
        };
        Ok(ClipModel {
            vs,
            config: config.clone(),
            vision,
            text,
            logit_scale,
        })
    }

    /// Builds the towers and loads their weights from a safetensors file with Hugging Face or
    /// open_clip/OpenAI names.
    pub fn load(
        config: &ClipConfig,
        weights: &Path,
        towers: Towers,
        device: Device,
    ) -> Result<Self> {
        let model = Self::new(config, towers, device)?;
        let file = read_hf_weights(weights)?;
        let mut prefixes: Vec<&str> = Vec::new();
        if model.vision.is_some() {
            prefixes.extend(VISION_PREFIXES);
        }
        if model.text.is_some() {
            prefixes.extend(TEXT_PREFIXES);
        }
        load_into(&model.vs, weights, &file.tensors, &prefixes)?;
        Ok(model)
    }

    pub fn vision(&self) -> Result<&VisionTransformer> {
        self.vision
            .as_ref()
            .ok_or_else(|| ModelError::Config("model was built without a vision tower".into()))
    }

    pub fn text(&self) -> Result<&TextTransformer> {
        self.text
            .as_ref()
            .ok_or_else(|| ModelError::Config("model was built without a text tower".into()))
    }

    /// `logit_scale.exp()`.
    pub(crate) fn logit_scale_exp(&self) -> Result<f64> {
        let s = self
            .logit_scale
            .as_ref()
            .ok_or_else(|| ModelError::Config("model was built without a text tower".into()))?;
        Ok(s.exp().double_value(&[]))
    }
}
