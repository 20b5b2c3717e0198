//! The runner of `just demo` (cfkit_tools.demo.run) on a small grid with a stand-in for the `cfkit`
//! binary (tests/demo/fake_cfkit.py, which logs its calls): the order of the runs (every seed's
//! weight sweeps before the runs that follow the weight the validation rule picks), the weight
//! they run at, the WiSE-FT sweep on the chosen run, resuming, `--quick`, and the refusal of a
//! grid with more epochs than stored variants.

#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom; the limit is for library code

mod common;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};

/// The grid of the runner test: two seeds, a three-weight sweep of FT+FD and of the headline
/// (one of three strategies), online mode after the headline's weight, and a sweep of the headline
/// on a second build of shards (`extra_counterfactuals`, not built yet), `epochs` epochs over
/// shards of 2 variants. Paths are absolute, under `dir`.
fn runner_grid(dir: &Path, epochs: u32) -> Result<PathBuf> {
    for (file, text) in [
        ("cf.toml", "[counterfactuals]\nvariants = 2\n"),
        ("cf2.toml", "[counterfactuals]\nvariants = 2\n"),
        ("train.toml", "[distill]\nweight = 0.1\n"),
        ("cf/manifest.json", "{}"),
    ] {
        std::fs::create_dir_all(dir.join(file).parent().unwrap())?;
        std::fs::write(dir.join(file), text)?;
    }
    let d = dir.display();
    let grid = format!(
        r#"seeds = [0, 1]
epochs = {epochs}
teacher = "{d}/teacher"
counterfactuals = {{ config = "{d}/cf.toml", shards = "{d}/cf" }}
extra_counterfactuals = [{{ config = "{d}/cf2.toml", shards = "{d}/cf2" }}]
eval = {{ shards = "{d}/eval", sets = ["test-id", "ood-bg-random", "ood-bg-anti", "ood-sketch", "ood-render", "ood-near"], shifted = ["ood-bg-random", "ood-bg-anti", "ood-sketch", "ood-render"], near = "ood-near" }}
strategies = ["ObjMaskSingleFill(0.3)", "CtxMaskSingleFill(0.5)", "RandMaskNoFill(0.75)"]
fd_weight_from = "{d}/train.toml"
kd = {{ weight = 0.1, temperature = 10.0 }}
calibration = {{ split = "val", ft_gap_min = 15.0, teacher_gap_max = 3.0 }}

[frontier]
weights = [0.5, 1.0, 2.0]
strategies = ["ObjMaskSingleFill(0.3)"]
levels = [0.25, 0.5, 0.75]
val_points = 3.0

[quick]
seeds = [0]
weights = [1.0, 2.0]
strategies = ["ObjMaskSingleFill(0.3)"]
methods = ["ft", "fd-$slug", "fd-$headline_slug-online"]

[wise_ft]
alphas = [0.0, 0.5, 1.0]
finetuned = ["ft", "fd-$headline_slug"]

[[methods]]
key = "ft"
label = "FT"
config = "configs/fashionshift/ft.toml"
set = []

[[methods]]
key = "ft-fd"
label = "FT+FD"
config = "configs/fashionshift/ft.toml"
sweep = true
set = ['train.method="ft-fd"', 'distill={{ images = "clean", weight = $fd_weight }}']

[[methods]]
key = "fd-$slug"
label = "FT+FD $strategy"
config = "configs/fashionshift/ft.toml"
each_strategy = true
sweep = true
unswept_weight_from = "fd-$headline_slug"
set = ['train.method="ft-fd"', 'distill={{ images = "masked", strategy = "$strategy", weight = $fd_weight }}']

[[methods]]
key = "fd-$headline_slug-online"
label = "FT+FD $headline online"
config = "configs/fashionshift/ft.toml"
weight_from = "fd-$headline_slug"
set = ['train.method="ft-fd"', 'distill={{ images = "masked", mode = "online", strategy = "$headline", weight = $fd_weight }}']

[[methods]]
key = "fd-$headline_slug-rollout"
label = "FT+FD $headline rollout"
config = "configs/fashionshift/ft.toml"
sweep = true
set = ['data.shards="{d}/cf2"', 'train.method="ft-fd"', 'distill={{ images = "masked", strategy = "$headline", weight = $fd_weight }}']
"#
    );
    let path = dir.join(format!("grid-{epochs}.toml"));
    std::fs::write(&path, grid)?;
    Ok(path)
}

