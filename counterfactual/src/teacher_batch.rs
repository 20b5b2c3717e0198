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

/// One draw of one donor pool for [`draw_features`]: its images [n, S, S, 3] uint8, masks
/// [n, P] bool and strategy (no fill: the masked keys are hidden).
pub struct DrawUnit<'a> {
    pub images: &'a Tensor,
    pub masks: &'a Tensor,
    pub strategy: Strategy,
}

/// The frozen teacher's features of every draw unit (of one or several donor pools) -> one
/// [n, E] float32 tensor per unit, in order. Units of one kind (fill or no fill) run together in
/// forwards of up to [`MAX_ROWS`] images (at least one unit each).
pub fn draw_features(
    teacher: &VisionTransformer,
    normalize: &Normalize,
    units: &[DrawUnit],
) -> Result<Vec<Tensor>> {
    let mut out: Vec<Option<Tensor>> = (0..units.len()).map(|_| None).collect();
    for no_fill in [false, true] {
        let group: Vec<usize> = (0..units.len())
            .filter(|&i| (units[i].strategy.fill == FillKind::None) == no_fill)
            .collect();
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        let mut rows = 0;
        for &i in &group {
            let n = units[i].images.size()[0];
            if chunks.is_empty() || rows + n > MAX_ROWS {
                chunks.push(Vec::new());
                rows = 0;
            }
            chunks.last_mut().expect("pushed").push(i);
            rows += n;
        }
        for chunk in chunks {
            let x = Tensor::cat(
                &chunk.iter().map(|&i| units[i].images).collect::<Vec<_>>(),
                0,
            );
            let key_mask = no_fill.then(|| {
                Tensor::cat(
                    &chunk.iter().map(|&i| units[i].masks).collect::<Vec<_>>(),
                    0,
                )
            });
            let f = frozen_features(teacher, &normalize.input(&x), key_mask.as_ref())?
                .to_kind(Kind::Float);
            let mut at = 0;
            for &i in &chunk {
                let n = units[i].images.size()[0];
                out[i] = Some(f.narrow(0, at, n));
                at += n;
            }
        }
    }
    out.into_iter()
        .map(|t| t.ok_or_else(|| CounterfactualError::Input("a draw unit without features".into())))
        .collect()
}
