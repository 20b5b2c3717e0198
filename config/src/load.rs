//! The one loader of cfkit's TOML configs.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{ConfigError, Result};
use crate::overrides::apply_override;

/// A config file type: what [`load`] needs besides deserialising it.
pub trait ConfigFile: DeserializeOwned {
    /// Resolves every relative path of the config against `base`, the file's directory (with
    /// [`crate::paths::resolve`]).
    fn resolve_paths(&mut self, base: &Path);

    /// Checks what can be checked without data; the message names the section and key.
    fn validate(&self) -> std::result::Result<(), String>;
}

/// Reads the TOML config at `path`, applies the `--set section.key=value` `overrides` (a value is
/// TOML, or else a string; relative paths in them resolve against the file's directory like the
/// file's own), deserialises it (unknown keys are refused), resolves its paths and checks it.
pub fn load<T: ConfigFile>(path: &Path, overrides: &[String]) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let parse = |message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let mut doc: toml::Table = toml::from_str(&text).map_err(|e| parse(e.to_string()))?;
    for item in overrides {
        apply_override(&mut doc, item)?;
    }
    let mut cfg: T = doc.try_into().map_err(|e| parse(e.to_string()))?;
    cfg.resolve_paths(path.parent().unwrap_or(Path::new(".")));
    cfg.validate().map_err(|message| ConfigError::Invalid {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(cfg)
}
