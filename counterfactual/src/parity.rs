//! Parity of the models against PyTorch fixtures (`tests/parity/make_fixtures.py`: transformers'
//! CLIPModel or open_clip's CLIP on random weights, with their outputs), as a library so that the
//! same checks run in `cargo test` (CPU) and in `cfkit parity` on any device — the GPU check.
//!
//! What is compared (max-abs of every element): image features, zero-shot logits, features with a
//! key mask and with dropped tokens, MMCAM / GradCAM / rollout CAMs, and text features when the
//! fixture has a text tower.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::cam::{compute_cam, CamMethod};
use crate::error::{CounterfactualError, Result};
use cfkit_models::clip::{ClipModel, Towers};
use cfkit_models::config::resolve_config;
use cfkit_models::head::ClassificationHead;
use cfkit_models::vision::VisionForward;
use cfkit_models::weights::read_safetensors;

/// One compared quantity.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Difference {
    pub what: String,
    pub max_abs: f64,
    /// max |expected|, the scale a relative tolerance (bf16) is taken against.
    pub scale: f64,
}

/// A fixture case loaded on a device: the model and the expected tensors.
pub struct ParityCase {
    pub model: ClipModel,
    expected: BTreeMap<String, Tensor>,
    device: Device,
    /// The dtype the model runs in: `Float`, or `BFloat16` (weights and inputs cast).
    kind: Kind,
}

impl ParityCase {
    /// `dir/config.json`, `dir/<flavour>.safetensors` and `dir/expected_<flavour>.safetensors`
    /// (`flavour`: `hf` or `open_clip`).
    pub fn load(dir: &Path, flavour: &str, towers: Towers, device: Device) -> Result<Self> {
        Self::load_as(dir, flavour, towers, device, Kind::Float)
    }

    /// [`ParityCase::load`] with the weights cast to `kind` (`BFloat16`: the bf16 check, whose
    /// inputs are cast too and whose outputs are compared in f32).
    pub fn load_as(
        dir: &Path,
        flavour: &str,
        towers: Towers,
        device: Device,
        kind: Kind,
    ) -> Result<Self> {
        let config = resolve_config(&dir.join("config.json").to_string_lossy())?;
        let weights = dir.join(format!("{flavour}.safetensors"));
        let mut model = ClipModel::load(&config, &weights, towers, device)?;
        if kind == Kind::BFloat16 {
            model.vs.bfloat16();
        }
        let expected = read_safetensors(&dir.join(format!("expected_{flavour}.safetensors")))?
            .tensors
            .into_iter()
            .map(|(k, v)| (k, v.to_device(device)))
            .collect();
        Ok(ParityCase {
            model,
            expected,
            device,
            kind,
        })
    }

    /// A fixture input in the model's dtype.
    fn input(&self, key: &str) -> Result<Tensor> {
        let t = self.expected(key)?;
        Ok(if t.is_floating_point() {
            t.to_kind(self.kind)
        } else {
            t.shallow_clone()
        })
    }

    fn expected(&self, key: &str) -> Result<&Tensor> {
        self.expected.get(key).ok_or_else(|| {
            CounterfactualError::Input(format!("parity fixture has no tensor '{key}'"))
        })
    }

    fn zeroshot_head(&self) -> Result<ClassificationHead> {
        let w = self.input("zeroshot_weight")?;
        let bias = Tensor::zeros([w.size()[0]], (self.kind, self.device));
        Ok(ClassificationHead { weight: w, bias })
    }

    /// Every comparison the fixture supports, prefixed with `name`.
    pub fn run(&self, name: &str) -> Result<Vec<Difference>> {
        let mut out = self.vision(name)?;
        out.extend(self.cams(name)?);
        if self.model.text.is_some() && self.expected.contains_key("text_features") {
            let _g = tch::no_grad_guard();
            let feats = self.model.text()?.features(self.expected("tokens")?)?;
            out.push(diff(
                name,
                "text features",
                &feats,
                self.expected("text_features")?,
            )?);
        }
        Ok(out)
    }

    /// Image features, zero-shot logits, key-mask and token-drop forwards.
    pub fn vision(&self, name: &str) -> Result<Vec<Difference>> {
        let vision = self.model.vision()?;
        let pixels = &self.input("pixels")?;
        let _g = tch::no_grad_guard();
        let feats = vision.features(pixels)?;
        let head = self.zeroshot_head()?;
        let key_mask = self.expected("key_mask")?.to_kind(Kind::Bool);
        let masked = vision.forward_with(
            pixels,
            VisionForward {
                key_mask: Some(&key_mask),
                ..Default::default()
            },
        )?;
        let dropped = vision.forward_with(
            pixels,
            VisionForward {
                keep_patches: Some(&self.input("keep")?),
                ..Default::default()
            },
        )?;
        Ok(vec![
            diff(
                name,
                "image features",
                &feats,
                self.expected("image_features")?,
            )?,
            diff(
                name,
                "zero-shot logits",
                &head.forward(&feats),
                self.expected("zeroshot_logits")?,
            )?,
            diff(
                name,
                "features with key mask",
                &masked.features,
                self.expected("features_key_mask")?,
            )?,
            diff(
                name,
                "features with dropped tokens",
                &dropped.features,
                self.expected("features_keep")?,
            )?,
        ])
    }

    /// MMCAM, GradCAM and rollout CAMs for the fixture's labels.
    pub fn cams(&self, name: &str) -> Result<Vec<Difference>> {
        let vision = self.model.vision()?;
        let head = self.zeroshot_head()?;
        let (pixels, labels) = (&self.input("pixels")?, self.expected("labels")?);
        [
            (CamMethod::Mmcam, "mmcam"),
            (CamMethod::Gradcam, "gradcam"),
            (CamMethod::Rollout, "rollout"),
        ]
        .into_iter()
        .map(|(method, key)| {
            let cam = compute_cam(vision, &head, pixels, labels, method)?;
            diff(name, key, &cam, self.expected(key)?)
        })
        .collect()
    }
}

fn diff(name: &str, what: &str, got: &Tensor, want: &Tensor) -> Result<Difference> {
    if got.size() != want.size() {
        return Err(CounterfactualError::Input(format!(
            "{name} {what}: shape {:?}, the fixture has {:?}",
            got.size(),
            want.size()
        )));
    }
    let want = want.to_kind(Kind::Float);
    let max_abs = (got.to_kind(Kind::Float) - &want)
        .abs()
        .max()
        .double_value(&[]);
    Ok(Difference {
        what: format!("{name} {what}"),
        max_abs,
        scale: want.abs().max().double_value(&[]),
    })
}
