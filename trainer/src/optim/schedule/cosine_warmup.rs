//! Linear warm-up then cosine anneal: torch's `SequentialLR(LinearLR, CosineAnnealingLR)`.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::{check, check_beta, Schedule, ScheduleError};

/// torch `LinearLR`'s default `start_factor` (1/3).
pub(crate) const LINEAR_LR_START_FACTOR: f64 = 1.0 / 3.0;
/// torch `CosineAnnealingLR`'s default `eta_min`.
pub(crate) const COSINE_ETA_MIN: f64 = 0.0;
/// torch `Adam`/`AdamW`'s default `betas[0]`.
pub(crate) const ADAM_BETA1: f64 = 0.9;

fn default_start_factor() -> f64 {
    LINEAR_LR_START_FACTOR
}
fn default_beta1() -> f64 {
    ADAM_BETA1
}

/// Parameters of [`CosineWarmup`]. The warm-up length is either `warmup_steps` or `warmup_pct` of
/// the run, rounded up (`ceil(total_steps * warmup_pct)`, as Hugging Face's
/// `TrainingArguments.get_warmup_steps` does); exactly one must be set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CosineWarmupConfig {
    /// The lr at the end of the warm-up (the optimizer's lr in the torch composition).
    pub base_lr: f64,
    /// Warm-up length in optimizer steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_steps: Option<usize>,
    /// Warm-up length as a fraction of the run, in [0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_pct: Option<f64>,
    /// The lr at step 0 is `base_lr * start_factor`; `LinearLR` requires `0 < start_factor <= 1`.
    #[serde(default = "default_start_factor")]
    pub start_factor: f64,
    /// The lr the cosine decays to (at step `total_steps`), `CosineAnnealingLR`'s `eta_min`.
    #[serde(default)]
    pub min_lr: f64,
    /// Constant Adam β1.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
}

impl CosineWarmupConfig {
    /// A warm-up of `warmup_steps` steps with torch's defaults for everything else.
    pub const fn with_warmup_steps(base_lr: f64, warmup_steps: usize) -> Self {
        Self {
            base_lr,
            warmup_steps: Some(warmup_steps),
            warmup_pct: None,
            start_factor: LINEAR_LR_START_FACTOR,
            min_lr: COSINE_ETA_MIN,
            beta1: ADAM_BETA1,
        }
    }

    /// A warm-up of `warmup_pct` of the run with torch's defaults for everything else.
    pub const fn with_warmup_pct(base_lr: f64, warmup_pct: f64) -> Self {
        Self {
            warmup_steps: None,
            warmup_pct: Some(warmup_pct),
            ..Self::with_warmup_steps(base_lr, 0)
        }
    }

    /// Checks the parameters that do not depend on the number of steps. Stricter than torch,
    /// which does not check `base_lr`, `min_lr` (it accepts `min_lr > base_lr`) or NaN.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        check("base_lr", self.base_lr, self.base_lr > 0.0, "> 0")?;
        check(
            "min_lr",
            self.min_lr,
            (0.0..=self.base_lr).contains(&self.min_lr),
            "0 <= min_lr <= base_lr",
        )?;
        check(
            "start_factor",
            self.start_factor,
            self.start_factor > 0.0 && self.start_factor <= 1.0,
            "0 < start_factor <= 1 (torch LinearLR)",
        )?;
        check_beta("beta1", self.beta1)?;
        match (self.warmup_steps, self.warmup_pct) {
            (Some(_), None) => Ok(()),
            (None, Some(pct)) => check(
                "warmup_pct",
                pct,
                (0.0..1.0).contains(&pct),
                "0 <= warmup_pct < 1",
            ),
            _ => Err(ScheduleError::WarmupSpec),
        }
    }

    /// The warm-up length for a run of `total_steps` steps.
    pub(crate) fn warmup_steps_for(&self, total_steps: usize) -> Result<usize, ScheduleError> {
        self.validate()?;
        Ok(match (self.warmup_steps, self.warmup_pct) {
            (Some(w), _) => w,
            // transformers 5.x TrainingArguments.get_warmup_steps:
            // math.ceil(num_training_steps * warmup_ratio)
            (None, Some(pct)) => (total_steps as f64 * pct).ceil() as usize,
            (None, None) => unreachable!("validate() requires one of the two"),
        })
    }

    /// Builds the schedule for a run of `total_steps` optimizer steps.
    pub fn build(&self, total_steps: usize) -> Result<CosineWarmup, ScheduleError> {
        CosineWarmup::new(self, total_steps)
    }
}

