//! `torch.optim.lr_scheduler.OneCycleLR` (cosine anneal, cycled β1): the paper recipe's schedule.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::{check, check_beta, Schedule, ScheduleError};

/// `OneCycleLR` default `div_factor` (torch 2.13); also the recipe's "start lr/25" (DESIGN.md §3).
pub(crate) const ONE_CYCLE_DIV_FACTOR: f64 = 25.0;
/// `OneCycleLR` default `final_div_factor`; also the recipe's "final start/1e4" (DESIGN.md §3).
pub(crate) const ONE_CYCLE_FINAL_DIV_FACTOR: f64 = 1e4;
/// `OneCycleLR` default `base_momentum`; the recipe's β1 low point 0.85 (DESIGN.md §3).
pub(crate) const ONE_CYCLE_BASE_MOMENTUM: f64 = 0.85;
/// `OneCycleLR` default `max_momentum`; the recipe's β1 start/end 0.95 (DESIGN.md §3).
pub(crate) const ONE_CYCLE_MAX_MOMENTUM: f64 = 0.95;
/// `OneCycleLR` default `pct_start` (torch). The paper recipe uses [`RECIPE_PCT_START`] instead.
pub(crate) const TORCH_PCT_START: f64 = 0.3;
/// The paper recipe's warm-up fraction, "2 % warm-up" (DESIGN.md §3).
pub(crate) const RECIPE_PCT_START: f64 = 0.02;
/// The paper recipe's peak learning rate, "AdamW lr 3e-5" (DESIGN.md §3).
pub(crate) const RECIPE_MAX_LR: f64 = 3e-5;

fn default_div_factor() -> f64 {
    ONE_CYCLE_DIV_FACTOR
}
fn default_final_div_factor() -> f64 {
    ONE_CYCLE_FINAL_DIV_FACTOR
}
fn default_base_momentum() -> f64 {
    ONE_CYCLE_BASE_MOMENTUM
}
fn default_max_momentum() -> f64 {
    ONE_CYCLE_MAX_MOMENTUM
}

/// Parameters of [`OneCycle`], named as in torch's `OneCycleLR`. `max_lr` and `pct_start` have no
/// serde default (torch's `pct_start` default 0.3 differs from the recipe's 0.02, so a config must
/// say which it means); the other fields default to torch's defaults, which are also the recipe's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OneCycleConfig {
    /// Peak learning rate.
    pub max_lr: f64,
    /// Fraction of the steps spent increasing the lr, in [0, 1].
    pub pct_start: f64,
    /// Initial lr = `max_lr / div_factor`.
    #[serde(default = "default_div_factor")]
    pub div_factor: f64,
    /// Minimum (final) lr = `initial_lr / final_div_factor`.
    #[serde(default = "default_final_div_factor")]
    pub final_div_factor: f64,
    /// β1 at the peak lr.
    #[serde(default = "default_base_momentum")]
    pub base_momentum: f64,
    /// β1 at the start and the end.
    #[serde(default = "default_max_momentum")]
    pub max_momentum: f64,
}

impl OneCycleConfig {
    /// The paper recipe (DESIGN.md §3): peak 3e-5, 2 % warm-up, /25, /1e4, β1 0.95→0.85→0.95.
    pub const fn paper_recipe() -> Self {
        Self {
            max_lr: RECIPE_MAX_LR,
            pct_start: RECIPE_PCT_START,
            div_factor: ONE_CYCLE_DIV_FACTOR,
            final_div_factor: ONE_CYCLE_FINAL_DIV_FACTOR,
            base_momentum: ONE_CYCLE_BASE_MOMENTUM,
            max_momentum: ONE_CYCLE_MAX_MOMENTUM,
        }
    }

    /// torch's `OneCycleLR` defaults for the given peak (`pct_start` 0.3).
    pub const fn torch_defaults(max_lr: f64) -> Self {
        Self {
            max_lr,
            pct_start: TORCH_PCT_START,
            ..Self::paper_recipe()
        }
    }

    /// Checks the parameters that do not depend on the number of steps.
    ///
    /// torch checks only `0 <= pct_start <= 1`; cfkit also rejects NaN/infinite values, a
    /// non-positive `max_lr`, `div_factor` or `final_div_factor` (torch raises `ZeroDivisionError`
    /// on 0 and silently accepts negative ones) and momenta outside Adam's `[0, 1)`.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        check("max_lr", self.max_lr, self.max_lr > 0.0, "> 0")?;
        check(
            "pct_start",
            self.pct_start,
            (0.0..=1.0).contains(&self.pct_start),
            "0 <= pct_start <= 1",
        )?;
        check("div_factor", self.div_factor, self.div_factor > 0.0, "> 0")?;
        check(
            "final_div_factor",
            self.final_div_factor,
            self.final_div_factor > 0.0,
            "> 0",
        )?;
        check_beta("base_momentum", self.base_momentum)?;
        check_beta("max_momentum", self.max_momentum)?;
        Ok(())
    }

    /// Builds the schedule for a run of `total_steps` optimizer steps.
    pub fn build(&self, total_steps: usize) -> Result<OneCycle, ScheduleError> {
        OneCycle::new(self, total_steps)
    }
}

