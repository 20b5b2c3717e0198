//! Helpers shared by the end-to-end tests: run the `cfkit` binary, check its outcome, make
//! scratch directories, find the project's python.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the cfkit binary built for this test run.
pub fn cfkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cfkit"))
        .args(args)
        .output()
        .expect("cfkit runs")
}

/// Asserts success; returns stdout.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "cfkit failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts failure without a panic; returns stderr.
pub fn err(o: Output) -> String {
    assert!(!o.status.success(), "cfkit should have failed");
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!e.contains("panicked"), "{e}");
    e
}

/// A fresh, empty directory under the system temp dir, unique to this process.
pub fn tmpdir(group: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cfkit-{group}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The project venv's python (has torch, transformers, pyarrow, duckdb, datasets).
pub fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}
