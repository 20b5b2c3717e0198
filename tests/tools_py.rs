//! The unit tests of the Python tools package (tools/cfkit_tools/tests: the records reader, the
//! config comparison the demo runner keeps finished runs by, the validation weight rule), run with
//! `python -m unittest` so that `cargo test` (and so `just test` and CI) runs them.

mod common;

use anyhow::{ensure, Result};

#[test]
fn python_tools_unit_tests_pass() -> Result<()> {
    let o = common::python_tool("unittest")
        .args(["discover", "-s", "tools/cfkit_tools/tests", "-t", "tools"])
        .output()?;
    ensure!(
        o.status.success(),
        "python -m unittest failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    Ok(())
}
