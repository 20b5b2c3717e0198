//! An open_clip model as it ships (tests/fixtures/parity/open_clip-squash: open_clip_config.json
//! with mean = std = 0.5, bilinear, squash, written by open_clip's own save_config_for_hf) through
//! the command line: its preprocessing travels from the config into the checkpoint, data prepared
//! another way is refused with both named, data prepared its way is scored.

mod common;

use std::path::Path;

use anyhow::Result;
use common::{cfkit, err, ok, tmpdir};

#[test]
fn an_open_clip_model_s_preprocessing_follows_it_and_a_mismatch_names_both() -> Result<()> {
    let tmp = tmpdir("open-clip", "preprocess");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("tests/fixtures/parity/open_clip-squash");
    let images = root.join("tests/fixtures/ecosystem/images");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let weights = s(&model.join("open_clip_model.safetensors"));
    std::fs::write(tmp.join("classes.txt"), "animal\nobject\nperson\n")?;
    std::fs::write(tmp.join("template.txt"), "a photo of a {}.\n")?;
    let head = s(&tmp.join("head.safetensors"));
    ok(cfkit(&[
        "zeroshot-head",
        "--model",
        &s(&model),
        "--weights",
        &weights,
        "--classes",
        &s(&tmp.join("classes.txt")),
        "--templates",
        &s(&tmp.join("template.txt")),
        "--out",
        &head,
        "--device",
        "cpu",
    ]));
    let ckpt = tmp.join("zeroshot");
    ok(cfkit(&[
        "convert",
        "--model",
        &s(&model),
        "--weights",
        &weights,
        "--head",
        &head,
        "--out",
        &s(&ckpt),
    ]));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ckpt.join("config.json"))?)?;
    assert_eq!(config["hidden_act"], "gelu");
    assert_eq!(config["image_mean"], serde_json::json!([0.5, 0.5, 0.5]));
    assert_eq!(config["image_resize"]["mode"], "squash");
    assert_eq!(config["image_resize"]["interpolation"], "bilinear");
    let prepare = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "prepare".to_string(),
            "--image-folder".into(),
            s(&images),
            "--out".into(),
            s(out),
            "--image-size".into(),
            "32".into(),
            "--max-bad-fraction".into(),
            "0.5".into(),
            "-q".into(),
        ];
        args.extend(extra.iter().map(|x| x.to_string()));
        ok(cfkit(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    };
    let eval = |shards: &Path| {
        cfkit(&[
            "eval",
            "--checkpoint",
            &s(&ckpt),
            "--shards",
            &s(shards),
            "--split",
            "train",
            "--device",
            "cpu",
        ])
    };
    // CLIP's resize: refused, both named, and what to prepare with.
    let clip = tmp.join("clip-data");
    prepare(&clip, &[]);
    let e = err(eval(&clip));
    assert!(
        e.contains("made with resize mode shortest, bicubic interpolation, fill 0")
            && e.contains("the model takes 32 px images made with resize mode squash, bilinear interpolation, fill 0")
            && e.contains("--resize-mode squash --interpolation bilinear"),
        "{e}"
    );
    // Its own resize: scored (8 images; the truncated one is quarantined).
    let own = tmp.join("own-data");
    prepare(
        &own,
        &["--resize-mode", "squash", "--interpolation", "bilinear"],
    );
    let out = ok(eval(&own));
    assert!(out.contains("train"), "{out}");
    // The folder route of eval prepares it the model's way too.
    ok(cfkit(&[
        "eval",
        "--checkpoint",
        &s(&ckpt),
        "--image-folder",
        &s(&images),
        "--classes",
        &s(&tmp.join("classes.txt")),
        "--device",
        "cpu",
    ]));
    Ok(())
}
