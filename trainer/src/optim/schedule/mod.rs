//! Learning-rate and β1 (Adam momentum) schedules, computed exactly as PyTorch 2.13 computes them.
//!
//! Two schedules, each defined as a specific PyTorch scheduler so that a cfkit run and the paper's
//! PyTorch code set the same numbers on the optimizer:
//!
//! * [`OneCycle`]: `torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr, total_steps, pct_start,
//!   anneal_strategy="cos", cycle_momentum=True, base_momentum, max_momentum, div_factor,
//!   final_div_factor, three_phase=False)` on an Adam-family optimizer, where β1 (`betas[0]`) is
//!   the cycled momentum. This is the paper recipe (DESIGN.md §3 "Recipe").
//! * [`CosineWarmup`]: `SequentialLR(optimizer, [LinearLR(start_factor, end_factor=1.0,
//!   total_iters=warmup), CosineAnnealingLR(T_max=total_steps - warmup, eta_min=min_lr)],
//!   milestones=[warmup])`, the optimizer's lr being `base_lr`; β1 is constant.
//!
//! # Step indices
//!
//! `lr(k)` / `beta1(k)` is the value the optimizer's param group holds *before the k-th optimizer
//! step* (k counted from 0): the value after constructing the torch scheduler for k = 0, after k
//! calls to `scheduler.step()` otherwise. A run of `total_steps` optimizer steps reads
//! k = 0..total_steps-1. Both schedules are also defined at k = `total_steps` (the value torch
//! holds after the run's last `scheduler.step()`, which no update uses) and return `None` beyond
//! it: torch's `OneCycleLR` raises `ValueError` from `total_steps + 1` on, and cfkit ends the
//! cosine schedule there too (torch's `CosineAnnealingLR` would start climbing back up).
//!
//! # Exactness
//!
//! The arithmetic is torch's, operation for operation and in the same order (Python floats are
//! IEEE doubles; `math.cos` and Rust's `f64::cos` both call the C library's `cos`), including the
//! *recursive* forms torch's `LinearLR` and `CosineAnnealingLR` use when stepped one step at a
//! time (each value is derived from the previous one, not from a closed form, so rounding drifts
//! exactly as it does in torch). Against `tests/fixtures/schedule.json` (made by
//! `tests/schedule/make_fixtures.py` with torch 2.13) the values agree bit for bit.
//!
//! # Semantics worth knowing (all torch's)
//!
//! * One-cycle phase boundaries are *fractional*: the warm-up phase ends at step
//!   `pct_start * total_steps - 1` (a float), the anneal phase at `total_steps - 1`. Steps up to
//!   and including the warm-up end are in the warm-up phase. `max_lr` is reached exactly only
//!   when the warm-up end is an integer. Step 0 is `max_lr / div_factor` (up to rounding: torch
//!   evaluates the cosine at pct 0, giving e.g. 0.040000000000000036 for 1.0 / 25) only when the
//!   warm-up end is >= 0. With `pct_start * total_steps < 1` (e.g. 2 % of fewer than 50 steps)
//!   step 0 already lies in the anneal phase: the run starts *below* `max_lr` and never sees
//!   `initial_lr` or `max_lr`. Even `pct_start == 0` does not start at the peak: the anneal phase
//!   then starts at step -1, so step 0 is one step into it.
//! * `pct_start * total_steps == 1` exactly (e.g. 0.02 x 50) makes the warm-up phase zero steps
//!   long; torch divides 0 by 0 and raises `ZeroDivisionError` while constructing the scheduler,
//!   so [`OneCycle::new`] returns [`ScheduleError::ZeroLengthWarmup`].
//! * `pct_start == 1` leaves no anneal phase: steps 0..total_steps-1 are fine, step `total_steps`
//!   divides by zero in torch and is `None` here.
//! * One-cycle reaches `min_lr` (and β1 = `max_momentum`) at step `total_steps - 1`, the last
//!   step used; at step `total_steps` the cosine has gone past π and the lr is rising again. The
//!   cosine schedule instead reaches `min_lr` at step `total_steps`, so its last used lr is above
//!   `min_lr`.
//! * `total_steps == 1` one-cycle: step 0 is the end of the anneal phase, i.e. `min_lr`.
//! * Cosine warm-up: step 0 is `base_lr * start_factor` (or `base_lr` when `warmup == 0`); step
//!   `warmup` is `min_lr + (base_lr - min_lr)` (the closed form torch's `SequentialLR` switches to
//!   at a milestone); torch's `LinearLR` rejects `start_factor == 0`, so a warm-up "from 0" must
//!   use a small positive factor.
//!
//! Constants and their sources are documented where they are defined.

mod cosine_warmup;
mod one_cycle;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use cosine_warmup::*;
pub use one_cycle::*;

