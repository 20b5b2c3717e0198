//! `[model]`: where a run's model and its initial weights come from — one of three sources, so a
//! config cannot name two of them at once. In the file (and in `run.json`) the section keeps its
//! flat keys:
//!
//! ```toml
//! [model]
//! checkpoint = "assets/teacher"       # a cfkit checkpoint directory (the architecture is in it)
//! # or
//! name = "vit-b-32"                   # a preset or a transformers-style config.json ...
//! weights = "clip.safetensors"        # ... with vision weights (Hugging Face or open_clip names)
//! head = "head.safetensors"           # ... and a head file (`cfkit zeroshot-head`)
//! # or
//! name = "tiny"                       # from scratch (randomly initialised, seeded)
//! head_init_scale = 10.0
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use cfkit_config::paths::resolve;

/// The model's source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "ModelKeys", into = "ModelKeys")]
pub enum ModelSource {
    /// A cfkit checkpoint directory (e.g. the demo teacher).
    Checkpoint(PathBuf),
    /// Vision weights and a head file of the architecture `name`.
    Files {
        name: String,
        weights: PathBuf,
        head: PathBuf,
    },
    /// A randomly initialised model of the architecture `name`; the head's initial row norm is
    /// `head_init_scale` (its temperature; see `Student::scratch`).
    Scratch { name: String, head_init_scale: f64 },
}

/// The section's keys as the file writes them.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ModelKeys {
    /// Preset name or config JSON; ignored when `checkpoint` is set (the checkpoint says).
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    checkpoint: Option<PathBuf>,
    #[serde(default)]
    weights: Option<PathBuf>,
    #[serde(default)]
    head: Option<PathBuf>,
    #[serde(default = "default_head_scale")]
    head_init_scale: f64,
}

fn default_head_scale() -> f64 {
    10.0
}

impl TryFrom<ModelKeys> for ModelSource {
    type Error = String;

    fn try_from(k: ModelKeys) -> Result<Self, String> {
        match (k.name, k.checkpoint, k.weights, k.head) {
            (_, Some(dir), None, None) => Ok(ModelSource::Checkpoint(dir)),
            (Some(name), None, Some(weights), Some(head)) => Ok(ModelSource::Files {
                name,
                weights,
                head,
            }),
            (Some(name), None, None, None) => {
                if !(k.head_init_scale > 0.0 && k.head_init_scale.is_finite()) {
                    return Err("[model] head_init_scale must be > 0".into());
                }
                Ok(ModelSource::Scratch {
                    name,
                    head_init_scale: k.head_init_scale,
                })
            }
            (None, None, None, None) => Err(
                "[model] needs `name` (train from scratch), `checkpoint`, or `weights` + `head`"
                    .into(),
            ),
            (_, Some(_), _, _) => Err("[model] `checkpoint` excludes `weights` and `head`".into()),
            (None, None, Some(_), Some(_)) => Err(
                "[model] `name` (preset or config.json) is required unless `checkpoint` is given"
                    .into(),
            ),
            (_, None, _, _) => Err("[model] `weights` and `head` go together".into()),
        }
    }
}

impl From<ModelSource> for ModelKeys {
    fn from(m: ModelSource) -> Self {
        let keys = ModelKeys {
            name: None,
            checkpoint: None,
            weights: None,
            head: None,
            head_init_scale: default_head_scale(),
        };
        match m {
            ModelSource::Checkpoint(dir) => ModelKeys {
                checkpoint: Some(dir),
                ..keys
            },
            ModelSource::Files {
                name,
                weights,
                head,
            } => ModelKeys {
                name: Some(name),
                weights: Some(weights),
                head: Some(head),
                ..keys
            },
            ModelSource::Scratch {
                name,
                head_init_scale,
            } => ModelKeys {
                name: Some(name),
                head_init_scale,
                ..keys
            },
        }
    }
}

impl ModelSource {
    /// The checkpoint directory, when the model comes from one (the default teacher of online
    /// distillation and KD).
    pub fn checkpoint(&self) -> Option<&Path> {
        match self {
            ModelSource::Checkpoint(dir) => Some(dir),
            _ => None,
        }
    }

    /// Resolves the source's paths against `base` (a config file or model folder named by `name`
    /// too; a preset name stays).
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        let resolve_name = |name: &mut String| {
            if cfkit_models::names_a_path(name, base) {
                let mut p = PathBuf::from(&*name);
                resolve(base, &mut p);
                *name = p.display().to_string();
            }
        };
        match self {
            ModelSource::Checkpoint(dir) => resolve(base, dir),
            ModelSource::Files {
                name,
                weights,
                head,
            } => {
                resolve(base, weights);
                resolve(base, head);
                resolve_name(name);
            }
            ModelSource::Scratch { name, .. } => resolve_name(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ModelSource, String> {
        #[derive(Deserialize)]
        struct File {
            model: ModelSource,
        }
        toml::from_str::<File>(text)
            .map(|f| f.model)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn one_source_and_the_keys_round_trip() {
        let m = parse("[model]\ncheckpoint = \"t\"").unwrap();
        assert_eq!(m, ModelSource::Checkpoint("t".into()));
        let m = parse("[model]\nname = \"tiny\"\nhead_init_scale = 2.0").unwrap();
        assert_eq!(
            m,
            ModelSource::Scratch {
                name: "tiny".into(),
                head_init_scale: 2.0
            }
        );
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "tiny", "checkpoint": null, "weights": null, "head": null,
                               "head_init_scale": 2.0})
        );
        assert_eq!(serde_json::from_value::<ModelSource>(json).unwrap(), m);
        let files = "[model]\nname = \"vit-b-32\"\nweights = \"w\"\nhead = \"h\"";
        assert!(matches!(parse(files).unwrap(), ModelSource::Files { .. }));
        for (text, says) in [
            ("[model]\n", "needs `name`"),
            ("[model]\ncheckpoint = \"t\"\nhead = \"h\"", "excludes"),
            ("[model]\nname = \"x\"\nweights = \"w\"", "go together"),
            ("[model]\nweights = \"w\"\nhead = \"h\"", "`name`"),
            (
                "[model]\nname = \"x\"\nhead_init_scale = 0.0",
                "head_init_scale",
            ),
            ("[model]\nnam = \"x\"", "nam"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
