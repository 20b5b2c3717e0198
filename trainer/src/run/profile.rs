//! `cfkit train --profile`: where this process's training time went, written to `profile.json`
//! at the end of the run. On CPU every op is synchronous, so wall-clock spans are the ops' own
//! time; on CUDA kernels run asynchronously and a span only ends when something waits for the
//! device (run with `CUDA_LAUNCH_BLOCKING=1` for a per-phase split there).

use std::path::Path;

use serde::Serialize;

use crate::error::Result;

/// Seconds per phase of the training steps (validation and evaluation not included).
#[derive(Debug, Default, Clone, Serialize, schemars::JsonSchema)]
pub struct Profile {
    /// Micro-batches (forward/backward passes) timed.
    pub micro_batches: u64,
    /// Optimizer steps timed.
    pub optimizer_steps: u64,
    /// Training images of this process.
    pub images: u64,
    /// Waiting for the loader's next batch (decode and assembly run ahead on other threads).
    pub loader_wait_s: f64,
    /// The objective's forward and loss, of which:
    pub forward_loss_s: f64,
    /// the student's CAM: online mode's clean pass (shared with the loss) and the CAM backward;
    pub cam_s: f64,
    /// the masks, donors and refill and the frozen teacher's forward (online mode);
    pub teacher_s: f64,
    /// and the rest: the student's forwards and the loss.
    pub student_forward_loss_s: f64,
    /// The backward passes.
    pub backward_s: f64,
    /// Data-parallel runs: averaging the gradients over the ranks (waiting for the slowest
    /// included) and adding up the step's statistics.
    pub allreduce_s: f64,
    /// Gradient clipping, AdamW and zeroing the gradients.
    pub optimizer_s: f64,
    /// Times the training loop read its statistics (losses, correct counts, gradient norms)
    /// back from the device, each a wait for the device: once per logging window, checkpoint and
    /// epoch end (and once per step in data-parallel runs, where the ranks add them up; within a
    /// window of thousands of steps, every 4,096 entries), never inside a step. Reads inside an objective are not counted: online counterfactuals compute
    /// their masks and refills on the host, which waits for the device every micro-batch.
    pub host_reads: u64,
}

impl Profile {
    /// Writes `profile.json` into `out`.
    pub fn write(mut self, out: &Path) -> Result<()> {
        self.student_forward_loss_s = self.forward_loss_s - self.cam_s - self.teacher_s;
        Ok(cfkit_outdir::write_json(&out.join("profile.json"), &self)?)
    }
}
