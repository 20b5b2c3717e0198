//! Class-activation maps over ViT patches: MMCAM, GradCAM and attention rollout.
//!
//! Every method returns one score per patch, [N, P], normalised per image by its maximum
//! (`cam / (max + 1e-8)`, DESIGN §3).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{CounterfactualError, Result};
use cfkit_models::head::ClassificationHead;
use cfkit_models::vision::{VisionForward, VisionOutput, VisionTransformer};

/// Which CAM to compute.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CamMethod {
    /// Chefer et al. 2021 gradient-weighted relevance propagation through every block (the paper's).
    #[default]
    Mmcam,
    /// GradCAM on the last block's `layer_norm1` output (all tokens), as the reference computes it.
    Gradcam,
    /// Gradient-free attention rollout (Abnar & Zuidema 2020).
    Rollout,
}

impl CamMethod {
    /// The name configs and records use (`mmcam`, `gradcam`, `rollout`).
    pub fn name(self) -> &'static str {
        match self {
            CamMethod::Mmcam => "mmcam",
            CamMethod::Gradcam => "gradcam",
            CamMethod::Rollout => "rollout",
        }
    }
}

impl std::str::FromStr for CamMethod {
    type Err = CounterfactualError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "mmcam" => Ok(CamMethod::Mmcam),
            "gradcam" => Ok(CamMethod::Gradcam),
            "rollout" => Ok(CamMethod::Rollout),
            other => Err(CounterfactualError::Input(format!(
                "unknown CAM method '{other}' (expected mmcam, gradcam or rollout)"
            ))),
        }
    }
}

/// Per-image max normalisation: [N, P] -> [N, P].
fn normalize(cam: Tensor) -> Tensor {
    let max = cam.amax([1i64].as_slice(), true);
    cam / (max + 1e-8)
}

/// Sum over the batch of each image's ground-truth logit. Images do not interact, so the
/// gradient of this sum w.r.t. an image's activations is that image's own gradient.
/// Features from a bf16 autocast forward are cast to the head's kind (float32), so that the
/// score (and the CAM's gradient products) are float32 outside the autocast region too.
fn target_score(head: &ClassificationHead, features: &Tensor, labels: &Tensor) -> Tensor {
    head.forward(&features.to_kind(head.weight.kind()))
        .gather(1, &labels.to_kind(Kind::Int64).unsqueeze(1), false)
        .sum(Kind::Float)
}

/// Checks `labels` [N] against a batch of `n` images and `head`'s classes.
fn check_labels(n: i64, head: &ClassificationHead, labels: &Tensor) -> Result<()> {
    if labels.size() != [n] {
        return Err(CounterfactualError::Input(format!(
            "labels must be [{n}], got {:?}",
            labels.size()
        )));
    }
    let c = head.num_classes();
    if n > 0 {
        let (lo, hi) = (labels.min().int64_value(&[]), labels.max().int64_value(&[]));
        if lo < 0 || hi >= c {
            return Err(CounterfactualError::Input(format!(
                "labels must lie in 0..{c}, found {lo}..={hi}"
            )));
        }
    }
    Ok(())
}

/// What a forward must return for `method`'s CAM.
pub fn cam_forward(method: CamMethod) -> VisionForward<'static> {
    VisionForward {
        attentions: method != CamMethod::Gradcam,
        last_block_ln1: method == CamMethod::Gradcam,
        ..Default::default()
    }
}

/// Computes a CAM for the given labels. `pixels`: CLIP-normalised [N, 3, S, S]; `labels`: [N].
/// Returns [N, P], detached.
pub fn compute_cam(
    model: &VisionTransformer,
    head: &ClassificationHead,
    pixels: &Tensor,
    labels: &Tensor,
    method: CamMethod,
) -> Result<Tensor> {
    let n = pixels.size().first().copied().unwrap_or(0);
    check_labels(n, head, labels)?;
    let out = if method == CamMethod::Rollout {
        let _guard = tch::no_grad_guard();
        model.forward_with(pixels, cam_forward(method))?
    } else {
        // The graph must reach the activations even when the weights are frozen.
        let pixels = pixels.detach().set_requires_grad(true);
        model.forward_with(&pixels, cam_forward(method))?
    };
    cam_of_forward(&out, head, labels, method, false)
}

