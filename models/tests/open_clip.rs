//! open_clip's models as they ship (tests/fixtures/parity/open_clip-gelu, written by open_clip's
//! own save_config_for_hf from a tiny random GELU model; tests/parity/make_fixtures.py): the
//! config read from open_clip_config.json, the weights from open_clip_model.safetensors, image
//! and text features equal to open_clip's, and the pickled .bin refused with a pointer to the
//! safetensors file.

use std::path::{Path, PathBuf};

use anyhow::Result;
use cfkit_models::weights::{read_hf_weights, read_safetensors};
use cfkit_models::{resolve_config, Activation, ClipModel, Towers};
use tch::Device;

/// The parity tolerance of the other fixtures (float32 on float16-rounded weights).
const TOL: f64 = 1e-4;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/parity/open_clip-gelu")
}

#[test]
fn a_shipped_open_clip_gelu_model_matches_open_clip() -> Result<()> {
    // The directory or the config file itself.
    let config = resolve_config(dir().to_str().unwrap())?;
    assert_eq!(
        config,
        resolve_config(dir().join("open_clip_config.json").to_str().unwrap())?
    );
    assert_eq!(config.vision_config.hidden_act, Activation::Gelu);
    assert_eq!(
        config.vision_config.num_attention_heads, 4,
        "width 64 / head_width 16"
    );
    let model = ClipModel::load(
        &config,
        &dir().join("open_clip_model.safetensors"),
        Towers::Both,
        Device::Cpu,
    )?;
    let exp = read_safetensors(&dir().join("expected.safetensors"))?.tensors;
    let _g = tch::no_grad_guard();
    let image = model.vision()?.features(&exp["pixels"])?;
    let d = (&image - &exp["image_features"])
        .abs()
        .max()
        .double_value(&[]);
    println!("image features differ from open_clip's by {d:e}");
    assert!(d < TOL, "image features differ from open_clip's by {d}");
    let text = model.text()?.features(&exp["tokens"])?;
    let d = (&text - &exp["text_features"])
        .abs()
        .max()
        .double_value(&[]);
    println!("text features differ from open_clip's by {d:e}");
    assert!(d < TOL, "text features differ from open_clip's by {d}");
    // QuickGELU on the same weights is measurably different: the activation is what matters.
    let mut quick = config.clone();
    quick.vision_config.hidden_act = Activation::QuickGelu;
    let other = ClipModel::load(
        &quick,
        &dir().join("open_clip_model.safetensors"),
        Towers::Vision,
        Device::Cpu,
    )?;
    let q = other.vision()?.features(&exp["pixels"])?;
    let d = (&q - &exp["image_features"]).abs().max().double_value(&[]);
    assert!(d > 100.0 * TOL, "QuickGELU should differ, by {d}");
    Ok(())
}

#[test]
fn the_pickled_bin_is_refused_with_the_safetensors_named() {
    let e = read_hf_weights(&dir().join("open_clip_pytorch_model.bin"))
        .err()
        .expect("a pickle is refused")
        .to_string();
    assert!(e.contains("not pickled state dicts"), "{e}");
    assert!(e.contains("open_clip_model.safetensors' next to it"), "{e}");
}
