//! open_clip's model files as they ship on the Hugging Face Hub (`open_clip.push_to_hf_hub`):
//! `open_clip_config.json` — `{"model_cfg": {…}, "preprocess_cfg": {…}}` — next to
//! `open_clip_model.safetensors` (and a pickled `open_clip_pytorch_model.bin`, which cfkit does
//! not read: a pickle can run code).
//!
//! `model_cfg` is open_clip's `CLIP(embed_dim, vision_cfg, text_cfg, quick_gelu)` arguments
//! (open_clip/model.py: `CLIPVisionCfg`, `CLIPTextCfg`); `quick_gelu` absent or false means
//! `nn.GELU` (exact), which every LAION-2B and DataComp ViT uses. Options that change the
//! architecture beyond the classic CLIP ViT (LayerScale, attentional pooling, no pre-LN, pooling
//! other than the class token, timm towers, …) are refused by name. `preprocess_cfg` holds the
//! image mean and std and, in newer uploads, the interpolation and resize mode.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{Activation, ClipConfig, TextConfig, VisionConfig, CLIP_LAYER_NORM_EPS};
use crate::error::{ModelError, Result};
use cfkit_schemas::{Interpolation, Resize, ResizeMode};

/// The config file's name (open_clip's `HF_CONFIG_NAME`).
pub const CONFIG_FILE: &str = "open_clip_config.json";
/// The weights next to it (`HF_SAFE_WEIGHTS_NAME`).
pub const WEIGHTS_FILE: &str = "open_clip_model.safetensors";

#[derive(Debug, Deserialize)]
struct ConfigFile {
    model_cfg: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    preprocess_cfg: Option<Preprocess>,
}

/// open_clip's image preprocessing (`PreprocessCfg`; defaults: OpenAI's mean/std, bicubic,
/// `shortest` — resize the shorter side, center-crop).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Preprocess {
    #[serde(default = "clip_mean")]
    pub mean: Vec<f64>,
    #[serde(default = "clip_std")]
    pub std: Vec<f64>,
    #[serde(default = "bicubic")]
    pub interpolation: String,
    #[serde(default = "shortest")]
    pub resize_mode: String,
    /// Padding colour of `longest` (an integer, or the same integer per channel).
    #[serde(default)]
    pub fill_color: serde_json::Value,
}

fn clip_mean() -> Vec<f64> {
    crate::vision::CLIP_MEAN.to_vec()
}
fn clip_std() -> Vec<f64> {
    crate::vision::CLIP_STD.to_vec()
}
fn bicubic() -> String {
    "bicubic".into()
}
fn shortest() -> String {
    "shortest".into()
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            mean: clip_mean(),
            std: clip_std(),
            interpolation: bicubic(),
            resize_mode: shortest(),
            fill_color: serde_json::Value::Null,
        }
    }
}

impl Preprocess {
    /// True when this is what CLIP's preprocessing is: OpenAI's mean and std (to float32
    /// precision), bicubic, shorter side + center crop.
    pub fn is_clip(&self) -> bool {
        self.typed().is_ok_and(|(m, s, r)| {
            let close =
                |a: [f64; 3], b: [f64; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
            close(m, clip_mean_arr()) && close(s, clip_std_arr()) && r.is_clip()
        })
    }

    /// Mean, std and resize as cfkit's model config holds them; an option cfkit does not
    /// implement (interpolation other than bicubic/bilinear, a per-channel fill colour) is
    /// refused by name.
    pub fn typed(&self) -> std::result::Result<([f64; 3], [f64; 3], Resize), String> {
        let three = |v: &[f64], what: &str| match v {
            [x] => Ok([*x; 3]),
            [a, b, c] => Ok([*a, *b, *c]),
            _ => Err(format!(
                "preprocess_cfg.{what} must have 1 or 3 values, found {}",
                v.len()
            )),
        };
        let (mean, std) = (three(&self.mean, "mean")?, three(&self.std, "std")?);
        if std.iter().any(|&x| x <= 0.0) {
            return Err(format!(
                "preprocess_cfg.std must be positive, found {std:?}"
            ));
        }
        let interpolation = match self.interpolation.as_str() {
            "bicubic" => Interpolation::Bicubic,
            "bilinear" => Interpolation::Bilinear,
            other => {
                return Err(format!(
                    "preprocess_cfg.interpolation '{other}' is not supported (bicubic or bilinear)"
                ))
            }
        };
        let mode = match self.resize_mode.as_str() {
            "shortest" => ResizeMode::Shortest,
            "longest" => ResizeMode::Longest,
            "squash" => ResizeMode::Squash,
            other => {
                return Err(format!(
                    "preprocess_cfg.resize_mode '{other}' is not one of shortest, longest, squash"
                ))
            }
        };
        let byte = |v: &serde_json::Value| v.as_u64().filter(|&x| x <= 255).map(|x| x as u8);
        let fill = match &self.fill_color {
            serde_json::Value::Null => 0,
            serde_json::Value::Array(a) if !a.is_empty() && a.iter().all(|x| x == &a[0]) => {
                byte(&a[0]).ok_or_else(|| format!("preprocess_cfg.fill_color {} is not 0..255", a[0]))?
            }
            v => byte(v).ok_or_else(|| {
                format!("preprocess_cfg.fill_color {v} is not supported (one value 0..255 for every channel)")
            })?,
        };
        Ok((
            mean,
            std,
            Resize {
                mode,
                interpolation,
                fill,
            },
        ))
    }
}

fn clip_mean_arr() -> [f64; 3] {
    crate::vision::CLIP_MEAN
}
fn clip_std_arr() -> [f64; 3] {
    crate::vision::CLIP_STD
}

/// `open_clip_config.json` itself, or the one inside a directory.
pub fn config_path(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        let p = path.join(CONFIG_FILE);
        return p.is_file().then_some(p);
    }
    (path.file_name().is_some_and(|n| n == CONFIG_FILE) || looks_like_open_clip(path))
        .then(|| path.to_path_buf())
}

