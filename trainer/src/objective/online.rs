//! Online counterfactuals (the reference behaviour, DESIGN §3): at every step the current
//! student's CAM for the ground-truth label decides the masks, donors come from the batch itself
//! (a permutation for single fill, per-patch shifts for multi fill), and a frozen teacher is run
//! on the masked batch.
//!
//! The step itself is `cfkit_counterfactual::step`, the same code the offline builder
//! runs, so for the same model, batch and seed the two agree (tested in the workspace's
//! `tests/online_offline.rs`). What is online-specific is the seed of each step's draw.

use std::time::Instant;

use cfkit_counterfactual::cam::{cam_forward, cam_of_forward};
use cfkit_counterfactual::rng::hash_keys;
use cfkit_counterfactual::rows_f32;
use cfkit_counterfactual::step::{frozen_features, CamModel, CounterfactualStep, Counterfactuals};
use tch::Tensor;

use super::distill::{missing, DistillTargets, Distillation};
use crate::config::DistillImages;
use crate::data::Batch;
use crate::error::Result;
use crate::student::Student;

/// The seed of the draw at (run seed, epoch, batch index): every step draws afresh, as the
/// reference does, and a resumed run draws what an uninterrupted one would.
pub(crate) fn step_seed(seed: u64, epoch: usize, batch: usize) -> u64 {
    hash_keys(&[seed, epoch as u64, batch as u64])
}

/// The seed of data-parallel rank `rank`'s draw of a step whose seed is `step_seed`: rank 0
/// draws what a single process would, the others their own.
pub(crate) fn rank_seed(step_seed: u64, rank: usize) -> u64 {
    match rank {
        0 => step_seed,
        r => hash_keys(&[step_seed, r as u64]),
    }
}

/// Seconds of one online step spent on the student's CAM (including the clean pass it shares
/// with the loss) and on the frozen teacher.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Times {
    pub cam: f64,
    pub teacher: f64,
}

