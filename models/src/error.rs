//! Typed errors of the models crate.

use std::path::PathBuf;

/// Everything that can go wrong while building, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model preset '{name}' (known presets: {known})")]
    UnknownPreset { name: String, known: String },

    #[error("cannot read '{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("'{path}' is not a valid safetensors file: {message}")]
    Safetensors { path: PathBuf, message: String },

    #[error("'{path}': tensor '{name}' is missing (expected shape {expected:?})")]
    MissingTensor {
        path: PathBuf,
        name: String,
        expected: Vec<i64>,
    },

    #[error("'{path}': tensor '{name}' has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        path: PathBuf,
        name: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },

    #[error("'{path}': tensor '{name}' has unsupported dtype {dtype} (expected F32, F16, BF16, F64, I64, U8 or BOOL)")]
    UnsupportedDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },

    #[error("'{path}': {count} tensor(s) were not used by the model, e.g. '{example}'")]
    UnusedTensors {
        path: PathBuf,
        count: usize,
        example: String,
    },

    #[error("invalid model config: {0}")]
    Config(String),

    #[error("invalid input: {0}")]
    Input(String),

    #[error("tokenizer vocabulary '{path}': {message}")]
    Vocab { path: PathBuf, message: String },

    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T> = std::result::Result<T, ModelError>;

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.into(),
            source,
        }
    }
}
