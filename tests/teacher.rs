//! The committed FashionShift demo teacher (assets/teacher, made by `just pretrain-teacher`):
//! its files match the blake3 hashes recorded in its checkpoint.json, it is the `tiny` preset over
//! the FashionShift classes, it is trained (well above the 10 % of chance on test-id), and
//! transformers' CLIPVisionModelWithProjection loads it and scores the same images as `cfkit eval`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;
use cfkit_models::weights::file_blake3;
use common::{cfkit, ok, python};

fn teacher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/teacher")
}

#[test]
fn committed_teacher_matches_its_recorded_hashes() -> Result<()> {
    let dir = teacher();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("checkpoint.json"))?)?;
    assert_eq!(
        file_blake3(&dir.join("model.safetensors"))?,
        info["weights_blake3"].as_str().unwrap()
    );
    assert_eq!(
        file_blake3(&dir.join("head.safetensors"))?,
        info["head_blake3"].as_str().unwrap()
    );
    let (student, info) = cfkit_trainer::checkpoint::load_student(&dir, tch::Device::Cpu)?;
    assert_eq!(
        &info.vision_config,
        &cfkit_models::preset("tiny")?.vision_config
    );
    let classes: Vec<&str> = student.classes.iter().map(String::as_str).collect();
    assert_eq!(classes, cfkit_pipeline::fashionshift::CLASS_NAMES);
    Ok(())
}

#[test]
fn committed_teacher_is_trained_and_loads_in_transformers() -> Result<()> {
    let dir = common::tmpdir("teacher", "eval");
    let data = common::demo_data(&dir, "test-id", "0.1", &[]);
    let out = ok(cfkit(&[
        "eval",
        "--checkpoint",
        teacher().to_str().unwrap(),
        "--shards",
        data.to_str().unwrap(),
        "--json",
        "--device",
        "cpu",
    ]));
    let r: serde_json::Value = serde_json::from_str(out.trim())?;
    let set = &r["sets"][0];
    assert_eq!(set["images"], 200);
    let top1 = set["top1"].as_f64().unwrap();
    // Chance is 0.10; the teacher's validation top-1 is recorded in its checkpoint.json.
    assert!(top1 > 0.25, "teacher test-id top-1 {top1}");

    let o = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/check_checkpoint.py"))
        .arg(teacher())
        .arg(&data)
        .arg("test-id")
        .output()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let py: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap())?;
    assert_eq!(py["images"], 200);
    assert_eq!(
        py["correct"], set["correct"],
        "transformers and cfkit disagree"
    );
    let info = &py["loading_info"];
    for key in ["missing_keys", "unexpected_keys", "mismatched_keys"] {
        assert_eq!(
            info[key].as_array().map(Vec::len).unwrap_or(0),
            0,
            "transformers loading_info {key}: {info}"
        );
    }
    Ok(())
}
