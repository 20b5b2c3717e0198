//! The config of `cfkit build-counterfactuals` (TOML), resolved and validated.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use cfkit_config::paths::resolve;
use cfkit_config::ConfigFile;
use cfkit_counterfactual::strategy::Strategy;
use cfkit_counterfactual::CamMethod;
use cfkit_distributed::precision::Precision;
use cfkit_models::DeviceSpec;

use crate::error::Result;

/// Where the images come from: an image-shard dataset (from `cfkit prepare` / `cfkit demo-data`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Dataset directory holding manifest.json and data/.
    pub shards: PathBuf,
    pub split: String,
}

/// The frozen teacher.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeacherConfig {
    /// Preset name or config.json.
    pub model: String,
    /// Vision weights (safetensors, Hugging Face or open_clip names).
    pub weights: PathBuf,
    /// Head file (`cfkit zeroshot-head`, or a trained head).
    pub head: PathBuf,
}

/// What to compute.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterfactualConfig {
    /// mmcam (default), gradcam or rollout.
    #[serde(default)]
    pub cam: CamMethod,
    /// Strategies by name, e.g. ["ObjMaskSingleFill(0.3)"].
    pub strategies: Vec<Strategy>,
    /// Variants per strategy and image (different masks/donors per epoch).
    #[serde(default = "one")]
    pub variants: usize,
    #[serde(default)]
    pub seed: u64,
    /// Images per donor pool: a counterfactual's donors come from its own pool (and, in compact
    /// shards, its row group).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Images per teacher pass on the device: consecutive donor pools go to the device together
    /// (a multiple of `batch_size`; unset: one pool). Donors never cross pools, so the stored
    /// rows are those of one pool per pass (up to floating-point rounding of the features).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_batch_size: Option<usize>,
    /// Store the teacher's logits (for KD).
    #[serde(default = "yes")]
    pub store_logits: bool,
    /// Store each variant without its pixels (mask, donor ids, teacher features): the trainer's
    /// loader recomposes the image from the clean rows of the same row group, bit-exactly (a
    /// builder batch, the donor pool, never spans row groups). About 2 % of a materialized variant
    /// at 224 px; Arrow tools then see empty variant images. Off: materialized (the default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compact: bool,
    /// auto, cpu, cuda, cuda:N.
    #[serde(default)]
    pub device: DeviceSpec,
    /// The teacher's passes (clean features and CAM, counterfactual features): auto (bf16
    /// autocast on CUDA, fp32 elsewhere), bf16, tf32 or fp32; CAMs are compared with their
    /// thresholds in float32 either way. `cfkit build-counterfactuals` records the one it resolved
    /// to (left out when fp32, so that builds made before precisions existed keep their hash).
    #[serde(default, skip_serializing_if = "Precision::is_fp32")]
    pub precision: Precision,
}

/// Output knobs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Output directory (overridden by --out).
    #[serde(default)]
    pub out: Option<PathBuf>,
    #[serde(default)]
    pub row_group_bytes: Option<usize>,
}

/// The whole config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    pub source: SourceConfig,
    pub teacher: TeacherConfig,
    pub counterfactuals: CounterfactualConfig,
    #[serde(default)]
    pub output: OutputConfig,
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn default_batch() -> usize {
    64
}

impl BuildConfig {
    /// Reads a TOML file with `section.key=value` overrides ([`cfkit_config::load`]); relative
    /// paths, in the file and in the overrides, are resolved against the file's directory.
    pub fn load_with(path: &Path, overrides: &[String]) -> Result<Self> {
        Ok(cfkit_config::load(path, overrides)?)
    }

    /// [`BuildConfig::load_with`] without overrides.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, &[])
    }
}

impl ConfigFile for BuildConfig {
    fn resolve_paths(&mut self, base: &Path) {
        resolve(base, &mut self.source.shards);
        resolve(base, &mut self.teacher.weights);
        resolve(base, &mut self.teacher.head);
        if let Some(out) = self.output.out.as_mut() {
            resolve(base, out);
        }
        // A preset name stays as is; a config file or model folder is resolved like the others.
        if cfkit_models::names_a_path(&self.teacher.model, base) {
            let mut m = PathBuf::from(&self.teacher.model);
            resolve(base, &mut m);
            self.teacher.model = m.to_string_lossy().into_owned();
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let c = &self.counterfactuals;
        if c.strategies.is_empty() {
            return Err("counterfactuals.strategies is empty".into());
        }
        if c.variants == 0 || c.batch_size < 2 {
            return Err(format!(
                "counterfactuals.variants must be >= 1 and batch_size >= 2 (the donor pool), got {} and {}",
                c.variants, c.batch_size
            ));
        }
        if let Some(d) = c.device_batch_size {
            if d == 0 || !d.is_multiple_of(c.batch_size) {
                return Err(format!(
                    "counterfactuals.device_batch_size must be a positive multiple of batch_size ({}), got {d}",
                    c.batch_size
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `text` to a config file in a fresh scratch directory of its own, loads it and
    /// removes the directory again; returns the directory (relative paths resolve against it).
    fn load_in(text: &str) -> (PathBuf, Result<BuildConfig>) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cfkit-build-config-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("build.toml");
        std::fs::write(&p, text).unwrap();
        let config = BuildConfig::load(&p);
        std::fs::remove_dir_all(&dir).unwrap();
        (dir, config)
    }

    fn load(text: &str) -> Result<BuildConfig> {
        load_in(text).1
    }

    const GOOD: &str = r#"
[source]
shards = "data"
split = "train"
[teacher]
model = "tiny"
weights = "w.safetensors"
head = "h.safetensors"
[counterfactuals]
strategies = ["ObjMaskSingleFill(0.3)"]
"#;

    #[test]
    fn defaults_and_relative_paths() {
        let (dir, c) = load_in(GOOD);
        let c = c.unwrap();
        assert_eq!(
            (c.counterfactuals.variants, c.counterfactuals.batch_size),
            (1, 64)
        );
        assert_eq!(c.counterfactuals.cam, CamMethod::Mmcam);
        assert_eq!(
            c.counterfactuals.strategies[0].to_string(),
            "ObjMaskSingleFill(0.3)"
        );
        assert_eq!(c.source.shards, dir.join("data"));
        assert_eq!(c.teacher.weights, dir.join("w.safetensors"));
        assert_eq!(c.counterfactuals.device, DeviceSpec::Auto);
        assert_eq!(c.teacher.model, "tiny");
    }

    #[test]
    fn mistakes_are_named() {
        let e = load(&GOOD.replace("split =", "splitt ="))
            .unwrap_err()
            .to_string();
        assert!(e.contains("splitt"), "{e}");
        let e = load(&GOOD.replace("ObjMaskSingleFill(0.3)", "ObjMaskSomeFill(0.3)"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ObjMaskSomeFill"), "{e}");
        let e = load(&GOOD.replace(
            "strategies = [\"ObjMaskSingleFill(0.3)\"]",
            "strategies = []",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("strategies is empty"), "{e}");
        let e = load(&format!("{GOOD}cam = \"gradcamm\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("gradcamm"), "{e}");
    }
}
