//! Typed errors of the pipeline crate.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("'{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Schema(#[from] cfkit_schemas::SchemaError),
    #[error(transparent)]
    Config(#[from] cfkit_config::ConfigError),
    #[error(transparent)]
    Outdir(#[from] cfkit_outdir::OutdirError),
    #[error(transparent)]
    Model(#[from] cfkit_models::ModelError),
    #[error(transparent)]
    Counterfactual(#[from] cfkit_counterfactual::CounterfactualError),
    #[error(transparent)]
    FashionShift(#[from] crate::fashionshift::FashionShiftError),
    #[error("{bad} of {total} inputs ({pct:.1}%) were quarantined, above the limit of {limit_pct:.1}%; see {quarantine}")]
    TooManyBad {
        bad: usize,
        total: usize,
        pct: f64,
        limit_pct: f64,
        quarantine: PathBuf,
    },
}

pub type Result<T> = std::result::Result<T, PipelineError>;

impl PipelineError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PipelineError::Io {
            path: path.into(),
            source,
        }
    }
}
