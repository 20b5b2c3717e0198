//! Where a run's model comes from (scratch, a checkpoint, or weights + head files), and the
//! record of it that goes into `run.json`.

use std::path::Path;

use tch::Device;

use super::record::InitRecord;
use crate::checkpoint;
use crate::config::{ModelSource, TrainConfig};
use crate::error::{Result, TrainError};
use crate::student::Student;

/// Where the run's initial weights come from, with the files' hashes (`run.json`'s `init`).
pub(crate) fn init_record(cfg: &TrainConfig) -> Result<InitRecord> {
    let hash = |p: &Path| cfkit_models::weights::file_blake3(p).map_err(TrainError::from);
    Ok(match &cfg.model {
        ModelSource::Checkpoint(dir) => InitRecord::Checkpoint {
            dir: dir.clone(),
            weights_blake3: hash(&dir.join(checkpoint::MODEL_FILE))?,
            head_blake3: hash(&dir.join(checkpoint::HEAD_FILE))?,
        },
        ModelSource::Files { weights, head, .. } => InitRecord::Files {
            weights: weights.clone(),
            head: head.clone(),
            weights_blake3: hash(weights)?,
            head_blake3: hash(head)?,
        },
        ModelSource::Scratch {
            name,
            head_init_scale,
        } => InitRecord::Scratch {
            model: name.clone(),
            head_init_scale: *head_init_scale,
        },
    })
}

pub(crate) fn init_student(
    cfg: &TrainConfig,
    classes: &[String],
    device: Device,
) -> Result<Student> {
    match &cfg.model {
        ModelSource::Checkpoint(dir) => Ok(checkpoint::load_student(dir, device)?.0),
        ModelSource::Files {
            name,
            weights,
            head,
        } => {
            let c = cfkit_models::resolve_config(name)?;
            Student::load(name, &c.vision_config, weights, head, device)
        }
        ModelSource::Scratch {
            name,
            head_init_scale,
        } => {
            let c = cfkit_models::resolve_config(name)?;
            Student::scratch(
                name,
                &c.vision_config,
                classes,
                device,
                cfg.train.seed,
                *head_init_scale,
            )
        }
    }
}