/// A per-step learning-rate and β1 schedule.
pub trait Schedule {
    /// The number of optimizer steps the schedule was built for.
    fn total_steps(&self) -> usize;
    /// Learning rate before optimizer step `step`; `None` for `step > total_steps()` (and at
    /// `total_steps()` where torch raises there, see the module docs).
    fn lr(&self, step: usize) -> Option<f64>;
    /// Adam β1 (`betas[0]`) before optimizer step `step`; `None` exactly where [`Schedule::lr`]
    /// is.
    fn beta1(&self, step: usize) -> Option<f64>;
}

/// Why a schedule could not be built.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ScheduleError {
    /// `total_steps` was 0 (torch: "Expected positive integer total_steps").
    ZeroTotalSteps,
    /// A parameter is NaN, infinite or outside its range.
    OutOfRange {
        name: &'static str,
        value: f64,
        expected: &'static str,
    },
    /// One-cycle with `pct_start * total_steps == 1`: a zero-length warm-up phase, on which torch's
    /// `OneCycleLR` raises `ZeroDivisionError` at construction.
    ZeroLengthWarmup { pct_start: f64, total_steps: usize },
    /// Cosine warm-up with `warmup_steps >= total_steps`: no cosine phase is left (torch's
    /// `CosineAnnealingLR` would divide by `T_max = 0` at the milestone).
    WarmupTooLong {
        warmup_steps: usize,
        total_steps: usize,
    },
    /// Cosine warm-up needs exactly one of `warmup_steps` and `warmup_pct`.
    WarmupSpec,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroTotalSteps => write!(f, "schedule: total_steps must be at least 1"),
            Self::OutOfRange {
                name,
                value,
                expected,
            } => write!(
                f,
                "schedule: {name} = {value} is invalid, expected {expected}"
            ),
            Self::ZeroLengthWarmup {
                pct_start,
                total_steps,
            } => write!(
                f,
                "one-cycle schedule: pct_start {pct_start} x total_steps {total_steps} = 1 gives a \
                 zero-length warm-up phase (PyTorch's OneCycleLR raises ZeroDivisionError); change \
                 pct_start or the number of steps"
            ),
            Self::WarmupTooLong {
                warmup_steps,
                total_steps,
            } => write!(
                f,
                "cosine-warmup schedule: warmup_steps ({warmup_steps}) must be less than \
                 total_steps ({total_steps})"
            ),
            Self::WarmupSpec => write!(
                f,
                "cosine-warmup schedule: set exactly one of warmup_steps and warmup_pct"
            ),
        }
    }
}

impl std::error::Error for ScheduleError {}

pub(crate) fn check(
    name: &'static str,
    value: f64,
    ok: bool,
    expected: &'static str,
) -> Result<(), ScheduleError> {
    if value.is_finite() && ok {
        Ok(())
    } else {
        Err(ScheduleError::OutOfRange {
            name,
            value,
            expected,
        })
    }
}

pub(crate) fn check_beta(name: &'static str, value: f64) -> Result<(), ScheduleError> {
    // torch.optim.Adam/AdamW: "Invalid beta parameter at index 0" unless 0.0 <= beta < 1.0.
    check(name, value, (0.0..1.0).contains(&value), "0 <= value < 1")
}

/// A schedule as written in a cfkit config: `{"kind": "one-cycle", "max_lr": 3e-5,
/// "pct_start": 0.02}` or `{"kind": "cosine-warmup", "base_lr": 1e-4, "warmup_pct": 0.05}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ScheduleConfig {
    OneCycle(OneCycleConfig),
    CosineWarmup(CosineWarmupConfig),
}

impl Default for ScheduleConfig {
    /// The paper recipe's one-cycle schedule.
    fn default() -> Self {
        Self::OneCycle(OneCycleConfig::paper_recipe())
    }
}

impl ScheduleConfig {
    /// Checks the parameters that do not depend on the number of steps.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        match self {
            Self::OneCycle(c) => c.validate(),
            Self::CosineWarmup(c) => c.validate(),
        }
    }

    /// Builds the schedule for a run of `total_steps` optimizer steps.
    pub fn build(&self, total_steps: usize) -> Result<AnySchedule, ScheduleError> {
        Ok(match self {
            Self::OneCycle(c) => AnySchedule::OneCycle(c.build(total_steps)?),
            Self::CosineWarmup(c) => AnySchedule::CosineWarmup(c.build(total_steps)?),
        })
    }
}

/// A built schedule of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum AnySchedule {
    OneCycle(OneCycle),
    CosineWarmup(CosineWarmup),
}

impl Schedule for AnySchedule {
    fn total_steps(&self) -> usize {
        match self {
            Self::OneCycle(s) => s.total_steps(),
            Self::CosineWarmup(s) => s.total_steps(),
        }
    }

    fn lr(&self, step: usize) -> Option<f64> {
        match self {
            Self::OneCycle(s) => s.lr(step),
            Self::CosineWarmup(s) => s.lr(step),
        }
    }

    fn beta1(&self, step: usize) -> Option<f64> {
        match self {
            Self::OneCycle(s) => s.beta1(step),
            Self::CosineWarmup(s) => s.beta1(step),
        }
    }
}
