//! Typed errors of the output-directory crate. Every variant names the file it concerns.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum OutdirError {
    #[error("'{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("'{dir}' is being written by another process ({holder}; lock file '{lock}'): wait for it to finish or stop it, or choose another output directory")]
    Locked {
        dir: PathBuf,
        lock: PathBuf,
        holder: String,
    },
}

pub type Result<T> = std::result::Result<T, OutdirError>;

impl OutdirError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        OutdirError::Io {
            path: path.into(),
            source,
        }
    }
}
