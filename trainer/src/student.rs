//! The model being trained: a CLIP vision tower and a classification head in one VarStore, with
//! Hugging Face variable names (`vision_model.*`, `visual_projection.weight`, `head.*`).

use std::path::Path;

use cfkit_models::clip::VISION_PREFIXES;
use cfkit_models::weights::{load_into, read_hf_weights};
use cfkit_models::{load_head, ClassificationHead, VisionConfig, VisionTransformer};
use tch::{nn, Device, Kind, Tensor};

use crate::error::{Result, TrainError};

/// Vision tower + head.
pub struct Student {
    pub vs: nn::VarStore,
    /// The model name as configured (preset or config path), for records.
    pub model: String,
    pub vision: VisionTransformer,
    pub head: ClassificationHead,
    pub classes: Vec<String>,
}

impl std::fmt::Debug for Student {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Student")
            .field("model", &self.model)
            .field("classes", &self.classes.len())
            .finish()
    }
}

impl Student {
    fn build(
        model: &str,
        config: &VisionConfig,
        classes: &[String],
        device: Device,
    ) -> Result<Self> {
        if classes.is_empty() {
            return Err(TrainError::Data(
                "the model needs at least one class".into(),
            ));
        }
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let vision = VisionTransformer::new(&root, config)?;
        let head = ClassificationHead::new(&root, classes.len() as i64, config.projection_dim);
        Ok(Student {
            vs,
            model: model.to_string(),
            vision,
            head,
            classes: classes.to_vec(),
        })
    }

    /// A randomly initialised model (torch's generator seeded with `seed`). The head's rows are
    /// random unit vectors times `head_scale`: the head sees L2-normalised features, so its row
    /// norm is the logits' temperature (CLIP's zero-shot head uses 100 = `logit_scale.exp()`).
    pub fn scratch(
        model: &str,
        config: &VisionConfig,
        classes: &[String],
        device: Device,
        seed: u64,
        head_scale: f64,
    ) -> Result<Self> {
        tch::manual_seed(seed as i64);
        let s = Self::build(model, config, classes, device)?;
        let _g = tch::no_grad_guard();
        let w = Tensor::randn(s.head.weight.size(), (Kind::Float, device));
        let w = &w / w.norm_scalaropt_dim(2, [1], true) * head_scale;
        s.head.weight.shallow_clone().copy_(&w);
        Ok(s)
    }

    /// A model from a vision weights file (Hugging Face or open_clip names) and a head file.
    pub fn load(
        model: &str,
        config: &VisionConfig,
        weights: &Path,
        head: &Path,
        device: Device,
    ) -> Result<Self> {
        let (loaded, info) = load_head(head, device)?;
        let s = Self::build(model, config, &info.classes, device)?;
        if loaded.weight.size() != s.head.weight.size() {
            return Err(TrainError::Data(format!(
                "head '{}' is {:?}; the model's features are {}-d",
                head.display(),
                loaded.weight.size(),
                config.projection_dim
            )));
        }
        let file = read_hf_weights(weights)?;
        load_into(&s.vs, weights, &file.tensors, &VISION_PREFIXES)?;
        let _g = tch::no_grad_guard();
        s.head.weight.shallow_clone().copy_(&loaded.weight);
        s.head.bias.shallow_clone().copy_(&loaded.bias);
        Ok(s)
    }

    pub fn config(&self) -> &VisionConfig {
        &self.vision.config
    }

    /// CLIP-normalised images [N, 3, S, S] -> features [N, E] (not normalised).
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.vision.features(x)?)
    }

    /// CLIP-normalised images [N, 3, S, S] -> logits [N, C].
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.head.forward(&self.features(x)?))
    }

    /// Freezes (or unfreezes) every vision-tower variable; the head stays trainable.
    pub(crate) fn set_backbone_trainable(&mut self, trainable: bool) {
        for (name, t) in self.vs.variables() {
            if VISION_PREFIXES.iter().any(|p| name.starts_with(p)) {
                let _ = t.set_requires_grad(trainable);
            }
        }
    }

    /// The vision tower's variables, sorted by name (what `model.safetensors` holds).
    pub(crate) fn vision_tensors(&self) -> Vec<(String, Tensor)> {
        cfkit_models::weights::named_tensors(&self.vs, &VISION_PREFIXES)
    }
}