impl Default for OneCycleConfig {
    fn default() -> Self {
        Self::paper_recipe()
    }
}

/// torch's `OneCycleLR`, two phases, cosine annealing, β1 cycling (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct OneCycle {
    config: OneCycleConfig,
    total_steps: usize,
    /// `group["initial_lr"] = max_lr / div_factor`.
    initial_lr: f64,
    /// `group["min_lr"] = initial_lr / final_div_factor`.
    min_lr: f64,
    /// Phase 1 `end_step = float(pct_start * total_steps) - 1`.
    warmup_end: f64,
    /// Phase 2 `end_step = total_steps - 1` (a Python int, converted to float where it meets one).
    anneal_end: f64,
}

/// torch's `OneCycleLR._annealing_cos`: cosine from `start` (pct 0) to `end` (pct 1).
pub(super) fn annealing_cos(start: f64, end: f64, pct: f64) -> f64 {
    let cos_out = (PI * pct).cos() + 1.0;
    end + (start - end) / 2.0 * cos_out
}

impl OneCycle {
    /// Validates `config` and builds the schedule for `total_steps` optimizer steps.
    pub fn new(config: &OneCycleConfig, total_steps: usize) -> Result<Self, ScheduleError> {
        if total_steps == 0 {
            return Err(ScheduleError::ZeroTotalSteps);
        }
        config.validate()?;
        let initial_lr = config.max_lr / config.div_factor;
        let schedule = Self {
            config: *config,
            total_steps,
            initial_lr,
            min_lr: initial_lr / config.final_div_factor,
            warmup_end: config.pct_start * total_steps as f64 - 1.0,
            anneal_end: (total_steps - 1) as f64,
        };
        // torch computes step 0 while constructing the scheduler: 0 / 0 when the warm-up phase
        // ends at exactly 0.
        if schedule.phase(0).is_none() {
            return Err(ScheduleError::ZeroLengthWarmup {
                pct_start: config.pct_start,
                total_steps,
            });
        }
        Ok(schedule)
    }

    /// The configuration the schedule was built from.
    pub fn config(&self) -> &OneCycleConfig {
        &self.config
    }
    /// `initial_lr / final_div_factor`: the lr at step `total_steps - 1`.
    pub fn min_lr(&self) -> f64 {
        self.min_lr
    }

    /// The (fractional) step at which the warm-up phase ends and the lr peaks:
    /// `pct_start * total_steps - 1`, as torch computes it.
    #[cfg(test)]
    pub(crate) fn warmup_end(&self) -> f64 {
        self.warmup_end
    }

    /// `(warm-up phase?, pct)` for `step`, as in `OneCycleLR.get_lr`; `None` where torch raises.
    fn phase(&self, step: usize) -> Option<(bool, f64)> {
        if step > self.total_steps {
            return None; // torch: ValueError "Tried to step {step} times"
        }
        let step_num = step as f64;
        let (warmup, start_step, end_step) = if step_num <= self.warmup_end {
            (true, 0.0, self.warmup_end)
        } else {
            (false, self.warmup_end, self.anneal_end)
        };
        let denom = end_step - start_step;
        if denom == 0.0 {
            return None; // torch: ZeroDivisionError
        }
        Some((warmup, (step_num - start_step) / denom))
    }
}

impl Schedule for OneCycle {
    fn total_steps(&self) -> usize {
        self.total_steps
    }

    fn lr(&self, step: usize) -> Option<f64> {
        let (warmup, pct) = self.phase(step)?;
        Some(if warmup {
            annealing_cos(self.initial_lr, self.config.max_lr, pct)
        } else {
            annealing_cos(self.config.max_lr, self.min_lr, pct)
        })
    }

    fn beta1(&self, step: usize) -> Option<f64> {
        let (warmup, pct) = self.phase(step)?;
        let c = &self.config;
        Some(if warmup {
            annealing_cos(c.max_momentum, c.base_momentum, pct)
        } else {
            annealing_cos(c.base_momentum, c.max_momentum, pct)
        })
    }
}