/// Linear warm-up then cosine decay, defined as (and equal, value for value, to) torch's
/// `SequentialLR(opt, [LinearLR(opt, start_factor, 1.0, warmup), CosineAnnealingLR(opt,
/// T_max=total_steps - warmup, eta_min=min_lr)], milestones=[warmup])` with the optimizer's lr set
/// to `base_lr`. Stepped one step at a time, torch computes
///
/// * step 0: `base_lr * start_factor` (`base_lr` if `warmup == 0`);
/// * step k in 1..warmup: `lr[k-1] * (1 + (1 - s) / (warmup * s + (k - 1) * (1 - s)))`;
/// * step `warmup` (a milestone, closed form): `min_lr + (base_lr - min_lr) * (1 + cos(0)) / 2`;
/// * step k in warmup+1..=total_steps, c = k - warmup, T = total_steps - warmup:
///   `(1 + cos(pi * c / T)) / (1 + cos(pi * (c - 1) / T)) * (lr[k-1] - min_lr) + min_lr`,
///
/// which is what this type computes, once, into a table (8 bytes per step).
#[derive(Debug, Clone, PartialEq)]
pub struct CosineWarmup {
    config: CosineWarmupConfig,
    total_steps: usize,
    warmup_steps: usize,
    /// lr for steps 0..=total_steps.
    lrs: Vec<f64>,
}

impl CosineWarmup {
    /// Validates `config` and builds the schedule for `total_steps` optimizer steps.
    pub fn new(config: &CosineWarmupConfig, total_steps: usize) -> Result<Self, ScheduleError> {
        if total_steps == 0 {
            return Err(ScheduleError::ZeroTotalSteps);
        }
        let warmup = config.warmup_steps_for(total_steps)?;
        if warmup >= total_steps {
            return Err(ScheduleError::WarmupTooLong {
                warmup_steps: warmup,
                total_steps,
            });
        }
        let (base_lr, eta_min, s) = (config.base_lr, config.min_lr, config.start_factor);
        let t_max = (total_steps - warmup) as f64;
        let mut lrs = Vec::with_capacity(total_steps + 1);
        // SequentialLR.__init__ resets lr to initial_lr (= base_lr) and re-runs the initial step of
        // the scheduler active at 0: LinearLR.get_lr at last_epoch 0 -> lr * start_factor, or
        // CosineAnnealingLR.get_lr in initial mode -> lr unchanged.
        let mut lr = if warmup > 0 { base_lr * s } else { base_lr };
        lrs.push(lr);
        for k in 1..=total_steps {
            lr = if k < warmup {
                // LinearLR.get_lr, recursive form (end_factor = 1.0).
                lr * (1.0 + (1.0 - s) / (warmup as f64 * s + (k - 1) as f64 * (1.0 - s)))
            } else if k == warmup {
                // SequentialLR at the milestone: CosineAnnealingLR._update_lr(0) -> closed form.
                eta_min + (base_lr - eta_min) * (1.0 + (PI * 0.0 / t_max).cos()) / 2.0
            } else {
                // CosineAnnealingLR.get_lr, recursive form (the restart branch
                // `(last_epoch - 1 - T_max) % (2 * T_max) == 0` first fires past total_steps).
                let c = (k - warmup) as f64;
                (1.0 + (PI * c / t_max).cos()) / (1.0 + (PI * (c - 1.0) / t_max).cos())
                    * (lr - eta_min)
                    + eta_min
            };
            lrs.push(lr);
        }
        Ok(Self {
            config: *config,
            total_steps,
            warmup_steps: warmup,
            lrs,
        })
    }

    /// The configuration the schedule was built from.
    pub fn config(&self) -> &CosineWarmupConfig {
        &self.config
    }

    /// The warm-up length in steps (the `SequentialLR` milestone).
    pub fn warmup_steps(&self) -> usize {
        self.warmup_steps
    }
}

impl Schedule for CosineWarmup {
    fn total_steps(&self) -> usize {
        self.total_steps
    }

    fn lr(&self, step: usize) -> Option<f64> {
        self.lrs.get(step).copied()
    }

    fn beta1(&self, step: usize) -> Option<f64> {
        (step <= self.total_steps).then_some(self.config.beta1)
    }
}
