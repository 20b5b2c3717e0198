//! End-to-end tests of `cfkit train` and `cfkit eval` on a small FashionShift set with the `tiny`
//! preset: a run from scratch with hold-out validation, gradient accumulation and every run
//! record and an undecodable row quarantined each epoch; a SIGKILL at a random moment and
//! `--resume` ending bitwise equal (weights, metrics, quarantine log) to an uninterrupted
//! run; evaluation from shards and from an ImageFolder agreeing with the run report; and clear
//! errors for bad configs, reused directories and corrupt checkpoints.

#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom; the limit is for library code

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;
use common::{cfkit, corrupt_train_rows, err, ok};

fn tmpdir(name: &str) -> common::TmpDir {
    common::tmpdir("train", name)
}

/// FashionShift at 1 % scale (train 100, test/ood 20 each) plus PNG folders of test-id.
fn demo(dir: &Path) -> PathBuf {
    let folders = dir.join("folders");
    common::demo_data(
        dir,
        "train,test-id,ood-sketch",
        "0.01",
        &["--image-folder", folders.to_str().unwrap()],
    )
}

/// A hold-out seed under which exactly one of `ids` is held out (of 20 rows), so that one
/// undecodable row is met in training and the other in validation.
fn seed_splitting(data: &Path, ids: &[String]) -> Result<u64> {
    use cfkit_schemas::{Manifest, ShardReader};
    let m = Manifest::read(data)?;
    let entry = &m.splits["train"];
    let mut rows: Vec<(String, usize)> = Vec::new();
    for shard in &entry.shards {
        let r = ShardReader::open(&data.join(&shard.file))?;
        for g in 0..r.num_row_groups() {
            let labels = r.read_labels(g)?;
            rows.extend(
                r.read_ids(g)?
                    .into_iter()
                    .zip(labels.into_iter().map(|l| l as usize)),
            );
        }
    }
    let refs: Vec<(&str, usize)> = rows.iter().map(|(id, l)| (id.as_str(), *l)).collect();
    (0..1000)
        .find(|&seed| {
            let held = cfkit_schemas::holdout::held_out(&refs, entry.classes.len(), 20, seed);
            let bad_held = refs
                .iter()
                .zip(&held)
                .filter(|((id, _), h)| **h && ids.iter().any(|b| b == id))
                .count();
            bad_held == 1
        })
        .ok_or_else(|| anyhow::anyhow!("no hold-out seed splits {ids:?}"))
}

fn config(dir: &Path, data: &Path, epochs: usize) -> PathBuf {
    config_with(dir, data, epochs, 0)
}

fn config_with(dir: &Path, data: &Path, epochs: usize, holdout_seed: u64) -> PathBuf {
    let text = format!(
        r#"
[model]
name = "tiny"

[data]
shards = "{data}"
split = "train"
val_holdout = 20
holdout_seed = {holdout_seed}
shuffle_buffer = 32

[train]
method = "ft"
epochs = {epochs}
batch_size = 16
micro_batch_size = 8
seed = 5
device = "cpu"
log_every = 2
checkpoint_every = 1
eval_batch_size = 16

[schedule]
kind = "one-cycle"
max_lr = 1e-3
pct_start = 0.2

[eval]
sets = [{{ name = "test-id" }}, {{ name = "ood-sketch" }}]
"#,
        data = data.display()
    );
    let path = dir.join(format!("train-{epochs}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// metrics.jsonl without the wall-clock field.
fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("images_per_s");
            v
        })
        .collect()
}

