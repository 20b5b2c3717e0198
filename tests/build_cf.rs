//! End-to-end test of `cfkit build-counterfactuals` on FashionShift data with a randomly
//! initialised `tiny` teacher: pixel-exact refill, stored features/CAMs equal a recomputation,
//! no-fill features equal a forward with the stored mask, resume (also after a SIGKILL at a
//! random moment) and config checks.

#![allow(clippy::too_many_lines)] // end-to-end scenarios read top to bottom; the limit is for library code

mod common;
use common::{cfkit, err, ok};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use cfkit_counterfactual::{compute_cam, CamMethod};
use cfkit_models::clip::VISION_PREFIXES;
use cfkit_models::weights::{named_tensors, write_safetensors};
use cfkit_models::{
    preset, save_head, ClassificationHead, ClipModel, HeadInfo, Normalize, Towers, VisionForward,
};
use cfkit_pipeline::builder::batch::to_model_input;
use cfkit_schemas::{decode_image, Manifest, ShardReader};
use tch::{Device, Tensor};

fn tmpdir(name: &str) -> common::TmpDir {
    common::tmpdir("build", name)
}

/// A random tiny teacher: weights (HF names) and a head over the FashionShift classes.
fn teacher(dir: &Path) -> Result<ClipModel> {
    let classes: Vec<String> = cfkit_pipeline::fashionshift::CLASS_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    teacher_with(dir, classes)
}

/// [`teacher`] with a head over `classes`.
fn teacher_with(dir: &Path, classes: Vec<String>) -> Result<ClipModel> {
    tch::manual_seed(3);
    let model = ClipModel::new(&preset("tiny")?, Towers::Vision, Device::Cpu)?;
    write_safetensors(
        &dir.join("teacher.safetensors"),
        &named_tensors(&model.vs, &VISION_PREFIXES),
        &HashMap::new(),
    )?;
    let head = ClassificationHead::new(&model.vs.root(), classes.len() as i64, 128);
    let info = HeadInfo {
        classes,
        source: "random".into(),
        text_weights_blake3: None,
        templates: vec![],
        logit_scale: None,
        hash: "x".into(),
    };
    save_head(&dir.join("head.safetensors"), &head, &info)?;
    Ok(model)
}

/// FashionShift `train` at scale 0.004 (40 rows, shards of 16) into `dir/data`.
fn demo_train(dir: &Path) {
    ok(cfkit(&[
        "demo-data",
        "--out",
        dir.join("data").to_str().unwrap(),
        "--splits",
        "train",
        "--scale",
        "0.004",
        "--rows-per-shard",
        "16",
        "-q",
    ]));
}

fn write_config(dir: &Path, seed: u64) -> PathBuf {
    let cfg = format!(
        r#"[source]
shards = "data"
split = "train"

[teacher]
model = "tiny"
weights = "teacher.safetensors"
head = "head.safetensors"

[counterfactuals]
strategies = ["ObjMaskSingleFill(0.3)", "RandMaskMultiFill(0.5)", "CtxMaskNoFill(0.6)"]
variants = 2
seed = {seed}
batch_size = 8
device = "cpu"
"#
    );
    let p = dir.join(format!("build-{seed}.toml"));
    std::fs::write(&p, cfg).unwrap();
    p
}

