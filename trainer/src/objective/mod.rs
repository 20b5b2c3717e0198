//! The training objective of each method family (DESIGN §3):
//!
//! * cross-entropy alone — `ft`, `lp`, `lp-ft`: `CE(student_logits(x), y)`;
//! * distillation ([`distill`]) — `ft-fd`: `CE + w · MSE(student_feature(x'),
//!   teacher_feature(x'))`; `ft-kd`: `CE + w · T²·KL(softmax(teacher_logits(x')/T) ‖
//!   softmax(student_logits(x')/T))`, with `x'` the clean image or its counterfactual, the
//!   teacher's side stored in counterfactual shards (offline) or computed at every step with the
//!   student's own CAM (online, [`online`]).

pub mod distill;
pub mod losses;
pub mod online;
mod setup;

use tch::{Device, Tensor};

use crate::config::{Method, TrainConfig};
use crate::data::{Batch, BatchExtras, SplitSource};
use crate::error::Result;
use crate::run::record::ObjectiveRecord;
use crate::student::Student;
use distill::Distillation;
use losses::cross_entropy;

/// A method's loss, with everything it needs loaded and checked.
pub(crate) enum Objective {
    /// `ft`, `lp`, `lp-ft`: cross-entropy on the clean images.
    CrossEntropy { method: Method },
    /// `ft-kd`, `ft-fd`: cross-entropy plus the weighted distillation term.
    Distillation(Box<Distillation>),
}

/// The loss of one micro-batch.
pub(crate) struct StepLoss {
    /// Total loss (scalar, with graph).
    pub loss: Tensor,
    /// The distillation term before weighting (0-dim, detached, on the device; not read).
    pub distill: Option<Tensor>,
    /// Student logits of the clean images [N, C] (for training accuracy).
    pub logits: Tensor,
    /// Seconds spent on the CAM and on the frozen teacher (online mode; the profile's split).
    pub cam_seconds: f64,
    pub teacher_seconds: f64,
}

impl Objective {
    /// The objective of `cfg`'s method for data-parallel rank `rank` (0 for a single process),
    /// checked against the training data, with its teacher loaded when it needs one.
    pub(crate) fn new(
        cfg: &TrainConfig,
        source: &SplitSource,
        device: Device,
        rank: usize,
    ) -> Result<Self> {
        let method = cfg.train.method;
        match cfg.distill.as_ref().filter(|_| method.distills()) {
            None => Ok(Objective::CrossEntropy { method }),
            Some(d) => Ok(Objective::Distillation(Box::new(Distillation::new(
                cfg, d, source, device, rank,
            )?))),
        }
    }

    /// Whether the objective has a distillation term.
    pub(crate) fn distills(&self) -> bool {
        matches!(self, Objective::Distillation(_))
    }

    /// What the loader must put into each batch of `epoch`.
    pub(crate) fn extras(&self, epoch: usize) -> BatchExtras {
        match self {
            Objective::CrossEntropy { .. } => BatchExtras::default(),
            Objective::Distillation(d) => d.extras(epoch),
        }
    }

    /// What `run.json` records of the objective.
    pub(crate) fn record(&self) -> ObjectiveRecord {
        match self {
            Objective::CrossEntropy { method } => ObjectiveRecord {
                method: *method,
                distill: None,
            },
            Objective::Distillation(d) => d.record(),
        }
    }

    /// The loss of one (non-empty) micro-batch of `epoch`.
    pub(crate) fn step(&self, student: &Student, batch: &Batch, epoch: usize) -> Result<StepLoss> {
        match self {
            Objective::CrossEntropy { .. } => {
                let logits = student.logits(&batch.images)?;
                let loss = cross_entropy(&logits, &batch.labels);
                Ok(StepLoss {
                    loss,
                    distill: None,
                    logits,
                    cam_seconds: 0.0,
                    teacher_seconds: 0.0,
                })
            }
            Objective::Distillation(d) => d.step(student, batch, epoch),
        }
    }
}
