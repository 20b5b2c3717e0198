//! Data-parallel training end to end: `cfkit train` started as ranks of one job on this machine,
//! as `torchrun --nproc_per_node N --no-python cfkit train …` would start them (RANK,
//! WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), over Gloo.
//!
//! - 2 ranks × 32 rows train the weights of 1 process × 64 rows, for FT (with two undecodable
//!   rows, skipped and logged by rank 0 whichever rank met them) and for offline masked FD;
//!   online masked FD runs with each rank drawing from its own rows.
//! - `kill -9` of one rank ends the job with a clear error within the timeout; `--resume` with
//!   2 ranks reaches the uninterrupted run's weights, and so does one process resuming it.
//! - Ranks with different configs, a missing RANK and a rank that never comes fail clearly.

#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom; the limit is for library code

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::Result;
use common::{cfkit, corrupt_train_rows, err, ok};
use tch::Tensor;

/// Plain data (train 200 with 2 undecodable rows, test-id 40), a teacher, and counterfactual
/// shards of the train split built with it.
struct Fixture {
    dir: common::TmpDir,
    data: PathBuf,
    cf: PathBuf,
    bad_ids: Vec<String>,
}

fn fixture(name: &str) -> Result<Fixture> {
    let dir = common::tmpdir("ddp", name);
    let data = common::demo_data(&dir, "train,test-id", "0.02", &[]);
    let bad_ids = corrupt_train_rows(&data)?;
    let teacher = dir.join("teacher");
    ok(cfkit(&[
        "train",
        "--config",
        config(&dir, &data, "teacher", 1)?.to_str().unwrap(),
        "--out",
        teacher.to_str().unwrap(),
        "-q",
    ]));
    let t = teacher.join("checkpoints/best");
    let build = dir.join("build.toml");
    std::fs::write(
        &build,
        format!(
            "[source]\nshards = \"{}\"\nsplit = \"train\"\n\n[teacher]\nmodel = \"tiny\"\n\
             weights = \"{t}/model.safetensors\"\nhead = \"{t}/head.safetensors\"\n\n\
             [counterfactuals]\nstrategies = [\"ObjMaskSingleFill(0.3)\"]\nvariants = 2\n\
             seed = 0\nbatch_size = 32\ndevice = \"cpu\"\n",
            data.display(),
            t = t.display()
        ),
    )?;
    let cf = dir.join("cf");
    ok(cfkit(&[
        "build-counterfactuals",
        "--config",
        build.to_str().unwrap(),
        "--out",
        cf.to_str().unwrap(),
        "-q",
    ]));
    Ok(Fixture {
        dir,
        data,
        cf,
        bad_ids,
    })
}