#[test]
fn counterfactuals_are_exact_recomputable_and_resumable() -> Result<()> {
    let dir = tmpdir("cf");
    demo_train(&dir);
    let model = teacher(&dir)?;
    let vision = model.vision()?;
    let (head, _) = cfkit_models::load_head(&dir.join("head.safetensors"), Device::Cpu)?;
    let out = dir.join("cf");
    let cfg = write_config(&dir, 0);
    let stdout = ok(cfkit(&[
        "build-counterfactuals",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]));
    assert!(stdout.contains("40 rows in 3 shard(s) written"), "{stdout}");

    let m = Manifest::read(&out)?;
    let entry = &m.splits["train"];
    assert_eq!(entry.rows, 40);
    let (mut checked_fill, mut checked_nofill) = (0, 0);
    for s in &entry.shards {
        let rows = ShardReader::open_verified(&out.join(&s.file), s.bytes, &s.blake3)?
            .read_counterfactuals()?;
        let pixels: HashMap<String, Vec<u8>> = rows
            .iter()
            .map(|r| Ok((r.base.id.clone(), decode_image(&r.base.image.bytes)?.pixels)))
            .collect::<Result<_>>()?;
        for r in &rows {
            let orig = &pixels[&r.base.id];
            assert_eq!(r.variants.len(), 6);
            // The stored CAM is the models crate's MMCAM of the stored image for its label.
            let x = to_model_input(
                std::slice::from_ref(orig),
                56,
                &Normalize::CLIP,
                Device::Cpu,
            );
            let cam = compute_cam(
                vision,
                &head,
                &x,
                &Tensor::from_slice(&[r.base.label]),
                CamMethod::Mmcam,
            )?;
            let err = (cam.view([-1]) - Tensor::from_slice(&r.cam))
                .abs()
                .max()
                .double_value(&[]);
            assert!(err < 1e-5, "cam differs by {err}");
            let _g = tch::no_grad_guard();
            let f = vision.features(&x)?.view([-1]);
            assert!(
                (f - Tensor::from_slice(&r.teacher_feature))
                    .abs()
                    .max()
                    .double_value(&[])
                    < 1e-5
            );
            for v in &r.variants {
                let cf = decode_image(&v.image.bytes)?.pixels;
                let xc =
                    to_model_input(std::slice::from_ref(&cf), 56, &Normalize::CLIP, Device::Cpu);
                let feat = if v.strategy.contains("NoFill") {
                    // No fill: the image is unchanged and the feature is a forward with the mask.
                    assert_eq!(&cf, orig);
                    assert!(v.donor_ids.is_empty());
                    let mask = Tensor::from_slice(&v.mask).view([1, 49]);
                    checked_nofill += 1;
                    vision
                        .forward_with(
                            &xc,
                            VisionForward {
                                key_mask: Some(&mask),
                                ..Default::default()
                            },
                        )?
                        .features
                } else {
                    // Outside the mask: the original; inside: the donor, pixel for pixel.
                    for y in 0..56 {
                        for xpix in 0..56 {
                            let j = (y / 8) * 7 + xpix / 8;
                            let k = 3 * (y * 56 + xpix);
                            let donor = if v.donor_ids.len() == 1 {
                                &v.donor_ids[0]
                            } else {
                                &v.donor_ids[j]
                            };
                            let want = if v.mask[j] { &pixels[donor] } else { orig };
                            assert_eq!(
                                cf[k..k + 3],
                                want[k..k + 3],
                                "{} {} pixel ({xpix}, {y})",
                                r.base.id,
                                v.strategy
                            );
                        }
                    }
                    if v.strategy.starts_with("RandMaskMulti") {
                        assert_eq!(v.donor_ids.len(), 49);
                        assert!(
                            v.donor_ids.iter().all(|d| d != &r.base.id),
                            "multi fill used the image itself"
                        );
                    }
                    checked_fill += 1;
                    vision.features(&xc)?
                };
                let err = (feat.view([-1]) - Tensor::from_slice(&v.teacher_feature))
                    .abs()
                    .max()
                    .double_value(&[]);
                assert!(
                    err < 1e-5,
                    "{}: stored teacher feature differs by {err}",
                    v.strategy
                );
                // Object / context masks are the CAM thresholded.
                if v.strategy.starts_with("Obj") {
                    assert!(v.mask.iter().zip(&r.cam).all(|(&m, &c)| m == (c > 0.3)));
                } else if v.strategy.starts_with("Ctx") {
                    assert!(v.mask.iter().zip(&r.cam).all(|(&m, &c)| m == (c <= 0.6)));
                }
            }
            assert_eq!(r.teacher_logits.as_ref().map(|l| l.len()), Some(10));
        }
    }
    assert_eq!((checked_fill, checked_nofill), (160, 80));

    // A rerun skips complete shards; a deleted shard is redone, identically.
    let stdout = ok(cfkit(&[
        "build-counterfactuals",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]));
    assert!(stdout.contains("0 shard(s) written, 3 skipped"), "{stdout}");
    let victim = out.join(&entry.shards[1].file);
    let before = std::fs::read(&victim)?;
    std::fs::remove_file(&victim)?;
    let stdout = ok(cfkit(&[
        "build-counterfactuals",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]));
    assert!(stdout.contains("1 shard(s) written, 2 skipped"), "{stdout}");
    assert_eq!(
        std::fs::read(&victim)?,
        before,
        "a redone shard differs from the first build"
    );
    // cfkit inspect: a contact sheet of 4 rows x (original, CAM, mask, 6 variants) and statistics
    // over all 40 rows; image shards are refused.
    let sheet = dir.join("sheet.png");
    let js: serde_json::Value = serde_json::from_str(&ok(cfkit(&[
        "inspect",
        out.to_str().unwrap(),
        "--n",
        "4",
        "--out",
        sheet.to_str().unwrap(),
        "--json",
    ])))?;
    let png = decode_image(&std::fs::read(&sheet)?)?;
    assert_eq!((png.width, png.height), (9 * 60 + 4, 4 * 60 + 4));
    assert_eq!(js["rows"], 40);
    assert_eq!(js["legend"].as_array().unwrap().len(), 4);
    for (name, st) in js["strategies"].as_object().unwrap() {
        assert_eq!(st["variants"], 80, "{name}");
        let hist: u64 = st["mask_ratio_histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(hist, 80, "{name}");
        let donors: u64 = st["donor_classes"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        // The same-class donor rate and the masks' IoU with the garment's patches (the ground
        // truth FashionShift stores per row), recomputed from the shards.
        let (mut same, mut all) = (0usize, 0usize);
        let (mut iou_sum, mut measured) = (0f64, 0usize);
        for s in &Manifest::read(&out)?.splits["train"].shards {
            let recs = ShardReader::open(&out.join(&s.file))?.read_counterfactuals()?;
            let class: HashMap<&str, &str> = recs
                .iter()
                .map(|r| (r.base.id.as_str(), r.base.class_name.as_str()))
                .collect();
            for r in &recs {
                let truth = r
                    .base
                    .truth
                    .as_ref()
                    .expect("FashionShift rows carry their truth");
                for v in r.variants.iter().filter(|v| &v.strategy == name) {
                    // 56 px, 7x7 patches of 8x8 pixels: object when >= 32 of 64 pixels are.
                    let object: Vec<bool> = (0..49)
                        .map(|k| {
                            let on = (0..64)
                                .filter(|j| {
                                    let (y, x) = (k / 7 * 8 + j / 8, k % 7 * 8 + j % 8);
                                    truth.object_mask[y * 56 + x]
                                })
                                .count();
                            on >= 32
                        })
                        .collect();
                    let inter = v
                        .mask
                        .iter()
                        .zip(&object)
                        .filter(|(a, b)| **a && **b)
                        .count();
                    let union = v
                        .mask
                        .iter()
                        .zip(&object)
                        .filter(|(a, b)| **a || **b)
                        .count();
                    iou_sum += if union == 0 {
                        0.0
                    } else {
                        inter as f64 / union as f64
                    };
                    measured += 1;
                    all += v.donor_ids.len();
                    same += v
                        .donor_ids
                        .iter()
                        .filter(|d| class[d.as_str()] == r.base.class_name)
                        .count();
                }
            }
        }
        assert_eq!(st["same_class_donors"], same, "{name}");
        let rate = st["same_class_donor_rate"].as_f64().unwrap();
        assert!(
            (rate - same as f64 / all.max(1) as f64).abs() < 1e-12,
            "{name}: {rate}"
        );
        assert_eq!(st["truth_variants"], measured, "{name}");
        let iou = st["object_iou_mean"].as_f64().unwrap();
        assert!(
            (iou - iou_sum / measured as f64).abs() < 1e-12,
            "{name}: {iou}"
        );
        eprintln!(
            "{name}: mask IoU with the garment {iou:.3}, with the background {:.3}",
            st["background_iou_mean"].as_f64().unwrap()
        );
        if name.contains("NoFill") {
            assert_eq!(donors, 0);
        } else {
            assert!(donors >= 80, "{name}: {donors}");
            assert!(!st["donor_classes"]
                .as_object()
                .unwrap()
                .contains_key("(not in shard)"));
        }
    }
    let o = cfkit(&[
        "inspect",
        dir.join("data").to_str().unwrap(),
        "--out",
        sheet.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("counterfactual shards"));

    // SIGKILL at a random moment of a second build (after its first shard is complete, within
    // the time one shard takes), then a rerun: the same shards, byte for byte (so the same rows,
    // none lost, none twice) as the uninterrupted build.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos();
    let out2 = dir.join("cf-killed");
    let t0 = std::time::Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cfkit"))
        .args(["build-counterfactuals", "--config", cfg.to_str().unwrap()])
        .args(["--out", out2.to_str().unwrap(), "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    while !out2.join("manifest.json").exists() && child.try_wait()?.is_none() {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let delay = t0.elapsed().mul_f64(f64::from(seed % 1000) / 1000.0);
    std::thread::sleep(delay);
    child.kill()?;
    let status = child.wait()?;
    let done_before = Manifest::read(&out2)
        .map(|m| m.splits.get("train").map(|e| e.shards.len()).unwrap_or(0))
        .unwrap_or(0);
    eprintln!(
        "killed {delay:?} after the first shard ({status:?}), {done_before} shard(s) complete"
    );
    ok(cfkit(&[
        "build-counterfactuals",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
        "-q",
    ]));
    let m2 = Manifest::read(&out2)?;
    assert_eq!(m2.splits["train"], Manifest::read(&out)?.splits["train"]);
    for s in &m2.splits["train"].shards {
        assert_eq!(
            std::fs::read(out2.join(&s.file))?,
            std::fs::read(out.join(&s.file))?,
            "{} differs after kill and rerun",
            s.file
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(out2.join("data"))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // Two workers into one directory (one with overlapped stages, one sequential), then `cfkit
    // merge`: the same manifest and shards as the single-process build. Merging with a worker
    // missing is refused.
    let out3 = dir.join("cf-workers");
    let worker = |i: &str| {
        ok(cfkit(&[
            "build-counterfactuals",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out3.to_str().unwrap(),
            "--num-workers",
            "2",
            "--worker-index",
            i,
            "--pipeline",
            if i == "0" { "on" } else { "off" },
            "-q",
        ]))
    };
    // Shards of 16, 16 and 8 rows at 8 per batch: 5 batches, 2 for worker 0 (shard 0) and 3
    // for worker 1 (shards 1 and 2).
    let stdout = worker("1");
    assert!(stdout.contains("2 shard(s) written"), "{stdout}");
    let o = cfkit(&["merge", out3.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("workers [0] of 2"));
    let stdout = worker("0");
    assert!(stdout.contains("1 shard(s) written"), "{stdout}");
    let stdout = ok(cfkit(&["merge", out3.to_str().unwrap()]));
    assert!(
        stdout.contains("3 shards, 40 rows, every source shard covered"),
        "{stdout}"
    );
    let m3 = Manifest::read(&out3)?;
    // Equal manifests include equal blake3 per shard: the bytes are the same.
    assert_eq!(m3.splits, Manifest::read(&out)?.splits);
    assert_eq!(m3.config_hash, Manifest::read(&out)?.config_hash);
    ok(cfkit(&["verify", out3.to_str().unwrap()]));
    let o = cfkit(&[
        "build-counterfactuals",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out3.to_str().unwrap(),
        "--num-workers",
        "2",
        "--worker-index",
        "2",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--worker-index 2"));

    // More workers than input shards, and than batches: 7 workers over 5 batches split shards 0
    // and 1 into one-batch pieces and leave 2 workers idle (they write empty manifest parts);
    // merged, the rows are the single build's, in its order.
    let out7 = dir.join("cf-7-workers");
    for i in 0..7 {
        let stdout = ok(cfkit(&[
            "build-counterfactuals",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out7.to_str().unwrap(),
            "--num-workers",
            "7",
            "--worker-index",
            &i.to_string(),
            "-q",
        ]));
        let written = if [0, 3].contains(&i) { 0 } else { 1 };
        assert!(
            stdout.contains(&format!("{written} shard(s) written")),
            "worker {i}: {stdout}"
        );
    }
    let stdout = ok(cfkit(&["merge", out7.to_str().unwrap()]));
    assert!(
        stdout.contains("5 shards, 40 rows, every source shard covered"),
        "{stdout}"
    );
    ok(cfkit(&["verify", out7.to_str().unwrap()]));
    let rows = |dir: &Path| -> Result<Vec<cfkit_schemas::CounterfactualRecord>> {
        let m = Manifest::read(dir)?;
        let mut out = Vec::new();
        for s in &m.splits["train"].shards {
            out.extend(ShardReader::open(&dir.join(&s.file))?.read_counterfactuals()?);
        }
        Ok(out)
    };
    let pieces: Vec<String> = Manifest::read(&out7)?.splits["train"]
        .shards
        .iter()
        .map(|s| s.file.clone())
        .collect();
    assert!(
        pieces[0].ends_with("train-00000-of-00003.b00000-00001.parquet"),
        "{pieces:?}"
    );
    assert!(
        pieces[4].ends_with("train-00002-of-00003.parquet"),
        "{pieces:?}"
    );
    assert_eq!(rows(&out7)?, rows(&out)?);

    // Another config into the same directory is refused.
    let other = write_config(&dir, 1);
    let o = cfkit(&[
        "build-counterfactuals",
        "--config",
        other.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("another config"));
    Ok(())
}

#[test]
fn an_undecodable_source_image_is_quarantined_not_fatal() -> Result<()> {
    use cfkit_schemas::{images_to_batch, ShardKind, ShardWriter, WriterOptions};
    let dir = tmpdir("quarantine");
    let clean = dir.join("clean");
    ok(cfkit(&[
        "demo-data",
        "--out",
        clean.to_str().unwrap(),
        "--splits",
        "train",
        "--scale",
        "0.002",
        "-q",
    ]));
    // The same 20 rows, one with bytes that are not an image, in a new dataset directory.
    let m = Manifest::read(&clean)?;
    let entry = &m.splits["train"];
    let reader = ShardReader::open(&clean.join(&entry.shards[0].file))?;
    let mut rows = reader.read_images()?;
    rows[5].image.bytes = b"not a png at all".to_vec();
    let bad_id = rows[5].id.clone();
    let data = dir.join("data");
    let mut w = ShardWriter::try_new(
        &data,
        Path::new(&entry.shards[0].file),
        reader.schema(),
        WriterOptions::default(),
    )?;
    w.write(&images_to_batch(&reader.schema(), &rows)?)?;
    let mut bad = Manifest::new(
        ShardKind::Images,
        serde_json::json!({"test": "quarantine"}),
        "test",
    );
    bad.add_shard("train", &entry.classes, w.close()?);
    bad.write(&data)?;

    teacher(&dir)?;
    let cfg = write_config(&dir, 0);
    let out = dir.join("cf");
    let stdout = ok(cfkit(&[
        "build-counterfactuals",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ]));
    assert!(stdout.contains("19 rows in 1 shard(s) written"), "{stdout}");
    assert!(
        stdout.contains("1 input rows could not be used"),
        "{stdout}"
    );
    let q = std::fs::read_to_string(out.join("quarantine/train-00000-of-00001.jsonl"))?;
    let line: serde_json::Value = serde_json::from_str(q.lines().next().unwrap())?;
    assert_eq!(line["id"], bad_id.as_str());
    assert!(line["reason"].as_str().unwrap().len() > 5);
    let m = Manifest::read(&out)?;
    assert_eq!(m.splits["train"].rows, 19);
    Ok(())
}

/// `[counterfactuals] compact = true`: variants without pixels. The trainer's loader and `cfkit
/// inspect` recompose them from the clean images of the same row group, and the result equals
/// the materialized build of the same config byte for byte, for single fill, multi fill and no
/// fill; the compact shards are smaller by the variants' PNGs.
#[test]
fn compact_shards_recompose_exactly_the_materialized_images() -> Result<()> {
    use cfkit_trainer::config::VariantChoice;
    use cfkit_trainer::data::{BatchExtras, BatchStream, SplitSource, StoredStrategy, TargetSpec};
    use cfkit_trainer::eval::all_rows;
    use std::sync::Arc;

    let dir = tmpdir("compact");
    demo_train(&dir);
    teacher(&dir)?;
    let cfg = write_config(&dir, 5);
    let (full, compact) = (dir.join("cf-full"), dir.join("cf-compact"));
    ok(cfkit(&[
        "build-counterfactuals",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        full.to_str().unwrap(),
        "-q",
    ]));
    ok(cfkit(&[
        "build-counterfactuals",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        compact.to_str().unwrap(),
        "--set",
        "counterfactuals.compact=true",
        "-q",
    ]));
    let (mf, mc) = (Manifest::read(&full)?, Manifest::read(&compact)?);
    let bytes = |m: &Manifest| {
        m.splits["train"]
            .shards
            .iter()
            .map(|s| s.bytes)
            .sum::<u64>()
    };
    let (mut variant_png, mut rows_seen) = (0usize, 0usize);
    for (sf, sc) in mf.splits["train"]
        .shards
        .iter()
        .zip(&mc.splits["train"].shards)
    {
        let a = ShardReader::open(&full.join(&sf.file))?.read_counterfactuals()?;
        let b = ShardReader::open(&compact.join(&sc.file))?.read_counterfactuals()?;
        assert_eq!(a.len(), b.len());
        for (ra, rb) in a.iter().zip(&b) {
            assert_eq!(ra.base, rb.base);
            for (va, vb) in ra.variants.iter().zip(&rb.variants) {
                assert!(vb.image.bytes.is_empty() && !va.image.bytes.is_empty());
                assert_eq!(
                    (&va.mask, &va.donor_ids, &va.teacher_feature),
                    (&vb.mask, &vb.donor_ids, &vb.teacher_feature)
                );
                variant_png += va.image.bytes.len();
            }
            rows_seen += 1;
        }
    }
    assert_eq!(rows_seen, 40);
    assert!(
        bytes(&mc) + variant_png as u64 / 2 < bytes(&mf),
        "compact {} vs materialized {}",
        bytes(&mc),
        bytes(&mf)
    );
    // The loader: the same target images, features and masks from both, for every strategy.
    for (name, no_fill) in [
        ("ObjMaskSingleFill(0.3)", false),
        ("RandMaskMultiFill(0.5)", false),
        ("CtxMaskNoFill(0.6)", true),
    ] {
        for epoch in 0..2 {
            let batches = |d: &Path| -> Result<Vec<(Tensor, Tensor, Tensor)>> {
                let source = Arc::new(SplitSource::open(d, "train")?);
                // Every other row (epoch 1): donors of the rows read are then often rows the
                // order leaves out (as validation rows are), found in their row group all the same.
                let order = Arc::new(
                    all_rows(&source)
                        .into_iter()
                        .enumerate()
                        .filter(|(i, _)| epoch == 0 || i % 2 == 0)
                        .map(|(_, r)| r)
                        .collect::<Vec<_>>(),
                );
                let extras = BatchExtras {
                    pixels: false,
                    targets: Some(TargetSpec {
                        strategy: Some(StoredStrategy {
                            name: name.into(),
                            no_fill,
                        }),
                        choice: VariantChoice::Epoch,
                        seed: 0,
                        epoch,
                    }),
                };
                let input = cfkit_trainer::data::ModelInput {
                    device: Device::Cpu,
                    normalize: Normalize::CLIP,
                };
                BatchStream::start(source, order, 7, 0, 2, input, extras)
                    .map(|b| {
                        let b = b?;
                        assert!(b.skipped.is_empty(), "{:?}", b.skipped);
                        let t = b.targets.unwrap();
                        Ok((b.images, t.images.unwrap(), t.features))
                    })
                    .collect()
            };
            let (a, b) = (batches(&full)?, batches(&compact)?);
            assert_eq!(a.len(), b.len());
            for ((ia, ta, fa), (ib, tb, fb)) in a.iter().zip(&b) {
                assert!(
                    ia.equal(ib) && ta.equal(tb) && fa.equal(fb),
                    "{name} epoch {epoch}"
                );
            }
        }
    }
    // `cfkit inspect` draws the same contact sheet from both.
    for d in [&full, &compact] {
        ok(cfkit(&[
            "inspect",
            d.to_str().unwrap(),
            "--n",
            "6",
            "--out",
            d.join("sheet.png").to_str().unwrap(),
        ]));
    }
    assert_eq!(
        std::fs::read(full.join("sheet.png"))?,
        std::fs::read(compact.join("sheet.png"))?
    );
    Ok(())
}

/// The builder's donor pools on a class-sorted source (folders, as ImageNet train is laid out):
/// `prepare` stores the rows in a seeded random order, so each batch's donors share their
/// recipient's class about as often as donors drawn at random from the split would (within 2x),
/// for single and multi fill, with one worker and with two + merge; no-fill strategies have no
/// donors. Prepared in folder order (`--order input`), the same build warns loudly.
#[test]
fn donors_of_a_class_sorted_source_are_as_mixed_as_random_ones() -> Result<()> {
    let dir = tmpdir("donors");
    let folders = dir.join("folders");
    ok(cfkit(&[
        "demo-data",
        "--out",
        dir.join("demo").to_str().unwrap(),
        "--splits",
        "train",
        "--scale",
        "0.024",
        "--image-folder",
        folders.to_str().unwrap(),
        "-q",
    ]));
    let prepare = |out: &str, order: &str| {
        let train = folders.join("train");
        ok(cfkit(&[
            "prepare",
            "--image-folder",
            train.to_str().unwrap(),
            "--classes",
            train.join("classes.txt").to_str().unwrap(),
            "--out",
            dir.join(out).to_str().unwrap(),
            "--image-size",
            "56",
            "--rows-per-shard",
            "96",
            "--order",
            order,
            "-q",
        ]));
    };
    prepare("data", "shuffled");
    prepare("sorted", "input");
    // The ImageFolder's class names (folder-safe spellings) are the head's.
    let classes = std::fs::read_to_string(folders.join("train/classes.txt"))?;
    teacher_with(&dir, classes.lines().map(str::to_string).collect())?;
    let cfg =
        std::fs::read_to_string(write_config(&dir, 0))?.replace("variants = 2", "variants = 1");
    let cfg = cfg.replace("batch_size = 8", "batch_size = 32");
    std::fs::write(dir.join("donors.toml"), &cfg)?;
    std::fs::write(
        dir.join("sorted.toml"),
        cfg.replace("shards = \"data\"", "shards = \"sorted\""),
    )?;
    let build = |config: &str, out: &str, worker: Option<&str>| {
        let (config, out) = (dir.join(config), dir.join(out));
        let mut args = vec![
            "build-counterfactuals",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(w) = worker {
            args.extend(["--num-workers", "2", "--worker-index", w]);
        }
        cfkit(&args)
    };
    // (strategy -> (donors that are other images, of those same class)), random rate, over the
    // run records of `out`.
    type Donors = HashMap<String, (u64, u64)>;
    let donors = |out: &str| -> Result<(Donors, f64)> {
        let mut by: HashMap<String, (u64, u64)> = HashMap::new();
        let mut random = Vec::new();
        for e in std::fs::read_dir(dir.join(out))? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("run.") && name.ends_with(".json")) {
                continue;
            }
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join(out).join(&name))?)?;
            random.push(
                r["report"]["random_donor_same_class_rate"]
                    .as_f64()
                    .unwrap(),
            );
            for (s, d) in r["report"]["donors"].as_object().unwrap() {
                let e = by.entry(s.clone()).or_default();
                e.0 += d["draws"].as_u64().unwrap() - d["own_image"].as_u64().unwrap();
                e.1 += d["same_class"].as_u64().unwrap();
            }
        }
        Ok((by, random.iter().sum::<f64>() / random.len() as f64))
    };
    let check = |out: &str| -> Result<()> {
        let (by, random) = donors(out)?;
        assert!((0.05..0.2).contains(&random), "{out}: random rate {random}");
        for s in ["ObjMaskSingleFill(0.3)", "RandMaskMultiFill(0.5)"] {
            let (draws, same) = by[s];
            let rate = same as f64 / draws as f64;
            assert!(draws >= 200, "{out} {s}: {draws} donors");
            assert!(
                rate < 2.0 * random,
                "{out} {s}: same-class donors {rate:.3}, random {random:.3}"
            );
        }
        assert_eq!(
            by.get("CtxMaskNoFill(0.6)").map(|d| d.0).unwrap_or(0),
            0,
            "no fill, no donors"
        );
        Ok(())
    };
    let o = build("donors.toml", "cf", None);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("same-class donors") && stdout.contains("no donors"),
        "{stdout}"
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains("WARNING"));
    check("cf")?;
    for w in ["0", "1"] {
        assert!(build("donors.toml", "cf-2", Some(w)).status.success());
    }
    ok(cfkit(&["merge", dir.join("cf-2").to_str().unwrap()]));
    check("cf-2")?;
    // Folder order: every pool of 32 holds two or three classes.
    let o = build("sorted.toml", "cf-sorted", None);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("WARNING: ObjMaskSingleFill(0.3)") && stderr.contains("class order"),
        "{stderr}"
    );
    Ok(())
}

/// A teacher whose preprocessing is not CLIP's (its config's `image_resize`, as an open_clip
/// model with `resize_mode: squash` gets) refuses source shards prepared CLIP's way, naming both.
#[test]
fn a_teacher_refuses_shards_prepared_another_way() -> Result<()> {
    let dir = tmpdir("resize-mismatch");
    teacher(&dir)?;
    demo_train(&dir);
    let mut cfg = serde_json::to_value(preset("tiny")?)?;
    cfg["vision_config"]["image_resize"] = serde_json::json!({"mode": "squash"});
    std::fs::write(dir.join("teacher.json"), serde_json::to_string(&cfg)?)?;
    let toml = std::fs::read_to_string(write_config(&dir, 0))?
        .replace("model = \"tiny\"", "model = \"teacher.json\"");
    std::fs::write(dir.join("squash.toml"), toml)?;
    let e = err(cfkit(&[
        "build-counterfactuals",
        "--config",
        dir.join("squash.toml").to_str().unwrap(),
        "--out",
        dir.join("cf").to_str().unwrap(),
        "-q",
    ]));
    assert!(
        e.contains("holds images made with resize mode shortest")
            && e.contains("takes images made with resize mode squash"),
        "{e}"
    );
    Ok(())
}

/// Builds `cfg` into `dir/name` with `extra` arguments (`--set` overrides, flags) and reads it
/// back: its manifest and every record, in shard order.
fn build_and_read(
    dir: &Path,
    cfg: &Path,
    name: &str,
    extra: &[&str],
) -> Result<(Manifest, Vec<cfkit_schemas::CounterfactualRecord>)> {
    let out = dir.join(name);
    let mut args = vec![
        "build-counterfactuals",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    ok(cfkit(&args));
    let m = Manifest::read(&out)?;
    let mut rows = Vec::new();
    for s in &m.splits["train"].shards {
        rows.extend(ShardReader::open(&out.join(&s.file))?.read_counterfactuals()?);
    }
    Ok((m, rows))
}

/// `[counterfactuals] precision = "bf16"` runs the teacher's passes under bf16 autocast, on the
/// CPU too: the build records the precision (the fp32 one, `auto` on the CPU, leaves it out and
/// keeps its hash), its features stay close to fp32's, and what the seeds alone decide (random
/// masks, donors) is the same.
#[test]
fn a_bf16_build_records_its_precision_and_stays_close_to_fp32() -> Result<()> {
    let dir = tmpdir("bf16");
    demo_train(&dir);
    teacher(&dir)?;
    let cfg = write_config(&dir, 0);
    // Clean teacher features by id, and (mask, donors) of the random-mask variants in row order.
    let build = |name: &str, precision: &str| -> Result<_> {
        let set = format!("counterfactuals.precision={precision}");
        let (m, rows) = build_and_read(&dir, &cfg, name, &["--set", &set])?;
        let random: Vec<(Vec<bool>, Vec<String>)> = rows
            .iter()
            .flat_map(|r| r.variants.iter().filter(|v| v.strategy.starts_with("Rand")))
            .map(|v| (v.mask.clone(), v.donor_ids.clone()))
            .collect();
        let feats: HashMap<String, Vec<f32>> = rows
            .into_iter()
            .map(|r| (r.base.id, r.teacher_feature))
            .collect();
        Ok((m, feats, random))
    };
    let (m16, f16, r16) = build("bf16", "bf16")?;
    let (m32, f32s, r32) = build("auto", "auto")?;
    assert_eq!(
        m16.config["config"]["counterfactuals"]["precision"], "bf16",
        "{}",
        m16.config
    );
    assert!(
        m32.config["config"]["counterfactuals"]
            .get("precision")
            .is_none(),
        "fp32 (auto on the CPU) is left out: {}",
        m32.config
    );
    assert_ne!(m16.config_hash, m32.config_hash);
    assert_eq!(f16.len(), 40);
    for (id, a) in &f16 {
        let b = &f32s[id];
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            diff > 0.0 && diff <= 0.05 * scale,
            "{id}: bf16 feature differs by {diff} (scale {scale})"
        );
    }
    assert_eq!(
        r16, r32,
        "random masks and donors come from the seeds alone"
    );
    Ok(())
}

/// `device_batch_size`: several donor pools per device pass give the rows of one pool per pass —
/// the same masks, donors, counterfactual pixels and CAMs, features up to rounding — with the
/// pools' last group smaller; a size that is not a multiple of the pool is refused.
#[test]
fn several_donor_pools_per_device_pass_build_the_same_rows() -> Result<()> {
    let dir = tmpdir("pools");
    demo_train(&dir);
    teacher(&dir)?;
    let cfg = write_config(&dir, 0);
    let build = |name: &str, extra: &[&str]| -> Result<Vec<cfkit_schemas::CounterfactualRecord>> {
        Ok(build_and_read(&dir, &cfg, name, extra)?.1)
    };
    let one = build("one", &[])?;
    // Shards of 16 rows, pools of 8: passes of 3 pools hold 2 (the shard's whole piece).
    let three = build("three", &["--set", "counterfactuals.device_batch_size=24"])?;
    // And with decode and encode overlapping the device stage (the default on CUDA).
    let overlapped = build(
        "overlapped",
        &[
            "--set",
            "counterfactuals.device_batch_size=16",
            "--pipeline=on",
        ],
    )?;
    assert_eq!(one.len(), 40);
    assert_eq!(one.len(), three.len());
    assert_eq!(one.len(), overlapped.len());
    for other in [&three, &overlapped] {
        for (a, b) in one.iter().zip(other) {
            assert_eq!(a.base.id, b.base.id);
            assert_eq!(a.base.image.bytes, b.base.image.bytes);
            let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-5);
            assert!(close(&a.cam, &b.cam), "{}: CAM", a.base.id);
            assert!(close(&a.teacher_feature, &b.teacher_feature));
            for (u, v) in a.variants.iter().zip(&b.variants) {
                assert_eq!(
                    (&u.strategy, u.seed, &u.mask),
                    (&v.strategy, v.seed, &v.mask)
                );
                assert_eq!(
                    u.donor_ids, v.donor_ids,
                    "{}: donors stay in the pool",
                    a.base.id
                );
                assert_eq!(u.image.bytes, v.image.bytes, "{}: pixels", a.base.id);
                assert!(close(&u.teacher_feature, &v.teacher_feature));
            }
        }
    }
    let e = err(cfkit(&[
        "build-counterfactuals",
        "--config",
        cfg.to_str().unwrap(),
        "--set",
        "counterfactuals.device_batch_size=12",
        "--out",
        dir.join("bad").to_str().unwrap(),
    ]));
    assert!(
        e.contains("device_batch_size") && e.contains("multiple of batch_size (8)"),
        "{e}"
    );
    Ok(())
}
