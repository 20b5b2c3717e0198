//! Parity of cfkit's image loading and CLIP preprocessing with the reference's: torchvision's
//! `ImageFolder` loader (`Image.open(f).convert("RGB")`), then `Resize(S, BICUBIC) -> CenterCrop(S)`
//! (torchvision 0.28 / Pillow 13 with libjpeg-turbo 3).
//!
//! Fixtures: `tests/fixtures/preprocess/` at the repository root, made by
//! `tests/preprocess/make_fixtures.py` (see its docstring for what each kind covers). `index.tsv`
//! has one tab-separated line per input:
//! `input size expected expected_h expected_w expected_c kind decoded_ref|-`.
//! Expected outputs and decoded references are lossless RGB8 PNGs.
//!
//! Every fixture must match byte for byte: the decoded RGB pixels (`decode_rgb`) against Pillow's
//! `convert("RGB")` where the generator stored them (`decoded_ref`), and the preprocessed image
//! (`clip_preprocess_encoded`) against the reference. The max per-pixel absolute difference is
//! printed for every image (`cargo test --test preprocess -- --nocapture`).

use std::path::{Path, PathBuf};

use cfkit_pipeline::prepare::preprocess::{clip_preprocess, clip_preprocess_encoded};
use cfkit_pipeline::prepare::rgb::decode_rgb;
use image::RgbImage;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/preprocess")
}

fn read_rgb_png(path: &Path) -> RgbImage {
    match image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        image::DynamicImage::ImageRgb8(img) => img,
        other => panic!("{}: expected RGB8, got {:?}", path.display(), other.color()),
    }
}

/// (max absolute difference, number of differing channel values), or `None` when the shapes differ.
fn diff(a: &RgbImage, b: &RgbImage) -> Option<(u8, usize)> {
    (a.dimensions() == b.dimensions()).then(|| {
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .fold((0, 0), |(m, n), (&x, &y)| {
                let d = x.abs_diff(y);
                (m.max(d), n + usize::from(d > 0))
            })
    })
}

#[test]
fn loading_and_preprocessing_match_imagefolder_and_torchvision() {
    let dir = fixtures_dir();
    let index = std::fs::read_to_string(dir.join("index.tsv")).expect("read index.tsv");
    let mut failures = Vec::new();
    let (mut count, mut decoded_checked) = (0, 0);
    for line in index
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 8, "bad index line {line:?}");
        let (name, kind, decoded_ref) = (f[0], f[6], f[7]);
        let size: u32 = f[1].parse().expect("size");
        let shape: Vec<u32> = f[3..6].iter().map(|v| v.parse().expect("shape")).collect();
        assert_eq!(shape, [size, size, 3], "{name}: expected shape");

        let bytes = std::fs::read(dir.join(name)).expect("read input");
        let decoded = decode_rgb(&bytes, u64::MAX).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = clip_preprocess_encoded(&bytes, size).expect("decode");
        assert_eq!(ours, clip_preprocess(&decoded, size), "{name}: two paths");
        assert_eq!(ours.dimensions(), (size, size), "{name}: output size");

        let expected = read_rgb_png(&dir.join(f[2]));
        let (max, n) = diff(&ours, &expected).expect("same shape");
        let dims = format!("{}x{}", decoded.width(), decoded.height());
        print!("{name:<32} {kind:<12} {dims:<8} S={size:<3} max|diff|={max:<3} differing={n:<6}");
        if max > 0 {
            failures.push(format!("{name}: preprocessed max diff {max} on {n} values"));
        }
        if decoded_ref != "-" {
            decoded_checked += 1;
            let pil = read_rgb_png(&dir.join(decoded_ref));
            match diff(&decoded, &pil) {
                Some((0, _)) => print!(" decoded: equal"),
                Some((max, n)) => {
                    print!(" decoded: max|diff|={max} differing={n}");
                    failures.push(format!("{name}: decoded max diff {max} on {n} values"));
                }
                None => failures.push(format!(
                    "{name}: decoded {:?}, Pillow {:?}",
                    decoded.dimensions(),
                    pil.dimensions()
                )),
            }
        }
        println!();
        count += 1;
    }
    assert!(count >= 25, "only {count} fixtures in index.tsv");
    assert!(
        decoded_checked >= 15,
        "only {decoded_checked} decoded references"
    );
    assert!(
        failures.is_empty(),
        "parity failures:\n{}",
        failures.join("\n")
    );
}

/// open_clip's other eval resizes (`resize_mode` longest / squash, bilinear, a fill colour) on
/// the same inputs: tests/fixtures/preprocess/open_clip, made by
/// tests/preprocess/open_clip_variants.py with open_clip 3.3's `image_transform`. Exact bytes.
#[test]
fn other_resizes_match_open_clip() {
    use cfkit_pipeline::prepare::preprocess::preprocess_loaded;
    use cfkit_pipeline::prepare::rgb::load;
    use cfkit_schemas::{Interpolation, Resize, ResizeMode};
    let dir = fixtures_dir();
    let index = std::fs::read_to_string(dir.join("open_clip/variants.tsv")).expect("read index");
    let (mut failures, mut count) = (Vec::new(), 0);
    for line in index
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "bad line {line:?}");
        let size: u32 = f[1].parse().unwrap();
        let resize = Resize {
            mode: match f[2] {
                "shortest" => ResizeMode::Shortest,
                "longest" => ResizeMode::Longest,
                "squash" => ResizeMode::Squash,
                other => panic!("mode {other}"),
            },
            interpolation: match f[3] {
                "bicubic" => Interpolation::Bicubic,
                "bilinear" => Interpolation::Bilinear,
                other => panic!("interpolation {other}"),
            },
            fill: f[4].parse().unwrap(),
        };
        let bytes = std::fs::read(dir.join(f[0])).unwrap();
        let ours = preprocess_loaded(&load(&bytes, u64::MAX).unwrap(), size, &resize);
        let expected = read_rgb_png(&dir.join(f[5]));
        let (max, n) = diff(&ours, &expected).expect("same shape");
        if max > 0 {
            failures.push(format!(
                "{} {} {} fill {}: max diff {max} on {n} values",
                f[0], f[2], f[3], f[4]
            ));
        }
        count += 1;
    }
    assert_eq!(count, 50, "every case of variants.tsv");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
