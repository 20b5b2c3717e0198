//! Helpers shared by the end-to-end tests: run the `cfkit` binary, check its outcome, make
//! scratch directories, find the project's python.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the cfkit binary built for this test run.
pub(crate) fn cfkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cfkit"))
        .args(args)
        .output()
        .expect("cfkit runs")
}

/// Asserts success; returns stdout.
pub(crate) fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "cfkit failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts failure without a panic; returns stderr.
pub(crate) fn err(o: Output) -> String {
    assert!(!o.status.success(), "cfkit should have failed");
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!e.contains("panicked"), "{e}");
    e
}

/// A scratch directory under the system temp dir, unique to this process and name. It is
/// removed when dropped, unless the test is panicking (a failed assertion: then it stays, to be
/// inspected). A test that fails by returning an error removes it like a passing one.
pub(crate) struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TmpDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh, empty [`TmpDir`] named `cfkit-{group}-{name}-{pid}`.
pub(crate) fn tmpdir(group: &str, name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("cfkit-{group}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

/// `cfkit demo-data` of `splits` at `scale` (and `extra` options) into `dir/data`; returns that
/// directory.
pub(crate) fn demo_data(dir: &Path, splits: &str, scale: &str, extra: &[&str]) -> PathBuf {
    let data = dir.join("data");
    let mut args = vec![
        "demo-data",
        "--out",
        data.to_str().unwrap(),
        "--splits",
        splits,
        "--scale",
        scale,
        "-q",
    ];
    args.extend_from_slice(extra);
    ok(cfkit(&args));
    data
}

/// The project venv's python (has torch, transformers, pyarrow, duckdb, datasets).
pub(crate) fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// Runs tests/convert/make_jit_archive.py into `dir`: an OpenAI-style TorchScript CLIP archive
/// (`clip-tiny.pt`, random weights), its `config.json`, class and template files, and the
/// reference outputs.
pub(crate) fn make_jit_archive(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/convert/make_jit_archive.py");
    let o = Command::new(python())
        .arg(script)
        .arg("--out")
        .arg(dir)
        .output()
        .expect("python runs");
    assert!(
        o.status.success(),
        "make_jit_archive.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Rows of the train split whose image bytes `corrupt_train_rows` replaces.
pub(crate) const BAD_ROWS: [usize; 2] = [5, 6];

/// Replaces the images of `BAD_ROWS` of the train split's first shard with bytes that are not
/// images, updating the manifest to match (decode failures, not a damaged file); returns the ids.
pub(crate) fn corrupt_train_rows(data: &Path) -> anyhow::Result<Vec<String>> {
    use cfkit_schemas::{images_to_batch, Manifest, ShardReader, ShardWriter, WriterOptions};
    let mut m = Manifest::read(data)?;
    let file = m.splits["train"].shards[0].file.clone();
    let reader = ShardReader::open(&data.join(&file))?;
    let schema = reader.schema();
    let mut rows = reader.read_images()?;
    drop(reader);
    for r in BAD_ROWS {
        rows[r].image.bytes = b"not an image".to_vec();
    }
    let mut w = ShardWriter::try_new(
        data,
        Path::new(&file),
        schema.clone(),
        WriterOptions::default(),
    )?;
    w.write(&images_to_batch(&schema, &rows)?)?;
    m.splits.get_mut("train").unwrap().shards[0] = w.close()?;
    m.write(data)?;
    Ok(BAD_ROWS.iter().map(|&r| rows[r].id.clone()).collect())
}

/// `python -m MODULE` of the Python tools package (tools/cfkit_tools), as the justfile runs it:
/// the project venv's python, `tools` on PYTHONPATH, from the repository root.
pub(crate) fn python_tool(module: &str) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = Command::new(python());
    c.current_dir(root)
        .env("PYTHONPATH", root.join("tools"))
        .args(["-m", module]);
    c
}
