//! Where a run's model comes from (scratch, a checkpoint, or weights + head files), and the
//! records of it and of the run's seeds that go into `run.json`.

use std::path::Path;

use tch::Device;

use crate::checkpoint;
use crate::config::{ModelSource, TrainConfig};
use crate::error::{Result, TrainError};
use crate::student::Student;

pub fn rng_record(seed: u64) -> serde_json::Value {
    serde_json::json!({
        "seed": seed,
        "init": "torch manual_seed(seed) before building a from-scratch model",
        "holdout": "splitmix64(seed, fnv1a64('cfkit.holdout'), group, row)",
        "epoch_order": "splitmix64(seed, fnv1a64('cfkit.epoch'), epoch)",
    })
}

pub fn init_record(cfg: &TrainConfig) -> Result<serde_json::Value> {
    let hash = |p: &Path| cfkit_models::weights::file_blake3(p).map_err(TrainError::from);
    Ok(match &cfg.model {
        ModelSource::Checkpoint(dir) => serde_json::json!({
            "kind": "checkpoint", "dir": dir,
            "weights_blake3": hash(&dir.join(checkpoint::MODEL_FILE))?,
            "head_blake3": hash(&dir.join(checkpoint::HEAD_FILE))?,
        }),
        ModelSource::Files { weights, head, .. } => serde_json::json!({
            "kind": "files", "weights": weights, "head": head,
            "weights_blake3": hash(weights)?, "head_blake3": hash(head)?,
        }),
        ModelSource::Scratch {
            name,
            head_init_scale,
        } => {
            serde_json::json!({"kind": "scratch", "model": name, "head_init_scale": head_init_scale})
        }
    })
}

pub fn init_student(cfg: &TrainConfig, classes: &[String], device: Device) -> Result<Student> {
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