#[test]
fn train_resume_and_eval_end_to_end() -> Result<()> {
    let dir = tmpdir("e2e");
    let data = demo(&dir);
    let bad_ids = corrupt_train_rows(&data)?;
    let cfg = config_with(&dir, &data, 3, seed_splitting(&data, &bad_ids)?);

    // An uninterrupted run.
    let run_a = dir.join("run-a");
    let out = ok(cfkit(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        run_a.to_str().unwrap(),
        "-q",
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(out.trim())?;
    // 100 rows - 20 held out = 80 -> 5 steps of 16 per epoch, 3 epochs.
    assert_eq!(report["train_rows"], 80);
    assert_eq!(report["val_rows"], 20);
    assert_eq!(report["steps"], 15);
    let sets = report["eval"]["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0]["images"], 20);
    assert_eq!(sets[1]["ood"], true);
    assert!(report["eval"]["ood_mean"].as_f64().is_some());

    // Run records.
    let run = json(&run_a.join("run.json"));
    assert_eq!(run["seed"], 5);
    // --print-config resolves the same config and hash without training; an override changes it.
    let printed = |sets: &[&str]| -> serde_json::Value {
        let mut args = vec!["train", "--config", cfg.to_str().unwrap(), "--print-config"];
        for s in sets {
            args.extend(["--set", s]);
        }
        serde_json::from_str(&ok(cfkit(&args))).unwrap()
    };
    let p = printed(&[]);
    assert_eq!(p["config_hash"], run["config_hash"]);
    assert_eq!(p["config"], run["config"]);
    assert_ne!(
        printed(&["train.seed=6"])["config_hash"],
        run["config_hash"]
    );
    // The commit the binary was built from: this checkout's HEAD (cargo rebuilds when it moves).
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(run["cfkit_commit"], head.as_str());
    assert_eq!(run["accumulation"], 2);
    assert_eq!(
        run["data"]["train"]["fingerprint"].as_str().unwrap().len(),
        64
    );
    let eval_records = run["data"]["eval"].as_array().unwrap();
    assert_eq!(eval_records.len(), 2);
    for (set, rec) in sets.iter().zip(eval_records) {
        // The report names exactly the data each set was scored on.
        assert_eq!(set["fingerprint"].as_str().unwrap().len(), 64);
        assert_eq!(set["fingerprint"], rec["data"]["fingerprint"]);
    }
    assert_eq!(run["init"]["kind"], "scratch");
    // Undecodable rows are quarantined with their reason every epoch; the run goes on.
    let quarantine = std::fs::read_to_string(run_a.join("quarantine.jsonl"))?;
    let lines: Vec<serde_json::Value> = quarantine
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    // One bad row is trained on, the other held out (`seed_splitting`): each epoch quarantines
    // the first, then the other at validation. The hold-out is listed in holdout-ids.txt.
    let held = std::fs::read_to_string(run_a.join("holdout-ids.txt"))?;
    assert_eq!(held.lines().count(), 20);
    let (val_bad, train_bad): (Vec<&String>, Vec<&String>) = bad_ids
        .iter()
        .partition(|id| held.lines().any(|h| h == id.as_str()));
    assert_eq!((val_bad.len(), train_bad.len()), (1, 1));
    assert_eq!(lines.len(), 6, "{quarantine}");
    for (i, l) in lines.iter().enumerate() {
        let (id, stage) = match i % 2 {
            0 => (train_bad[0], "train"),
            _ => (val_bad[0], "validation"),
        };
        assert_eq!(l["id"], id.as_str(), "{l}");
        assert_eq!(l["stage"], stage, "{l}");
        assert_eq!(l["epoch"], i / 2, "{l}");
        assert!(l["reason"].as_str().unwrap().contains("PNG"), "{l}");
    }
    let m = metrics(&run_a);
    let steps: Vec<&serde_json::Value> = m.iter().filter(|v| v["kind"] == "step").collect();
    let epochs: Vec<&serde_json::Value> = m.iter().filter(|v| v["kind"] == "epoch").collect();
    assert_eq!(epochs.len(), 3);
    assert_eq!(steps.len(), 7, "log_every 2 over 15 steps");
    assert!(epochs.iter().all(|e| e["val_top1"].as_f64().is_some()));
    // The loss goes down over the run (training does something).
    let first = epochs[0]["train_loss"].as_f64().unwrap();
    let last = epochs[2]["train_loss"].as_f64().unwrap();
    assert!(last < first, "train loss {first} -> {last}");
    assert!(run_a.join("report.md").is_file());
    let best = json(&run_a.join("checkpoints/best/checkpoint.json"));
    assert_eq!(best["step"], report["best"]["step"]);

    // Killed at a random moment after the first checkpoint, then resumed.
    let run_b = dir.join("run-b");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos();
    let delay = Duration::from_millis(u64::from(seed % 1500));
    let mut child = Command::new(env!("CARGO_BIN_EXE_cfkit"))
        .args([
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            run_b.to_str().unwrap(),
            "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let t0 = Instant::now();
    while !run_b.join("checkpoints/last/checkpoint.json").exists()
        && t0.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(delay);
    child.kill()?; // SIGKILL
    let status = child.wait()?;
    eprintln!("killed after the first checkpoint + {delay:?} (exit {status:?})");
    let killed_at = json(&run_b.join("checkpoints/last/checkpoint.json"))["step"].clone();
    eprintln!("last checkpoint at step {killed_at}");
    // Without --resume the directory is refused.
    let e = err(cfkit(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        run_b.to_str().unwrap(),
        "-q",
    ]));
    assert!(e.contains("--resume"), "{e}");
    ok(cfkit(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        run_b.to_str().unwrap(),
        "-q",
        "--resume",
    ]));
    for f in [
        "checkpoints/last/model.safetensors",
        "checkpoints/last/head.safetensors",
        "checkpoints/last/optimizer.safetensors",
        "checkpoints/best/model.safetensors",
    ] {
        assert_eq!(
            std::fs::read(run_a.join(f))?,
            std::fs::read(run_b.join(f))?,
            "{f} differs between the uninterrupted and the resumed run"
        );
    }
    assert_eq!(
        metrics(&run_a),
        metrics(&run_b),
        "metrics differ after resume"
    );
    assert_eq!(
        std::fs::read_to_string(run_b.join("quarantine.jsonl"))?,
        quarantine,
        "the quarantine log differs after resume"
    );
    let report_b = json(&run_b.join("report.json"));
    assert_eq!(report_b["eval"], report["eval"]);
    // A finished run rerun with --resume trains nothing and keeps its training time.
    let again: serde_json::Value = serde_json::from_str(
        ok(cfkit(&[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            run_a.to_str().unwrap(),
            "-q",
            "--resume",
            "--json",
        ]))
        .trim(),
    )?;
    assert_eq!(again["eval"], report["eval"]);
    let (t0, t1) = (
        report["train_seconds"].as_f64().unwrap(),
        again["train_seconds"].as_f64().unwrap(),
    );
    assert!(
        t0 > 0.0 && t1 >= t0 && t1 < t0 + 5.0,
        "train_seconds {t0} -> {t1}"
    );

    // cfkit eval on the best checkpoint: the same numbers as the report, from shards and from
    // the PNG folder of test-id (prepared on the fly; the same pixels).
    let best_dir = run_a.join("checkpoints/best");
    let e: serde_json::Value = serde_json::from_str(
        ok(cfkit(&[
            "eval",
            "--checkpoint",
            best_dir.to_str().unwrap(),
            "--shards",
            data.to_str().unwrap(),
            "--split",
            "test-id,ood-sketch",
            "--json",
            "--device",
            "cpu",
        ]))
        .trim(),
    )?;
    assert_eq!(e["sets"], report["eval"]["sets"]);
    let folder = dir.join("folders/test-id");
    let f: serde_json::Value = serde_json::from_str(
        ok(cfkit(&[
            "eval",
            "--checkpoint",
            best_dir.to_str().unwrap(),
            "--image-folder",
            folder.to_str().unwrap(),
            "--classes",
            folder.join("classes.txt").to_str().unwrap(),
            "--json",
            "--device",
            "cpu",
        ]))
        .trim(),
    )?;
    assert_eq!(f["sets"][0]["correct"], sets[0]["correct"]);
    assert_eq!(f["sets"][0]["images"], 20);
    // FashionShift shards carry the background family: each set's accuracy is also split by
    // whether the background is the class's (an image folder carries no ground truth).
    for s in sets {
        let b = &s["background"];
        let n = |k: &str| b[k].as_u64().unwrap();
        assert_eq!(
            n("matching_images") + n("other_images"),
            s["images"].as_u64().unwrap()
        );
        assert_eq!(
            n("matching_correct") + n("other_correct"),
            s["correct"].as_u64().unwrap()
        );
    }
    assert!(f["sets"][0].get("background").is_none(), "{}", f["sets"][0]);

    // A corrupt checkpoint is refused, naming the file.
    let bad = dir.join("bad-ckpt");
    std::fs::create_dir_all(&bad)?;
    for entry in std::fs::read_dir(&best_dir)? {
        let p = entry?.path();
        std::fs::copy(&p, bad.join(p.file_name().unwrap()))?;
    }
    let mut bytes = std::fs::read(bad.join("model.safetensors"))?;
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    std::fs::write(bad.join("model.safetensors"), bytes)?;
    let e = err(cfkit(&[
        "eval",
        "--checkpoint",
        bad.to_str().unwrap(),
        "--shards",
        data.to_str().unwrap(),
    ]));
    assert!(
        e.contains("model.safetensors") && e.contains("blake3"),
        "{e}"
    );
    Ok(())
}

/// bf16 autocast trains on the CPU too (libtorch's CPU autocast): the run records the precision,
/// its losses are finite and close to fp32's, and `auto` resolves to fp32 off CUDA. The
/// statistics are read from the device once per logging window (and epoch end), not per step.
#[test]
fn bf16_autocast_trains_on_the_cpu_and_auto_is_fp32_there() -> Result<()> {
    let dir = tmpdir("bf16");
    let data = demo(&dir);
    let cfg = config(&dir, &data, 2);
    let run =
        |name: &str, precision: &str| -> Result<(serde_json::Value, Vec<serde_json::Value>)> {
            let out = dir.join(name);
            ok(cfkit(&[
                "train",
                "--config",
                cfg.to_str().unwrap(),
                "--set",
                &format!("train.precision={precision}"),
                "--set",
                "train.checkpoint_every=1000",
                "--out",
                out.to_str().unwrap(),
                "--profile",
                "-q",
            ]));
            let record = json(&out.join("run.json"));
            let profile = json(&out.join("profile.json"));
            // 80 training rows: 5 steps of 16 per epoch, a window every 2 steps -> reads at steps
            // 2, 4, 6, 8 and 10 and at the first epoch's end (step 5); none inside a step.
            assert_eq!(profile["optimizer_steps"], 10, "{profile}");
            assert_eq!(profile["host_reads"], 6, "{profile}");
            Ok((record, metrics(&out)))
        };
    let (bf16, m_bf16) = run("bf16", "bf16")?;
    let (auto, m_auto) = run("auto", "auto")?;
    assert_eq!(bf16["config"]["train"]["precision"], "bf16");
    assert_eq!(
        auto["config"]["train"]["precision"], "fp32",
        "auto is fp32 on the CPU"
    );
    assert_ne!(bf16["config_hash"], auto["config_hash"]);
    let losses = |m: &[serde_json::Value]| -> Vec<f64> {
        m.iter()
            .filter(|l| l["kind"] == "step")
            .map(|l| l["loss"].as_f64().unwrap())
            .collect()
    };
    let (a, b) = (losses(&m_bf16), losses(&m_auto));
    assert_eq!(a.len(), 5);
    for (x, y) in a.iter().zip(&b) {
        assert!(
            x.is_finite() && (x - y).abs() <= 0.05 * y.abs(),
            "bf16 {a:?} vs fp32 {b:?}"
        );
    }
    assert_ne!(a, b, "bf16 matmuls change the losses (autocast was on)");
    Ok(())
}

#[test]
fn bad_configs_and_reused_directories_fail_clearly() -> Result<()> {
    let dir = tmpdir("bad");
    let data = dir.join("no-such-data");
    let cfg = config(&dir, &data, 1);
    // Unknown key, named.
    let text = std::fs::read_to_string(&cfg)?.replace("seed = 5", "seed = 5\nlearning_rate = 3");
    let typo = dir.join("typo.toml");
    std::fs::write(&typo, text)?;
    let e = err(cfkit(&[
        "train",
        "--config",
        typo.to_str().unwrap(),
        "--out",
        dir.join("r").to_str().unwrap(),
    ]));
    assert!(
        e.contains("learning_rate") && e.contains("typo.toml"),
        "{e}"
    );
    // batch not a multiple of the micro-batch.
    let text =
        std::fs::read_to_string(&cfg)?.replace("micro_batch_size = 8", "micro_batch_size = 6");
    let mb = dir.join("mb.toml");
    std::fs::write(&mb, text)?;
    let e = err(cfkit(&[
        "train",
        "--config",
        mb.to_str().unwrap(),
        "--out",
        dir.join("r").to_str().unwrap(),
    ]));
    assert!(e.contains("micro_batch_size"), "{e}");
    // Checkpoints by time need a positive number of minutes.
    let e = err(cfkit(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--set",
        "train.checkpoint_minutes=-5",
        "--out",
        dir.join("r").to_str().unwrap(),
    ]));
    assert!(e.contains("checkpoint_minutes must be a positive"), "{e}");
    // Missing dataset: names the directory.
    let e = err(cfkit(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        dir.join("r").to_str().unwrap(),
    ]));
    assert!(e.contains("no-such-data"), "{e}");
    assert!(
        !dir.join("r").exists(),
        "a failed start must not leave a run directory behind"
    );
    // A non-empty directory that is not a run.
    let other = dir.join("other");
    std::fs::create_dir_all(&other)?;
    std::fs::write(other.join("x.txt"), "x")?;
    let e = err(cfkit(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ]));
    assert!(e.contains("not empty"), "{e}");
    // eval: a checkpoint directory that is not one.
    let e = err(cfkit(&[
        "eval",
        "--checkpoint",
        other.to_str().unwrap(),
        "--shards",
        other.to_str().unwrap(),
    ]));
    assert!(e.contains("checkpoint.json"), "{e}");
    Ok(())
}
