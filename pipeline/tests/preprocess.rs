//! Parity of `cfkit_pipeline::prepare::preprocess` with the CLIP reference preprocessing
//! (`Resize(S, BICUBIC) -> CenterCrop(S) -> convert("RGB")` in torchvision 0.28 / Pillow 13).
//!
//! Fixtures: `tests/fixtures/preprocess/` at the repository root, made by
//! `tests/preprocess/make_fixtures.py` (see its docstring for what each kind covers). `index.tsv`
//! has one tab-separated line per input:
//! `input size expected expected_h expected_w expected_c kind decoded_ref|-`.
//! Expected outputs are lossless RGB8 PNGs. Needs only the `image` crate (png + jpeg features).
//!
//! Each input is decoded with the `image` crate and run through `clip_preprocess` (and
//! `clip_preprocess_encoded`, which must agree); the max per-pixel absolute difference to the
//! reference is printed for every image (`cargo test --test preprocess -- --nocapture`).

use std::path::PathBuf;

use cfkit_pipeline::prepare::preprocess::{
    clip_preprocess, clip_preprocess_encoded, clip_preprocess_with, pil_hints,
};
use image::RgbImage;

/// Allowed (max, mean) absolute difference per channel value, by fixture kind.
fn tolerance(kind: &str) -> (u8, f64) {
    match kind {
        // Lossless 8-bit inputs (RGB, L, LA, RGBA, palette, 1-bit) and 16-bit inputs (reference =
        // Pillow on round(v / 257), the documented 16-bit rule): the resampling is Pillow's, exactly.
        k if k.starts_with("png") => (0, 0.0),
        // zune-jpeg (the `image` crate) and libjpeg-turbo (Pillow) decode the same JPEG with small
        // IDCT / chroma-upsampling differences; the resampling itself is checked exactly on
        // Pillow's decoded pixels (`decoded_ref`), which must give 0. Measured: max 3-4, mean ~0.4.
        "jpeg_rgb" => (8, 1.0),
        // As above, plus the `image` crate converts CMYK to RGB at decode time, while Pillow resizes
        // in CMYK and converts afterwards. The conversion is bilinear in (C, K), so at edges between
        // e.g. (C=255, K=0) and (C=0, K=255) (both black) the two orders differ by up to ~64, more
        // with bicubic overshoot; smooth regions agree. Measured on the fixture: max 45, mean 1.43.
        // (The per-pixel CMYK->RGB conversion itself agrees with Pillow's to within 2.)
        "jpeg_cmyk" => (72, 3.0),
        other => panic!("unknown fixture kind {other:?}"),
    }
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/preprocess")
}

fn read_rgb_png(path: &PathBuf) -> RgbImage {
    match image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        image::DynamicImage::ImageRgb8(img) => img,
        other => panic!("{}: expected RGB8, got {:?}", path.display(), other.color()),
    }
}

/// (max absolute difference, mean absolute difference, number of differing channel values).
fn diff(a: &RgbImage, b: &RgbImage) -> (u8, f64, usize) {
    assert_eq!(a.dimensions(), b.dimensions());
    let (max, sum, n) =
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .fold((0, 0u64, 0), |(m, s, n), (&x, &y)| {
                let d = x.abs_diff(y);
                (m.max(d), s + u64::from(d), n + usize::from(d > 0))
            });
    (max, sum as f64 / a.as_raw().len().max(1) as f64, n)
}

#[test]
fn clip_preprocess_matches_torchvision_pil() {
    let dir = fixtures_dir();
    let index = std::fs::read_to_string(dir.join("index.tsv")).expect("read index.tsv");
    let mut failures = Vec::new();
    let mut count = 0;
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
        let decoded = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let hints = pil_hints(&bytes);
        let ours = if hints.drop_alpha {
            clip_preprocess_encoded(&bytes, size).expect("decode")
        } else {
            clip_preprocess_with(&decoded, size, hints.filter)
        };
        assert_eq!(
            ours,
            clip_preprocess_encoded(&bytes, size).expect("decode"),
            "{name}: encoded path"
        );
        assert_eq!(
            ours.dimensions(),
            (shape[1], shape[0]),
            "{name}: output size"
        );

        let expected = read_rgb_png(&dir.join(f[2]));
        let (max, mean, n) = diff(&ours, &expected);
        let (tol, tol_mean) = tolerance(kind);
        let dims = format!("{}x{}", decoded.width(), decoded.height());
        println!(
            "{name:<36} {kind:<12} {dims:<8} S={size:<3} {:<7} max|diff|={max:<3} mean={mean:.4} \
             differing={n:<6} tol=({tol}, {tol_mean})",
            format!("{:?}", hints.filter),
        );
        if max > tol || mean > tol_mean {
            failures.push(format!(
                "{name}: max diff {max} (tol {tol}), mean {mean:.4} (tol {tol_mean})"
            ));
        }
        if decoded_ref != "-" {
            // Same preprocessing on Pillow's own decoded pixels: isolates resampling from decoding.
            let pil_decoded = image::open(dir.join(decoded_ref)).expect("decoded_ref");
            let (max, _, n) = diff(&clip_preprocess(&pil_decoded, size), &expected);
            println!(
                "{:<36} {:<12} on Pillow-decoded pixels: max|diff|={max} differing={n}",
                "", ""
            );
            if max > 0 {
                failures.push(format!(
                    "{name} (Pillow-decoded pixels): max diff {max} > 0"
                ));
            }
        }
        count += 1;
    }
    assert!(count >= 20, "only {count} fixtures in index.tsv");
    assert!(
        failures.is_empty(),
        "parity failures:\n{}",
        failures.join("\n")
    );
}
