//! cfkit-trainer: the shard loader, the training loop (FT / LP, from scratch or a checkpoint),
//! the one-cycle and cosine schedules, AdamW with resumable state, checkpoints, and evaluation on
//! ID and OOD sets.
//!
//! A run directory (`cfkit train --out DIR`):
//! ```text
//! run.json            resolved config, config hash, seeds, data fingerprints, init weights hashes
//! metrics.jsonl       one line per `log_every` steps ("kind": "step") and per epoch ("epoch")
//! quarantine.jsonl    rows that could not be decoded (skipped, with the reason)
//! checkpoints/last/   resumable checkpoint (weights, head, optimizer, sidecar)
//! checkpoints/best/   best-validation weights (what is evaluated)
//! report.json, report.md   final evaluation on the configured sets
//! ```

pub mod checkpoint;
pub mod config;
pub mod convert;
pub mod data;
pub mod error;
pub mod eval;
pub mod objective;
pub mod optim;
pub mod run;
pub mod student;
pub mod wise_ft;

pub use config::TrainConfig;
pub use error::{Result, TrainError};
pub use run::report::TrainReport;
pub use run::{train, TrainOptions, TrainingRun};
