//! Stored teacher targets in a batch (offline distillation): which variant of a row an epoch
//! uses, and the batch's teacher features, counterfactual images and no-fill masks.

use cfkit_models::counterfactual::draw::key_mask_tensor;
use cfkit_models::counterfactual::rng::{fnv1a64, hash_keys};
use cfkit_schemas::CounterfactualRecord;
use tch::{Device, Tensor};

use crate::config::VariantChoice;
use crate::error::{Result, TrainError};

/// What a batch carries besides the clean images and labels.
#[derive(Debug, Clone, Default)]
pub struct BatchExtras {
    /// Keep the uint8 HWC pixels of the clean images (online counterfactuals refill them).
    pub pixels: bool,
    /// Teacher targets read from counterfactual shards.
    pub targets: Option<TargetSpec>,
}

/// Which stored teacher targets to read.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// None: the clean image's teacher feature. Some: a variant of this strategy (its image, mask
    /// and teacher feature).
    pub strategy: Option<StoredStrategy>,
    pub choice: VariantChoice,
    pub seed: u64,
    pub epoch: u64,
}

/// A strategy as stored: its name in the shards and whether it is a no-fill one (the mask is
/// then applied in the student's forward).
#[derive(Debug, Clone)]
pub struct StoredStrategy {
    pub name: String,
    pub no_fill: bool,
}

/// Teacher targets of a batch, aligned with its rows.
#[derive(Debug)]
pub struct Targets {
    /// Teacher features [N, D] of the clean images or of the chosen counterfactuals.
    pub features: Tensor,
    /// Counterfactual images [N, 3, S, S], CLIP-normalised (masked targets only).
    pub images: Option<Tensor>,
    /// [N, P] bool masks for no-fill strategies (hidden keys in the student's forward).
    pub key_mask: Option<Tensor>,
    /// The stored variant index used per row (masked targets only).
    pub variants: Vec<i32>,
}

/// The chosen variant of a row: its index, mask and image (encoded, then decoded pixels).
pub(super) type ChosenVariant = (i32, Vec<bool>, Vec<u8>);

/// The parts of a counterfactual record a batch needs (the chosen variant only).
pub(super) struct TargetRow {
    pub(super) feature: Vec<f32>,
    pub(super) variant: Option<ChosenVariant>,
}

/// Picks the variant of `strategy` for this epoch, or says why there is none.
pub(super) fn pick_variant(
    rec: &CounterfactualRecord,
    spec: &TargetSpec,
) -> std::result::Result<TargetRow, String> {
    let Some(strategy) = &spec.strategy else {
        return Ok(TargetRow {
            feature: rec.teacher_feature.clone(),
            variant: None,
        });
    };
    let candidates: Vec<_> = rec
        .variants
        .iter()
        .filter(|v| v.strategy == strategy.name)
        .collect();
    if candidates.is_empty() {
        return Err(format!(
            "no variant of strategy {} in this row",
            strategy.name
        ));
    }
    let k = candidates.len() as u64;
    let i = match spec.choice {
        VariantChoice::Epoch => spec.epoch % k,
        VariantChoice::Seeded => hash_keys(&[spec.seed, spec.epoch, fnv1a64(&rec.base.id)]) % k,
    };
    let v = candidates[i as usize];
    Ok(TargetRow {
        feature: v.teacher_feature.clone(),
        variant: Some((v.variant, v.mask.clone(), v.image.bytes.clone())),
    })
}

/// The batch's targets from its rows' (teacher feature, chosen variant); `to_input` turns
/// decoded HWC pixels into the model's input.
pub(super) fn assemble(
    spec: &TargetSpec,
    rows: &[&(Vec<f32>, Option<ChosenVariant>)],
    device: Device,
    to_input: &dyn Fn(&[&Vec<u8>]) -> Tensor,
) -> Result<Targets> {
    let d = rows.first().map(|(f, _)| f.len()).unwrap_or(0);
    let flat: Vec<f32> = rows.iter().flat_map(|(f, _)| f.iter().copied()).collect();
    if flat.len() != d * rows.len() {
        return Err(TrainError::Data(
            "teacher features of one batch differ in length".into(),
        ));
    }
    let features = Tensor::from_slice(&flat)
        .view([rows.len() as i64, d as i64])
        .to_device(device);
    let Some(strategy) = &spec.strategy else {
        return Ok(Targets {
            features,
            images: None,
            key_mask: None,
            variants: Vec::new(),
        });
    };
    let variants: Vec<_> = rows
        .iter()
        .map(|(_, v)| v.as_ref().expect("masked targets carry a variant"))
        .collect();
    let images = to_input(&variants.iter().map(|v| &v.2).collect::<Vec<_>>());
    let key_mask = if strategy.no_fill && !variants.is_empty() {
        let masks: Vec<Vec<bool>> = variants.iter().map(|v| v.1.clone()).collect();
        Some(key_mask_tensor(&masks, device)?)
    } else {
        None
    };
    Ok(Targets {
        features,
        images: Some(images),
        key_mask,
        variants: variants.iter().map(|v| v.0).collect(),
    })
}
