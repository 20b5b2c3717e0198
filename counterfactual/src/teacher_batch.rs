//! The builder's teacher work on one batch, kept on the device: one pass over the clean images for
//! their features, logits and CAM together, and the teacher's features of every draw of the batch
//! in a few large forwards (no-fill draws under their key masks). Nothing is read back here.

use tch::{Kind, Tensor};

use crate::cam::{cam_forward, cam_of_checked_forward, CamMethod};
use crate::error::{CounterfactualError, Result};
use crate::step::frozen_features;
use crate::strategy::{FillKind, Strategy};
use cfkit_distributed::aten::autocast_bf16;
use cfkit_models::head::ClassificationHead;
use cfkit_models::vision::{Normalize, VisionTransformer};

/// The clean batch through the teacher once.
#[derive(Debug)]
pub struct CleanPass {
    /// Projected features [N, E].
    pub features: Tensor,
    /// The head's logits [N, C].
    pub logits: Tensor,
    /// The CAM for the ground-truth labels [N, P], max-normalised, float32.
    pub cam: Tensor,
}

/// Features, logits and CAM of the clean batch `x` (the model's normalised input [N, 3, S, S])
/// for `labels` ([N] int64 on the device) from one forward: the CAM's forward (attention maps or
/// the last block's `ln_1`, with the graph the CAM's gradient needs) also gives the features.
/// `host_labels` are the same labels on the host, checked against the head here so that nothing
/// is read from the device. With `autocast` (bf16) the forward runs under it; the CAM's
/// gradient products and sums then run outside it, in float32.
pub fn clean_pass(
    vision: &VisionTransformer,
    head: &ClassificationHead,
    method: CamMethod,
    x: &Tensor,
    labels: &Tensor,
    host_labels: &[i64],
    autocast: Option<tch::Device>,
) -> Result<CleanPass> {
    let n = x.size().first().copied().unwrap_or(0);
    let c = head.num_classes();
    if host_labels.len() as i64 != n || labels.size() != [n] {
        return Err(CounterfactualError::Input(format!(
            "{} labels for a batch of {n} images",
            host_labels.len()
        )));
    }
    if let Some(bad) = host_labels.iter().find(|&&l| l < 0 || l >= c) {
        return Err(CounterfactualError::Input(format!(
            "labels must lie in 0..{c}, found {bad}"
        )));
    }
    let out = autocast_bf16(autocast, || {
        if method == CamMethod::Rollout {
            let _g = tch::no_grad_guard();
            vision.forward_with(x, cam_forward(method))
        } else {
            // The graph must reach the activations even though the weights are frozen.
            let x = x.detach().set_requires_grad(true);
            vision.forward_with(&x, cam_forward(method))
        }
    })?;
    let features = out.features.detach().to_kind(Kind::Float);
    let logits = {
        let _g = tch::no_grad_guard();
        head.forward(&features)
    };
    let cam = cam_of_checked_forward(&out, head, labels, method, false)?.to_kind(Kind::Float);
    Ok(CleanPass {
        features,
        logits,
        cam,
    })
}

/// Rows of one teacher forward at most (a no-grad ViT-B forward of 1,024 images at 224 px holds a
/// few GB of activations at its peak).
const MAX_ROWS: i64 = 1024;

/// The frozen teacher's features of every draw: `images` [V, N, S, S, 3] uint8 and `masks`
/// [V, N, P] from [`crate::batch_draw::draw_batch`], `draws[v]`'s strategy deciding whether draw
/// v's masked keys are hidden (no fill) -> [V, N, E]. Draws of one kind run together in forwards
/// of up to [`MAX_ROWS`] images (at least one draw each).
pub fn draw_features(
    teacher: &VisionTransformer,
    normalize: &Normalize,
    images: &Tensor,
    masks: &Tensor,
    draws: &[Strategy],
) -> Result<Tensor> {
    let v = draws.len();
    let size = images.size();
    if size.len() != 5 || size[0] != v as i64 {
        return Err(CounterfactualError::Input(format!(
            "{v} draws but images of shape {size:?}"
        )));
    }
    let n = size[1];
    let per = (MAX_ROWS / n.max(1)).max(1) as usize;
    let mut out: Vec<Option<Tensor>> = (0..v).map(|_| None).collect();
    for no_fill in [false, true] {
        let group: Vec<usize> = (0..v)
            .filter(|&i| (draws[i].fill == FillKind::None) == no_fill)
            .collect();
        for chunk in group.chunks(per) {
            let idx = Tensor::from_slice(&chunk.iter().map(|&i| i as i64).collect::<Vec<_>>())
                .to_device(images.device());
            let rows = chunk.len() as i64 * n;
            let x = images
                .index_select(0, &idx)
                .reshape([rows, size[2], size[3], 3]);
            let key_mask = no_fill.then(|| masks.index_select(0, &idx).reshape([rows, -1]));
            let f = frozen_features(teacher, &normalize.input(&x), key_mask.as_ref())?
                .to_kind(Kind::Float);
            for (k, &i) in chunk.iter().enumerate() {
                out[i] = Some(f.narrow(0, k as i64 * n, n));
            }
        }
    }
    let out: Vec<Tensor> = out.into_iter().map(|t| t.expect("every draw")).collect();
    if out.is_empty() {
        return Ok(Tensor::zeros(
            [0, n, teacher.config.projection_dim],
            (Kind::Float, images.device()),
        ));
    }
    Ok(Tensor::stack(&out, 0))
}