/// FT from the teacher in `dir` (from scratch when there is none yet) on `shards`: steps of 64
/// rows, validation on 8 held-out rows, test-id evaluated.
fn config(dir: &Path, shards: &Path, name: &str, epochs: usize) -> Result<PathBuf> {
    let teacher = dir.join("teacher/checkpoints/best");
    let model = if teacher.exists() {
        format!("checkpoint = \"{}\"", teacher.display())
    } else {
        "name = \"tiny\"".into()
    };
    let text = format!(
        r#"
[model]
{model}

[data]
shards = "{shards}"
split = "train"
val_holdout = 8
shuffle_buffer = 64

[train]
method = "ft"
epochs = {epochs}
batch_size = 64
micro_batch_size = 64
seed = 3
device = "cpu"
log_every = 1
checkpoint_every = 2
eval_batch_size = 32

[schedule]
kind = "one-cycle"
max_lr = 1e-3
pct_start = 0.3

[eval]
shards = "{data}"
sets = [{{ name = "test-id" }}]
"#,
        shards = shards.display(),
        data = dir.join("data").display(),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `cfkit train --config cfg --out out -q args…` as every rank of a `world`-rank job
/// (one thread each); `per_rank(rank)` adds arguments to one rank.
fn start_ranks(
    world: usize,
    cfg: &Path,
    out: &Path,
    args: &[&str],
    per_rank: impl Fn(usize) -> Vec<String>,
) -> Vec<Child> {
    let port = free_port().to_string();
    (0..world)
        .map(|rank| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_cfkit"));
            c.args(["train", "--config", cfg.to_str().unwrap()])
                .args(["--out", out.to_str().unwrap(), "-q"])
                .args(args)
                .args(per_rank(rank))
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("WORLD_SIZE", world.to_string())
                .env("MASTER_ADDR", "127.0.0.1")
                .env("MASTER_PORT", &port)
                .env("OMP_NUM_THREADS", "1")
                .env("RAYON_NUM_THREADS", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().expect("cfkit starts")
        })
        .collect()
}

fn wait_all(children: Vec<Child>) -> Vec<Output> {
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// Runs a `world`-rank job to its end; asserts every rank succeeded.
fn train_ranks(world: usize, cfg: &Path, out: &Path, args: &[&str]) -> Vec<String> {
    wait_all(start_ranks(world, cfg, out, args, |_| Vec::new()))
        .into_iter()
        .map(ok)
        .collect()
}

/// One process (one thread), as the reference.
fn train_one(cfg: &Path, out: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_cfkit"))
        .args(["train", "--config", cfg.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap(), "-q"])
        .args(args)
        .env("OMP_NUM_THREADS", "1")
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    ok(o)
}

/// Largest absolute difference between the weights and heads of two checkpoints (every tensor
/// of one must be in the other, with the same shape), leaving out names containing `skip`.
fn max_abs_diff(a: &Path, b: &Path, skip: &[&str]) -> f64 {
    let mut worst = 0f64;
    for file in ["model.safetensors", "head.safetensors"] {
        let read = |d: &Path| {
            let mut v = Tensor::read_safetensors(d.join(file)).unwrap();
            v.sort_by(|x, y| x.0.cmp(&y.0));
            v
        };
        let (ta, tb) = (read(a), read(b));
        assert_eq!(ta.len(), tb.len(), "{file}");
        for ((na, x), (nb, y)) in ta.iter().zip(&tb) {
            assert_eq!(na, nb);
            assert_eq!(x.size(), y.size(), "{na}");
            if skip.iter().any(|s| na.contains(s)) {
                continue;
            }
            let d = (x - y).abs().max().double_value(&[]);
            worst = worst.max(d);
        }
    }
    worst
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The epoch lines' training loss, top-1 and validation top-1.
fn epoch_curve(run: &Path) -> Vec<(f64, f64, f64)> {
    lines(&run.join("metrics.jsonl"))
        .iter()
        .filter(|m| m["kind"] == "epoch")
        .map(|m| {
            let f = |k: &str| m[k].as_f64().unwrap();
            (f("train_loss"), f("train_top1"), f("val_top1"))
        })
        .collect()
}

#[test]
fn two_ranks_train_the_weights_of_one_process_of_the_whole_batch() -> Result<()> {
    let f = fixture("equal")?;
    let cfg = config(&f.dir, &f.data, "ft", 2)?;
    let cf = format!("data.shards=\"{}\"", f.cf.display());
    let masked_fd: [&str; 3] = [
        &cf,
        "train.method=\"ft-fd\"",
        "distill={ images = \"masked\", strategy = \"ObjMaskSingleFill(0.3)\", weight = 10.0 }",
    ];
    for (name, sets) in [("ft", &[][..]), ("masked-fd", &masked_fd[..])] {
        let args: Vec<&str> = sets.iter().flat_map(|s| ["--set", s]).collect();
        let one = f.dir.join(format!("{name}-1x64"));
        let accum = f.dir.join(format!("{name}-1x2x32"));
        let two = f.dir.join(format!("{name}-2x32"));
        train_one(&cfg, &one, &args);
        let mut accum_args = args.clone();
        accum_args.extend(["--set", "train.micro_batch_size=32"]);
        train_one(&cfg, &accum, &accum_args);
        let outs = train_ranks(2, &cfg, &two, &args);
        assert!(outs[1].contains("rank 1 of 2"), "{}", outs[1]);

        // 192 training rows (the counterfactual shards hold 190): 3 (2) steps of 64 per epoch,
        // 2 epochs; rank 0 wrote everything.
        let record = json(&two.join("run.json"));
        let d = &record["distributed"];
        assert_eq!(
            (&d["world_size"], &d["global_batch"], &d["rank_batch"]),
            (&2.into(), &64.into(), &32.into()),
            "{d}"
        );
        assert_eq!(
            json(&one.join("run.json"))["distributed"],
            serde_json::Value::Null
        );
        let r2 = json(&two.join("report.json"));
        let steps = json(&one.join("report.json"))["steps"].clone();
        assert_eq!(r2["steps"], steps);
        assert!(steps.as_u64().unwrap() >= 4, "{steps}");
        // Against one process accumulating the same two micro-batches of 32: the same sums
        // (halving is exact), so the same weights.
        let last = |run: &Path| run.join("checkpoints/last");
        let vs_accum = max_abs_diff(&last(&accum), &last(&two), &[]);
        // Against one micro-batch of 64: the sums differ in order. The keys' biases have a zero
        // gradient in exact arithmetic (softmax ignores a shift shared by all keys), so AdamW
        // turns their rounding noise into full-size steps: they are compared apart.
        let k_bias = ["self_attn.k_proj.bias"];
        let vs_one = max_abs_diff(&last(&one), &last(&two), &k_bias);
        let all = max_abs_diff(&last(&one), &last(&two), &[]);
        eprintln!(
            "{name}, {steps} steps, max-abs weight difference of 2 ranks x 32: vs 1 process \
             accumulating 2 x 32 {vs_accum:e}; vs 1 x 64 {vs_one:e} (the keys' biases \
             included: {all:e})"
        );
        assert!(vs_accum <= 1e-7, "{name}: {vs_accum}");
        assert!(vs_one < 1e-5, "{name}: {vs_one}");
        // The logged curves are the whole batch's, whichever rank saw the rows.
        let (c1, c2) = (epoch_curve(&one), epoch_curve(&two));
        assert_eq!(c1.len(), 2);
        for (a, b) in c1.iter().zip(&c2) {
            assert!(
                (a.0 - b.0).abs() < 1e-5 && a.1 == b.1 && a.2 == b.2,
                "{a:?} {b:?}"
            );
        }
        let r1 = json(&one.join("report.json"));
        assert_eq!(
            r1["eval"]["sets"][0]["images"],
            r2["eval"]["sets"][0]["images"]
        );
        let top1 = |r: &serde_json::Value| r["eval"]["sets"][0]["top1"].as_f64().unwrap();
        assert!((top1(&r1) - top1(&r2)).abs() < 1e-9);
        if name == "ft" {
            // The undecodable rows are logged by rank 0, whichever rank met them: the same
            // entries as the single process's, every bad row among them.
            let entries = |run: &Path| {
                let mut v: Vec<String> = lines(&run.join("quarantine.jsonl"))
                    .iter()
                    .map(|l| format!("{} {} {}", l["id"], l["epoch"], l["stage"]))
                    .collect();
                v.sort();
                v
            };
            let q = entries(&two);
            assert_eq!(q, entries(&one));
            for id in &f.bad_ids {
                assert!(q.iter().any(|e| e.contains(id.as_str())), "{id}: {q:?}");
            }
        }
    }
    // Online masked FD: each rank draws its masks and donors from its own rows (and seeds).
    let online = f.dir.join("online-2x32");
    train_ranks(
        2,
        &cfg,
        &online,
        &[
            "--set",
            "train.method=\"ft-fd\"",
            "--set",
            "distill={ images = \"masked\", mode = \"online\", strategy = \"ObjMaskSingleFill(0.3)\" }",
        ],
    );
    let steps: Vec<f64> = lines(&online.join("metrics.jsonl"))
        .iter()
        .filter(|m| m["kind"] == "step")
        .map(|m| m["distill"].as_f64().unwrap())
        .collect();
    assert_eq!(steps.len(), 6);
    assert!(steps.iter().all(|d| d.is_finite()) && steps[1..].iter().any(|&d| d > 0.0));
    Ok(())
}

#[test]
fn a_killed_rank_ends_the_job_and_resume_reaches_the_same_weights() -> Result<()> {
    let f = fixture("kill")?;
    let cfg = config(&f.dir, &f.data, "long", 12)?;
    // Micro-batches of 32: one per step on each of 2 ranks, two per step in one process (the
    // resume point is converted).
    let timeout = ["--dist-timeout", "20", "--set", "train.micro_batch_size=32"];
    let full = f.dir.join("full");
    train_ranks(2, &cfg, &full, &timeout);

    // kill -9 of rank 1 once rank 0 has checkpointed a few steps in.
    let cut = f.dir.join("cut");
    let mut ranks = start_ranks(2, &cfg, &cut, &timeout, |_| Vec::new());
    let t0 = Instant::now();
    while lines(&cut.join("metrics.jsonl"))
        .iter()
        .filter(|m| m["kind"] == "step")
        .count()
        < 5
    {
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    ranks[1].kill()?;
    let killed_at = Instant::now();
    let outs = wait_all(ranks);
    let waited = killed_at.elapsed();
    let e = err(outs[0].clone());
    eprintln!(
        "rank 0 ended {:.1} s after rank 1 was killed: {e}",
        waited.as_secs_f64()
    );
    assert!(waited < Duration::from_secs(30), "{waited:?}");
    assert!(
        e.contains("distributed") && e.contains("rank 0 of 2"),
        "{e}"
    );
    let report = cut.join("report.json");
    assert!(!report.exists(), "the cut run must not have finished");

    // Resumed by 2 ranks: the uninterrupted run's weights. By 1 process (accumulating the
    // ranks' two micro-batches): the same.
    let copy = f.dir.join("cut-one");
    let o = Command::new("cp")
        .args(["-r", cut.to_str().unwrap(), copy.to_str().unwrap()])
        .output()?;
    assert!(o.status.success());
    let mut resume = timeout.to_vec();
    resume.push("--resume");
    train_ranks(2, &cfg, &cut, &resume);
    let same = max_abs_diff(
        &full.join("checkpoints/last"),
        &cut.join("checkpoints/last"),
        &[],
    );
    eprintln!("2-rank resume vs uninterrupted: max-abs {same:e}");
    assert!(same <= 1e-7, "{same}");
    assert_eq!(
        json(&full.join("report.json"))["eval"],
        json(&report)["eval"]
    );
    let mut resume_one = timeout[2..].to_vec();
    resume_one.push("--resume");
    train_one(&cfg, &copy, &resume_one);
    let one = max_abs_diff(
        &full.join("checkpoints/last"),
        &copy.join("checkpoints/last"),
        &[],
    );
    eprintln!("1-process resume of the 2-rank run vs uninterrupted: max-abs {one:e}");
    // Micro-batches of 32 in both, so the same sums.
    assert!(one <= 1e-7, "{one}");
    Ok(())
}

#[test]
fn ranks_that_disagree_or_cannot_meet_fail_clearly() -> Result<()> {
    let dir = common::tmpdir("ddp", "errors");
    let data = common::demo_data(&dir, "train,test-id", "0.01", &[]);
    let cfg = config(&dir, &data, "ft", 1)?;

    // Another seed on rank 1: both ranks refuse, before anything is written.
    let out = dir.join("disagree");
    let outs = wait_all(start_ranks(2, &cfg, &out, &[], |r| {
        if r == 1 {
            vec!["--set".into(), "train.seed=4".into()]
        } else {
            Vec::new()
        }
    }));
    for o in outs {
        let e = err(o);
        assert!(
            e.contains("ranks disagree") && e.contains("config hash"),
            "{e}"
        );
    }
    assert!(!out.join("run.json").exists());

    // A batch that does not split over the ranks.
    let outs = wait_all(start_ranks(
        2,
        &cfg,
        &dir.join("odd"),
        &[
            "--set",
            "train.batch_size=63",
            "--set",
            "train.micro_batch_size=63",
        ],
        |_| Vec::new(),
    ));
    for o in outs {
        let e = err(o);
        assert!(
            e.contains("batch_size (63) is not a multiple of the 2 ranks"),
            "{e}"
        );
    }

    // The launcher's variables, checked.
    let cfg_s = cfg.to_str().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_cfkit"))
        .args(["train", "--config", cfg_s, "--out"])
        .arg(dir.join("norank"))
        .env("WORLD_SIZE", "2")
        .env_remove("RANK")
        .output()?;
    assert!(err(o).contains("RANK is not set"));

    // Rank 1 never comes: rank 0 gives up after the timeout.
    let t0 = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_cfkit"))
        .args(["train", "--config", cfg_s, "--dist-timeout", "3", "--out"])
        .arg(dir.join("alone"))
        .env("WORLD_SIZE", "2")
        .env("RANK", "0")
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", free_port().to_string())
        .output()?;
    let e = err(o);
    eprintln!("alone: {:.1} s: {e}", t0.elapsed().as_secs_f64());
    assert!(t0.elapsed() < Duration::from_secs(30), "{e}");
    assert!(e.contains("rendezvous"), "{e}");
    Ok(())
}
