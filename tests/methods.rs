//! End-to-end tests of the fine-tuning methods on a small FashionShift set with the `tiny` preset:
//! a teacher trained for an epoch, counterfactual shards built from it, then masked feature
//! distillation offline (fill and no-fill strategies), online, KD, LP-FT and WiSE-FT through the
//! `cfkit` binary, and the errors of misconfigured methods.
//!
//! The student starts from the teacher, so before the first update its features equal the
//! teacher's: the first step's distillation term must be ~0 in every mode. That checks that the
//! stored targets are aligned with their images and variants, that no-fill masks are applied in
//! the student as in the teacher, and that online counterfactuals reach the teacher unchanged.

#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom; the limit is for library code

mod common;

use std::path::{Path, PathBuf};

use anyhow::Result;
use common::{cfkit, err, ok};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Data (train 100 images, test-id and ood-sketch 20 each), a teacher checkpoint, and
/// counterfactual shards of the train split built with it.
struct Fixture {
    /// Removed when the fixture is dropped (kept if the test fails).
    dir: common::TmpDir,
    data: PathBuf,
    teacher: PathBuf,
    cf: PathBuf,
}

fn fixture(name: &str) -> Fixture {
    let dir = common::tmpdir("methods", name);
    let data = common::demo_data(&dir, "train,test-id,ood-sketch", "0.01", &[]);
    let base = base_config(&dir, &data);
    let teacher_run = dir.join("teacher");
    ok(cfkit(&[
        "train",
        "--config",
        base.to_str().unwrap(),
        "--out",
        teacher_run.to_str().unwrap(),
        "-q",
        "--set",
        "model={ name = \"tiny\" }",
        "--set",
        "eval.sets=[]",
    ]));
    let teacher = teacher_run.join("checkpoints/best");
    let build = dir.join("build.toml");
    std::fs::write(
        &build,
        format!(
            r#"[source]
shards = "{data}"
split = "train"

[teacher]
model = "tiny"
weights = "{t}/model.safetensors"
head = "{t}/head.safetensors"

[counterfactuals]
strategies = ["ObjMaskSingleFill(0.3)", "CtxMaskNoFill(0.6)"]
variants = 2
seed = 0
batch_size = 16
device = "cpu"
"#,
            data = data.display(),
            t = teacher.display()
        ),
    )
    .unwrap();
    let cf = dir.join("cf");
    ok(cfkit(&[
        "build-counterfactuals",
        "--config",
        build.to_str().unwrap(),
        "--out",
        cf.to_str().unwrap(),
        "-q",
    ]));
    Fixture {
        dir,
        data,
        teacher,
        cf,
    }
}

