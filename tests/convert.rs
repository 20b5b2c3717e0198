//! `cfkit convert` on an OpenAI-style TorchScript archive (issue 16, item 4): the archive is made
//! by tests/convert/make_jit_archive.py from the reference implementation's model (open_clip's
//! CLIP, OpenAI layout and names, float16 parameters) on seeded random weights, with reference
//! features and zero-shot logits. cfkit converts it, builds the zero-shot head from the same
//! archive, and must reproduce both; pickled archives and damaged files get clear errors.

mod common;
use common::{cfkit, err, ok, python};
use std::process::Command;

use anyhow::Result;
use cfkit_models::weights::read_safetensors;
use tch::Device;

fn max_abs(a: &tch::Tensor, b: &tch::Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn torchscript_archive_converts_to_a_checkpoint_with_the_reference_logits() -> Result<()> {
    let tmp = common::tmpdir("convert", "jit");
    common::make_jit_archive(&tmp);
    let s = |p: &str| tmp.join(p).to_str().unwrap().to_string();
    // The tower alone: model.safetensors (Hugging Face names) + config.json.
    ok(cfkit(&[
        "convert",
        "--model",
        &s("config.json"),
        "--weights",
        &s("clip-tiny.pt"),
        "--out",
        &s("tower"),
    ]));
    let tower = read_safetensors(&tmp.join("tower/model.safetensors"))?;
    assert!(tower
        .tensors
        .keys()
        .all(|k| k.starts_with("vision_model.") || k.starts_with("visual_projection.")));
    assert!(tmp.join("tower/config.json").exists());
    // The zero-shot head straight from the archive, then a complete checkpoint.
    ok(cfkit(&[
        "zeroshot-head",
        "--model",
        &s("config.json"),
        "--weights",
        &s("clip-tiny.pt"),
        "--classes",
        &s("classes.txt"),
        "--templates",
        &s("templates.txt"),
        "--out",
        &s("head.safetensors"),
        "--device",
        "cpu",
    ]));
    ok(cfkit(&[
        "convert",
        "--model",
        &s("config.json"),
        "--weights",
        &s("clip-tiny.pt"),
        "--head",
        &s("head.safetensors"),
        "--out",
        &s("zeroshot"),
    ]));
    let reference = read_safetensors(&tmp.join("reference.safetensors"))?;
    let (student, info) =
        cfkit_trainer::checkpoint::load_student(&tmp.join("zeroshot"), Device::Cpu)?;
    assert_eq!(info.method, "zeroshot");
    let _g = tch::no_grad_guard();
    let images = &reference.tensors["images"];
    let features = student.features(images)?;
    let logits = student.logits(images)?;
    let (df, dl) = (
        max_abs(&features, &reference.tensors["features"]),
        max_abs(&logits, &reference.tensors["logits"]),
    );
    eprintln!("max |features - open_clip| = {df:.2e}, max |logits - open_clip| = {dl:.2e}");
    assert!(df < 1e-4, "features differ from open_clip's by {df}");
    assert!(
        dl < 1e-4 * 100.0,
        "logits (scale 100) differ from open_clip's by {dl}"
    );
    // The tower file equals the checkpoint's tower.
    let ckpt = read_safetensors(&tmp.join("zeroshot/model.safetensors"))?;
    for (name, t) in &tower.tensors {
        assert_eq!(max_abs(t, &ckpt.tensors[name]), 0.0, "{name}");
    }
    // Nothing already written is replaced.
    let e = err(cfkit(&[
        "convert",
        "--model",
        &s("config.json"),
        "--weights",
        &s("clip-tiny.pt"),
        "--out",
        &s("zeroshot"),
    ]));
    assert!(e.contains("not empty"), "{e}");
    Ok(())
}

#[test]
fn pickled_and_damaged_archives_are_refused_with_a_reason() -> Result<()> {
    let tmp = common::tmpdir("convert", "bad");
    common::make_jit_archive(&tmp);
    let s = |p: &str| tmp.join(p).to_str().unwrap().to_string();
    // A pickled state dict (torch.save also writes a ZIP archive): never unpickled.
    let o = Command::new(python())
        .arg("-c")
        .arg(format!(
            "import torch; torch.save({{'visual.proj': torch.zeros(2, 2)}}, '{}')",
            s("pickled.pt")
        ))
        .output()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e = err(cfkit(&[
        "convert",
        "--model",
        &s("config.json"),
        "--weights",
        &s("pickled.pt"),
        "--out",
        &s("out1"),
    ]));
    assert!(
        e.contains("not a TorchScript module") && e.contains("pickled.pt"),
        "{e}"
    );
    // A truncated archive.
    let bytes = std::fs::read(tmp.join("clip-tiny.pt"))?;
    std::fs::write(tmp.join("cut.pt"), &bytes[..bytes.len() / 2])?;
    let e = err(cfkit(&[
        "convert",
        "--model",
        &s("config.json"),
        "--weights",
        &s("cut.pt"),
        "--out",
        &s("out2"),
    ]));
    assert!(e.contains("cut.pt"), "{e}");
    assert!(!tmp.join("out1").exists() && !tmp.join("out2").exists());
    // A config that does not match the archive names the tensor.
    let e = err(cfkit(&[
        "convert",
        "--model",
        "tiny",
        "--weights",
        &s("clip-tiny.pt"),
        "--out",
        &s("out3"),
    ]));
    assert!(e.contains("shape") || e.contains("missing"), "{e}");
    Ok(())
}
