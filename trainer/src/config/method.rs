//! The methods of `cfkit train` and their config sections (`[train] method`, `[distill]`,
//! `[lp_ft]`), with the checks that need no data.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use cfkit_counterfactual::strategy::Strategy;

use crate::optim::schedule::ScheduleConfig;

/// Training methods (DESIGN §3).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// End-to-end fine-tuning with cross-entropy.
    Ft,
    /// Linear probe: frozen backbone, head only, weight decay 0.
    Lp,
    /// `[lp_ft] lp_epochs` of linear probing, then `epochs` of FT from the probed head.
    LpFt,
    /// FT + `weight`·T²·KL(teacher ‖ student) at temperature T on clean or masked images.
    FtKd,
    /// FT + `weight`·MSE(student feature, teacher feature) on clean or masked images.
    FtFd,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Ft => "ft",
            Method::Lp => "lp",
            Method::LpFt => "lp-ft",
            Method::FtKd => "ft-kd",
            Method::FtFd => "ft-fd",
        }
    }

    /// Whether the method distils from a teacher (needs `[distill]`).
    pub(crate) fn distills(self) -> bool {
        matches!(self, Method::FtKd | Method::FtFd)
    }
}

/// The images a distillation loss is computed on.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DistillImages {
    /// The training images themselves.
    #[default]
    Clean,
    /// Counterfactuals: stored variants (offline) or drawn at every step (online).
    Masked,
}

/// Where the teacher's targets come from.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DistillMode {
    /// From counterfactual shards (`cfkit build-counterfactuals`): stored variants and teacher
    /// features; no teacher forward in the loop.
    #[default]
    Offline,
    /// The reference behaviour: at every step the student's own CAM for the label, masks,
    /// in-batch donors and a frozen teacher forward on the masked batch.
    Online,
}

/// Which stored variant of an image an epoch uses (offline masked distillation).
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum VariantChoice {
    /// Variant `epoch mod K` (K variants of the strategy per image).
    #[default]
    Epoch,
    /// A seeded draw per (seed, epoch, image id).
    Seeded,
}

/// `[distill]`: the teacher signal of `ft-kd` and `ft-fd`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DistillConfig {
    #[serde(default)]
    pub images: DistillImages,
    #[serde(default)]
    pub mode: DistillMode,
    /// Strategy of the counterfactuals, e.g. "ObjMaskSingleFill(0.3)". Offline: one of the
    /// strategies in the shards (default: the only one); online: required for masked images.
    #[serde(default)]
    pub strategy: Option<Strategy>,
    #[serde(default)]
    pub variant: VariantChoice,
    /// Loss weight of the distillation term (the paper's 30 for CLIP features; DESIGN §6: scale
    /// it to the model's feature scale on validation).
    #[serde(default = "default_distill_weight")]
    pub weight: f64,
    /// KD temperature (DESIGN §3: 10).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Teacher checkpoint (online: the model run on the masked batch; KD: its head maps stored
    /// features to logits). Defaults to `[model] checkpoint`.
    #[serde(default)]
    pub teacher: Option<PathBuf>,
    /// Online mode: the CAM of the student (the reference's MMCAM by default).
    #[serde(default)]
    pub cam: cfkit_counterfactual::CamMethod,
}

/// `[lp_ft]`: the linear-probe phase of `lp-ft`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LpFtConfig {
    /// Epochs of linear probing before the `[train] epochs` of FT.
    pub lp_epochs: usize,
    /// The probe's schedule (the FT phase uses `[schedule]`).
    pub lp_schedule: ScheduleConfig,
}

fn default_distill_weight() -> f64 {
    30.0
}
fn default_temperature() -> f64 {
    10.0
}

/// The checks of `method`, `[distill]` and `[lp_ft]` that need no data; `has_checkpoint`:
/// whether `[model] checkpoint` is set (the default teacher).
pub(crate) fn validate_method(
    method: Method,
    distill: Option<&DistillConfig>,
    lp_ft: Option<&LpFtConfig>,
    has_checkpoint: bool,
) -> std::result::Result<(), String> {
    match (distill, method.distills()) {
        (None, true) => {
            return Err(format!(
                "method '{}' needs a [distill] section",
                method.name()
            ))
        }
        (Some(_), false) => {
            return Err(format!(
                "[distill] is only used by ft-kd and ft-fd, not by '{}'",
                method.name()
            ))
        }
        _ => {}
    }
    match (lp_ft, method) {
        (None, Method::LpFt) => return Err("method 'lp-ft' needs an [lp_ft] section".into()),
        (Some(_), m) if m != Method::LpFt => {
            return Err(format!(
                "[lp_ft] is only used by lp-ft, not by '{}'",
                m.name()
            ))
        }
        (Some(l), _) => {
            if l.lp_epochs == 0 {
                return Err("[lp_ft] lp_epochs must be >= 1".into());
            }
            l.lp_schedule
                .validate()
                .map_err(|e| format!("[lp_ft] lp_schedule: {e}"))?;
        }
        _ => {}
    }
    if let Some(d) = distill {
        if !(d.weight >= 0.0 && d.weight.is_finite()) {
            return Err("[distill] weight must be a finite number >= 0".into());
        }
        if !(d.temperature > 0.0 && d.temperature.is_finite()) {
            return Err("[distill] temperature must be > 0".into());
        }
        if d.images == DistillImages::Clean && d.strategy.is_some() {
            return Err("[distill] strategy is only used with images = \"masked\"".into());
        }
        if d.mode == DistillMode::Online
            && d.images == DistillImages::Masked
            && d.strategy.is_none()
        {
            return Err(
                "[distill] online masked distillation needs `strategy` (e.g. \"ObjMaskSingleFill(0.3)\")"
                    .into(),
            );
        }
        if (d.mode == DistillMode::Online || method == Method::FtKd)
            && d.teacher.is_none()
            && !has_checkpoint
        {
            return Err(
                "[distill] teacher (a checkpoint directory) is required when [model] has no checkpoint"
                    .into(),
            );
        }
    }
    Ok(())
}
