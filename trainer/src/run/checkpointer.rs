//! The checkpointer of a run and its policy: a resumable checkpoint (`checkpoints/last`, with
//! the optimizer) every `checkpoint_every` optimizer steps and at every epoch's end, and the
//! best-validation weights (`checkpoints/best`, without it) whenever validation improves. Only
//! the writer (rank 0) saves; a checkpoint is written whole or not at all
//! ([`crate::checkpoint::save`]).

use std::path::{Path, PathBuf};

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
}

impl Checkpointer {
    pub(super) fn new(out: &Path, every_steps: usize) -> Self {
        Checkpointer {
            out: out.to_path_buf(),
            every_steps,
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
        step.is_multiple_of(self.every_steps)
    }

    /// Saves `student` (with `optimizer` into `Last`) and the sidecar `info`.
    pub(super) fn save(
        &self,
        slot: Slot,
        student: &Student,
        optimizer: &Optimizer,
        info: CheckpointInfo,
    ) -> Result<()> {
        let optimizer = (slot == Slot::Last).then_some(optimizer);
        checkpoint::save(&self.dir(slot), student, "trained", optimizer, info).map(|_| ())
    }
}
