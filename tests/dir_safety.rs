//! Output directories are safe to share and to crash in:
//!
//! * one writer per directory: a second `train --resume` or `build-counterfactuals` into a
//!   directory another process is writing is refused at once with an error naming the directory,
//!   the lock file and the holder, and the first run ends exactly as a lone run; a `kill -9` of
//!   the holder frees the directory at once; workers of one build run side by side, and `merge`
//!   waits for them; `verify` says when a directory is being written;
//! * crash-safe set-up: `train` and `build-counterfactuals` stopped (as by `kill -9`, through the
//!   `CFKIT_CRASH_AT` test hook) after each step of their set-up are taken over by a rerun that
//!   ends bitwise equal to an uninterrupted run.

#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom; the limit is for library code

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;
use common::{cfkit, err, ok};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// FashionShift train (100 rows in 4 shards) and test-id at 1 % scale.
fn demo(dir: &Path) -> PathBuf {
    common::demo_data(dir, "train,test-id", "0.01", &["--rows-per-shard", "25"])
}

/// A `tiny` FT run from scratch of `epochs` epochs (8, with a checkpoint every step, is long
/// enough that a second process can be started while it runs).
fn train_config(dir: &Path, data: &Path, epochs: usize) -> PathBuf {
    let text = format!(
        r#"[model]
name = "tiny"

[data]
shards = "{data}"
split = "train"
val_holdout = 20
shuffle_buffer = 32

[train]
method = "ft"
epochs = {epochs}
batch_size = 16
seed = 3
device = "cpu"
log_every = 2
checkpoint_every = 1
eval_batch_size = 32

[schedule]
kind = "one-cycle"
max_lr = 1e-3
pct_start = 0.3

[eval]
sets = [{{ name = "test-id" }}]
"#,
        data = data.display()
    );
    let path = dir.join(format!("train-{epochs}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Counterfactuals of the train split with the committed demo teacher.
fn build_config(dir: &Path, data: &Path) -> PathBuf {
    let teacher = Path::new(ROOT).join("assets/teacher");
    let text = format!(
        r#"[source]
shards = "{data}"
split = "train"

[teacher]
model = "tiny"
weights = "{teacher}/model.safetensors"
head = "{teacher}/head.safetensors"

[counterfactuals]
strategies = ["ObjMaskSingleFill(0.3)", "RandMaskNoFill(0.75)"]
variants = 2
batch_size = 8
device = "cpu"
"#,
        data = data.display(),
        teacher = teacher.display()
    );
    let path = dir.join("build.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(args: &[&str], crash_at: Option<&str>) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfkit"));
    c.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(point) = crash_at {
        c.env("CFKIT_CRASH_AT", point);
    }
    c.spawn().expect("cfkit starts")
}

/// Waits until `lock` records `pid` as its holder (the holder has taken the lock).
fn wait_for_holder(lock: &Path, child: &mut Child) {
    let t0 = Instant::now();
    let want = format!("\"pid\":{}", child.id());
    while !std::fs::read_to_string(lock).is_ok_and(|t| t.contains(&want)) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first process ended before it held {}",
            lock.display()
        );
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no lock at {}",
            lock.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits for `child`; asserts success.
fn finish(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a run leaves that must not depend on how it got there: final weights, head, metrics
/// (wall clock aside) and report (timing and paths aside).
fn run_outcome(run: &Path) -> (Vec<u8>, Vec<u8>, Vec<serde_json::Value>, serde_json::Value) {
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("images_per_s");
            v
        })
        .collect();
    let mut report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("report.json")).unwrap()).unwrap();
    for k in ["train_seconds", "out", "evaluated"] {
        report.as_object_mut().unwrap().remove(k);
    }
    (
        std::fs::read(run.join("checkpoints/best/model.safetensors")).unwrap(),
        std::fs::read(run.join("checkpoints/best/head.safetensors")).unwrap(),
        metrics,
        report,
    )
}

/// Every shard of a counterfactual dataset, by name, with its bytes.
fn shards(out: &Path) -> Vec<(String, Vec<u8>)> {
    let m = cfkit_schemas::Manifest::read(out).unwrap();
    m.splits["train"]
        .shards
        .iter()
        .map(|s| (s.file.clone(), std::fs::read(out.join(&s.file)).unwrap()))
        .collect()
}

