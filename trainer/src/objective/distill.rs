//! The distillation family of objectives, `ft-fd` and `ft-kd`: cross-entropy on the clean images
//! plus a weighted term between the student and a frozen teacher on the distillation images `x'`
//! (the clean images, or their counterfactuals). The teacher's side comes from counterfactual
//! shards (offline: stored variants and teacher features, no teacher forward in the loop) or is
//! computed at every step (online: the student's CAM, in-batch donors, the teacher's forward).
//! The student sees the clean and the counterfactual batch in one forward (`[x; x']`, 2N
//! images): no image attends to another, so this equals two forwards.

use cfkit_counterfactual::strategy::{FillKind, Strategy};
use cfkit_counterfactual::token_drop::dropped_features;
use tch::{Device, Tensor};

use super::losses::{cross_entropy, feature_mse, kd_kl};
use super::{online, setup, StepLoss};
use crate::config::{DistillConfig, DistillImages, DistillMode, Method, TrainConfig};
use crate::data::{Batch, BatchExtras, SplitSource, StoredStrategy, TargetSpec};
use crate::error::{Result, TrainError};
use crate::run::record::{DistillRecord, ObjectiveRecord, StoredVariants, TeacherRecord};
use crate::student::Student;

/// The term between student and teacher.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Term {
    /// `ft-fd`: MSE of the projected features, mean over N·D.
    Features,
    /// `ft-kd`: `T²·KL` of the logits at temperature `T` (the teacher's logits from its head).
    Logits { temperature: f64 },
}

/// A distillation objective, set up.
pub(crate) struct Distillation {
    method: Method,
    pub(super) cfg: DistillConfig,
    term: Term,
    /// The counterfactual strategy (masked images).
    pub(super) strategy: Option<Strategy>,
    /// The frozen teacher (online mode, and KD for its head).
    pub(super) teacher: Option<Student>,
    teacher_record: Option<TeacherRecord>,
    /// Offline masked distillation: how the stored variants cover the epochs.
    stored_variants: Option<StoredVariants>,
    seed: u64,
    /// The data-parallel rank (0 for a single process): online draws of rank r > 0 take their
    /// own seeds, as each rank draws from its own rows.
    rank: usize,
}

/// What the distillation term of one batch compares with.
pub(super) struct DistillTargets {
    /// The distillation images x' ([N, 3, S, S], CLIP-normalised); `None`: the clean images.
    pub(super) images: Option<Tensor>,
    /// No-fill counterfactuals: [N, P] bool, masked keys hidden in the student as in the teacher.
    pub(super) key_mask: Option<Tensor>,
    /// The teacher's features of x': [N, E].
    pub(super) features: Tensor,
}

pub(super) fn missing(batch: &Batch, what: &str) -> TrainError {
    TrainError::Data(format!("batch {} has no {what}", batch.index))
}

impl Distillation {
    /// Sets up `[distill]` `d` of `cfg` against the training split: the strategy, the stored
    /// variants (offline masked), the teacher (online, and KD).
    pub(super) fn new(
        cfg: &TrainConfig,
        d: &DistillConfig,
        source: &SplitSource,
        device: Device,
        rank: usize,
    ) -> Result<Self> {
        let method = cfg.train.method;
        let strategy = setup::strategy(d, source)?;
        let stored_variants = match (&strategy, d.mode) {
            (Some(_), DistillMode::Offline) => setup::stored_variants(cfg, d, source),
            _ => None,
        };
        let (teacher, teacher_record) = if d.mode == DistillMode::Online || method == Method::FtKd {
            let dir = cfg.teacher_dir().ok_or_else(|| {
                TrainError::Config("[distill] teacher (a checkpoint directory) is required".into())
            })?;
            let (t, record) = setup::teacher(dir, d, source, device)?;
            (Some(t), Some(record))
        } else {
            (None, None)
        };
        Ok(Distillation {
            method,
            cfg: d.clone(),
            term: match method {
                Method::FtKd => Term::Logits {
                    temperature: d.temperature,
                },
                _ => Term::Features,
            },
            strategy,
            teacher,
            teacher_record,
            stored_variants,
            seed: cfg.train.seed,
            rank,
        })
    }

    /// What the loader must put into each batch of `epoch`: the pixels online (the draw refills
    /// them), the stored targets offline.
    pub(super) fn extras(&self, epoch: usize) -> BatchExtras {
        match self.cfg.mode {
            DistillMode::Online => BatchExtras {
                pixels: self.cfg.images == DistillImages::Masked,
                targets: None,
            },
            DistillMode::Offline => BatchExtras {
                pixels: false,
                targets: Some(TargetSpec {
                    strategy: self.strategy.map(|s| StoredStrategy {
                        name: s.to_string(),
                        no_fill: s.fill == FillKind::None,
                    }),
                    choice: self.cfg.variant,
                    seed: self.seed,
                    epoch: epoch as u64,
                }),
            },
        }
    }