/// Online targets of one batch: the frozen teacher's features of the clean images, or of
/// counterfactuals drawn with the student's own CAM for the labels (draw seeded by `seed`).
///
/// Masked: the student's clean forward that gives the CAM is also the one whose features carry
/// the loss (returned as the second value): its graph is kept through the CAM's gradient, so one
/// pass of the clean batch serves both, where the reference runs the student on it twice. (A
/// student whose features need no gradient falls back to a separate CAM pass.)
pub(super) fn targets(
    d: &Distillation,
    student: &Student,
    batch: &Batch,
    seed: u64,
    times: &mut Times,
) -> Result<(DistillTargets, Option<Tensor>)> {
    let teacher = d
        .teacher
        .as_ref()
        .ok_or_else(|| missing(batch, "teacher"))?;
    let x = &batch.images;
    if d.cfg.images == DistillImages::Clean {
        let t0 = Instant::now();
        let t = DistillTargets {
            images: None,
            key_mask: None,
            features: frozen_features(&teacher.vision, x, None)?,
        };
        times.teacher += t0.elapsed().as_secs_f64();
        return Ok((t, None));
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
    let t0 = Instant::now();
    let clean = student.vision.forward_with(x, cam_forward(d.cfg.cam))?;
    let (cams, clean_features) = if clean.features.requires_grad() {
        let cam = cam_of_forward(&clean, &student.head, &batch.labels, d.cfg.cam, true)?;
        (rows_f32(&cam)?, Some(clean.features))
    } else {
        (step.cams(x, &batch.labels)?, None)
    };
    times.cam += t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let Counterfactuals {
        input,
        key_mask,
        teacher_features,
        ..
    } = step.draw(pixels, &cams, strategy, seed, x.device())?;
    times.teacher += t0.elapsed().as_secs_f64(); // the draw and refill, then the teacher forward
    let t = DistillTargets {
        images: Some(input),
        key_mask,
        features: teacher_features,
    };
    Ok((t, clean_features))
}

#[cfg(test)]
mod tests {
    use cfkit_counterfactual::strategy::Strategy;
    use cfkit_counterfactual::CamMethod;
    use cfkit_models::{pixels_to_input, preset, VisionForward};
    use tch::{Device, Kind};

    use super::super::distill::Distillation;
    use super::super::{losses, Objective};
    use super::*;
    use crate::config::{DistillConfig, DistillMode, VariantChoice};

    fn student(seed: u64) -> Student {
        let classes: Vec<String> = (0..10).map(|c| format!("c{c}")).collect();
        let cfg = preset("tiny").unwrap().vision_config;
        Student::scratch("tiny", &cfg, &classes, Device::Cpu, seed, 10.0).unwrap()
    }

    /// Trainable-parameter gradients after `loss.backward()`, cleared again.
    fn grads(s: &Student, loss: &Tensor) -> Vec<Tensor> {
        loss.backward();
        s.vs.trainable_variables()
            .into_iter()
            .map(|mut v| {
                let g = v.grad().copy();
                v.zero_grad();
                g
            })
            .collect()
    }

    /// One online step through `Objective::step` (one clean pass; token drop for no fill) equals
    /// the reference's two-pass step (a CAM pass, then `[x; x']` with hidden keys): loss and every
    /// gradient at 1e-5.
    #[test]
    fn one_clean_pass_equals_the_two_pass_step() {
        let n = 6usize;
        let pixels: Vec<Vec<u8>> = (0..n)
            .map(|k| {
                (0..56 * 56 * 3)
                    .map(|i| ((i * (k + 3) + (i / 97) * 13 + k * 41) % 256) as u8)
                    .collect()
            })
            .collect();
        let labels = Tensor::from_slice(&[0i64, 3, 5, 7, 9, 1]);
        let x = pixels_to_input(&pixels, 56, &cfkit_models::Normalize::CLIP, Device::Cpu);
        for name in [
            "ObjMaskSingleFill(0.3)",
            "RandMaskMultiFill(0.5)",
            "ObjMaskNoFill(0.3)",
            "RandMaskNoFill(0.75)",
        ] {
            let strategy: Strategy = name.parse().unwrap();
            let s = student(1);
            let cfg = DistillConfig {
                images: DistillImages::Masked,
                mode: DistillMode::Online,
                strategy: Some(strategy),
                variant: VariantChoice::Epoch,
                weight: 2.0,
                temperature: 10.0,
                teacher: None,
                cam: CamMethod::Mmcam,
            };
            let objective = Objective::Distillation(Box::new(Distillation::online_fd_for_tests(
                cfg,
                student(2),
                4,
            )));
            let batch = Batch {
                index: 3,
                images: x.shallow_clone(),
                labels: labels.shallow_clone(),
                ids: (0..n).map(|i| i.to_string()).collect(),
                skipped: Vec::new(),
                pixels: Some(pixels.clone()),
                targets: None,
                bg_family: None,
            };
            let new = objective.step(&s, &batch, 1).unwrap();
            let new_grads = grads(&s, &new.loss);

            // The two-pass step: the student's CAM in a pass of its own, then one forward of
            // [x; x'] with the masked keys hidden.
            let teacher = student(2);
            let step = CounterfactualStep {
                cam_model: CamModel {
                    vision: &s.vision,
                    head: &s.head,
                    cam: CamMethod::Mmcam,
                },
                teacher: &teacher.vision,
            };
            let seed = step_seed(4, 1, 3);
            let (_, cf) = step.run(&pixels, &x, &labels, &strategy, seed).unwrap();
            let both = Tensor::cat(&[&x, &cf.input], 0);
            let mask = cf
                .key_mask
                .as_ref()
                .map(|m| Tensor::cat(&[m.zeros_like(), m.shallow_clone()], 0));
            let f = s
                .vision
                .forward_with(
                    &both,
                    VisionForward {
                        key_mask: mask.as_ref(),
                        ..Default::default()
                    },
                )
                .unwrap()
                .features;
            let (clean_f, cf_f) = (f.narrow(0, 0, n as i64), f.narrow(0, n as i64, n as i64));
            let old = losses::cross_entropy(&s.head.forward(&clean_f), &labels)
                + losses::feature_mse(&cf_f, &cf.teacher_features) * 2.0;
            let old_grads = grads(&s, &old);

            let dl = (new.loss.double_value(&[]) - old.double_value(&[])).abs();
            assert!(dl < 1e-5, "{name}: loss differs by {dl}");
            assert_eq!(new_grads.len(), old_grads.len());
            for (a, b) in new_grads.iter().zip(&old_grads) {
                let d = (a - b).abs().max().to_kind(Kind::Double).double_value(&[]);
                assert!(d < 1e-5, "{name}: a gradient differs by {d}");
            }
        }
    }
}
