//! How many processes a run is: one, or one rank of a data-parallel group ([`Ddp`]). Everything
//! a step does beyond the single process — averaging gradients, adding up the step's sums and
//! validation counts, bringing skipped rows to rank 0 — goes through this one type, which is a
//! no-op for a single process, so the loop has no rank checks of its own.

use std::time::Duration;

use cfkit_distributed::DistConfig;
use tch::{Device, Tensor};

use super::ddp::Ddp;
use super::deferred::DeferredStats;
use super::progress::Progress;
use super::record::DistributedRecord;
use super::StepPlan;
use crate::data::Skipped;
use crate::error::Result;
use crate::student::Student;

/// One process, or one rank of several.
pub(super) enum Parallel {
    Single,
    Data(Ddp),
}

impl Parallel {
    /// A single process for `dist` `None`; else meets the other ranks (see [`Ddp::start`]).
    pub(super) fn start(dist: Option<&DistConfig>, config_hash: &str) -> Result<Self> {
        Ok(match Ddp::start(dist, config_hash)? {
            Some(d) => Parallel::Data(d),
            None => Parallel::Single,
        })
    }

    pub(super) fn rank(&self) -> usize {
        match self {
            Parallel::Single => 0,
            Parallel::Data(d) => d.rank(),
        }
    }

    pub(super) fn world(&self) -> usize {
        match self {
            Parallel::Single => 1,
            Parallel::Data(d) => d.world(),
        }
    }

    /// Whether this process writes the run directory (rank 0, or the only process).
    pub(super) fn is_writer(&self) -> bool {
        self.rank() == 0
    }

    /// Rank 0's `flag` (whether to resume), on every rank.
    pub(super) fn rank0_flag(&self, flag: bool) -> Result<bool> {
        match self {
            Parallel::Single => Ok(flag),
            Parallel::Data(d) => d.rank0_flag(flag),
        }
    }

    /// Once every rank holds its model and position: rank 0's weights everywhere and one
    /// position.
    pub(super) fn start_together(&self, student: &Student, progress: &Progress) -> Result<()> {
        match self {
            Parallel::Single => Ok(()),
            Parallel::Data(d) => d.start_together(student, progress),
        }
    }

    /// The end of an optimizer step's micro-batches: every rank's gradients of `params`
    /// averaged, the step's sums (read from `stats`, the one read per step of a data-parallel
    /// run) added up over the ranks and put back, and the skipped rows gathered on rank 0. A
    /// single process leaves its sums on the device.
    pub(super) fn finish_step(
        &self,
        params: &[Tensor],
        stats: &mut DeferredStats,
        skipped: Vec<Skipped>,
    ) -> Result<Vec<Skipped>> {
        match self {
            Parallel::Single => Ok(skipped),
            Parallel::Data(d) => {
                d.average_gradients(params)?;
                let local = stats.take_step_sums()?;
                stats.sums(d.sum_step(local)?);
                d.gather_skipped(skipped)
            }
        }
    }

    /// This rank's share of `rows` (every `world`-th, from its rank).
    pub(super) fn share<T: Copy>(&self, rows: &[T]) -> Vec<T> {
        rows.iter()
            .skip(self.rank())
            .step_by(self.world())
            .copied()
            .collect()
    }

    /// Validation counts (rows, correct) and skipped rows of every rank.
    pub(super) fn gather_validation(
        &self,
        n: usize,
        correct: usize,
        skipped: Vec<Skipped>,
    ) -> Result<(usize, usize, Vec<Skipped>)> {
        match self {
            Parallel::Single => Ok((n, correct, skipped)),
            Parallel::Data(d) => {
                let (n, c) = d.sum_counts(n, correct)?;
                Ok((n, c, d.gather_skipped(skipped)?))
            }
        }
    }

    /// What `run.json` records of the ranks (`None` for a single process).
    pub(super) fn record(
        &self,
        plan: &StepPlan,
        device: Device,
        timeout: Option<Duration>,
    ) -> Option<DistributedRecord> {
        match self {
            Parallel::Single => None,
            Parallel::Data(d) => {
                Some(d.record(plan, device, timeout.map_or(0.0, |t| t.as_secs_f64())))
            }
        }
    }
}
