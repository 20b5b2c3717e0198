//! Typed errors of the schemas crate. Every variant names the file it concerns.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("'{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("shard '{path}': {message}")]
    Parquet { path: PathBuf, message: String },

    #[error("shard '{path}': schema version {found} is not supported (this cfkit reads version {supported})")]
    Version {
        path: PathBuf,
        found: String,
        supported: u32,
    },

    #[error("shard '{path}': column '{column}': {message}")]
    Column {
        path: PathBuf,
        column: String,
        message: String,
    },

    #[error("manifest '{path}': {message}")]
    Manifest { path: PathBuf, message: String },

    #[error("invalid record: {0}")]
    Record(String),
}

pub type Result<T> = std::result::Result<T, SchemaError>;

impl SchemaError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SchemaError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        SchemaError::Parquet {
            path: path.into(),
            message: e.to_string(),
        }
    }
}
