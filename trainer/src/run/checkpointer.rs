//! The checkpointer of a run and its policy: a resumable checkpoint (`checkpoints/last`, with
//! the optimizer) every `checkpoint_every` optimizer steps, or once `checkpoint_minutes` have
//! passed since the last one, and at every epoch's end, and the
//! best-validation weights (`checkpoints/best`, without it) whenever validation improves. Only
//! the writer (rank 0) saves; a checkpoint is written whole or not at all
//! ([`crate::checkpoint::save`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::dir;
use crate::checkpoint::{self, CheckpointInfo};
use crate::error::Result;
use crate::optim::Optimizer;
use crate::student::Student;

/// Which checkpoint of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// Resumable: weights, head, optimizer state and the position.
    Last,
    /// The best validation top-1 so far: weights and head (what is evaluated).
    Best,
}

/// Where and when a run saves checkpoints.
pub(super) struct Checkpointer {
    out: PathBuf,
    every_steps: usize,
    every: Option<Duration>,
    /// When the last resumable checkpoint was written (or the run started).
    last_saved: Instant,
}

impl Checkpointer {
    pub(super) fn new(out: &Path, every_steps: usize, every_minutes: Option<f64>) -> Self {
        Checkpointer {
            out: out.to_path_buf(),
            every_steps,
            every: every_minutes.map(|m| Duration::from_secs_f64(m * 60.0)),
            last_saved: Instant::now(),
        }
    }

    /// The run directory.
    pub(super) fn out(&self) -> &Path {
        &self.out
    }

    pub(super) fn dir(&self, slot: Slot) -> PathBuf {
        self.out.join(match slot {
            Slot::Last => dir::LAST_DIR,
            Slot::Best => dir::BEST_DIR,
        })
    }

    /// Whether optimizer step `step` (counted from 1) ends with a resumable checkpoint.
    pub(super) fn due(&self, step: usize) -> bool {
        self.due_at(step, Instant::now())
    }

    /// [`Checkpointer::due`] at time `now`.
    fn due_at(&self, step: usize, now: Instant) -> bool {
        step.is_multiple_of(self.every_steps)
            || self
                .every
                .is_some_and(|d| now.duration_since(self.last_saved) >= d)
    }

    /// Saves `student` (with `optimizer` into `Last`) and the sidecar `info`.
    pub(super) fn save(
        &mut self,
        slot: Slot,
        student: &Student,
        optimizer: &Optimizer,
        info: CheckpointInfo,
    ) -> Result<()> {
        let resumable = slot == Slot::Last;
        let optimizer = resumable.then_some(optimizer);
        checkpoint::save(&self.dir(slot), student, "trained", optimizer, info)?;
        if resumable {
            self.last_saved = Instant::now();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_by_steps_or_by_time_whichever_comes_first() {
        let steps_only = Checkpointer::new(Path::new("x"), 100, None);
        let t0 = steps_only.last_saved;
        assert!(!steps_only.due_at(5, t0 + Duration::from_secs(3600)));
        assert!(steps_only.due_at(200, t0));
        let mut timed = Checkpointer::new(Path::new("x"), 1000, Some(0.5));
        let t0 = timed.last_saved;
        assert!(!timed.due_at(5, t0 + Duration::from_secs(29)));
        assert!(timed.due_at(5, t0 + Duration::from_secs(30)));
        assert!(timed.due_at(1000, t0), "steps still count");
        // After a save the clock starts again.
        timed.last_saved = t0 + Duration::from_secs(30);
        assert!(!timed.due_at(6, t0 + Duration::from_secs(45)));
        assert!(timed.due_at(7, t0 + Duration::from_secs(61)));
    }
}
