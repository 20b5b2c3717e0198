//! The paper's counterfactual step, written once (DESIGN §3): the CAM of the clean batch for the
//! ground-truth labels, per-image masks and donors drawn from the batch, refill on uint8 pixels,
//! the key mask of no-fill strategies, and the frozen teacher's features of the counterfactuals.
//!
//! The offline builder (`cfkit build-counterfactuals`) runs it with the teacher as the CAM model
//! and draws several (strategy, variant) sets from one CAM; the trainer's online mode (the
//! reference behaviour) runs it at every step with the current student as the CAM model. Both go
//! through [`CounterfactualStep`], so for the same models, batch and seed they produce the same
//! samples (tested end to end in the workspace's `tests/online_offline.rs`).

use tch::{Device, Tensor};

use crate::cam::{compute_cam, CamMethod};
use crate::draw::{draw_counterfactuals, key_mask_tensor, CounterfactualDraw};
use crate::error::Result;
use crate::refill::PatchGrid;
use crate::rows::rows_f32;
use crate::strategy::{FillKind, Strategy};
use cfkit_models::head::ClassificationHead;
use cfkit_models::vision::{pixels_to_input, VisionForward, VisionTransformer};

/// The model whose CAM decides the masks: the teacher offline, the current student online.
#[derive(Clone, Copy)]
pub struct CamModel<'a> {
    pub vision: &'a VisionTransformer,
    pub head: &'a ClassificationHead,
    pub cam: CamMethod,
}

/// One counterfactual per image of a batch, ready for the forward passes.
#[derive(Debug)]
pub struct Counterfactuals {
    /// Masks, donors (batch indices) and refilled uint8 HWC images.
    pub draw: CounterfactualDraw,
    /// The refilled images, CLIP-normalised: [N, 3, S, S] on the step's device.
    pub input: Tensor,
    /// No-fill strategies: [N, P] bool, true = key hidden in every attention block.
    pub key_mask: Option<Tensor>,
    /// The frozen teacher's projected features of `input` (under `key_mask`): [N, E], no grad.
    pub teacher_features: Tensor,
}

/// CAM model + frozen teacher: everything the step needs besides the batch.
#[derive(Clone, Copy)]
pub struct CounterfactualStep<'a> {
    pub cam_model: CamModel<'a>,
    pub teacher: &'a VisionTransformer,
}

impl<'a> CounterfactualStep<'a> {
    /// The patch grid the masks live on: the CAM model's.
    pub fn grid(&self) -> Result<PatchGrid> {
        let cfg = &self.cam_model.vision.config;
        PatchGrid::new(cfg.image_size as usize, cfg.patch_size as usize)
    }

    /// Per-image CAM rows for `labels`, max-normalised. `x`: CLIP-normalised [N, 3, S, S];
    /// `labels`: [N] -> N rows of P scores.
    pub fn cams(&self, x: &Tensor, labels: &Tensor) -> Result<Vec<Vec<f32>>> {
        let m = self.cam_model;
        rows_f32(&compute_cam(m.vision, m.head, x, labels, m.cam)?)
    }

    /// One draw of `strategy` with `seed` from the batch's uint8 HWC `pixels` and their `cams`,
    /// then the teacher's features of the result on `device`.
    pub fn draw(
        &self,
        pixels: &[Vec<u8>],
        cams: &[Vec<f32>],
        strategy: &Strategy,
        seed: u64,
        device: Device,
    ) -> Result<Counterfactuals> {
        let grid = self.grid()?;
        let draw = draw_counterfactuals(pixels, cams, strategy, seed, grid)?;
        let norm = self.teacher.config.normalize();
        let input = pixels_to_input(&draw.images, grid.image_size, &norm, device);
        // No fill: masked keys hidden in every block; for the class token (and every kept token)
        // this equals dropping the masked tokens, which never reach any other token.
        let key_mask = match strategy.fill {
            FillKind::None => Some(key_mask_tensor(&draw.masks, device)?),
            _ => None,
        };
        let teacher_features = frozen_features(self.teacher, &input, key_mask.as_ref())?;
        Ok(Counterfactuals {
            draw,
            input,
            key_mask,
            teacher_features,
        })
    }

    /// The online step: the CAM model's CAM of the clean batch `x` (uint8 `pixels`) for
    /// `labels`, and one draw of `strategy` with `seed` on `x`'s device. Returns the CAM rows too.
    pub fn run(
        &self,
        pixels: &[Vec<u8>],
        x: &Tensor,
        labels: &Tensor,
        strategy: &Strategy,
        seed: u64,
    ) -> Result<(Vec<Vec<f32>>, Counterfactuals)> {
        let cams = self.cams(x, labels)?;
        let cf = self.draw(pixels, &cams, strategy, seed, x.device())?;
        Ok((cams, cf))
    }
}

/// A frozen model's projected features, no gradient: [N, 3, S, S] (+ optional [N, P] key mask)
/// -> [N, E].
pub fn frozen_features(
    model: &VisionTransformer,
    x: &Tensor,
    key_mask: Option<&Tensor>,
) -> Result<Tensor> {
    let _g = tch::no_grad_guard();
    Ok(model
        .forward_with(
            x,
            VisionForward {
                key_mask,
                ..Default::default()
            },
        )?
        .features)
}