/// The CAM of a forward that returned what [`cam_forward`] asks for (and, for MMCAM and GradCAM,
/// kept its graph): [N, P], detached. With `keep_graph` the graph survives, so that the same
/// forward's features can also carry a loss (the online step's one clean pass).
pub fn cam_of_forward(
    out: &VisionOutput,
    head: &ClassificationHead,
    labels: &Tensor,
    method: CamMethod,
    keep_graph: bool,
) -> Result<Tensor> {
    check_labels(out.features.size()[0], head, labels)?;
    cam_of_checked_forward(out, head, labels, method, keep_graph)
}

/// [`cam_of_forward`] for `labels` the caller has checked on the host (each in
/// `0..head.num_classes()`, one per image): nothing is read back from the device.
pub fn cam_of_checked_forward(
    out: &VisionOutput,
    head: &ClassificationHead,
    labels: &Tensor,
    method: CamMethod,
    keep_graph: bool,
) -> Result<Tensor> {
    let n = out.features.size()[0];
    let device = out.features.device();
    // The CAM's products and sums in float32 even inside a bf16 autocast region (its thresholds
    // are compared in float32, as the reference's fp32 CAMs).
    cfkit_distributed::aten::without_autocast(device, || {
        cam_of(out, head, labels, method, keep_graph, n, device)
    })
}

fn cam_of(
    out: &VisionOutput,
    head: &ClassificationHead,
    labels: &Tensor,
    method: CamMethod,
    keep_graph: bool,
    n: i64,
    device: tch::Device,
) -> Result<Tensor> {
    let cam = match method {
        CamMethod::Mmcam => {
            let score = target_score(head, &out.features, labels);
            let grads = Tensor::f_run_backward(&[score], &out.attentions, keep_graph, false)?;
            let t = out.attentions[0].size()[2];
            let mut r = Tensor::eye(t, (Kind::Float, device))
                .unsqueeze(0)
                .repeat([n, 1, 1]);
            for (a, g) in out.attentions.iter().zip(&grads) {
                // [N, H, T, T] -> [N, T, T]
                let cam_l =
                    (g * a.detach())
                        .clamp_min(0.0)
                        .mean_dim([1i64].as_slice(), false, Kind::Float);
                r = &r + cam_l.matmul(&r);
            }
            r.select(1, 0).narrow(1, 1, t - 1)
        }
        CamMethod::Gradcam => {
            // The reference (Coxy7/robust-finetuning, utils/masking.py get_GradCAM, after
            // jacobgil/pytorch-grad-cam): activations are the *output* of the last block's ln_1
            // for every token, the class token included; each channel is weighted by its
            // gradient *summed* over all tokens; ReLU of the weighted channel sum; the class
            // token's entry is dropped.
            let acts = out
                .last_block_ln1
                .as_ref()
                .ok_or_else(|| CounterfactualError::Input("GradCAM needs last_block_ln1".into()))?;
            let score = target_score(head, &out.features, labels);
            let grads = Tensor::f_run_backward(&[score], &[acts], keep_graph, false)?;
            let t = acts.size()[1];
            let w = grads[0].sum_dim_intlist([1i64].as_slice(), true, Kind::Float); // [N, 1, D]
            (acts.detach() * w)
                .sum_dim_intlist([2i64].as_slice(), false, Kind::Float)
                .relu()
                .narrow(1, 1, t - 1)
        }
        CamMethod::Rollout => {
            let t = out.attentions[0].size()[2];
            let eye = Tensor::eye(t, (Kind::Float, device)).unsqueeze(0);
            let mut r = eye.repeat([n, 1, 1]);
            for a in &out.attentions {
                // Residual connection as 0.5·A + 0.5·I; rows stay stochastic.
                let a =
                    a.detach().mean_dim([1i64].as_slice(), false, Kind::Float) * 0.5 + &eye * 0.5;
                r = a.matmul(&r);
            }
            r.select(1, 0).narrow(1, 1, t - 1)
        }
    };
    Ok(normalize(cam.detach()))
}
