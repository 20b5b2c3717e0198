//! Stored teacher targets in a batch (offline distillation): which variant of a row an epoch
//! uses, and the batch's teacher features, counterfactual images and no-fill masks.

use cfkit_counterfactual::draw::key_mask_tensor;
use cfkit_counterfactual::rng::{fnv1a64, hash_keys};
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
    /// Counterfactual images [N, 3, S, S], normalised as the model's input (masked targets
    /// only; uint8 [N, S, S, 3] in a raw batch).
    pub images: Option<Tensor>,
    /// [N, P] bool masks for no-fill strategies (hidden keys in the student's forward).
    pub key_mask: Option<Tensor>,
    /// The stored variant index used per row (masked targets only).
    pub variants: Vec<i32>,
}

/// A chosen variant's image as the loader meets it.
#[derive(Debug, Clone)]
pub(super) enum VariantImage {
    /// Stored (materialized shards): PNG bytes.
    Png(Vec<u8>),
    /// Compact shards: the donors' ids (none, one, or one per patch), resolved within the row
    /// group into [`VariantImage::Pixels`].
    Donors(Vec<String>),
    /// Decoded or recomposed HWC uint8 pixels.
    Pixels(Vec<u8>),
}

/// The chosen variant of a row: its index, mask and image.
pub(super) type ChosenVariant = (i32, Vec<bool>, VariantImage);

/// A chosen variant ready for the batch: its index, mask and HWC uint8 pixels.
pub(super) type DecodedVariant = (i32, Vec<bool>, Vec<u8>);

/// The parts of a counterfactual record a batch needs (the chosen variant only).
pub(super) struct TargetRow {
    pub(super) feature: Vec<f32>,
    pub(super) variant: Option<ChosenVariant>,
    /// The clean image's pixels when they were decoded already (to recompose a compact variant).
    pub(super) clean: Option<Vec<u8>>,
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
            clean: None,
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
    let image = if v.image.bytes.is_empty() {
        VariantImage::Donors(v.donor_ids.clone())
    } else {
        VariantImage::Png(v.image.bytes.clone())
    };
    Ok(TargetRow {
        feature: v.teacher_feature.clone(),
        variant: Some((v.variant, v.mask.clone(), image)),
        clean: None,
    })
}

/// The batch's targets from its rows' (teacher feature, chosen variant); `to_input` puts decoded
/// HWC pixels on the device (as the batch's images).
pub(super) fn assemble(
    spec: &TargetSpec,
    rows: &[&(Vec<f32>, Option<DecodedVariant>)],
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
    let features = super::upload::upload(
        Tensor::from_slice(&flat).view([rows.len() as i64, d as i64]),
        device,
    );
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

#[cfg(test)]
mod tests {
    use super::*;
    use cfkit_schemas::{ImageRecord, StoredImage, Variant};

    /// A row with variants 0, 1 of strategy A and 2, 3, 4 of strategy B; variant v's feature is
    /// [v] and its image bytes are [v].
    fn record() -> CounterfactualRecord {
        let image = |b: u8| StoredImage {
            bytes: vec![b],
            path: String::new(),
        };
        let variants = [("A", 0), ("A", 1), ("B", 2), ("B", 3), ("B", 4)]
            .into_iter()
            .map(|(s, v)| Variant {
                variant: v,
                strategy: s.into(),
                mask: vec![v % 2 == 0; 4],
                donor_ids: Vec::new(),
                seed: 0,
                image: image(v as u8),
                teacher_feature: vec![v as f32],
            })
            .collect();
        CounterfactualRecord {
            base: ImageRecord {
                id: "row-7".into(),
                label: 0,
                class_name: String::new(),
                source_blake3: String::new(),
                orig_width: 1,
                orig_height: 1,
                image: image(9),
                truth: None,
            },
            teacher_feature: vec![-1.0],
            teacher_logits: None,
            cam: vec![0.0; 4],
            variants,
        }
    }

    fn spec(strategy: Option<&str>, choice: VariantChoice, epoch: u64) -> TargetSpec {
        TargetSpec {
            strategy: strategy.map(|s| StoredStrategy {
                name: s.into(),
                no_fill: false,
            }),
            choice,
            seed: 3,
            epoch,
        }
    }

    #[test]
    fn epochs_cycle_through_the_strategys_variants() {
        let r = record();
        let clean = pick_variant(&r, &spec(None, VariantChoice::Epoch, 5)).unwrap();
        assert_eq!(clean.feature, vec![-1.0]);
        assert!(clean.variant.is_none());
        // Epoch e uses the (e mod K)-th variant of the strategy, K = 3 for B.
        let picked: Vec<i32> = (0..6)
            .map(|e| {
                let t = pick_variant(&r, &spec(Some("B"), VariantChoice::Epoch, e)).unwrap();
                let (v, mask, image) = t.variant.unwrap();
                assert_eq!(t.feature, vec![v as f32]);
                assert!(matches!(image, VariantImage::Png(b) if b == vec![v as u8]));
                assert_eq!(mask, vec![v % 2 == 0; 4]);
                v
            })
            .collect();
        assert_eq!(picked, [2, 3, 4, 2, 3, 4]);
        // Seeded: a fixed choice per (seed, epoch, id), always of the right strategy.
        let seeded: Vec<i32> = (0..20)
            .map(|e| {
                let s = spec(Some("A"), VariantChoice::Seeded, e);
                let v = pick_variant(&r, &s).unwrap().variant.unwrap().0;
                assert_eq!(v, pick_variant(&r, &s).unwrap().variant.unwrap().0);
                v
            })
            .collect();
        assert!(seeded.contains(&0) && seeded.contains(&1), "{seeded:?}");
        let e = pick_variant(&r, &spec(Some("C"), VariantChoice::Epoch, 0)).err();
        assert!(e.unwrap().contains("no variant of strategy C"));
    }
}