/// cfkit_tools.demo.run with the fake cfkit (tests/demo/fake_cfkit.py) on `grid`; returns the output and
/// the cfkit calls it made.
fn run_demo(
    dir: &Path,
    grid: &Path,
    args: &[&str],
) -> Result<(std::process::Output, Vec<Vec<String>>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = dir.join("calls.jsonl");
    let _ = std::fs::remove_file(&log);
    let o = common::python_tool("cfkit_tools.demo.run")
        .arg("--cfkit")
        .arg(root.join("tests/demo/fake_cfkit.py"))
        .args(args)
        .env("CFKIT_DEMO_GRID", grid)
        .env("FAKE_CFKIT_LOG", &log)
        .output()?;
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()?;
    Ok((o, calls))
}

/// The run directory of every training call (not `--print-config`), in call order.
fn trained(calls: &[Vec<String>]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c[0] == "train" && !c.contains(&"--print-config".to_string()))
        .map(|c| {
            let out = &c[c.iter().position(|a| a == "--out").unwrap() + 1];
            let p = Path::new(out);
            format!(
                "{}/{}",
                p.parent().unwrap().file_name().unwrap().to_string_lossy(),
                p.file_name().unwrap().to_string_lossy()
            )
        })
        .collect()
}

#[test]
fn runner_makes_the_followers_at_the_weight_validation_picks() -> Result<()> {
    let dir = common::tmpdir("demo-report", "runner");
    let runs = dir.join("runs");
    let grid = runner_grid(&dir, 2)?;
    let runs_arg = runs.to_str().unwrap();
    let out_arg = dir.join("out");
    let out_arg = out_arg.to_str().unwrap();
    let (o, calls) = run_demo(&dir, &grid, &["--runs", runs_arg, "--out-dir", out_arg])?;
    ensure!(
        o.status.success(),
        "demo.py failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The fake's validation top-1 is 70 - 2 × weight (FT 70): weights 0.5 and 1 are within 3
    // points, 2 is not, so the rule picks 1. First every seed's sweeps, then the runs that wait
    // for the weight, at 1.
    let mut sweeps = Vec::new();
    for seed in [0, 1] {
        sweeps.push(format!("seed{seed}/ft"));
        for key in [
            "ft-fd",
            "fd-objmasksinglefill-0.3",
            "fd-objmasksinglefill-0.3-rollout",
        ] {
            for w in ["0.5", "1", "2"] {
                sweeps.push(format!("seed{seed}/{key}-w{w}"));
            }
        }
    }
    let mut followers = Vec::new();
    for seed in [0, 1] {
        for key in [
            "fd-ctxmasksinglefill-0.5",
            "fd-randmasknofill-0.75",
            "fd-objmasksinglefill-0.3-online",
        ] {
            followers.push(format!("seed{seed}/{key}-w1"));
        }
    }
    assert_eq!(trained(&calls), [sweeps, followers].concat());
    // Every run trains the grid's epochs, and a follower at the weight it names.
    for c in calls.iter().filter(|c| c[0] == "train") {
        assert!(c.contains(&"train.epochs=2".to_string()), "{c:?}");
    }
    // The second build is made once, before any training, into its own directory; the runs of
    // the method that names it train on it (the grid's shards are not passed to them at all).
    let builds: Vec<&Vec<String>> = calls
        .iter()
        .filter(|c| c[0] == "build-counterfactuals")
        .collect();
    assert_eq!(builds.len(), 1, "{builds:?}");
    assert_eq!(
        builds[0][builds[0].len() - 1],
        dir.join("cf2").display().to_string()
    );
    assert!(
        calls.iter().position(|c| c[0] == "build-counterfactuals")
            < calls.iter().position(|c| c[0] == "train")
    );
    let shards_of = |c: &Vec<String>| -> String {
        c.iter()
            .rfind(|a| a.starts_with("data.shards="))
            .unwrap()
            .clone()
    };
    for c in calls.iter().filter(|c| c[0] == "train") {
        if c.iter().any(|a| a.contains("-rollout-w")) {
            let want = format!("data.shards=\"{}\"", dir.join("cf2").display());
            assert_eq!(shards_of(c), want, "{c:?}");
            let n = c.iter().filter(|a| a.starts_with("data.shards=")).count();
            assert_eq!(n, 1, "{c:?}");
        } else {
            // The grid's shards, relative to the base config as the runner writes them.
            assert!(shards_of(c).ends_with("/cf\""), "{c:?}");
        }
    }
    let online = calls
        .iter()
        .find(|c| {
            c.iter()
                .any(|a| a.ends_with("seed0/fd-objmasksinglefill-0.3-online-w1"))
        })
        .unwrap();
    assert!(
        online
            .iter()
            .any(|a| a.contains("mode = \"online\"") && a.contains("weight = 1")),
        "{online:?}"
    );
    // WiSE-FT from the teacher to FT and to the headline at the chosen weight, per seed.
    let wise: Vec<String> = calls
        .iter()
        .filter(|c| c[0] == "wise-ft")
        .map(|c| c[c.iter().position(|a| a == "--finetuned").unwrap() + 1].clone())
        .collect();
    assert_eq!(wise.len(), 4, "{wise:?}");
    assert!(wise[1].ends_with("seed0/fd-objmasksinglefill-0.3-w1/checkpoints/best"));
    // The calibration split is evaluated for the teacher once and for each seed's FT.
    let evals: Vec<&Vec<String>> = calls
        .iter()
        .filter(|c| c[0] == "eval" && c.contains(&"val".to_string()))
        .collect();
    assert_eq!(evals.len(), 3, "{evals:?}");
    // The report shows each swept method and each follower at weight 1, and is complete.
    let md = std::fs::read_to_string(dir.join("out/RESULTS.md"))?;
    assert!(!md.contains("Partial"), "{md}");
    // The build time comes from the built directory's done.json (the test's first shards have none).
    assert!(
        md.contains("building the counterfactual shards 2 min"),
        "{md}"
    );
    assert!(
        md.contains("| FT | 2 | 100.00 ± 0.00 | 40.00 ± 0.00 | +60.00 ± 0.00 | met |"),
        "{md}"
    );
    for label in [
        "FT+FD",
        "FT+FD ObjMaskSingleFill(0.3)",
        "FT+FD CtxMaskSingleFill(0.5)",
        "FT+FD ObjMaskSingleFill(0.3) online",
        "FT+FD ObjMaskSingleFill(0.3) rollout",
    ] {
        assert!(
            md.contains(&format!("| {label} | 2 | 1 |")),
            "{label}:\n{md}"
        );
    }

    // Run again: everything is finished, so nothing trains (each run's config is checked).
    let (o, calls) = run_demo(&dir, &grid, &["--runs", runs_arg, "--out-dir", out_arg])?;
    assert!(o.status.success());
    assert_eq!(trained(&calls), Vec::<String>::new());
    assert!(calls
        .iter()
        .any(|c| c.contains(&"--print-config".to_string())));

    // --quick (in a runs directory of its own here): seed 0, FT, the headline at weights 1 and 2,
    // and online mode at the weight the rule picks from those; no FT+FD, no other strategy, and
    // not the second build (no quick method trains on it), though it is missing.
    std::fs::remove_dir_all(dir.join("cf2"))?;
    let quick_runs = dir.join("quick-runs");
    let (o, calls) = run_demo(
        &dir,
        &grid,
        &[
            "--quick",
            "--runs",
            quick_runs.to_str().unwrap(),
            "--out-dir",
            dir.join("quick-out").to_str().unwrap(),
        ],
    )?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        trained(&calls),
        [
            "seed0/ft",
            "seed0/fd-objmasksinglefill-0.3-w1",
            "seed0/fd-objmasksinglefill-0.3-w2",
            "seed0/fd-objmasksinglefill-0.3-online-w1",
        ]
    );
    assert!(
        !calls
            .iter()
            .any(|c| c[0] == "build-counterfactuals" || c.iter().any(|a| a.ends_with("cf2"))),
        "{calls:?}"
    );

    // More epochs than stored variants: refused before anything runs.
    let (o, calls) = run_demo(
        &dir,
        &runner_grid(&dir, 3)?,
        &[
            "--runs",
            dir.join("runs-3").to_str().unwrap(),
            "--out-dir",
            out_arg,
        ],
    )?;
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("variants = 2, but the grid trains 3 epochs"),
        "{stderr}"
    );
    assert!(calls.is_empty(), "{calls:?}");
    Ok(())
}
