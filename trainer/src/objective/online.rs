//! Online counterfactuals (the reference behaviour, DESIGN §3): at every step the current
//! student's CAM for the ground-truth label decides the masks, donors come from the batch itself
//! (a permutation for single fill, per-patch shifts for multi fill), and a frozen teacher is run
//! on the masked batch.
//!
//! The step itself is `cfkit_models::counterfactual::step`, the same code the offline builder
//! runs, so for the same model, batch and seed the two agree (tested in the workspace's
//! `tests/online_offline.rs`). What is online-specific is the seed of each step's draw.

use cfkit_models::counterfactual::rng::hash_keys;
use cfkit_models::counterfactual::step::{
    frozen_features, CamModel, CounterfactualStep, Counterfactuals,
};

use super::{missing, Distill, DistillTargets};
use crate::config::DistillImages;
use crate::data::Batch;
use crate::error::Result;
use crate::student::Student;

/// The seed of the draw at (run seed, epoch, batch index): every step draws afresh, as the
/// reference does, and a resumed run draws what an uninterrupted one would.
pub fn step_seed(seed: u64, epoch: usize, batch: usize) -> u64 {
    hash_keys(&[seed, epoch as u64, batch as u64])
}

/// Online targets of one batch: the frozen teacher's features of the clean images, or of
/// counterfactuals drawn with the student's own CAM for the labels (draw seeded by `seed`).
pub(super) fn targets(
    d: &Distill,
    student: &Student,
    batch: &Batch,
    seed: u64,
) -> Result<DistillTargets> {
    let teacher = d
        .teacher
        .as_ref()
        .ok_or_else(|| missing(batch, "teacher"))?;
    let x = &batch.images;
    if d.cfg.images == DistillImages::Clean {
        return Ok(DistillTargets {
            images: None,
            key_mask: None,
            features: frozen_features(&teacher.vision, x, None)?,
        });
    }
    let strategy = d
        .strategy
        .as_ref()
        .ok_or_else(|| missing(batch, "strategy"))?;
    let pixels = batch
        .pixels
        .as_ref()
        .ok_or_else(|| missing(batch, "pixels"))?;
    let step = CounterfactualStep {
        cam_model: CamModel {
            vision: &student.vision,
            head: &student.head,
            cam: d.cfg.cam,
        },
        teacher: &teacher.vision,
    };
    let (_, cf) = step.run(pixels, x, &batch.labels, strategy, seed)?;
    let Counterfactuals {
        input,
        key_mask,
        teacher_features,
        ..
    } = cf;
    Ok(DistillTargets {
        images: Some(input),
        key_mask,
        features: teacher_features,
    })
}
