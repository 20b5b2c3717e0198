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

use std::f64::consts::PI;
use std::fmt;

use serde::{Deserialize, Serialize};

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

fn check(
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

fn check_beta(name: &'static str, value: f64) -> Result<(), ScheduleError> {
    // torch.optim.Adam/AdamW: "Invalid beta parameter at index 0" unless 0.0 <= beta < 1.0.
    check(name, value, (0.0..1.0).contains(&value), "0 <= value < 1")
}

// ---------------------------------------------------------------------------------------------
// One-cycle
// ---------------------------------------------------------------------------------------------

/// `OneCycleLR` default `div_factor` (torch 2.13); also the recipe's "start lr/25" (DESIGN.md §3).
pub const ONE_CYCLE_DIV_FACTOR: f64 = 25.0;
/// `OneCycleLR` default `final_div_factor`; also the recipe's "final start/1e4" (DESIGN.md §3).
pub const ONE_CYCLE_FINAL_DIV_FACTOR: f64 = 1e4;
/// `OneCycleLR` default `base_momentum`; the recipe's β1 low point 0.85 (DESIGN.md §3).
pub const ONE_CYCLE_BASE_MOMENTUM: f64 = 0.85;
/// `OneCycleLR` default `max_momentum`; the recipe's β1 start/end 0.95 (DESIGN.md §3).
pub const ONE_CYCLE_MAX_MOMENTUM: f64 = 0.95;
/// `OneCycleLR` default `pct_start` (torch). The paper recipe uses [`RECIPE_PCT_START`] instead.
pub const TORCH_PCT_START: f64 = 0.3;
/// The paper recipe's warm-up fraction, "2 % warm-up" (DESIGN.md §3).
pub const RECIPE_PCT_START: f64 = 0.02;
/// The paper recipe's peak learning rate, "AdamW lr 3e-5" (DESIGN.md §3).
pub const RECIPE_MAX_LR: f64 = 3e-5;

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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
fn annealing_cos(start: f64, end: f64, pct: f64) -> f64 {
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

    /// `max_lr / div_factor`: the lr at step 0 when the warm-up phase is at least one step long.
    pub fn initial_lr(&self) -> f64 {
        self.initial_lr
    }

    /// `initial_lr / final_div_factor`: the lr at step `total_steps - 1`.
    pub fn min_lr(&self) -> f64 {
        self.min_lr
    }

    /// The (fractional) step at which the warm-up phase ends and the lr peaks:
    /// `pct_start * total_steps - 1`, as torch computes it.
    pub fn warmup_end(&self) -> f64 {
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

// ---------------------------------------------------------------------------------------------
// Cosine with linear warm-up
// ---------------------------------------------------------------------------------------------

/// torch `LinearLR`'s default `start_factor` (1/3).
pub const LINEAR_LR_START_FACTOR: f64 = 1.0 / 3.0;
/// torch `CosineAnnealingLR`'s default `eta_min`.
pub const COSINE_ETA_MIN: f64 = 0.0;
/// torch `Adam`/`AdamW`'s default `betas[0]`.
pub const ADAM_BETA1: f64 = 0.9;

fn default_start_factor() -> f64 {
    LINEAR_LR_START_FACTOR
}
fn default_beta1() -> f64 {
    ADAM_BETA1
}

/// Parameters of [`CosineWarmup`]. The warm-up length is either `warmup_steps` or `warmup_pct` of
/// the run, rounded up (`ceil(total_steps * warmup_pct)`, as Hugging Face's
/// `TrainingArguments.get_warmup_steps` does); exactly one must be set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
    pub fn warmup_steps_for(&self, total_steps: usize) -> Result<usize, ScheduleError> {
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

// ---------------------------------------------------------------------------------------------
// Config and dispatch
// ---------------------------------------------------------------------------------------------

/// A schedule as written in a cfkit config: `{"kind": "one-cycle", "max_lr": 3e-5,
/// "pct_start": 0.02}` or `{"kind": "cosine-warmup", "base_lr": 1e-4, "warmup_pct": 0.05}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one_cycle(max_lr: f64, pct_start: f64, total: usize) -> Result<OneCycle, ScheduleError> {
        OneCycleConfig {
            max_lr,
            pct_start,
            ..OneCycleConfig::paper_recipe()
        }
        .build(total)
    }

    #[test]
    fn one_cycle_recipe_shape() {
        let s = OneCycleConfig::paper_recipe().build(1000).unwrap();
        // Warm-up ends at 0.02 * 1000 - 1 = 19 (an integer): exact peak there.
        assert_eq!(s.warmup_end(), 19.0);
        assert_eq!(s.lr(19), Some(3e-5));
        assert_eq!(s.beta1(19), Some(0.85));
        // Start: initial lr (up to cos(0) rounding, as in torch) and max momentum.
        assert!((s.lr(0).unwrap() - 3e-5 / 25.0).abs() < 1e-20);
        assert_eq!(s.beta1(0), Some(0.95));
        // The last step used reaches min_lr and max momentum exactly.
        assert_eq!(s.lr(999), Some(3e-5 / 25.0 / 1e4));
        assert_eq!(s.beta1(999), Some(0.95));
        // Step total_steps exists in torch (lr climbing back), beyond it torch raises.
        assert!(s.lr(1000).unwrap() > s.lr(999).unwrap());
        assert_eq!(s.lr(1001), None);
        assert_eq!(s.beta1(1001), None);
        assert_eq!(s.lr(usize::MAX), None);
        // Monotone up, then down.
        for k in 1..=19 {
            assert!(s.lr(k).unwrap() > s.lr(k - 1).unwrap(), "step {k}");
        }
        for k in 20..=999 {
            assert!(s.lr(k).unwrap() < s.lr(k - 1).unwrap(), "step {k}");
        }
    }

    #[test]
    fn one_cycle_single_step() {
        // total_steps 1: warm-up end 0.02 - 1 < 0, so step 0 is the end of the anneal phase.
        let s = one_cycle(1.0, 0.02, 1).unwrap();
        assert_eq!(s.lr(0), Some(1.0 / 25.0 / 1e4));
        assert_eq!(s.beta1(0), Some(0.95));
        assert!(s.lr(1).is_some());
        assert_eq!(s.lr(2), None);
        assert_eq!(s.total_steps(), 1);
    }

    #[test]
    fn one_cycle_warmup_shorter_than_a_step() {
        // 0.02 * 7 - 1 = -0.86: every step is in the anneal phase; max_lr and initial_lr are never
        // reached and the first lr is already below the peak.
        let s = one_cycle(1.0, 0.02, 7).unwrap();
        assert!(s.warmup_end() < 0.0);
        let lr0 = s.lr(0).unwrap();
        assert!(lr0 < 1.0 && lr0 > 0.9);
        assert!(s.lr(1).unwrap() < lr0);
        assert!(s.beta1(0).unwrap() > 0.85);
        // Warm-up end in (0, 1): step 0 is warm-up (initial lr), step 1 already annealing.
        let s = one_cycle(1.0, 0.15, 10).unwrap();
        assert_eq!(s.warmup_end(), 0.5);
        assert!((s.lr(0).unwrap() - 0.04).abs() < 1e-15);
        assert!(s.lr(1).unwrap() < 1.0);
    }

    #[test]
    fn one_cycle_zero_length_warmup_is_an_error() {
        // 0.02 * 50 == 1.0 exactly: torch raises ZeroDivisionError at construction.
        assert_eq!(
            one_cycle(1.0, 0.02, 50),
            Err(ScheduleError::ZeroLengthWarmup {
                pct_start: 0.02,
                total_steps: 50
            })
        );
        assert!(one_cycle(1.0, 0.02, 51).is_ok());
        assert!(one_cycle(1.0, 0.5, 2).is_err());
        assert!(one_cycle(1.0, 1.0, 1).is_err());
    }

    #[test]
    fn one_cycle_pct_start_bounds() {
        // pct_start 1: no anneal phase; fine up to total_steps - 1, torch divides by zero at total.
        let s = one_cycle(1.0, 1.0, 5).unwrap();
        assert_eq!(s.lr(4), Some(1.0));
        assert_eq!(s.lr(5), None);
        assert_eq!(s.beta1(5), None);
        // pct_start 0: warm-up end -1, so the anneal phase starts at the peak at step *-1*: step 0
        // is already one step into the anneal (pct 1/5), below max_lr.
        let s = one_cycle(1.0, 0.0, 5).unwrap();
        assert_eq!(s.warmup_end(), -1.0);
        assert_eq!(s.lr(0), Some(annealing_cos(1.0, 1.0 / 25.0 / 1e4, 0.2)));
        assert!(s.lr(0).unwrap() < 1.0);
        assert_eq!(s.lr(4), Some(1.0 / 25.0 / 1e4));
    }

    #[test]
    fn one_cycle_invalid_configs() {
        let base = OneCycleConfig::paper_recipe();
        assert_eq!(base.build(0), Err(ScheduleError::ZeroTotalSteps));
        let bad = [
            OneCycleConfig {
                pct_start: 1.5,
                ..base
            },
            OneCycleConfig {
                pct_start: -0.1,
                ..base
            },
            OneCycleConfig {
                pct_start: f64::NAN,
                ..base
            },
            OneCycleConfig {
                max_lr: 0.0,
                ..base
            },
            OneCycleConfig {
                max_lr: -1.0,
                ..base
            },
            OneCycleConfig {
                max_lr: f64::INFINITY,
                ..base
            },
            OneCycleConfig {
                div_factor: 0.0,
                ..base
            },
            OneCycleConfig {
                final_div_factor: 0.0,
                ..base
            },
            OneCycleConfig {
                base_momentum: 1.0,
                ..base
            },
            OneCycleConfig {
                max_momentum: -0.5,
                ..base
            },
        ];
        for cfg in bad {
            let err = cfg.build(100).unwrap_err();
            assert!(
                matches!(err, ScheduleError::OutOfRange { .. }),
                "{cfg:?}: {err}"
            );
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn cosine_warmup_shape() {
        let cfg = CosineWarmupConfig {
            min_lr: 1e-3,
            ..CosineWarmupConfig::with_warmup_steps(1.0, 10)
        };
        let s = cfg.build(100).unwrap();
        assert_eq!(s.lr(0), Some(1.0 / 3.0));
        assert_eq!(s.lr(10), Some(1.0)); // min_lr + (base_lr - min_lr), exact here
        assert_eq!(s.lr(100), Some(1e-3));
        assert_eq!(s.lr(101), None);
        assert_eq!(s.beta1(100), Some(0.9));
        assert_eq!(s.beta1(101), None);
        for k in 1..=10 {
            assert!(s.lr(k).unwrap() > s.lr(k - 1).unwrap(), "step {k}");
        }
        for k in 11..=100 {
            assert!(s.lr(k).unwrap() < s.lr(k - 1).unwrap(), "step {k}");
        }
        // Linear warm-up: lr(k) = base * (s + (1 - s) k / warmup) up to rounding.
        for k in 0..10 {
            let closed = 1.0 / 3.0 + (2.0 / 3.0) * k as f64 / 10.0;
            assert!((s.lr(k).unwrap() - closed).abs() < 1e-15, "step {k}");
        }
    }

    #[test]
    fn cosine_warmup_edges() {
        // No warm-up: starts at base_lr.
        let s = CosineWarmupConfig::with_warmup_steps(0.5, 0)
            .build(1)
            .unwrap();
        assert_eq!(s.lr(0), Some(0.5));
        assert_eq!(s.lr(1), Some(0.0));
        assert_eq!(s.lr(2), None);
        // warmup_pct rounds up: ceil(7 * 0.3) = ceil(2.1) = 3.
        let s = CosineWarmupConfig::with_warmup_pct(0.5, 0.3)
            .build(7)
            .unwrap();
        assert_eq!(s.warmup_steps(), 3);
        assert_eq!(s.lr(3), Some(0.5));
    }

    #[test]
    fn cosine_warmup_invalid_configs() {
        let base = CosineWarmupConfig::with_warmup_steps(0.1, 5);
        assert_eq!(base.build(0), Err(ScheduleError::ZeroTotalSteps));
        assert_eq!(
            base.build(5),
            Err(ScheduleError::WarmupTooLong {
                warmup_steps: 5,
                total_steps: 5
            })
        );
        assert!(base.build(6).is_ok());
        assert_eq!(
            CosineWarmupConfig {
                warmup_pct: Some(0.1),
                ..base
            }
            .build(10),
            Err(ScheduleError::WarmupSpec)
        );
        assert_eq!(
            CosineWarmupConfig {
                warmup_steps: None,
                ..base
            }
            .build(10),
            Err(ScheduleError::WarmupSpec)
        );
        let bad = [
            CosineWarmupConfig {
                start_factor: 0.0,
                ..base
            },
            CosineWarmupConfig {
                start_factor: 1.5,
                ..base
            },
            CosineWarmupConfig {
                base_lr: 0.0,
                ..base
            },
            CosineWarmupConfig {
                min_lr: 0.2,
                ..base
            },
            CosineWarmupConfig {
                min_lr: -1e-9,
                ..base
            },
            CosineWarmupConfig { beta1: 1.0, ..base },
            CosineWarmupConfig::with_warmup_pct(0.1, 1.0),
            CosineWarmupConfig::with_warmup_pct(0.1, f64::NAN),
        ];
        for cfg in bad {
            let err = cfg.build(100).unwrap_err();
            assert!(
                matches!(err, ScheduleError::OutOfRange { .. }),
                "{cfg:?}: {err}"
            );
        }
    }

    #[test]
    fn any_schedule_dispatches() {
        let s = ScheduleConfig::default().build(1000).unwrap();
        let direct = OneCycleConfig::paper_recipe().build(1000).unwrap();
        assert_eq!(s.total_steps(), 1000);
        for k in [0, 19, 500, 999, 1000, 1001] {
            assert_eq!(s.lr(k), direct.lr(k));
            assert_eq!(s.beta1(k), direct.beta1(k));
        }
        let cfg = ScheduleConfig::CosineWarmup(CosineWarmupConfig::with_warmup_steps(0.1, 5));
        assert!(cfg.validate().is_ok());
        let s = cfg.build(50).unwrap();
        assert!(matches!(s, AnySchedule::CosineWarmup(_)));
        assert_eq!(s.lr(5), Some(0.1));
        assert_eq!(s.beta1(0), Some(0.9));
    }
}