fn train_args<'a>(cfg: &'a Path, out: &'a Path) -> Vec<&'a str> {
    let (cfg, out) = (cfg.to_str().unwrap(), out.to_str().unwrap());
    vec!["train", "--config", cfg, "--out", out, "--resume", "-q"]
}

fn build_args<'a>(cfg: &'a Path, out: &'a Path) -> Vec<&'a str> {
    let (cfg, out) = (cfg.to_str().unwrap(), out.to_str().unwrap());
    vec!["build-counterfactuals", "--config", cfg, "--out", out, "-q"]
}

#[test]
fn one_writer_per_directory() -> Result<()> {
    let dir = common::tmpdir("dirs", "writers");
    let data = demo(&dir);
    let tcfg = train_config(&dir, &data, 8);
    let bcfg = build_config(&dir, &data);
    let lone = dir.join("lone");
    ok(cfkit(&train_args(&tcfg, &lone)));
    assert!(
        !lone.join(".cfkit-lock").exists(),
        "the lock file is removed"
    );
    let lone_cf = dir.join("lone-cf");
    ok(cfkit(&build_args(&bcfg, &lone_cf)));

    // Two `train --resume` into one run directory: the second is refused at once, naming the
    // directory, the lock file and the holder; the first ends as the lone run did.
    let run = dir.join("run");
    let mut first = spawn(&train_args(&tcfg, &run), None);
    wait_for_holder(&run.join(".cfkit-lock"), &mut first);
    let e = err(cfkit(&train_args(&tcfg, &run)));
    assert!(
        first.try_wait()?.is_none(),
        "inconclusive: the first run ended before the second was refused"
    );
    eprintln!("second train: {e}");
    for part in [
        run.display().to_string(),
        run.join(".cfkit-lock").display().to_string(),
        format!("pid {}", first.id()),
        "being written by another process".into(),
        "train --config".into(),
    ] {
        assert!(e.contains(&part), "'{part}' missing from: {e}");
    }
    finish(first);
    assert_eq!(run_outcome(&run), run_outcome(&lone));

    // The same for two builds into one directory; `verify` says the directory is being written.
    let cf = dir.join("cf");
    let mut first = spawn(&build_args(&bcfg, &cf), None);
    wait_for_holder(&cf.join(".cfkit-lock"), &mut first);
    let e = err(cfkit(&build_args(&bcfg, &cf)));
    let v = cfkit(&["verify", cf.to_str().unwrap()]);
    assert!(
        first.try_wait()?.is_none(),
        "inconclusive: the first build ended before the second was refused"
    );
    assert!(
        e.contains(&format!("pid {}", first.id())) && e.contains(".cfkit-lock"),
        "{e}"
    );
    let note = String::from_utf8_lossy(&v.stderr);
    assert!(note.contains("is being written now"), "{note}");
    finish(first);
    assert_eq!(shards(&cf), shards(&lone_cf));

    // `kill -9` of the holder: the kernel releases the lock, and an immediate `--resume` is
    // accepted and ends bitwise equal to the lone run.
    let killed = dir.join("killed");
    let mut first = spawn(&train_args(&tcfg, &killed), None);
    wait_for_holder(&killed.join(".cfkit-lock"), &mut first);
    while !killed.join("checkpoints/last/checkpoint.json").exists() {
        assert!(
            first.try_wait()?.is_none(),
            "ended before its first checkpoint"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    first.kill()?; // SIGKILL
    first.wait()?;
    ok(cfkit(&train_args(&tcfg, &killed)));
    assert_eq!(run_outcome(&killed), run_outcome(&lone));

    // Workers 0 and 1 of one build run side by side (each holds its own lock); `merge` is refused
    // while a worker still holds its lock, then joins them into the lone build's shards.
    let workers = dir.join("workers");
    let worker = |i: &str| {
        let mut a = build_args(&bcfg, &workers);
        a.extend(["--num-workers", "2", "--worker-index", i]);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let (w0, w1) = (worker("0"), worker("1"));
    let w0: Vec<&str> = w0.iter().map(String::as_str).collect();
    let w1: Vec<&str> = w1.iter().map(String::as_str).collect();
    let (a, b) = (spawn(&w0, None), spawn(&w1, None));
    finish(a);
    finish(b);
    let held = cfkit_outdir::DirLock::acquire(&workers, ".worker-00001-of-00002")?;
    let e = err(cfkit(&["merge", workers.to_str().unwrap()]));
    assert!(
        e.contains("still being written") && e.contains(".cfkit-lock.worker-00001-of-00002"),
        "{e}"
    );
    drop(held);
    ok(cfkit(&["merge", workers.to_str().unwrap()]));
    assert_eq!(shards(&workers), shards(&lone_cf));
    Ok(())
}

/// Runs `args` stopped at `point` (the `CFKIT_CRASH_AT` hook: as `kill -9` there), then the same
/// command again, which must succeed.
fn stop_at_then_rerun(args: &[&str], point: &str) {
    let out = spawn(args, Some(point)).wait_with_output().unwrap();
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && msg.contains(&format!("CFKIT_CRASH_AT={point}")),
        "{point}: {msg}"
    );
    ok(cfkit(args));
}

#[test]
fn runs_stopped_during_set_up_are_taken_over() -> Result<()> {
    let dir = common::tmpdir("dirs", "setup");
    let data = demo(&dir);
    let tcfg = train_config(&dir, &data, 2);
    let bcfg = build_config(&dir, &data);
    let lone = dir.join("lone");
    ok(cfkit(&train_args(&tcfg, &lone)));
    let lone_cf = dir.join("lone-cf");
    ok(cfkit(&build_args(&bcfg, &lone_cf)));

    // train: stopped after taking the lock, after run.json, after checkpoints/, after opening
    // its logs; then the same command again.
    for point in ["lock", "train:run.json", "train:checkpoints", "train:logs"] {
        let run = dir.join(format!("train-{}", point.replace(':', "-")));
        stop_at_then_rerun(&train_args(&tcfg, &run), point);
        assert_eq!(run_outcome(&run), run_outcome(&lone), "stopped at {point}");
    }
    // A half-written run.json (stopped inside its write) and an empty checkpoints/ are this
    // command's own leftovers too; anything else is refused as foreign content.
    let run = dir.join("train-partial");
    std::fs::create_dir_all(run.join("checkpoints"))?;
    std::fs::write(run.join("run.json.tmp"), "{\"comm")?;
    ok(cfkit(&train_args(&tcfg, &run)));
    assert_eq!(run_outcome(&run), run_outcome(&lone));
    let foreign = dir.join("train-foreign");
    std::fs::create_dir_all(&foreign)?;
    std::fs::write(foreign.join("notes.txt"), "mine")?;
    let e = err(cfkit(&train_args(&tcfg, &foreign)));
    assert!(e.contains("not empty"), "{e}");

    // build-counterfactuals: stopped after the lock, after opening (teacher, hash), after its
    // first shard writer opened, after its first shard closed (before the manifest lists it).
    for point in ["lock", "build:open", "build:writer", "build:shard"] {
        let cf = dir.join(format!("cf-{}", point.replace(':', "-")));
        stop_at_then_rerun(&build_args(&bcfg, &cf), point);
        assert_eq!(shards(&cf), shards(&lone_cf), "stopped at {point}");
    }
    Ok(())
}

/// Runs a build worker with the launcher environment `vars` (and `extra` flags); `crash_at`
/// stops it as `kill -9` would at that point.
fn worker(
    bcfg: &Path,
    out: &Path,
    vars: &[(&str, &str)],
    extra: &[&str],
    crash_at: Option<&str>,
) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfkit"));
    c.args(build_args(bcfg, out)).args(extra);
    for v in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "JOB_COMPLETION_INDEX",
        "RANK",
        "WORLD_SIZE",
    ] {
        c.env_remove(v);
    }
    c.envs(vars.iter().copied());
    if let Some(point) = crash_at {
        c.env("CFKIT_CRASH_AT", point);
    }
    c.output().expect("cfkit runs")
}