/// FT from `[model] checkpoint` (set per run) on `data`; methods are chosen with --set.
fn base_config(dir: &Path, data: &Path) -> PathBuf {
    let text = format!(
        r#"
[model]
checkpoint = "{teacher}"

[data]
shards = "{data}"
split = "train"
val_holdout = 20
shuffle_buffer = 32

[train]
method = "ft"
epochs = 1
batch_size = 16
micro_batch_size = 8
seed = 5
device = "cpu"
log_every = 1
checkpoint_every = 100
eval_batch_size = 20

[schedule]
kind = "one-cycle"
max_lr = 1e-3
pct_start = 0.3

[eval]
shards = "{data}"
sets = [{{ name = "test-id" }}, {{ name = "ood-sketch" }}]
"#,
        teacher = dir.join("teacher/checkpoints/best").display(),
        data = data.display()
    );
    let path = dir.join("base.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `cfkit train` of the base config into `out` with `--set` overrides.
fn train(f: &Fixture, out: &Path, sets: &[&str]) -> std::process::Output {
    let (base, out) = (f.dir.join("base.toml"), out.display().to_string());
    let mut args = vec![
        "train",
        "--config",
        base.to_str().unwrap(),
        "--out",
        &out,
        "-q",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    cfkit(&args)
}

/// Trains with the base config and `sets`; returns the run directory.
fn run(f: &Fixture, name: &str, sets: &[&str]) -> PathBuf {
    let out = f.dir.join(name);
    ok(train(f, &out, sets));
    out
}

/// `cfkit wise-ft` from the fixture's teacher to `finetuned` at `alphas`, written to `out`.
fn wise_ft(f: &Fixture, finetuned: &Path, alphas: &str, out: &Path) -> std::process::Output {
    cfkit(&[
        "wise-ft",
        "--zeroshot",
        f.teacher.to_str().unwrap(),
        "--finetuned",
        finetuned.to_str().unwrap(),
        "--alpha",
        alphas,
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ])
}

/// The first step's distillation term and the mean of the later ones.
fn distill_terms(run: &Path) -> (f64, f64) {
    let steps: Vec<f64> = metrics(run)
        .iter()
        .filter(|m| m["kind"] == "step")
        .map(|m| m["distill"].as_f64().expect("distill logged"))
        .collect();
    assert!(steps.len() >= 3, "{steps:?}");
    let later = steps[1..].iter().sum::<f64>() / (steps.len() - 1) as f64;
    (steps[0], later)
}

#[test]
fn distillation_methods_train_from_aligned_targets() -> Result<()> {
    let f = fixture("distill");
    let cf = format!("data.shards=\"{}\"", f.cf.display());
    let first_is_zero = |run: &Path, what: &str| {
        let (first, later) = distill_terms(run);
        assert!(first < 1e-6, "{what}: first-step distillation {first}");
        assert!(later > 1e-6, "{what}: the student never moved ({later})");
    };

    // Offline masked FD, a fill strategy: variant images and their stored teacher features.
    let fd = run(
        &f,
        "fd-obj",
        &[
            &cf,
            "train.method=\"ft-fd\"",
            "distill={ images = \"masked\", strategy = \"ObjMaskSingleFill(0.3)\", weight = 10.0 }",
        ],
    );
    first_is_zero(&fd, "offline ObjMaskSingleFill");
    let record = json(&fd.join("run.json"));
    assert_eq!(record["objective"]["strategy"], "ObjMaskSingleFill(0.3)");
    assert_eq!(record["config"]["distill"]["weight"], 10.0);
    // One epoch, two stored variants: every epoch sees fresh counterfactuals.
    assert_eq!(
        record["objective"]["stored_variants"],
        serde_json::json!({"per_image": 2, "epochs": 1, "fresh_every_epoch": true})
    );
    let report = json(&fd.join("report.json"));
    assert_eq!(report["eval"]["sets"].as_array().unwrap().len(), 2);

    // No fill: the stored mask is applied in the student's forward.
    let nofill = run(
        &f,
        "fd-ctx-nofill",
        &[
            &cf,
            "train.method=\"ft-fd\"",
            "eval.sets=[]",
            "distill={ images = \"masked\", strategy = \"CtxMaskNoFill(0.6)\", variant = \"seeded\" }",
        ],
    );
    first_is_zero(&nofill, "offline CtxMaskNoFill");
    // A seeded choice may draw the same variant twice.
    assert_eq!(
        json(&nofill.join("run.json"))["objective"]["stored_variants"]["fresh_every_epoch"],
        false
    );
    // Three epochs over two variants: the third reuses the first's, which the run says.
    let reuse = f.dir.join("fd-obj-3-epochs");
    let o = train(
        &f,
        &reuse,
        &[
            &cf,
            "train.method=\"ft-fd\"",
            "train.epochs=3",
            "eval.sets=[]",
            "distill={ images = \"masked\", strategy = \"ObjMaskSingleFill(0.3)\" }",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("stores 2 variant(s) per image and strategy for 3 epochs")
            && stderr.contains("variants >= 3"),
        "{stderr}"
    );
    assert_eq!(
        json(&reuse.join("run.json"))["objective"]["stored_variants"],
        serde_json::json!({"per_image": 2, "epochs": 3, "fresh_every_epoch": false})
    );

    // KD on clean images: the teacher head maps stored features to logits.
    let kd = run(
        &f,
        "kd-clean",
        &[
            &cf,
            "train.method=\"ft-kd\"",
            "eval.sets=[]",
            "distill={ images = \"clean\", weight = 1.0 }",
        ],
    );
    first_is_zero(&kd, "offline KD");

    // Online: the student's own CAM, in-batch donors and a teacher forward, on plain shards.
    let online = run(
        &f,
        "fd-online",
        &[
            "train.method=\"ft-fd\"",
            "eval.sets=[]",
            "distill={ images = \"masked\", mode = \"online\", strategy = \"ObjMaskSingleFill(0.3)\" }",
        ],
    );
    first_is_zero(&online, "online ObjMaskSingleFill");

    // One hold-out for every method: the offline run on the counterfactual shards and the online
    // run on the clean shards hold out the same images (keyed by id, not by row position).
    let held = |run: &Path| std::fs::read_to_string(run.join("holdout-ids.txt")).unwrap();
    assert_eq!(held(&fd).lines().count(), 20);
    assert_eq!(held(&fd), held(&online));
    assert_eq!(
        json(&fd.join("run.json"))["data"]["holdout"],
        json(&online.join("run.json"))["data"]["holdout"]
    );
    Ok(())
}

#[test]
fn lp_ft_then_wise_ft_and_method_errors() -> Result<()> {
    let f = fixture("lpft");
    // LP-FT: one probe epoch (its own schedule, weight decay 0), then one FT epoch.
    let lpft = run(
        &f,
        "lp-ft",
        &[
            "train.method=\"lp-ft\"",
            "lp_ft={ lp_epochs = 1, lp_schedule = { kind = \"one-cycle\", max_lr = 1e-2, pct_start = 0.3 } }",
        ],
    );
    let phases: Vec<String> = metrics(&lpft)
        .iter()
        .filter(|m| m["kind"] == "epoch")
        .map(|m| m["phase"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(phases, ["probe", "fine-tune"]);
    let lrs: Vec<f64> = metrics(&lpft)
        .iter()
        .filter(|m| m["kind"] == "step")
        .map(|m| m["lr"].as_f64().unwrap())
        .collect();
    // Probe steps follow the probe's schedule (peak 1e-2), FT steps the FT one (peak 1e-3).
    assert!(lrs[..5].iter().any(|&l| l > 2e-3), "{lrs:?}");
    assert!(lrs[5..].iter().all(|&l| l <= 1e-3 + 1e-12), "{lrs:?}");

    // WiSE-FT between the teacher and the LP-FT model: α = 0 is the teacher, α = 1 the
    // fine-tuned model, each evaluated as `cfkit eval` / the run's report evaluate them.
    let wise = f.dir.join("wise");
    let finetuned = lpft.join("checkpoints/best");
    let out = ok(wise_ft(&f, &finetuned, "0:1:0.5", &wise));
    assert!(out.contains("| 0.50 |"), "{out}");
    let w = json(&wise.join("wise-ft.json"));
    let points = w["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    let correct = |eval: &serde_json::Value| -> Vec<u64> {
        eval["sets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["correct"].as_u64().unwrap())
            .collect()
    };
    let report = json(&lpft.join("report.json"));
    assert_eq!(correct(&points[2]["eval"]), correct(&report["eval"]));
    let prints = |eval: &serde_json::Value| -> Vec<String> {
        eval["sets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["fingerprint"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(prints(&points[0]["eval"]), prints(&report["eval"]));
    assert!(prints(&report["eval"]).iter().all(|p| p.len() == 64));
    let teacher_eval: serde_json::Value = serde_json::from_str(&ok(cfkit(&[
        "eval",
        "--checkpoint",
        f.teacher.to_str().unwrap(),
        "--shards",
        f.data.to_str().unwrap(),
        "--split",
        "test-id,ood-sketch",
        "--device",
        "cpu",
        "--json",
    ])))?;
    assert_eq!(correct(&points[0]["eval"]), correct(&teacher_eval));
    // The α = 0.5 checkpoint loads like any other.
    ok(cfkit(&[
        "eval",
        "--checkpoint",
        wise.join("alpha-0.50").to_str().unwrap(),
        "--shards",
        f.data.to_str().unwrap(),
        "--device",
        "cpu",
    ]));

    // Misconfigured methods fail before anything is written, naming what is wrong.
    let fail = |name: &str, sets: &[&str]| {
        let out = f.dir.join(name);
        let e = err(train(&f, &out, sets));
        assert!(
            !out.exists(),
            "{name}: a failed start left {}",
            out.display()
        );
        e
    };
    let e = fail(
        "plain",
        &["train.method=\"ft-fd\"", "distill={ images = \"masked\" }"],
    );
    assert!(
        e.contains("plain images") && e.contains("build-counterfactuals"),
        "{e}"
    );
    let cf = format!("data.shards=\"{}\"", f.cf.display());
    let e = fail(
        "missing-strategy",
        &[
            &cf,
            "train.method=\"ft-fd\"",
            "distill={ images = \"masked\", strategy = \"RandMaskMultiFill(0.5)\" }",
        ],
    );
    assert!(
        e.contains("RandMaskMultiFill(0.5)") && e.contains("ObjMaskSingleFill(0.3)"),
        "{e}"
    );
    let e = fail(
        "several",
        &[
            &cf,
            "train.method=\"ft-fd\"",
            "distill={ images = \"masked\" }",
        ],
    );
    assert!(e.contains("several strategies"), "{e}");
    let e = fail("needs-distill", &["train.method=\"ft-kd\""]);
    assert!(e.contains("[distill]"), "{e}");
    let e = fail("stray-distill", &["distill={ weight = 1.0 }"]);
    assert!(e.contains("only used by ft-kd and ft-fd"), "{e}");
    let e = fail("needs-lp-ft", &["train.method=\"lp-ft\""]);
    assert!(e.contains("[lp_ft]"), "{e}");
    let e = fail("bad-set", &["distill"]);
    assert!(e.contains("--set 'distill'"), "{e}");
    let e = fail(
        "bad-weight",
        &["train.method=\"ft-fd\"", "distill={ weight = -1.0 }"],
    );
    assert!(e.contains("weight"), "{e}");
    let e = err(wise_ft(&f, &finetuned, "1:0:0.1", &f.dir.join("bad-wise")));
    assert!(e.contains("--alpha '1:0:0.1'"), "{e}");

    // A fine-tuned model of another shape (2 blocks of width 64 instead of tiny's 4 of 128) is
    // refused before anything is written, naming both checkpoints.
    let small = f.dir.join("small.json");
    std::fs::write(
        &small,
        r#"{"vision_config": {"hidden_size": 64, "intermediate_size": 256,
            "num_attention_heads": 2, "num_hidden_layers": 2, "image_size": 56,
            "patch_size": 8, "projection_dim": 64}}"#,
    )?;
    let other = run(
        &f,
        "other-shape",
        &[
            &format!("model={{ name = \"{}\" }}", small.display()),
            "eval.sets=[]",
        ],
    );
    let other_ckpt = other.join("checkpoints/last");
    let mismatch_out = f.dir.join("mismatch-wise");
    let e = err(wise_ft(&f, &other_ckpt, "0.5", &mismatch_out));
    assert!(
        e.contains("is not the same model")
            && e.contains(other_ckpt.to_str().unwrap())
            && e.contains(f.teacher.to_str().unwrap()),
        "{e}"
    );
    assert!(!mismatch_out.exists(), "nothing is written on a mismatch");
    Ok(())
}
