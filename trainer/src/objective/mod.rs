//! The training objective of each method (DESIGN §3):
//!
//! * `ft`, `lp`, `lp-ft`: `CE(student_logits(x), y)`.
//! * `ft-fd`: `CE + w · MSE(student_feature(x'), teacher_feature(x'))`, `x'` the clean image or
//!   its counterfactual.
//! * `ft-kd`: `CE + w · T²·KL(softmax(teacher_logits(x')/T) ‖ softmax(student_logits(x')/T))`.
//!
//! Offline, `x'` and the teacher's features come from counterfactual shards; online, `x'` is
//! drawn at every step with the student's own CAM and the frozen teacher is run on it. The
//! student sees the clean and the counterfactual batch in one forward (`[x; x']`, 2N images):
//! no image attends to another, so this equals two forwards.

pub mod losses;
pub mod online;

use cfkit_counterfactual::strategy::{FillKind, Strategy};
use cfkit_counterfactual::token_drop::dropped_features;
use tch::{Device, Kind, Tensor};

use crate::checkpoint;
use crate::config::{
    DistillConfig, DistillImages, DistillMode, Method, TrainConfig, VariantChoice,
};
use crate::data::{Batch, BatchExtras, SplitSource, StoredStrategy, TargetSpec};
use crate::error::{Result, TrainError};
use crate::student::Student;
use losses::{cross_entropy, feature_mse, kd_kl};

/// A method's loss, with everything it needs loaded and checked.
pub struct Objective {
    pub method: Method,
    seed: u64,
    /// The data-parallel rank (0 for a single process): online draws of rank r > 0 take their
    /// own seeds, as each rank draws from its own rows.
    rank: usize,
    distill: Option<Distill>,
}

struct Distill {
    cfg: DistillConfig,
    /// The counterfactual strategy (masked images).
    strategy: Option<Strategy>,
    /// The frozen teacher (online mode, and KD for its head).
    teacher: Option<Student>,
    teacher_record: serde_json::Value,
    /// Offline masked distillation: how the stored variants cover the epochs (run.json).
    variants_record: serde_json::Value,
}

/// What the distillation term of one batch compares with.
struct DistillTargets {
    /// The distillation images x' ([N, 3, S, S], CLIP-normalised); `None`: the clean images.
    images: Option<Tensor>,
    /// No-fill counterfactuals: [N, P] bool, masked keys hidden in the student as in the teacher.
    key_mask: Option<Tensor>,
    /// The teacher's features of x': [N, E].
    features: Tensor,
}

/// Offline masked distillation: the variants stored per image and whether every epoch sees fresh
/// counterfactuals (the paper draws new masks at every step; with `variant = "epoch"`, epoch e
/// uses variant e mod K, so K >= epochs keeps them fresh). Fewer is allowed, with a warning.
fn stored_variants(
    cfg: &TrainConfig,
    d: &DistillConfig,
    source: &SplitSource,
) -> serde_json::Value {
    let Some(k) = source.variants_per_strategy() else {
        return serde_json::Value::Null;
    };
    let epochs = cfg.train.epochs as u64;
    let fresh = d.variant == VariantChoice::Epoch && k >= epochs;
    if d.variant == VariantChoice::Epoch && k < epochs {
        eprintln!(
            "warning: '{}' stores {k} variant(s) per image and strategy for {epochs} epochs: \
             epoch e reuses the counterfactuals of epoch e - {k} (build with variants >= {epochs} \
             for fresh ones every epoch)",
            source.dir.display()
        );
    }
    serde_json::json!({"per_image": k, "epochs": epochs, "fresh_every_epoch": fresh})
}