fn looks_like_open_clip(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v.get("model_cfg").is_some())
}

/// Reads an `open_clip_config.json`: the model's shape and its preprocessing.
pub fn load(path: &Path) -> Result<(ClipConfig, Preprocess)> {
    let bad = |m: String| ModelError::Config(format!("'{}': {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
    let file: ConfigFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let cfg = &file.model_cfg;
    let obj = |k: &str| -> Result<serde_json::Map<String, serde_json::Value>> {
        cfg.get(k)
            .and_then(|v| v.as_object())
            .cloned()
            .ok_or_else(|| bad(format!("model_cfg has no '{k}' object")))
    };
    let embed_dim = int(cfg, "embed_dim", None).map_err(bad)?;
    let activation = match cfg.get("quick_gelu").and_then(|v| v.as_bool()) {
        Some(true) => Activation::QuickGelu,
        _ => Activation::Gelu,
    };
    let vision = obj("vision_cfg")?;
    refuse_unsupported(&vision, "vision_cfg").map_err(bad)?;
    let preprocess = file.preprocess_cfg.clone().unwrap_or_default();
    let (image_mean, image_std, image_resize) = preprocess.typed().map_err(bad)?;
    let width = int(&vision, "width", Some(768)).map_err(bad)?;
    let head_width = int(&vision, "head_width", Some(64)).map_err(bad)?;
    let mlp_ratio = vision
        .get("mlp_ratio")
        .and_then(|v| v.as_f64())
        .unwrap_or(4.0);
    if head_width <= 0 || width % head_width != 0 {
        return Err(bad(format!(
            "vision width {width} is not a multiple of head_width {head_width}"
        )));
    }
    let vision_config = VisionConfig {
        hidden_size: width,
        intermediate_size: (width as f64 * mlp_ratio) as i64,
        num_attention_heads: width / head_width,
        num_hidden_layers: int(&vision, "layers", Some(12)).map_err(bad)?,
        image_size: int(&vision, "image_size", Some(224)).map_err(bad)?,
        patch_size: int(&vision, "patch_size", Some(16)).map_err(bad)?,
        projection_dim: embed_dim,
        layer_norm_eps: CLIP_LAYER_NORM_EPS,
        hidden_act: activation,
        image_mean,
        image_std,
        image_resize,
    };
    let text_config = match cfg.get("text_cfg").and_then(|v| v.as_object()) {
        None => None,
        Some(t) => {
            refuse_unsupported(t, "text_cfg").map_err(bad)?;
            let width = int(t, "width", Some(512)).map_err(bad)?;
            let heads = int(t, "heads", Some(8)).map_err(bad)?;
            let mlp_ratio = t.get("mlp_ratio").and_then(|v| v.as_f64()).unwrap_or(4.0);
            Some(TextConfig {
                vocab_size: int(t, "vocab_size", Some(49408)).map_err(bad)?,
                hidden_size: width,
                intermediate_size: (width as f64 * mlp_ratio) as i64,
                num_attention_heads: heads,
                num_hidden_layers: int(t, "layers", Some(12)).map_err(bad)?,
                max_position_embeddings: int(t, "context_length", Some(77)).map_err(bad)?,
                projection_dim: embed_dim,
                layer_norm_eps: CLIP_LAYER_NORM_EPS,
                hidden_act: activation,
                eos_token_id: crate::tokenizer::EOT_TOKEN as i64,
            })
        }
    };
    let config = ClipConfig {
        vision_config,
        text_config,
    };
    config.vision_config.validate()?;
    Ok((config, file.preprocess_cfg.unwrap_or_default()))
}

fn int(
    m: &serde_json::Map<String, serde_json::Value>,
    key: &str,
    default: Option<i64>,
) -> std::result::Result<i64, String> {
    match m.get(key) {
        Some(v) => v
            .as_i64()
            .ok_or_else(|| format!("'{key}' must be an integer, found {v}")),
        None => default.ok_or_else(|| format!("model_cfg has no '{key}'")),
    }
}

/// open_clip options that change the network away from the classic CLIP ViT / text tower, with
/// the value that keeps it classic.
fn refuse_unsupported(
    m: &serde_json::Map<String, serde_json::Value>,
    part: &str,
) -> std::result::Result<(), String> {
    use serde_json::Value::{Bool, Null, String as S};
    for (key, value) in m {
        let classic = match key.as_str() {
            "ls_init_value" | "act_kwargs" | "norm_kwargs" => matches!(value, Null),
            "attentional_pool"
            | "no_ln_pre"
            | "final_ln_after_pool"
            | "output_tokens"
            | "no_causal_mask"
            | "embed_cls"
            | "proj_bias" => matches!(value, Bool(false)),
            "pool_type" => match part {
                "vision_cfg" => matches!(value, S(s) if s == "tok"),
                _ => matches!(value, S(s) if s == "argmax"),
            },
            "pos_embed_type" => matches!(value, S(s) if s == "learnable"),
            "proj_type" => matches!(value, S(s) if s == "linear"),
            "patch_dropout" => value.as_f64() == Some(0.0),
            k if k.starts_with("timm_") || k.starts_with("hf_") => {
                matches!(value, Null | Bool(false))
            }
            _ => true,
        };
        if !classic {
            return Err(format!(
                "{part}.{key} = {value} is not supported (cfkit implements the classic CLIP ViT: class-token pooling, pre-LN, no LayerScale, learnable positions)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(json: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cfkit-oc-{}-{}",
            std::process::id(),
            blake3::hash(json.as_bytes()).to_hex()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(CONFIG_FILE);
        std::fs::write(&p, json).unwrap();
        p
    }

    #[test]
    fn laion_vit_b_32_as_shipped() {
        // The Hub's laion/CLIP-ViT-B-32-laion2B-s34B-b79K open_clip_config.json (model part).
        let p = write(
            r#"{"model_cfg": {"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}},
            "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}}"#,
        );
        let (cfg, pre) = load(&p).unwrap();
        let mut want = crate::config::preset("vit-b-32-gelu").unwrap();
        want.text_config.as_mut().unwrap().hidden_act = Activation::Gelu;
        assert_eq!(cfg, want);
        assert!(pre.is_clip());
        assert_eq!(config_path(p.parent().unwrap()), Some(p.clone()));
    }

    #[test]
    fn quick_gelu_other_preprocessing_and_unsupported_options() {
        let p = write(
            r#"{"model_cfg": {"embed_dim": 768, "quick_gelu": true, "vision_cfg": {"image_size": 224, "layers": 24, "width": 1024, "patch_size": 14}},
            "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "resize_mode": "squash"}}"#,
        );
        let (cfg, pre) = load(&p).unwrap();
        assert_eq!(cfg.vision_config.hidden_act, Activation::QuickGelu);
        assert_eq!(cfg.vision_config.num_attention_heads, 16);
        assert!(cfg.text_config.is_none());
        assert!(!pre.is_clip());
        assert_eq!(pre.interpolation, "bicubic");
        assert_eq!(cfg.vision_config.image_mean, [0.5; 3]);
        assert_eq!(cfg.vision_config.image_std, [0.5; 3]);
        assert_eq!(cfg.vision_config.image_resize.mode, ResizeMode::Squash);
        let p = write(
            r#"{"model_cfg": {"embed_dim": 512, "vision_cfg": {"width": 768, "patch_size": 16}},
            "preprocess_cfg": {"interpolation": "random"}}"#,
        );
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("interpolation 'random' is not supported"), "{e}");
        let p = write(
            r#"{"model_cfg": {"embed_dim": 512, "vision_cfg": {"width": 768, "patch_size": 16, "ls_init_value": 1e-5}}}"#,
        );
        let e = load(&p).unwrap_err().to_string();
        assert!(
            e.contains("vision_cfg.ls_init_value = 0.00001 is not supported"),
            "{e}"
        );
    }
}
