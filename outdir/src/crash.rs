//! The test hook of crash-safe set-up. The binary arms it once at start-up from the environment
//! (`CFKIT_CRASH_AT`, declared with every other variable in the binary's settings); when the
//! armed point is reached, the process aborts there, as `kill -9` would stop it (no destructor
//! runs, the kernel releases the locks). The end-to-end tests stop `train` and
//! `build-counterfactuals` after each set-up step this way and check that a rerun takes over.
//! Unarmed, a crash point costs one atomic load.

use std::sync::OnceLock;

static ARMED: OnceLock<String> = OnceLock::new();

/// Arms the crash point named `point` for this process (the first call wins).
pub fn arm(point: &str) {
    let _ = ARMED.set(point.to_string());
}

/// Aborts the process when `point` is the armed crash point.
pub fn crash_point(point: &str) {
    if ARMED.get().is_some_and(|p| p == point) {
        eprintln!("cfkit: CFKIT_CRASH_AT={point}: aborting here (test hook)");
        std::process::abort();
    }
}
