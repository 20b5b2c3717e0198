//! Where a run's model comes from (scratch, a checkpoint, or weights + head files), and the
//! records of it and of the run's seeds that go into `run.json`.

use std::path::Path;

use tch::Device;

use crate::checkpoint;
use crate::config::TrainConfig;
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
    let m = &cfg.model;
    let hash = |p: &Path| cfkit_models::weights::file_blake3(p).map_err(TrainError::from);
    Ok(match (&m.checkpoint, &m.weights, &m.head) {
        (Some(dir), _, _) => serde_json::json!({
            "kind": "checkpoint", "dir": dir,
            "weights_blake3": hash(&dir.join(checkpoint::MODEL_FILE))?,
            "head_blake3": hash(&dir.join(checkpoint::HEAD_FILE))?,
        }),
        (None, Some(w), Some(h)) => serde_json::json!({
            "kind": "files", "weights": w, "head": h,
            "weights_blake3": hash(w)?, "head_blake3": hash(h)?,
        }),
        _ => {
            serde_json::json!({"kind": "scratch", "model": m.name, "head_init_scale": m.head_init_scale})
        }
    })
}

pub fn init_student(cfg: &TrainConfig, classes: &[String], device: Device) -> Result<Student> {
    let m = &cfg.model;
    match (&m.checkpoint, &m.weights, &m.head) {
        (Some(dir), _, _) => Ok(checkpoint::load_student(dir, device)?.0),
        (None, Some(w), Some(h)) => {
            let name = m.name.as_deref().unwrap_or_default();
            let c = cfkit_models::resolve_config(name)?;
            Student::load(name, &c.vision_config, w, h, device)
        }
        _ => {
            let name = m.name.as_deref().unwrap_or_default();
            let c = cfkit_models::resolve_config(name)?;
            Student::scratch(
                name,
                &c.vision_config,
                classes,
                device,
                cfg.train.seed,
                m.head_init_scale,
            )
        }
    }
}
