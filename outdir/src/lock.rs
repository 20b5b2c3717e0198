//! One writer per directory: every command that writes a directory holds an exclusive OS advisory
//! lock (`flock`, through std's `File::try_lock`) on a lock file in it for its whole run. The
//! kernel drops the lock when the process ends, however it ends (`kill -9` included), so a stale
//! lock never blocks a rerun; a second writer fails at once, before it touches anything, with an
//! error that names the directory, the lock file and the holder. Readers take no lock.
//!
//! The lock file holds the holder's record (pid, host, start time, command) as one JSON line.
//! Workers of one build share an output directory; each locks its own file
//! (`.cfkit-lock.worker-I-of-N`), so workers run side by side while two copies of one worker
//! cannot.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crash::crash_point;
use crate::error::{OutdirError, Result};

/// The lock file of a directory (`suffix` "" or e.g. ".worker-00001-of-00004").
pub const LOCK_FILE: &str = ".cfkit-lock";

/// Whether `name` is a lock file (the run-directory checks ignore them).
pub fn is_lock_file(name: &str) -> bool {
    name == LOCK_FILE || name.starts_with(&format!("{LOCK_FILE}."))
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started_unix: u64,
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {}, started {}, running `{}`",
            self.pid,
            self.host,
            utc(self.started_unix),
            self.command
        )
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic Gregorian calendar; days to civil
/// date after Howard Hinnant's `civil_from_days`).
fn utc(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // day of the 400-year era
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153; // month from March
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC")
}

/// An exclusive lock on a directory, released (and its file removed) on drop; a directory that
/// `acquire` created and that is empty again then is removed too, so a run that fails before
/// writing anything leaves nothing behind.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    path: PathBuf,
    file: Option<File>,
    created_dir: bool,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown host".into())
}

impl DirLock {
    /// Creates `dir` if needed and takes its lock file `LOCK_FILE + suffix` for this process
    /// (recording its command line); fails at once, naming the holder, if another process holds
    /// it.
    pub fn acquire(dir: &Path, suffix: &str) -> Result<DirLock> {
        let command: Vec<String> = std::env::args().collect();
        Self::acquire_for(dir, suffix, &command.join(" "))
    }

    /// As [`DirLock::acquire`], recording `command` as the holder's command.
    pub(crate) fn acquire_for(dir: &Path, suffix: &str, command: &str) -> Result<DirLock> {
        let created_dir = !dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| OutdirError::io(dir, e))?;
        let path = dir.join(format!("{LOCK_FILE}{suffix}"));
        // No truncation before the lock is ours: the file holds the current holder's record.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| OutdirError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file)
                    .map(|h| h.to_string())
                    .unwrap_or_else(|| "a process that has not recorded itself yet".into());
                return Err(OutdirError::Locked {
                    dir: dir.to_path_buf(),
                    lock: path,
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(OutdirError::io(&path, e)),
        }
        let holder = Holder {
            pid: std::process::id(),
            host: host_name(),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            command: command.to_string(),
        };
        let line = serde_json::to_string(&holder).expect("serialisable") + "\n";
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(line.as_bytes()))
            .and_then(|()| file.sync_data())
            .map_err(|e| OutdirError::io(&path, e))?;
        crash_point("lock");
        Ok(DirLock {
            dir: dir.to_path_buf(),
            path,
            file: Some(file),
            created_dir,
        })
    }

    /// The live holders of `dir`'s lock files (the directory's own and its workers'), by lock
    /// file name. A holder that has not recorded itself yet is listed with pid 0.
    pub fn holders(dir: &Path) -> Vec<(String, Holder)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Holder)> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let name = e.file_name().to_string_lossy().into_owned();
                if !is_lock_file(&name) {
                    return None;
                }
                let mut file = OpenOptions::new().read(true).open(e.path()).ok()?;
                // Free (nobody holds it): the probe's lock is released when `file` drops.
                file.try_lock_shared().is_err().then_some(())?;
                let holder = read_holder(&mut file).unwrap_or(Holder {
                    pid: 0,
                    host: String::new(),
                    started_unix: 0,
                    command: String::new(),
                });
                Some((name, holder))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock, then release it.
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
        if self.created_dir {
            let _ = std::fs::remove_dir(&self.dir); // only succeeds when empty
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_796_020_238), "2026-11-30 06:30:38 UTC");
    }

    #[test]
    fn a_second_writer_is_refused_and_told_who_holds_the_lock() {
        let base = std::env::temp_dir().join(format!("cfkit-lock-{}", std::process::id()));
        let dir = base.join("out");
        let a = DirLock::acquire_for(&dir, "", "cfkit train --out out").unwrap();
        let e = DirLock::acquire(&dir, "").unwrap_err().to_string();
        assert!(e.contains(&dir.display().to_string()), "{e}");
        assert!(
            e.contains(LOCK_FILE) && e.contains("cfkit train --out out"),
            "{e}"
        );
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        // Another worker's lock in the same directory is independent.
        let w = DirLock::acquire(&dir, ".worker-00001-of-00002").unwrap();
        let names: Vec<String> = DirLock::holders(&dir).into_iter().map(|h| h.0).collect();
        assert_eq!(names, [LOCK_FILE, ".cfkit-lock.worker-00001-of-00002"]);
        drop(w);
        drop(a);
        assert!(DirLock::holders(&dir).is_empty());
        // Both created the directory's content only: it is gone with the last lock.
        assert!(!dir.exists());
        let again = DirLock::acquire(&dir, "").unwrap();
        std::fs::write(dir.join("kept"), "x").unwrap();
        drop(again);
        assert!(dir.join("kept").exists() && !dir.join(LOCK_FILE).exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
