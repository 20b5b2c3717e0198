//! Errors of the trainer. Every message names the file, key or split it is about.

use std::path::{Path, PathBuf};

use cfkit_models::ModelError;
use cfkit_schemas::SchemaError;

use crate::optim::schedule::ScheduleError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A config file or key that is missing or invalid.
    #[error("config: {0}")]
    Config(String),
    /// Data that does not fit the run (classes, splits, image sizes, empty sets).
    #[error("data: {0}")]
    Data(String),
    /// A checkpoint directory that is missing a file or does not match the run.
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Counterfactual(#[from] cfkit_counterfactual::CounterfactualError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// A config file that cannot be read, parsed or does not validate.
    #[error(transparent)]
    ConfigFile(#[from] cfkit_config::ConfigError),
    #[error(transparent)]
    Outdir(#[from] cfkit_outdir::OutdirError),
    /// (ScheduleError's messages name the schedule already.)
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("torch: {0}")]
    Tch(#[from] tch::TchError),
    /// Data-parallel training: the distributed layer is missing, a rank died or timed out, or
    /// the ranks disagree.
    #[error("distributed: {0}")]
    Distributed(String),
    /// The optimizer's step failed inside libtorch (e.g. parameters on several devices).
    #[error("optimizer step: {0}")]
    Optimizer(String),
    /// The loader thread stopped without sending its error.
    #[error("the data loader thread stopped unexpectedly")]
    LoaderGone,
}

impl TrainError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn checkpoint(path: &Path, message: impl Into<String>) -> Self {
        TrainError::Checkpoint {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