fn missing(batch: &Batch, what: &str) -> TrainError {
    TrainError::Data(format!("batch {} has no {what}", batch.index))
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

/// Offline targets: stored teacher features, and for masked images the stored variant.
fn offline_targets(d: &Distill, batch: &Batch) -> Result<DistillTargets> {
    let t = batch
        .targets
        .as_ref()
        .ok_or_else(|| missing(batch, "teacher targets"))?;
    let images = match d.cfg.images {
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

/// The loss of one micro-batch.
pub struct StepLoss {
    /// Total loss (scalar, with graph).
    pub loss: Tensor,
    /// Cross-entropy on the clean images.
    pub ce: f64,
    /// The distillation term before weighting.
    pub distill: Option<f64>,
    /// Student logits of the clean images [N, C] (for training accuracy).
    pub logits: Tensor,
    /// Seconds spent on the CAM and on the frozen teacher (online mode; the profile's split).
    pub cam_seconds: f64,
    pub teacher_seconds: f64,
}

impl Objective {
    /// Checks the method against the training data and loads the teacher when one is needed.
    pub fn new(cfg: &TrainConfig, source: &SplitSource, device: Device) -> Result<Self> {
        let method = cfg.train.method;
        let Some(d) = cfg.distill.clone().filter(|_| method.distills()) else {
            return Ok(Objective {
                method,
                seed: cfg.train.seed,
                rank: 0,
                distill: None,
            });
        };
        let strategy = match (&d.strategy, d.images, d.mode) {
            (_, DistillImages::Clean, _) => None,
            (Some(s), DistillImages::Masked, _) => Some(*s),
            (None, DistillImages::Masked, DistillMode::Online) => {
                return Err(TrainError::Config(
                    "[distill] online masked distillation needs `strategy`".into(),
                ))
            }
            (None, DistillImages::Masked, DistillMode::Offline) => {
                let stored = source.strategies()?;
                match stored.as_slice() {
                    [one] => Some(one.parse::<Strategy>()?),
                    _ => {
                        return Err(TrainError::Config(format!(
                            "[distill] strategy: '{}' holds several strategies ({}); name one",
                            source.dir.display(),
                            stored.join(", ")
                        )))
                    }
                }
            }
        };
        if d.mode == DistillMode::Offline {
            let stored = source.strategies()?;
            if let Some(s) = &strategy {
                if !stored.contains(&s.to_string()) {
                    return Err(TrainError::Config(format!(
                        "[distill] strategy {s} is not in '{}' (it holds {})",
                        source.dir.display(),
                        stored.join(", ")
                    )));
                }
            }
        }
        let variants_record = match (&strategy, d.mode) {
            (Some(_), DistillMode::Offline) => stored_variants(cfg, &d, source),
            _ => serde_json::Value::Null,
        };
        let needs_teacher = d.mode == DistillMode::Online || method == Method::FtKd;
        let (teacher, teacher_record) = if needs_teacher {
            let dir = cfg.teacher_dir().ok_or_else(|| {
                TrainError::Config("[distill] teacher (a checkpoint directory) is required".into())
            })?;
            let (mut t, info) = checkpoint::load_student(dir, device)?;
            t.set_backbone_trainable(false);
            for (_, v) in t.vs.variables() {
                let _ = v.set_requires_grad(false);
            }
            if t.classes != source.classes {
                return Err(TrainError::checkpoint(
                    dir,
                    format!(
                        "the teacher's classes differ from split '{}' of '{}'",
                        source.split,
                        source.dir.display()
                    ),
                ));
            }
            if d.mode == DistillMode::Offline {
                if let Some(built) = source.teacher_head_blake3() {
                    if built != info.head_blake3 {
                        return Err(TrainError::checkpoint(
                            dir,
                            format!(
                                "its head (blake3 {}) is not the head the counterfactuals in '{}' \
                                 were built with ({built}); KD logits would not match the stored \
                                 features",
                                info.head_blake3,
                                source.dir.display()
                            ),
                        ));
                    }
                }
            }
            if d.mode == DistillMode::Online && t.config().image_size as u32 != source.image_size {
                return Err(TrainError::checkpoint(
                    dir,
                    format!(
                        "the teacher takes {} px images; split '{}' holds {} px",
                        t.config().image_size,
                        source.split,
                        source.image_size
                    ),
                ));
            }
            let record = serde_json::json!({
                "dir": dir,
                "weights_blake3": info.weights_blake3,
                "head_blake3": info.head_blake3,
            });
            (Some(t), record)
        } else {
            (None, serde_json::Value::Null)
        };
        Ok(Objective {
            method,
            seed: cfg.train.seed,
            rank: 0,
            distill: Some(Distill {
                cfg: d,
                strategy,
                teacher,
                teacher_record,
                variants_record,
            }),
        })
    }

    /// Whether the objective has a distillation term.
    pub fn distills(&self) -> bool {
        self.distill.is_some()
    }

    /// What the loader must put into each batch of `epoch`.
    pub fn extras(&self, epoch: usize) -> BatchExtras {
        let Some(d) = &self.distill else {
            return BatchExtras::default();
        };
        match d.cfg.mode {
            DistillMode::Online => BatchExtras {
                pixels: d.cfg.images == DistillImages::Masked,
                targets: None,
            },
            DistillMode::Offline => BatchExtras {
                pixels: false,
                targets: Some(TargetSpec {
                    strategy: d.strategy.map(|s| StoredStrategy {
                        name: s.to_string(),
                        no_fill: s.fill == FillKind::None,
                    }),
                    choice: d.cfg.variant,
                    seed: self.seed,
                    epoch: epoch as u64,
                }),
            },
        }
    }

    /// Makes this the objective of data-parallel rank `rank` (see [`online::rank_seed`]).
    pub fn set_rank(&mut self, rank: usize) {
        self.rank = rank;
    }

    /// A JSON record for run.json.
    pub fn describe(&self) -> serde_json::Value {
        match &self.distill {
            None => serde_json::json!({"method": self.method.name()}),
            Some(d) => serde_json::json!({
                "method": self.method.name(),
                "loss": match self.method {
                    Method::FtKd => "ce + weight * T^2 * KL(teacher || student), batchmean",
                    _ => "ce + weight * MSE(student feature, teacher feature), mean over N*D",
                },
                "distill": d.cfg,
                "strategy": d.strategy.map(|s| s.to_string()),
                "teacher": d.teacher_record,
                "stored_variants": d.variants_record,
            }),
        }
    }

    /// The loss of one (non-empty) micro-batch of `epoch`.
    pub fn step(&self, student: &Student, batch: &Batch, epoch: usize) -> Result<StepLoss> {
        let x = &batch.images;
        let Some(d) = &self.distill else {
            let logits = student.logits(x)?;
            let loss = cross_entropy(&logits, &batch.labels);
            return Ok(StepLoss {
                ce: loss.double_value(&[]),
                loss,
                distill: None,
                logits,
                cam_seconds: 0.0,
                teacher_seconds: 0.0,
            });
        };
        let mut times = online::Times::default();
        let (targets, clean) = match d.cfg.mode {
            DistillMode::Offline => (offline_targets(d, batch)?, None),
            DistillMode::Online => {
                let seed =
                    online::rank_seed(online::step_seed(self.seed, epoch, batch.index), self.rank);
                online::targets(d, student, batch, seed, &mut times)?
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
        let distill = match self.method {
            Method::FtKd => {
                let teacher = d
                    .teacher
                    .as_ref()
                    .ok_or_else(|| missing(batch, "teacher"))?;
                let t_logits = {
                    let _g = tch::no_grad_guard();
                    teacher.head.forward(&t_feat)
                };
                kd_kl(&student.head.forward(&cf_f), &t_logits, d.cfg.temperature)
            }
            _ => feature_mse(&cf_f, &t_feat),
        };
        let loss = &ce + &distill * d.cfg.weight;
        Ok(StepLoss {
            ce: ce.double_value(&[]),
            distill: Some(distill.to_kind(Kind::Double).double_value(&[])),
            loss,
            logits,
            cam_seconds: times.cam,
            teacher_seconds: times.teacher,
        })
    }
}
