//! The optimiser of the recipe (DESIGN §3): AdamW (weight decay on all parameters), with the
//! schedule's lr and β1 applied before every step, and gradient-norm clipping.
//!
//! The state (moments, step counts) is held here as plain tensors, so that checkpoints hold it and
//! resume exactly; the step itself is one call into libtorch (`cfkit_distributed::aten`): the
//! foreach gradient norm and clip, then libtorch's fused AdamW kernel over every parameter — the
//! kernels `torch.nn.utils.clip_grad_norm_(foreach=True)` and `torch.optim.AdamW(fused=True)`
//! run, instead of a dozen small operations per parameter. The parity tests
//! (`trainer/tests/optim.rs`) check scheduled, clipped runs against `torch.optim.AdamW`, the
//! default and the fused one, step by step.

pub mod schedule;

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use schedule::Schedule;

/// AdamW hyperparameters; `Default` is the paper recipe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// What one optimizer step did.
#[derive(Debug)]
pub struct StepInfo {
    /// The learning rate used.
    pub lr: f64,
    /// The global gradient L2 norm before clipping: a 0-dim float tensor on the parameters'
    /// device, not read (reading it waits for the step; the trainer reads it with the logging
    /// window's other statistics).
    pub grad_norm: Tensor,
}

impl StepInfo {
    /// The gradient norm on the host (waits for the device).
    pub fn grad_norm_value(&self) -> f64 {
        self.grad_norm.double_value(&[])
    }
}

/// AdamW over a fixed list of parameters, with its state (step count, first and second moments)
/// held as plain tensors so that a checkpoint can save and restore it exactly.
///
/// The update is torch's AdamW (`torch/optim/adamw.py`; libtorch's fused kernel):
/// `p *= 1 - lr·wd; m.lerp_(g, 1 - β1); v = β2·v + (1 - β2)·g²;
/// p -= lr / (1 - β1^t) · m / (sqrt(v) / sqrt(1 - β2^t) + ε)`, with the β1 of the current step.
pub struct Optimizer {
    params: Vec<(String, Tensor)>,
    exp_avg: Vec<Tensor>,
    exp_avg_sq: Vec<Tensor>,
    /// Per-parameter step count (torch's `state["step"]`: a 0-dim float32 on the parameter's
    /// device, advanced by the kernel), 0 before the first update.
    steps: Vec<Tensor>,
    config: OptimConfig,
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer")
            .field("params", &self.params.len())
            .field("config", &self.config)
            .finish()
    }
}

impl Optimizer {
    /// An optimizer over `params` (name, variable); the names key the saved state.
    pub fn new(params: Vec<(String, Tensor)>, config: OptimConfig) -> Self {
        let exp_avg = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let exp_avg_sq = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let steps = params
            .iter()
            .map(|(_, p)| Tensor::zeros([], (Kind::Float, p.device())))
            .collect();
        Optimizer {
            params,
            exp_avg,
            exp_avg_sq,
            steps,
            config,
        }
    }

    /// Every variable of `vs` that requires a gradient, sorted by name.
    pub fn trainable(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub fn config(&self) -> &OptimConfig {
        &self.config
    }

    /// The parameters this optimizer updates, in its (name) order.
    pub fn parameters(&self) -> Vec<Tensor> {
        self.params.iter().map(|(_, p)| p.shallow_clone()).collect()
    }
    /// Clips the accumulated gradients (torch's `clip_grad_norm_`: one global L2 norm, factor
    /// `max / (norm + 1e-6)` capped at 1), sets lr and β1 for `step` and updates every parameter
    /// that has a gradient. Past the schedule's end the last lr and β1 stay in place.
    pub fn step(&mut self, step: usize, schedule: &dyn Schedule) -> crate::error::Result<StepInfo> {
        let _guard = tch::no_grad_guard();
        let last = schedule.total_steps().saturating_sub(1);
        let lr = schedule
            .lr(step)
            .unwrap_or_else(|| schedule.lr(last).unwrap_or(0.0));
        let beta1 = schedule
            .beta1(step)
            .unwrap_or_else(|| schedule.beta1(last).unwrap_or(0.9));
        // The parameters that have a gradient (torch skips the others), with their state.
        let with_grad: Vec<usize> = (0..self.params.len())
            .filter(|&i| self.params[i].1.grad().defined())
            .collect();
        let pick = |v: &[Tensor]| -> Vec<Tensor> {
            with_grad.iter().map(|&i| v[i].shallow_clone()).collect()
        };
        let params: Vec<Tensor> = with_grad
            .iter()
            .map(|&i| self.params[i].1.shallow_clone())
            .collect();
        let grads: Vec<Tensor> = params.iter().map(Tensor::grad).collect();
        let norm = cfkit_distributed::aten::AdamwStep {
            params: &params,
            grads: &grads,
            exp_avgs: &pick(&self.exp_avg),
            exp_avg_sqs: &pick(&self.exp_avg_sq),
            steps: &pick(&self.steps),
            lr,
            beta1,
            beta2: self.config.beta2,
            weight_decay: self.config.weight_decay,
            eps: self.config.eps,
            max_norm: self.config.grad_clip.filter(|m| *m > 0.0),
        }
        .run()
        .map_err(|e| crate::error::TrainError::Optimizer(e.to_string()))?;
        Ok(StepInfo {
            lr,
            grad_norm: norm,
        })
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// The state as named tensors: `exp_avg.<param>`, `exp_avg_sq.<param>`, and the step counts
    /// as one int64 tensor `steps` in parameter order.
    pub(crate) fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len() + 1);
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("exp_avg.{name}"), self.exp_avg[i].shallow_clone()));
            out.push((
                format!("exp_avg_sq.{name}"),
                self.exp_avg_sq[i].shallow_clone(),
            ));
        }
        let steps: Vec<i64> = self
            .steps
            .iter()
            .map(|s| s.double_value(&[]).round() as i64)
            .collect();
        out.push(("steps".into(), Tensor::from_slice(&steps)));
        out
    }

    /// Restores the state written by [`Optimizer::state_tensors`]; names and shapes must match.
    pub(crate) fn load_state(
        &mut self,
        tensors: &std::collections::BTreeMap<String, Tensor>,
    ) -> Result<(), String> {
        let _guard = tch::no_grad_guard();
        let steps = tensors
            .get("steps")
            .ok_or("tensor 'steps' is missing")?
            .to_kind(Kind::Int64);
        if steps.size() != [self.params.len() as i64] {
            return Err(format!(
                "'steps' has shape {:?}, the model has {} trainable tensors",
                steps.size(),
                self.params.len()
            ));
        }
        let steps: Vec<i64> = Vec::try_from(&steps).map_err(|e: tch::TchError| e.to_string())?;
        for (i, (name, p)) in self.params.iter().enumerate() {
            for (key, dst) in [
                (format!("exp_avg.{name}"), &mut self.exp_avg[i]),
                (format!("exp_avg_sq.{name}"), &mut self.exp_avg_sq[i]),
            ] {
                let src = tensors
                    .get(&key)
                    .ok_or_else(|| format!("tensor '{key}' is missing"))?;
                if src.size() != p.size() {
                    return Err(format!(
                        "'{key}' has shape {:?}, the parameter has {:?}",
                        src.size(),
                        p.size()
                    ));
                }
                dst.copy_(&src.to_kind(p.kind()).to_device(p.device()));
            }
            self.steps[i] = Tensor::from(steps[i].max(0) as f32).to_device(p.device());
        }
        Ok(())
    }
}
