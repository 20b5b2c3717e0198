//! Weight files: save -> load round trip with Hugging Face names, open_clip translation, and
//! corrupt or mismatched files giving errors that name the file and tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use cfkit_models::clip::VISION_PREFIXES;
use cfkit_models::weights::{named_tensors, read_hf_weights, read_safetensors, write_safetensors};
use cfkit_models::{resolve_config, ClipModel, ModelError, Towers};
use tch::Device;

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/parity/tiny")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("cfkit-weights-{}-{name}", std::process::id()))
}

#[test]
fn save_then_load_round_trips_every_vision_tensor() -> Result<()> {
    let config = resolve_config(tiny().join("config.json").to_str().unwrap())?;
    let model = ClipModel::load(
        &config,
        &tiny().join("open_clip.safetensors"),
        Towers::Vision,
        Device::Cpu,
    )?;
    let out = tmp("roundtrip.safetensors");
    let tensors = named_tensors(&model.vs, &VISION_PREFIXES);
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(&out, &tensors, &meta)?;
    let back = read_safetensors(&out)?;
    assert_eq!(back.metadata["format"], "pt");
    assert_eq!(back.tensors.len(), tensors.len());
    for (name, t) in &tensors {
        let b = &back.tensors[name];
        assert_eq!(b.size(), t.size(), "{name}");
        assert!(b.equal(t), "{name} differs after the round trip");
    }
    // The saved file uses HF names and loads into a fresh model with identical outputs.
    assert!(back
        .tensors
        .keys()
        .all(|k| k.starts_with("vision_model.") || k == "visual_projection.weight"));
    let again = ClipModel::load(&config, &out, Towers::Vision, Device::Cpu)?;
    let x = tch::Tensor::randn([2, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
    let _g = tch::no_grad_guard();
    let a = model.vision()?.features(&x)?;
    let b = again.vision()?.features(&x)?;
    assert!(a.equal(&b));
    std::fs::remove_file(&out)?;
    Ok(())
}

#[test]
fn open_clip_names_translate_to_hf_names() -> Result<()> {
    let oc = read_hf_weights(&tiny().join("open_clip.safetensors"))?;
    let hf = read_safetensors(&tiny().join("hf.safetensors"))?;
    let mut a: Vec<_> = oc
        .tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.size()))
        .collect();
    let mut b: Vec<_> = hf
        .tensors
        .iter()
        .filter(|(k, _)| !k.ends_with("position_ids"))
        .map(|(k, v)| (k.clone(), v.size()))
        .collect();
    a.sort();
    b.sort();
    assert_eq!(
        a, b,
        "translated open_clip names/shapes differ from transformers'"
    );
    Ok(())
}

#[test]
fn corrupt_and_mismatched_files_name_the_problem() -> Result<()> {
    let config = resolve_config(tiny().join("config.json").to_str().unwrap())?;
    let good = std::fs::read(tiny().join("hf.safetensors"))?;
    // Header length pointing past the end of the file.
    let mut bad = good.clone();
    bad[0] = 0xff;
    bad[1] = 0xff;
    bad[2] = 0xff;
    let p = tmp("badheader.safetensors");
    std::fs::write(&p, &bad)?;
    let err = ClipModel::load(&config, &p, Towers::Vision, Device::Cpu).unwrap_err();
    assert!(matches!(err, ModelError::Safetensors { .. }), "{err}");
    assert!(err.to_string().contains("badheader.safetensors"), "{err}");
    std::fs::remove_file(&p)?;

    // A checkpoint with a block more than the config: the extra tensors are reported.
    let mut fewer = config.clone();
    fewer.vision_config.num_hidden_layers = 1;
    let err = ClipModel::load(
        &fewer,
        &tiny().join("hf.safetensors"),
        Towers::Vision,
        Device::Cpu,
    )
    .unwrap_err();
    assert!(err.to_string().contains("encoder.layers.1."), "{err}");

    // A config with more blocks than the checkpoint: the first missing tensor is named.
    let mut more = config.clone();
    more.vision_config.num_hidden_layers = 3;
    let err = ClipModel::load(
        &more,
        &tiny().join("hf.safetensors"),
        Towers::Vision,
        Device::Cpu,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("vision_model.encoder.layers.2.") && msg.contains("missing"),
        "{msg}"
    );
    Ok(())
}
