//! ATen operations tch does not bind (they take lists of tensors), through `src/aten_ops.cpp`.

use tch::{Device, Kind, Tensor};

use crate::{DistError, Result};

/// One optimizer step over `params` with their gradients and AdamW state (all lists in the same
/// order, state tensors on each parameter's device; `steps` are 0-dim float32 counts, advanced by
/// the step): the gradients are clipped to a global L2 norm of `max_norm` (`None`: not clipped) as
/// `torch.nn.utils.clip_grad_norm_(foreach=True)` does, then every parameter is updated by
/// libtorch's fused AdamW kernel (`torch.optim.AdamW(fused=True)`). Nothing is read back to the
/// host.
pub struct AdamwStep<'a> {
    pub params: &'a [Tensor],
    pub grads: &'a [Tensor],
    pub exp_avgs: &'a [Tensor],
    pub exp_avg_sqs: &'a [Tensor],
    pub steps: &'a [Tensor],
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub eps: f64,
    pub max_norm: Option<f64>,
}

impl AdamwStep<'_> {
    /// Runs the step; returns the global gradient norm before clipping (0-dim float32 on the
    /// first parameter's device; read it when it is needed, not every step).
    pub fn run(&self) -> Result<Tensor> {
        let device = self.params.first().map_or(Device::Cpu, Tensor::device);
        let mut norm = Tensor::zeros([], (Kind::Float, device));
        crate::ffi::adamw_step(
            [
                self.params,
                self.grads,
                self.exp_avgs,
                self.exp_avg_sqs,
                self.steps,
            ],
            [
                self.lr,
                self.beta1,
                self.beta2,
                self.weight_decay,
                self.eps,
                self.max_norm.unwrap_or(0.0),
            ],
            &mut norm,
        )
        .map_err(DistError::Aten)?;
        Ok(norm)
    }
}
