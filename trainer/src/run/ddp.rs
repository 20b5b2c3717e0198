//! What a rank of a data-parallel run does beyond a single process (libtorch's c10d through
//! cfkit-distributed): agree on the config, share rank 0's resume decision and weights, average the
//! gradients of every step, add up the step's statistics and validation counts, and bring every
//! rank's skipped rows to rank 0, which alone writes the run directory.
//!
//! The rows of each step are split by [`super::StepPlan::rank_order`]; the rest of the run (the
//! order of every epoch, variant choices, schedules, clipping, AdamW) is the single process's, so
//! `world` ranks of `b` rows train the weights of one process of `world·b` rows up to the order
//! of the floating-point sums.

use cfkit_distributed::{DistConfig, ProcessGroup};
use tch::{Device, Kind, Tensor};

use super::progress::{Progress, StepSums};
use super::record::DistributedRecord;
use crate::data::Skipped;
use crate::error::{Result, TrainError};
use crate::student::Student;

/// Gradient bucket size: torch DDP's default `bucket_cap_mb = 25`.
const BUCKET_BYTES: usize = 25 << 20;

/// This process's place in a data-parallel run.
pub(super) struct Ddp {
    pg: ProcessGroup,
}

fn dist_err(e: cfkit_distributed::DistError) -> TrainError {
    TrainError::Distributed(e.to_string())
}

impl Ddp {
    /// The start of a data-parallel rank (`dist` set; `None` for a single process): the meeting
    /// with the other ranks (with NCCL for CUDA gradients when `dist.nccl`) and the check that
    /// they all run the config of hash `config_hash`. The device is the caller's (a rank's own
    /// GPU on CUDA).
    pub(super) fn start(dist: Option<&DistConfig>, config_hash: &str) -> Result<Option<Self>> {
        let Some(cfg) = dist else {
            return Ok(None);
        };
        let d = Ddp {
            pg: ProcessGroup::init(cfg).map_err(dist_err)?,
        };
        d.agree("config hash (config file and --set overrides)", config_hash)?;
        Ok(Some(d))
    }

    /// Once every rank holds its model and position: rank 0's weights on every rank, and the
    /// same position everywhere (a rank that read another checkpoint fails here).
    pub(super) fn start_together(&self, student: &Student, progress: &Progress) -> Result<()> {
        let mut vars: Vec<_> = student.vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        self.broadcast_from_rank0(&vars.into_iter().map(|(_, t)| t).collect::<Vec<_>>())?;
        let p = progress;
        self.agree(
            "resume position (step/epoch/micro-batch)",
            &format!("{}/{}/{}", p.step, p.epoch, p.next_batch),
        )
    }

    pub(super) fn rank(&self) -> usize {
        self.pg.rank
    }

    pub(super) fn world(&self) -> usize {
        self.pg.world
    }

    /// Fails on every rank unless all hold the same `value`.
    pub(super) fn agree(&self, what: &str, value: &str) -> Result<()> {
        self.pg.agree(what, value).map_err(dist_err)
    }

    /// Rank 0's `flag`, on every rank.
    pub(super) fn rank0_flag(&self, flag: bool) -> Result<bool> {
        let mut t = Tensor::from_slice(&[i64::from(flag)]);
        self.pg.broadcast(&mut t, 0).map_err(dist_err)?;
        Ok(t.int64_value(&[0]) != 0)
    }

    /// Replaces every tensor of `tensors` by rank 0's (the weights at the start, so that every
    /// rank begins from the same point however its copy was made).
    pub(super) fn broadcast_from_rank0(&self, tensors: &[Tensor]) -> Result<()> {
        let _g = tch::no_grad_guard();
        for t in tensors {
            let mut cpu = t.to_device(Device::Cpu).contiguous();
            self.pg.broadcast(&mut cpu, 0).map_err(dist_err)?;
            t.shallow_clone().f_copy_(&cpu)?;
        }
        Ok(())
    }

    /// Averages the gradients of `params` over the ranks (bucketed). A parameter without a
    /// gradient yet (a rank whose every row so far was skipped) takes part with zeros.
    pub(super) fn average_gradients(&self, params: &[Tensor]) -> Result<()> {
        let missing: Vec<&Tensor> = params.iter().filter(|p| !p.grad().defined()).collect();
        if !missing.is_empty() {
            let zero = missing
                .iter()
                .map(|p| p.sum(Kind::Float) * 0.0)
                .reduce(|a, b| a + b)
                .expect("not empty");
            zero.backward();
        }
        let grads: Vec<Tensor> = params.iter().map(|p| p.grad()).collect();
        self.pg
            .all_reduce_mean(&grads, BUCKET_BYTES)
            .map_err(dist_err)
    }

    /// The step's sums over every rank.
    pub(super) fn sum_step(&self, s: StepSums) -> Result<StepSums> {
        let mut t = Tensor::from_slice(&s.to_array());
        self.pg.all_reduce_sum(&mut t).map_err(dist_err)?;
        let v: Vec<f64> = Vec::<f64>::try_from(&t)?;
        Ok(StepSums::from_array([v[0], v[1], v[2], v[3]]))
    }

    /// Validation counts (rows, correct) over every rank.
    pub(super) fn sum_counts(&self, n: usize, correct: usize) -> Result<(usize, usize)> {
        let mut t = Tensor::from_slice(&[n as i64, correct as i64]);
        self.pg.all_reduce_sum(&mut t).map_err(dist_err)?;
        Ok((t.int64_value(&[0]) as usize, t.int64_value(&[1]) as usize))
    }

    /// Every rank's skipped rows (rank order), so rank 0 can log them all. Skipped rows are
    /// rare, so the common case costs one all-reduce of the message lengths.
    pub(super) fn gather_skipped(&self, mine: Vec<Skipped>) -> Result<Vec<Skipped>> {
        let bytes = if mine.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(&mine).expect("skipped rows serialise")
        };
        let mut all = Vec::new();
        for (rank, msg) in self
            .pg
            .all_gather_bytes(&bytes)
            .map_err(dist_err)?
            .iter()
            .enumerate()
        {
            if msg.is_empty() {
                continue;
            }
            let v: Vec<Skipped> = serde_json::from_slice(msg)
                .map_err(|e| TrainError::Distributed(format!("rank {rank}'s skipped rows: {e}")))?;
            all.extend(v);
        }
        Ok(all)
    }

    /// What `run.json` records of the ranks.
    pub(super) fn record(
        &self,
        plan: &super::StepPlan,
        device: Device,
        timeout_s: f64,
    ) -> DistributedRecord {
        DistributedRecord {
            backend: self.pg.backend(device).to_string(),
            world_size: self.world(),
            global_batch: plan.batch_size,
            rank_batch: plan.rank_rows,
            rank_micro_batch: plan.micro,
            gradient_bucket_bytes: BUCKET_BYTES,
            timeout_s,
        }
    }
}
