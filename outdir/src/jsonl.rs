//! Append-only JSON-lines logs (a training run's metrics and quarantine). A resumed run opens a
//! log truncated to the length its checkpoint recorded, so lines written after that checkpoint
//! by the interrupted run are not logged twice.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{OutdirError, Result};

/// An append-only JSON-lines file.
pub struct JsonLines {
    path: PathBuf,
    file: File,
}

impl JsonLines {
    /// Opens `path` for appending after truncating it to `keep_bytes` (the length recorded in the
    /// checkpoint being resumed; 0 for a fresh log).
    pub fn open(path: &Path, keep_bytes: u64) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| OutdirError::io(path, e))?;
        let len = file.metadata().map_err(|e| OutdirError::io(path, e))?.len();
        if len > keep_bytes {
            file.set_len(keep_bytes)
                .map_err(|e| OutdirError::io(path, e))?;
        }
        Ok(JsonLines {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends `record` as one line of compact JSON.
    pub fn write(&mut self, record: &impl Serialize) -> Result<()> {
        let line = serde_json::to_string(record).expect("records serialise") + "\n";
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| OutdirError::io(&self.path, e))
    }

    /// Flushes to disk and returns the file length (recorded in checkpoints).
    pub fn sync(&mut self) -> Result<u64> {
        self.file
            .sync_data()
            .map_err(|e| OutdirError::io(&self.path, e))?;
        Ok(self
            .file
            .metadata()
            .map_err(|e| OutdirError::io(&self.path, e))?
            .len())
    }
}
