//! A model whose preprocessing is not CLIP's, end to end against open_clip: a tiny open_clip
//! model shipped with `preprocess_cfg` mean = std = 0.5, bilinear, squash
//! (tests/fixtures/parity/open_clip-squash, written by tests/parity/make_fixtures.py with
//! open_clip's own save_config_for_hf and eval transform). cfkit reads the preprocessing from
//! open_clip_config.json, prepares the real images with it and normalises with the model's mean
//! and std: the input tensors equal open_clip's transform, the features its encode_image.

use std::path::{Path, PathBuf};

use cfkit_models::weights::read_safetensors;
use cfkit_models::{pixels_to_input, resolve_config, ClipModel, Towers};
use cfkit_pipeline::prepare::preprocess::preprocess_loaded;
use cfkit_pipeline::prepare::rgb::load;
use tch::Device;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/parity/open_clip-squash")
}

#[test]
fn a_model_with_its_own_preprocessing_matches_open_clip() {
    let config = resolve_config(dir().to_str().unwrap()).unwrap();
    let v = &config.vision_config;
    assert_eq!(v.image_mean, [0.5; 3]);
    assert_eq!(v.image_resize.mode, cfkit_schemas::ResizeMode::Squash);
    let expected = read_safetensors(&dir().join("expected.safetensors")).unwrap();
    let names: Vec<String> = serde_json::from_str(&expected.metadata["inputs"]).unwrap();
    let size = v.image_size as u32;
    let pixels: Vec<Vec<u8>> = names
        .iter()
        .map(|n| {
            let bytes = std::fs::read(dir().join(n)).unwrap();
            preprocess_loaded(&load(&bytes, u64::MAX).unwrap(), size, &v.image_resize).into_raw()
        })
        .collect();
    let x = pixels_to_input(&pixels, size as usize, &v.normalize(), Device::Cpu);
    // open_clip's ToTensor + Normalize in float32: the same uint8 pixels, the same arithmetic.
    let d = (&x - &expected.tensors["pixels"])
        .abs()
        .max()
        .double_value(&[]);
    println!("inputs differ from open_clip's transform by {d:e}");
    assert!(d < 1e-6, "inputs differ from open_clip's transform by {d}");
    let model = ClipModel::load(
        &config,
        &dir().join("open_clip_model.safetensors"),
        Towers::Vision,
        Device::Cpu,
    )
    .unwrap();
    let _g = tch::no_grad_guard();
    let f = model.vision().unwrap().features(&x).unwrap();
    let d = (&f - &expected.tensors["image_features"])
        .abs()
        .max()
        .double_value(&[]);
    println!("features differ from open_clip's by {d:e}");
    assert!(d < 1e-4, "features differ from open_clip's by {d}");
    // CLIP's normalisation of the same pixels is far off: the model's mean and std matter.
    let clip = pixels_to_input(
        &pixels,
        size as usize,
        &cfkit_models::Normalize::CLIP,
        Device::Cpu,
    );
    let d = (&clip - &expected.tensors["pixels"])
        .abs()
        .max()
        .double_value(&[]);
    assert!(d > 0.1, "{d}");
}
