//! Files written whole or not at all: into `<name>.tmp`, synced, then renamed over `<name>`. A
//! crash leaves the previous file (or none) and at most a `.tmp` leftover, which the next write
//! replaces.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{OutdirError, Result};

/// The temporary name of `path`: `<path>.tmp`.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes `bytes` to `path` atomically (a temporary name, synced, then a rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let mut f = std::fs::File::create(&tmp).map_err(|e| OutdirError::io(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_data())
        .map_err(|e| OutdirError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| OutdirError::io(path, e))
}

/// Writes `value` as pretty JSON with a final newline to `path`, atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("records serialise") + "\n";
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("cfkit-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("run.json");
        std::fs::write(tmp_path(&p), "leftover of a crash").unwrap();
        write_json(&p, &serde_json::json!({"a": 1})).unwrap();
        write_json(&p, &serde_json::json!({"a": 2})).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\n  \"a\": 2\n}\n");
        assert!(!tmp_path(&p).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
