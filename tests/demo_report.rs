//! The benchmark report of `just demo` (`cfkit_tools.demo.run --report-only`) on a synthetic runs tree
//! whose numbers are chosen so that every derived column can be worked out by hand: per-seed
//! distance to the WiSE-FT curve, differences paired with FT, partial-run accounting, and the
//! frontiers at matched ID (interpolation along each seed's curve, levels outside a curve, the
//! paired gap to WiSE-FT, the curve on top, the validation weight rule), and the counterfactual
//! statistics table. (The runner itself: tests/demo_runner.rs.)

#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom; the limit is for library code

mod common;
use std::path::Path;

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

/// A finished run of `key` at `seed` in `runs` (validation top-1 50 %).
fn run(runs: &Path, seed: u32, key: &str, id: usize, ood: usize) -> Result<()> {
    run_val(runs, seed, key, id, ood, 0.5)
}

/// A finished run with validation top-1 `val`.
fn run_val(runs: &Path, seed: u32, key: &str, id: usize, ood: usize, val: f64) -> Result<()> {
    let dir = runs.join(format!("seed{seed}/{key}"));
    write(
        &dir.join("report.json"),
        &json!({"eval": eval(id, ood), "best": {"top1": val}, "train_seconds": 60.0}),
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
    // FT+FD's weight sweep (3 of the grid's 5 weights), validation 50 / 48 / 40 % at weights
    // 0.1 / 1 / 10: seed 0 through (54, 52), (62, 50), (68, 46); seed 1 through (58, 54),
    // (64, 52), (70, 44).
    for (seed, pts) in [
        (0, [(68, 46), (62, 50), (54, 52)]),
        (1, [(70, 44), (64, 52), (58, 54)]),
    ] {
        for ((w, val), (id, ood)) in [("0.1", 0.5), ("1", 0.48), ("10", 0.4)].iter().zip(pts) {
            run_val(&runs, seed, &format!("ft-fd-w{w}"), id, ood, *val)?;
        }
    }
    // Headline, swept at one weight so far (0.1, validation 50 %, which the rule picks): seed 0
    // at (65, 49), 2 above the curve (47 at ID 65); seed 1 at (55, 50), 2 below it (52 at ID 55).
    run(&runs, 0, "fd-objmasksinglefill-0.3-w0.1", 65, 49)?;
    run(&runs, 1, "fd-objmasksinglefill-0.3-w0.1", 55, 50)?;
    // Online mode follows the headline's chosen weight: seed 0's run at 0.1 is its row; a run
    // at another weight (left from an earlier choice) is not.
    run(&runs, 0, "fd-objmasksinglefill-0.3-online-w0.1", 66, 51)?;
    run(&runs, 0, "fd-objmasksinglefill-0.3-online-w1", 20, 20)?;
    // KD, one weight (0.1) whose validation top-1 (45 %) is more than 3 points below FT's: the
    // rule falls back to the best validation weight, and says so. Seed 0 at (60, 55), 1 above the
    // curve; seed 1's ID 75 is outside the curve's range.
    run_val(&runs, 0, "ft-kd-w0.1", 60, 55, 0.45)?;
    run_val(&runs, 1, "ft-kd-w0.1", 75, 40, 0.45)?;

    // The calibration evaluations on `val` (cfkit_tools.demo.run): rows with the label's background
    // ("matching") and without. Teacher: 50 of 90 and 5 of 10, a gap of +5.56 (over the rule's
    // 3); FT: seed 0 80 of 90 and 3 of 10 (+58.89), seed 1 72 of 90 and 4 of 10 (+40).
    let val = |m: u32, o: u32| {
        json!({"sets": [{"name": "val", "ood": false, "images": 100, "correct": m + o,
            "background": {"matching_correct": m, "matching_images": 90,
                           "other_correct": o, "other_images": 10}}]})
    };
    write(&runs.join("calibration-teacher.json"), &val(50, 5))?;
    write(&runs.join("seed0/calibration-ft.json"), &val(80, 3))?;
    write(&runs.join("seed1/calibration-ft.json"), &val(72, 4))?;

    // `cfkit inspect --json` of the counterfactual shards, as cfkit_tools.demo.run stores it.
    write(
        &runs.join("cf-stats.json"),
        &json!({"rows": 100, "strategies": {
            "ObjMaskSingleFill(0.3)": {"variants": 200, "mask_ratio_mean": 0.25,
                "mask_ratio_histogram": [1, 100, 50, 46, 3, 0, 0, 0, 0, 0],
                "same_class_donor_rate": 0.1, "object_iou_mean": 0.5,
                "background_iou_mean": 0.125, "object_masked_mean": 0.75},
            "CtxMaskNoFill(0.6)": {"variants": 200, "mask_ratio_mean": 0.6,
                "same_class_donor_rate": 0.0, "object_iou_mean": null,
                "background_iou_mean": null, "object_masked_mean": null}
        }}),
    )?;
    // The same for the grid's further build (configs/fashionshift/build-rollout.toml: rollout CAMs).
    write(
        &runs.join("cf-stats-fashionshift-cf-rollout.json"),
        &json!({"rows": 100, "strategies": {
            "ObjMaskSingleFill(0.3)": {"variants": 400, "mask_ratio_mean": 0.125,
                "same_class_donor_rate": 0.1, "object_iou_mean": 0.625,
                "background_iou_mean": 0.0625, "object_masked_mean": 0.875}
        }}),
    )?;
    let out = dir.join("out");
    let o = common::python_tool("cfkit_tools.demo.run")
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
    // 13 finished runs + 2 sweeps of the 2 × 46 expected: per seed LP, FT, LP-FT, the 5
    // strategies that are not swept, online mode, 35 runs of the weight sweeps (FT+KD, FT+FD, 4
    // strategies and the headline on rollout CAMs at 5 weights) and 2 WiSE-FT sweeps (the stale
    // online run does not count).
    assert!(
        md.contains("**Partial: 15 of 92 runs have finished**"),
        "{md}"
    );

    // Main table: method, seeds, weight, six sets, OOD mean (shifted sets), OOD all, vs WiSE-FT,
    // best val, train min. (Every OOD set holds the same number here, so both OOD means agree.)
    let fd = row("FT+FD ObjMaskSingleFill(0.3)", 14);
    assert_eq!(fd[1], "2");
    assert_eq!(fd[2], "0.1", "the weight the rule picked");
    assert_eq!(fd[3], "60.00 ± 7.07", "test-id mean ± sample std");
    assert_eq!(fd[9], "49.50 ± 0.71", "OOD mean");
    assert_eq!(fd[10], "49.50 ± 0.71", "OOD, all");
    // The mean point (60, 49.5) against the mean curve (54 at ID 60).
    assert_eq!(fd[11], "-4.50");
    assert_eq!(fd[12], "50.00 ± 0.00", "best val");
    assert_eq!(fd[13], "1.00 ± 0.00", "train minutes");
    let kd = row("FT+KD", 14);
    // (67.5, 47.5) against 43.5 at ID 67.5.
    assert_eq!(kd[11], "+4.00");
    // A swept method's row is its run at the chosen weight: FT+FD at 1 (seeds at (62, 50) and
    // (64, 52); the mean curve is 49.8 at ID 63).
    let ftfd = row("FT+FD", 14);
    assert_eq!(
        [&ftfd[1], &ftfd[2], &ftfd[3], &ftfd[9], &ftfd[11]],
        ["2", "1", "63.00 ± 1.41", "51.00 ± 1.41", "+1.20"]
    );
    // Online mode at the headline's weight, one seed; the run at the stale weight is not read.
    let online = row("FT+FD ObjMaskSingleFill(0.3) online", 14);
    assert_eq!([&online[1], &online[2], &online[3]], ["1", "0.1", "66.00"]);
    // The curve's end points are not compared with it.
    assert_eq!(row("FT", 14)[11], "–");
    assert_eq!(row("FT", 14)[2], "–", "FT has no distillation weight");
    assert_eq!(row("zero-shot", 14)[11], "–");
    assert_eq!(row("WiSE-FT (α = 0.5)", 14)[9], "54.00 ± 0.00");

    // Frontiers: curve, seeds, OOD at 25 / 50 / 75 % of the way from zero-shot (ID 50) to the
    // seed's FT (ID 70: levels 55, 60, 65), Δ WiSE-FT at each, val weight.
    // FT+FD seed 0: 51.75, 50.5, 48; seed 1: ID 55 lies below its curve, 60 -> 53.33,
    // 65 -> 50.67. WiSE-FT: 52, 54, 47 on both seeds. Val weight: 0.1 and 1 are within 3 points
    // of FT's 50 % on validation, 10 is not.
    let fr = row("FT+FD", 9);
    assert_eq!(
        fr[1..],
        [
            "2",
            "51.75 (1 of 2 seeds)",
            "51.92 ± 2.00",
            "49.33 ± 1.89",
            "-0.25",
            "-2.08 ± 2.00",
            "+2.33 ± 1.89",
            "1"
        ]
    );
    assert_eq!(row("FT+KD", 9)[8], "0.1 (best val)");
    let wise = row("WiSE-FT", 9);
    assert_eq!(
        wise[1..],
        [
            "2",
            "52.00 ± 0.00",
            "54.00 ± 0.00",
            "47.00 ± 0.00",
            "–",
            "–",
            "–",
            "–"
        ]
    );
    // The curve on top at each level and its lead over the runner-up on the seeds both reach.
    // 25 %: WiSE-FT (52) over FT+FD (51.75, seed 0 only). 50 %: FT+KD's one-point curve reaches
    // only its own ID, seed 0's (60, 55), on the level, 1 above WiSE-FT's 54. 75 %: FT+FD's mean
    // (49.33) beats the headline's (49, seed 0 only), yet on the one seed both reach FT+FD is
    // behind (48): the line shows that the lead is not held.
    assert!(
        md.contains(
            "25 %: WiSE-FT, +0.25 over FT+FD (ahead on 1 of 1 seeds); \
             50 %: FT+KD, +1.00 over WiSE-FT (ahead on 1 of 1 seeds); \
             75 %: FT+FD, -1.00 over FT+FD ObjMaskSingleFill(0.3) (ahead on 0 of 1 seeds)."
        ),
        "{md}"
    );

    // Against FT+FD (the grid's reference curve), paired by seed at the same levels: KD's
    // seed-0 point (60, 55) against FT+FD's 50.5 there; the headline's seed 0 at 65 (49) against
    // FT+FD's 48, its seed 1 at 55, which FT+FD's seed 1 does not reach.
    assert_eq!(
        row("FT+KD", 4)[1..],
        ["–", "+4.50 (1 of 1 seeds above)", "–"]
    );
    assert_eq!(
        row("FT+FD ObjMaskSingleFill(0.3)", 4)[1..],
        ["–", "–", "+1.00 (1 of 1 seeds above)"]
    );
    assert!(
        !md.lines()
            .any(|l| l.starts_with("| FT+FD |") && l.split('|').count() == 6),
        "the reference is not compared with itself"
    );

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

    // Calibration: model, seeds, top-1 with / without the label's background, gap, rule.
    assert_eq!(
        row("teacher", 6)[1..],
        ["–", "55.56", "50.00", "+5.56", "NOT met"]
    );
    assert_eq!(
        row("FT", 6)[1..],
        ["2", "84.44 ± 6.29", "35.00 ± 7.07", "+49.44 ± 13.36", "met"]
    );

    // Counterfactual statistics: strategy, variants, mask ratio, its distribution (% per 0.1
    // bin; 1 of 200 is not empty but rounds to 0), same-class donors, IoU garment, IoU background,
    // garment masked ("–" without the ground truth or the histogram).
    assert_eq!(
        row("ObjMaskSingleFill(0.3)", 8)[1..],
        [
            "200",
            "0.250",
            "<1 50 25 23 2 0 0 0 0 0",
            "0.100",
            "0.500",
            "0.125",
            "0.750"
        ]
    );
    assert_eq!(
        row(
            "ObjMaskSingleFill(0.3) — rollout CAM (fashionshift-cf-rollout)",
            8
        )[1..],
        ["400", "0.125", "–", "0.100", "0.625", "0.062", "0.875"]
    );
    assert_eq!(
        row("CtxMaskNoFill(0.6)", 8)[1..],
        ["200", "0.600", "–", "0.000", "–", "–", "–"]
    );

    let j: Value = serde_json::from_slice(&std::fs::read(out.join("results/fashionshift.json"))?)?;
    assert_eq!(j["wise_ft_seeds"], json!([0, 1]));
    assert_eq!(j["finished_runs"], 15);
    assert_eq!(j["run_commits"]["0123456789abcdef"], 13);
    // 13 finished runs of 60 s each.
    assert_eq!(j["train_seconds"], 780.0);
    assert!(
        md.contains("Compute: training the 13 finished runs took 0.2 h"),
        "{md}"
    );
    // The exact commands, for the first seed: FT+FD at the weight the rule picked (1), and FT's
    // WiSE-FT sweep.
    let cmd = |tail: &str| -> &str {
        md.lines()
            .find(|l| l.starts_with("    target/release/cfkit ") && l.ends_with(tail))
            .unwrap_or_else(|| panic!("no command ending in '{tail}' in:\n{md}"))
    };
    let fd = cmd("/seed0/ft-fd-w1 --resume -q");
    assert!(
        fd.contains(" train --config configs/fashionshift/ft.toml "),
        "{fd}"
    );
    assert!(
        fd.contains("--set train.seed=0 --set 'train.method=\"ft-fd\"'"),
        "{fd}"
    );
    assert!(fd.contains("weight = 1"), "{fd}");
    assert!(cmd("/seed0/wise-ft").contains("/seed0/ft/checkpoints/best --alpha "));
    assert!(md.contains("run their command above at each weight 0.1, 0.3, 1, 3, 10"));
    assert_eq!(j["calibration"]["teacher"]["rule_met"], false);
    assert_eq!(j["calibration"]["FT"]["rule_met"], true);
    assert_eq!(j["frontier"]["val_weight"]["FT+FD"], 1.0);
    assert_eq!(j["frontier"]["val_weight_within_rule"]["FT+FD"], true);
    assert_eq!(j["frontier"]["val_weight"]["FT+KD"], 0.1);
    assert_eq!(j["frontier"]["val_weight_within_rule"]["FT+KD"], false);
    assert_eq!(j["frontier"]["on_top"]["0.75"], "FT+FD");
    assert_eq!(j["frontier"]["reference"], "FT+FD");
    assert_eq!(j["frontier"]["vs_reference"]["FT+KD"]["0.5"], json!([4.5]));
    assert_eq!(
        j["frontier"]["runner_up"]["0.75"],
        "FT+FD ObjMaskSingleFill(0.3)"
    );
    let lead = j["frontier"]["lead_over_runner_up"]["0.75"]
        .as_array()
        .unwrap();
    assert_eq!(lead.len(), 1);
    assert!((lead[0].as_f64().unwrap() + 1.0).abs() < 1e-9, "{lead:?}");
    for plot in ["fashionshift-id-ood.png", "fashionshift-frontiers.png"] {
        let png = std::fs::read(out.join("results").join(plot))?;
        assert!(png.starts_with(b"\x89PNG"), "{plot} is a PNG");
    }
    Ok(())
}