fn worker_record(out: &Path, index: usize, count: usize) -> serde_json::Value {
    let path = out.join(format!("run.worker-{index:05}-of-{count:05}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn cluster_workers_from_the_launchers_environment() -> Result<()> {
    let dir = common::tmpdir("dirs", "cluster");
    let data = demo(&dir);
    let bcfg = build_config(&dir, &data);
    let lone = dir.join("lone");
    ok(cfkit(&build_args(&bcfg, &lone)));

    // A Slurm job array `--array=1-2` (ids 1 and 2, so indices 0 and 1 of 2): task 2 is killed
    // after its first shard is in its manifest part; merge names it; its rerun resumes; a rerun of the finished task 1
    // returns at once; the merged shards equal the single-worker build's.
    let slurm = dir.join("slurm");
    let task = |id: &'static str| {
        [
            ("SLURM_ARRAY_TASK_ID", id),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]
    };
    let o = worker(&bcfg, &slurm, &task("1"), &[], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = worker(&bcfg, &slurm, &task("2"), &[], Some("build:manifest"));
    assert!(!o.status.success(), "the killed task reported success");
    let e = err(cfkit(&["merge", slurm.to_str().unwrap()]));
    assert!(
        e.contains("workers [1] of 2") && e.contains("done.worker-00001-of-00002.json"),
        "{e}"
    );
    let o = worker(&bcfg, &slurm, &task("2"), &[], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t0 = Instant::now();
    let o = worker(&bcfg, &slurm, &task("1"), &[], None);
    let again = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && again.contains("0 shard(s) written, 2 skipped"),
        "{again}"
    );
    eprintln!("rerun of a finished worker: {:?}", t0.elapsed());
    let rec = worker_record(&slurm, 1, 2);
    assert_eq!(rec["workers"]["source"], "slurm-array");
    assert_eq!(rec["workers"]["index"], 1);
    ok(cfkit(&["merge", slurm.to_str().unwrap()]));
    assert_eq!(shards(&slurm), shards(&lone));

    // The shipped Slurm script, run as two array tasks would run it (`--array=0-1`).
    let script = Path::new(ROOT).join("deploy/slurm/build-counterfactuals.sbatch");
    let via_script = dir.join("slurm-script");
    for id in ["0", "1"] {
        let o = Command::new("bash")
            .arg(&script)
            .env("CFKIT", env!("CARGO_BIN_EXE_cfkit"))
            .env("CONFIG", &bcfg)
            .env("OUT", &via_script)
            .env("SLURM_ARRAY_TASK_ID", id)
            .env("SLURM_ARRAY_TASK_COUNT", "2")
            .env("SLURM_ARRAY_TASK_MIN", "0")
            .output()?;
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    ok(cfkit(&["merge", via_script.to_str().unwrap()]));
    assert_eq!(shards(&via_script), shards(&lone));

    // A Kubernetes Indexed Job (the count from --num-workers) and torchrun ranks; flags override
    // the environment.
    let k8s = dir.join("k8s");
    for i in ["0", "1"] {
        let o = worker(
            &bcfg,
            &k8s,
            &[("JOB_COMPLETION_INDEX", i)],
            &["--num-workers", "2"],
            None,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(
        worker_record(&k8s, 0, 2)["workers"]["source"],
        "kubernetes-indexed-job"
    );
    ok(cfkit(&["merge", k8s.to_str().unwrap()]));
    assert_eq!(shards(&k8s), shards(&lone));
    let ranks = dir.join("ranks");
    let o = worker(
        &bcfg,
        &ranks,
        &[("RANK", "1"), ("WORLD_SIZE", "2")],
        &[],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(worker_record(&ranks, 1, 2)["workers"]["source"], "rank");
    let flags = ["--num-workers", "2", "--worker-index", "0"];
    let o = worker(
        &bcfg,
        &ranks,
        &[("RANK", "1"), ("WORLD_SIZE", "2")],
        &flags,
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(worker_record(&ranks, 0, 2)["workers"]["source"], "flags");
    ok(cfkit(&["merge", ranks.to_str().unwrap()]));
    assert_eq!(shards(&ranks), shards(&lone));
    Ok(())
}
