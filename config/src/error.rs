//! Typed errors of config files: each names the file, or the `--set` item, it is about.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("config '{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Not TOML, an unknown key, a value of the wrong type (the message names the key).
    #[error("config '{path}': {message}")]
    Parse { path: PathBuf, message: String },

    /// A `--set` item that is not `section.key=value` or does not fit the file's tables.
    #[error("--set '{item}': {message}")]
    Override { item: String, message: String },

    /// Values that parse but do not go together (the message names the section and key).
    #[error("config '{path}': {message}")]
    Invalid { path: PathBuf, message: String },
}

pub type Result<T> = std::result::Result<T, ConfigError>;
