//! Setting a distillation objective up, one job per function: which counterfactual strategy it
//! distils on, whether the shards hold it, how their stored variants cover the epochs, and the
//! frozen teacher (loaded and checked against the data).

use std::path::Path;

use cfkit_counterfactual::strategy::Strategy;
use tch::Device;

use crate::checkpoint;
use crate::config::{DistillConfig, DistillImages, DistillMode, TrainConfig, VariantChoice};
use crate::data::SplitSource;
use crate::error::{Result, TrainError};
use crate::run::record::{StoredVariants, TeacherRecord};
use crate::student::Student;

/// The strategy of masked distillation: the configured one, or offline the only one the shards
/// hold; clean distillation has none. Offline, the shards must hold it.
pub(super) fn strategy(d: &DistillConfig, source: &SplitSource) -> Result<Option<Strategy>> {
    let chosen = match (&d.strategy, d.images, d.mode) {
        (_, DistillImages::Clean, _) => None,
        (Some(s), DistillImages::Masked, _) => Some(*s),
        (None, DistillImages::Masked, DistillMode::Online) => {
            return Err(TrainError::Config(
                "[distill] online masked distillation needs `strategy`".into(),
            ))
        }
        (None, DistillImages::Masked, DistillMode::Offline) => {
            let stored = source.strategies()?;
            match stored.as_slice() {
                [one] => Some(one.parse::<Strategy>()?),
                _ => {
                    return Err(TrainError::Config(format!(
                        "[distill] strategy: '{}' holds several strategies ({}); name one",
                        source.dir.display(),
                        stored.join(", ")
                    )))
                }
            }
        }
    };
    if d.mode == DistillMode::Offline {
        let stored = source.strategies()?;
        if let Some(s) = &chosen {
            if !stored.contains(&s.to_string()) {
                return Err(TrainError::Config(format!(
                    "[distill] strategy {s} is not in '{}' (it holds {})",
                    source.dir.display(),
                    stored.join(", ")
                )));
            }
        }
    }
    Ok(chosen)
}

/// Offline masked distillation: the variants stored per image and whether every epoch sees fresh
/// counterfactuals (the paper draws new masks at every step; with `variant = "epoch"`, epoch e
/// uses variant e mod K, so K >= epochs keeps them fresh). Fewer is allowed, with a warning.
pub(super) fn stored_variants(
    cfg: &TrainConfig,
    d: &DistillConfig,
    source: &SplitSource,
) -> Option<StoredVariants> {
    let k = source.variants_per_strategy()?;
    let epochs = cfg.train.epochs as u64;
    let fresh = d.variant == VariantChoice::Epoch && k >= epochs;
    if d.variant == VariantChoice::Epoch && k < epochs {
        eprintln!(
            "warning: '{}' stores {k} variant(s) per image and strategy for {epochs} epochs: \
             epoch e reuses the counterfactuals of epoch e - {k} (build with variants >= {epochs} \
             for fresh ones every epoch)",
            source.dir.display()
        );
    }
    Some(StoredVariants {
        per_image: k,
        epochs,
        fresh_every_epoch: fresh,
    })
}

/// The frozen teacher of online distillation and KD, from the checkpoint `dir`: every variable
/// without gradient, its classes the training split's, offline its head the one the shards were
/// built with (KD turns the stored features into logits with it), online its input size the
/// split's.
pub(super) fn teacher(
    dir: &Path,
    d: &DistillConfig,
    source: &SplitSource,
    device: Device,
) -> Result<(Student, TeacherRecord)> {
    let (mut t, info) = checkpoint::load_student(dir, device)?;
    t.set_backbone_trainable(false);
    for (_, v) in t.vs.variables() {
        let _ = v.set_requires_grad(false);
    }
    if t.classes != source.classes {
        return Err(TrainError::checkpoint(
            dir,
            format!(
                "the teacher's classes differ from split '{}' of '{}'",
                source.split,
                source.dir.display()
            ),
        ));
    }
    if d.mode == DistillMode::Offline {
        if let Some(built) = source.teacher_head_blake3() {
            if built != info.head_blake3 {
                return Err(TrainError::checkpoint(
                    dir,
                    format!(
                        "its head (blake3 {}) is not the head the counterfactuals in '{}' were \
                         built with ({built}); KD logits would not match the stored features",
                        info.head_blake3,
                        source.dir.display()
                    ),
                ));
            }
        }
    }
    if d.mode == DistillMode::Online && t.config().image_size as u32 != source.image_size {
        return Err(TrainError::checkpoint(
            dir,
            format!(
                "the teacher takes {} px images; split '{}' holds {} px",
                t.config().image_size,
                source.split,
                source.image_size
            ),
        ));
    }
    let record = TeacherRecord {
        dir: dir.to_path_buf(),
        weights_blake3: info.weights_blake3,
        head_blake3: info.head_blake3,
    };
    Ok((t, record))
}
