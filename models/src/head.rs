//! Classification head `logits = W · (f / |f|) + b` and its file format.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

use crate::error::{ModelError, Result};
use crate::weights::{read_safetensors, write_safetensors};

/// Metadata key holding the head's description (JSON of [`HeadInfo`]).
pub(crate) const HEAD_METADATA_KEY: &str = "cfkit.head";

/// A linear head over L2-normalised features.
#[derive(Debug)]
pub struct ClassificationHead {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl ClassificationHead {
    /// Creates `head.weight` [C, E] and `head.bias` [C] under `vs`.
    pub fn new(vs: &nn::Path, num_classes: i64, dim: i64) -> Self {
        let h = vs / "head";
        ClassificationHead {
            weight: h.randn("weight", &[num_classes, dim], 0.0, (dim as f64).powf(-0.5)),
            bias: h.zeros("bias", &[num_classes]),
        }
    }

    pub fn num_classes(&self) -> i64 {
        self.weight.size()[0]
    }

    /// features [N, E] (un-normalised) -> logits [N, C].
    pub fn forward(&self, features: &Tensor) -> Tensor {
        let norm = features.norm_scalaropt_dim(2, [-1], true);
        (features / norm).linear(&self.weight, Some(&self.bias))
    }
}

/// What a head file records besides its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HeadInfo {
    /// Class names in label order.
    pub classes: Vec<String>,
    /// How the weights were made, e.g. "zeroshot" or "trained".
    pub source: String,
    /// blake3 of the text weights file, for zero-shot heads.
    #[serde(default)]
    pub text_weights_blake3: Option<String>,
    /// Templates used, for zero-shot heads.
    #[serde(default)]
    pub templates: Vec<String>,
    /// `logit_scale.exp()` folded into the weights.
    #[serde(default)]
    pub logit_scale: Option<f64>,
    /// blake3 over (weights hash, class names, templates), hex.
    pub hash: String,
}

impl HeadInfo {
    /// Hash of (weights, names, templates): blake3 of their canonical JSON (keys sorted, as
    /// `cfkit_schemas::identity_hash` writes it: the fields below are in the order of their
    /// names).
    pub(crate) fn compute_hash(
        text_weights_blake3: &str,
        classes: &[String],
        templates: &[String],
    ) -> String {
        #[derive(Serialize, schemars::JsonSchema)]
        struct HeadIdentity<'a> {
            classes: &'a [String],
            templates: &'a [String],
            text_weights_blake3: &'a str,
        }
        let canon = serde_json::to_string(&HeadIdentity {
            classes,
            templates,
            text_weights_blake3,
        })
        .expect("head identities serialise");
        blake3::hash(canon.as_bytes()).to_hex().to_string()
    }
}

/// Saves a head as `head.weight`, `head.bias` with its [`HeadInfo`] in the metadata.
pub fn save_head(path: &Path, head: &ClassificationHead, info: &HeadInfo) -> Result<()> {
    if head.num_classes() as usize != info.classes.len() {
        return Err(ModelError::Input(format!(
            "head has {} rows but {} class names",
            head.num_classes(),
            info.classes.len()
        )));
    }
    let meta = HashMap::from([(
        HEAD_METADATA_KEY.to_string(),
        serde_json::to_string(info).expect("head info serialises"),
    )]);
    let tensors = vec![
        ("head.weight".to_string(), head.weight.shallow_clone()),
        ("head.bias".to_string(), head.bias.shallow_clone()),
    ];
    write_safetensors(path, &tensors, &meta)
}

/// Loads a head file written by [`save_head`] onto `device`.
pub fn load_head(path: &Path, device: Device) -> Result<(ClassificationHead, HeadInfo)> {
    let mut file = read_safetensors(path)?;
    let mut take = |name: &str, expected: Vec<i64>| {
        file.tensors
            .remove(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: path.into(),
                name: name.into(),
                expected,
            })
    };
    let weight = take("head.weight", vec![-1, -1])?;
    let bias = take("head.bias", vec![weight.size()[0]])?;
    if weight.dim() != 2 || bias.size() != [weight.size()[0]] {
        return Err(ModelError::ShapeMismatch {
            path: path.into(),
            name: "head.bias".into(),
            expected: vec![weight.size()[0]],
            found: bias.size(),
        });
    }
    let info_json =
        file.metadata
            .get(HEAD_METADATA_KEY)
            .ok_or_else(|| ModelError::Safetensors {
                path: path.into(),
                message: format!("metadata key '{HEAD_METADATA_KEY}' (class names) is missing"),
            })?;
    let info: HeadInfo = serde_json::from_str(info_json).map_err(|e| ModelError::Safetensors {
        path: path.into(),
        message: format!("metadata '{HEAD_METADATA_KEY}': {e}"),
    })?;
    if info.classes.len() as i64 != weight.size()[0] {
        return Err(ModelError::Safetensors {
            path: path.into(),
            message: format!(
                "{} class names for {} head rows",
                info.classes.len(),
                weight.size()[0]
            ),
        });
    }
    let head = ClassificationHead {
        weight: weight.to_device(device),
        bias: bias.to_device(device),
    };
    Ok((head, info))
}
