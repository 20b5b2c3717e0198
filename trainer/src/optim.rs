//! The optimiser of the recipe (DESIGN §3): AdamW (weight decay on all parameters), with the
//! schedule's lr and β1 applied before every step, and gradient-norm clipping.
//!
//! libtorch's `torch::optim::AdamW` (through tch) is the same algorithm as `torch.optim.AdamW`:
//! decoupled decay `p *= 1 - lr·wd`, bias-corrected moments with the *current* β1. The parity test
//! (`trainer/tests/optim.rs`) checks a scheduled, clipped run against torch step by step.

use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig};

use crate::schedule::Schedule;

/// AdamW hyperparameters; `Default` is the paper recipe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// 0.1 in the paper recipe (the reference code's `--wd`).
    #[serde(default = "default_wd")]
    pub weight_decay: f64,
    /// torch.optim.AdamW's default β2.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// torch.optim.AdamW's default ε.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Max global gradient L2 norm (1.0 in the recipe); `None`/0 disables clipping.
    #[serde(default = "default_clip")]
    pub grad_clip: Option<f64>,
}

fn default_wd() -> f64 {
    0.1
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}
fn default_clip() -> Option<f64> {
    Some(1.0)
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            weight_decay: default_wd(),
            beta2: default_beta2(),
            eps: default_eps(),
            grad_clip: default_clip(),
        }
    }
}

/// AdamW over the trainable variables of `vs`, with the schedule driving lr and β1.
pub struct Optimizer {
    inner: nn::Optimizer,
    config: OptimConfig,
}

impl Optimizer {
    pub fn new(
        vs: &nn::VarStore,
        config: OptimConfig,
        schedule: &dyn Schedule,
    ) -> Result<Self, tch::TchError> {
        let lr = schedule.lr(0).unwrap_or(0.0);
        let beta1 = schedule.beta1(0).unwrap_or(0.9);
        let inner = nn::AdamW {
            beta1,
            beta2: config.beta2,
            wd: config.weight_decay,
            eps: config.eps,
            amsgrad: false,
        }
        .build(vs, lr)?;
        Ok(Optimizer { inner, config })
    }

    /// Clips the accumulated gradients, sets lr and β1 for `step` and takes the step; returns the
    /// lr used. Past the schedule's end the last lr and β1 stay in place.
    pub fn step(&mut self, step: usize, schedule: &dyn Schedule) -> f64 {
        if let Some(max) = self.config.grad_clip.filter(|m| *m > 0.0) {
            self.inner.clip_grad_norm(max);
        }
        let lr = schedule.lr(step).unwrap_or_else(|| {
            schedule
                .lr(schedule.total_steps().saturating_sub(1))
                .unwrap_or(0.0)
        });
        if let Some(b1) = schedule.beta1(step) {
            self.inner.set_momentum(b1);
        }
        self.inner.set_lr(lr);
        self.inner.step();
        lr
    }

    pub fn zero_grad(&mut self) {
        self.inner.zero_grad();
    }
}
