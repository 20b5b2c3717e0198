//! The benchmark report of `just demo` (`tools/demo.py --report-only`) on a synthetic runs tree
//! whose numbers are chosen so that every derived column can be worked out by hand: per-seed
//! distance to the WiSE-FT curve, differences paired with FT, partial-run accounting.

mod common;
use common::python;
use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Result};
use serde_json::{json, Value};

const OOD: [&str; 5] = [
    "ood-bg-random",
    "ood-bg-anti",
    "ood-sketch",
    "ood-render",
    "ood-near",
];

/// An evaluation of 100 images per set: `id` % on test-id and `ood` % on every OOD set.
fn eval(id: usize, ood: usize) -> Value {
    let mut sets = vec![json!({"name": "test-id", "ood": false, "images": 100, "correct": id})];
    sets.extend(
        OOD.iter()
            .map(|s| json!({"name": s, "ood": true, "images": 100, "correct": ood})),
    );
    json!({ "sets": sets })
}

fn write(path: &Path, v: &Value) -> Result<()> {
    std::fs::create_dir_all(path.parent().unwrap())?;
    std::fs::write(path, serde_json::to_vec_pretty(v)?)?;
    Ok(())
}

/// A finished run of `key` at `seed` in `runs`.
fn run(runs: &Path, seed: u32, key: &str, id: usize, ood: usize) -> Result<()> {
    let dir = runs.join(format!("seed{seed}/{key}"));
    write(
        &dir.join("report.json"),
        &json!({"eval": eval(id, ood), "best": {"top1": 0.5}, "train_seconds": 60.0}),
    )?;
    write(
        &dir.join("run.json"),
        &json!({"cfkit_commit": "0123456789abcdef"}),
    )
}

#[test]
fn report_columns_follow_from_the_runs() -> Result<()> {
    let dir = common::tmpdir("demo-report", "synthetic");
    let runs = dir.join("runs");
    write(&runs.join("zeroshot.json"), &eval(50, 50))?;
    for seed in [0, 1] {
        // Each seed's WiSE-FT curve (ID, OOD): (50, 50) at α = 0, (60, 54) at 0.5, (70, 40) at 1.
        let points: Vec<Value> = [(0.0, 50, 50), (0.5, 60, 54), (1.0, 70, 40)]
            .iter()
            .map(|&(alpha, id, ood)| json!({"alpha": alpha, "eval": eval(id, ood)}))
            .collect();
        write(
            &runs.join(format!("seed{seed}/wise-ft/wise-ft.json")),
            &json!({ "points": points }),
        )?;
        run(&runs, seed, "ft", 70, 40)?;
    }
    // Headline: seed 0 at (65, 49), 2 above the curve (47 at ID 65); seed 1 at (55, 50), 2
    // below it (52 at ID 55).
    run(&runs, 0, "fd-objmasksinglefill-0.3", 65, 49)?;
    run(&runs, 1, "fd-objmasksinglefill-0.3", 55, 50)?;
    // KD: seed 0 at (60, 55), 1 above the curve; seed 1's ID 75 is outside the curve's range.
    run(&runs, 0, "ft-kd", 60, 55)?;
    run(&runs, 1, "ft-kd", 75, 40)?;

    let out = dir.join("out");
    let o = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/demo.py"))
        .args(["--report-only", "--seeds", "0,1", "--runs"])
        .arg(&runs)
        .arg("--out-dir")
        .arg(&out)
        .output()?;
    ensure!(
        o.status.success(),
        "demo.py failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let md = std::fs::read_to_string(out.join("RESULTS.md"))?;
    let row = |label: &str, table_cols: usize| -> Vec<String> {
        let line = md
            .lines()
            .find(|l| {
                l.starts_with(&format!("| {label} |")) && l.split('|').count() == table_cols + 2
            })
            .unwrap_or_else(|| panic!("no {table_cols}-column row '{label}' in:\n{md}"));
        line.split('|')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect()
    };
    // 6 finished runs + 2 sweeps of the 2 × 16 expected (15 methods and the sweep per seed).
    assert!(
        md.contains("**Partial: 8 of 32 runs have finished**"),
        "{md}"
    );

    // Main table: method, seeds, six sets, OOD mean, vs WiSE-FT, best val, train min.
    let fd = row("FT+FD ObjMaskSingleFill(0.3)", 12);
    assert_eq!(fd[1], "2");
    assert_eq!(fd[2], "60.00 ± 7.07", "test-id mean ± sample std");
    assert_eq!(fd[8], "49.50 ± 0.71", "OOD mean");
    // The mean point (60, 49.5) against the mean curve (54 at ID 60).
    assert_eq!(fd[9], "-4.50");
    assert_eq!(fd[10], "50.00 ± 0.00", "best val");
    assert_eq!(fd[11], "1.00 ± 0.00", "train minutes");
    let kd = row("FT+KD", 12);
    // (67.5, 47.5) against 43.5 at ID 67.5.
    assert_eq!(kd[9], "+4.00");
    // The curve's end points are not compared with it.
    assert_eq!(row("FT", 12)[9], "–");
    assert_eq!(row("zero-shot", 12)[9], "–");
    assert_eq!(row("WiSE-FT (α = 0.5)", 12)[8], "54.00 ± 0.00");

    // Paired by seed: method, seeds, Δ test-id, Δ OOD mean, vs WiSE-FT against the seed's curve
    // (the headline's per-seed distances are +2 and -2; KD's seed 1 is beyond its curve).
    let fd = row("FT+FD ObjMaskSingleFill(0.3)", 5);
    assert_eq!(
        fd[1..],
        ["2", "-10.00 ± 7.07", "+9.50 ± 0.71", "+0.00 ± 2.83"]
    );
    let kd = row("FT+KD", 5);
    assert_eq!(
        kd[1..],
        [
            "2",
            "-2.50 ± 10.61",
            "+7.50 ± 10.61",
            "+1.00 (1 of 2 seeds)"
        ]
    );

    let j: Value = serde_json::from_slice(&std::fs::read(out.join("results/fashionshift.json"))?)?;
    assert_eq!(j["wise_ft_seeds"], json!([0, 1]));
    assert_eq!(j["finished_runs"], 8);
    assert_eq!(j["run_commits"]["0123456789abcdef"], 6);
    let png = std::fs::read(out.join("results/fashionshift-id-ood.png"))?;
    assert!(png.starts_with(b"\x89PNG"), "the plot is a PNG");
    Ok(())
}