    pub(super) fn record(&self) -> ObjectiveRecord {
        ObjectiveRecord {
            method: self.method,
            distill: Some(DistillRecord {
                loss: match self.term {
                    Term::Logits { .. } => {
                        "ce + weight * T^2 * KL(teacher || student), batchmean".into()
                    }
                    Term::Features => {
                        "ce + weight * MSE(student feature, teacher feature), mean over N*D".into()
                    }
                },
                distill: self.cfg.clone(),
                strategy: self.strategy.map(|s| s.to_string()),
                teacher: self.teacher_record.clone(),
                stored_variants: self.stored_variants,
            }),
        }
    }

    /// The loss of one (non-empty) micro-batch of `epoch`.
    pub(super) fn step(&self, student: &Student, batch: &Batch, epoch: usize) -> Result<StepLoss> {
        let x = &batch.images;
        let mut times = online::Times::default();
        let (targets, clean) = match self.cfg.mode {
            DistillMode::Offline => (self.offline_targets(batch)?, None),
            DistillMode::Online => {
                let seed =
                    online::rank_seed(online::step_seed(self.seed, epoch, batch.index), self.rank);
                online::targets(self, student, batch, seed, &mut times)?
            }
        };
        let (clean_f, cf_f) =
            student_features(student, x, targets.images, targets.key_mask, clean)?;
        let t_feat = targets.features;
        if cf_f.size() != t_feat.size() {
            return Err(TrainError::Data(format!(
                "the student's features are {:?}, the teacher's {:?}: distillation needs the same \
                 projection size",
                cf_f.size(),
                t_feat.size()
            )));
        }
        let t_feat = t_feat.to_kind(cf_f.kind());
        let logits = student.head.forward(&clean_f);
        let ce = cross_entropy(&logits, &batch.labels);
        let distill = match self.term {
            Term::Logits { temperature } => {
                let teacher = self
                    .teacher
                    .as_ref()
                    .ok_or_else(|| missing(batch, "teacher"))?;
                let t_logits = {
                    let _g = tch::no_grad_guard();
                    teacher.head.forward(&t_feat)
                };
                kd_kl(&student.head.forward(&cf_f), &t_logits, temperature)
            }
            Term::Features => feature_mse(&cf_f, &t_feat),
        };
        let loss = &ce + &distill * self.cfg.weight;
        Ok(StepLoss {
            distill: Some(distill.detach()),
            loss,
            logits,
            cam_seconds: times.cam,
            teacher_seconds: times.teacher,
        })
    }

    /// Offline targets: stored teacher features, and for masked images the stored variant.
    fn offline_targets(&self, batch: &Batch) -> Result<DistillTargets> {
        let t = batch
            .targets
            .as_ref()
            .ok_or_else(|| missing(batch, "teacher targets"))?;
        let images = match self.cfg.images {
            DistillImages::Clean => None,
            DistillImages::Masked => Some(
                t.images
                    .as_ref()
                    .ok_or_else(|| missing(batch, "counterfactual images"))?
                    .shallow_clone(),
            ),
        };
        Ok(DistillTargets {
            images,
            key_mask: t.key_mask.as_ref().map(Tensor::shallow_clone),
            features: t.features.shallow_clone(),
        })
    }
}

/// The student's features of the clean images and of the distillation images: the clean
/// features of the online CAM pass when there is one (`clean`); no-fill counterfactuals by token
/// drop (equal to hiding their masked keys, at the kept fraction's cost); otherwise clean and
/// counterfactual images in one forward (`[x; x']`: no image attends to another, so this equals
/// two forwards). [N, 3, S, S] (+ [N, 3, S, S], [N, P]) -> ([N, E], [N, E]).
fn student_features(
    student: &Student,
    x: &Tensor,
    cf_x: Option<Tensor>,
    key_mask: Option<Tensor>,
    clean: Option<Tensor>,
) -> Result<(Tensor, Tensor)> {
    let Some(cx) = cf_x else {
        let f = match clean {
            Some(f) => f,
            None => student.features(x)?,
        };
        return Ok((f.shallow_clone(), f));
    };
    let vision = &student.vision;
    let cf = match &key_mask {
        Some(mask) => Some(dropped_features(vision, &cx, mask)?),
        None if clean.is_some() => Some(vision.features(&cx)?),
        None => None,
    };
    Ok(match (clean, cf) {
        (Some(c), Some(f)) => (c, f),
        (None, Some(f)) => (student.features(x)?, f),
        (_, None) => {
            let n = x.size()[0];
            let f = vision.features(&Tensor::cat(&[x, &cx], 0))?;
            (f.narrow(0, 0, n), f.narrow(0, n, n))
        }
    })
}

#[cfg(test)]
impl Distillation {
    /// An online `ft-fd` objective over `teacher` without a config file (tests).
    pub(super) fn online_fd_for_tests(cfg: DistillConfig, teacher: Student, seed: u64) -> Self {
        Distillation {
            method: Method::FtFd,
            strategy: cfg.strategy,
            term: Term::Features,
            cfg,
            teacher: Some(teacher),
            teacher_record: None,
            stored_variants: None,
            seed,
            rank: 0,
        }
    }
}
