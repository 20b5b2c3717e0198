//! Online counterfactuals (the reference behaviour, DESIGN §3): at every step the current
//! student's CAM for the ground-truth label decides the masks, donors come from the batch itself
//! (a permutation for single fill, per-patch shifts for multi fill), and a frozen teacher is run
//! on the masked batch.
//!
//! The masks, donors and refill are drawn by the same function as the offline builder's
//! (`cfkit_models::counterfactual::draw`), so for the same model, batch and seed the two agree
//! (tested in `tests/online.rs` against `cfkit_pipeline::cf_batch::compute_batch`).

use cfkit_models::counterfactual::draw::{
    draw_counterfactuals, key_mask_tensor, CounterfactualDraw,
};
use cfkit_models::counterfactual::refill::PatchGrid;
use cfkit_models::counterfactual::rng::hash_keys;
use cfkit_models::counterfactual::strategy::{FillKind, Strategy};
use cfkit_models::{
    compute_cam, pixels_to_input, CamMethod, ClassificationHead, VisionForward, VisionTransformer,
};
use tch::{Device, Kind, Tensor};

use crate::error::{Result, TrainError};

/// Counterfactuals of one batch, ready for the forward passes.
#[derive(Debug)]
pub struct OnlineBatch {
    /// Per-patch CAM of each image, max-normalised.
    pub cams: Vec<Vec<f32>>,
    pub draw: CounterfactualDraw,
    /// Counterfactual images, CLIP-normalised [N, 3, S, S].
    pub images: Tensor,
    /// No-fill strategies: [N, P] bool, masked keys hidden in the forward.
    pub key_mask: Option<Tensor>,
}

/// The seed of the draw at (run seed, epoch, batch index): every step draws afresh, as the
/// reference does, and a resumed run draws what an uninterrupted one would.
pub fn step_seed(seed: u64, epoch: usize, batch: usize) -> u64 {
    hash_keys(&[seed, epoch as u64, batch as u64])
}

/// The model whose CAM decides the masks (online: the current student).
#[derive(Clone, Copy)]
pub struct CamModel<'a> {
    pub vision: &'a VisionTransformer,
    pub head: &'a ClassificationHead,
    pub cam: CamMethod,
}

/// Draws the batch's counterfactuals with `model`'s own CAM for `labels`.
/// `pixels`: HWC uint8 of the images in `x`; `x`: CLIP-normalised [N, 3, S, S]; `labels`: [N].
pub fn counterfactuals(
    model: CamModel,
    pixels: &[Vec<u8>],
    x: &Tensor,
    labels: &Tensor,
    strategy: &Strategy,
    seed: u64,
) -> Result<OnlineBatch> {
    let cfg = &model.vision.config;
    let grid = PatchGrid::new(cfg.image_size as usize, cfg.patch_size as usize)?;
    let cams = rows_f32(&compute_cam(
        model.vision,
        model.head,
        x,
        labels,
        model.cam,
    )?)?;
    let draw = draw_counterfactuals(pixels, &cams, strategy, seed, grid)?;
    let device = x.device();
    let images = pixels_to_input(&draw.images, grid.image_size, device);
    let key_mask = if strategy.fill == FillKind::None {
        Some(key_mask_tensor(&draw.masks, device)?)
    } else {
        None
    };
    Ok(OnlineBatch {
        cams,
        draw,
        images,
        key_mask,
    })
}

/// A frozen model's features of (masked) images, no gradient: [N, 3, S, S] -> [N, E].
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

fn rows_f32(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let (n, d) = t
        .size2()
        .map_err(|e| TrainError::Data(format!("CAM: {e}")))?;
    let flat = Vec::<f32>::try_from(t.view([-1]))?;
    Ok((0..n as usize)
        .map(|i| flat[i * d as usize..(i + 1) * d as usize].to_vec())
        .collect())
}
