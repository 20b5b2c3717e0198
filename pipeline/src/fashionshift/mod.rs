//! FashionShift: the embedded demo benchmark (DESIGN.md §6).
//!
//! Fashion-MNIST garments composited onto procedurally generated backgrounds of ten texture
//! families, in several renderings, at 56x56 RGB (the `tiny` ViT preset: 8x8 patches, a 7x7 grid
//! like ViT-B/32 at 224 px). The fine-tuning split ties each class to one background family with
//! probability `spurious_rate` (a spurious cue, as in Waterbirds); the pretraining split draws
//! backgrounds and renderings independently of the label (the "diverse web data" a robust teacher
//! learns from); the OOD splits mirror the ImageNet shifts. `splits.rs` has the table of splits,
//! their garment pools and their rules; [`Split::garment_pool`] exposes the pools.
//!
//! Every sample is a pure function of `(seed, split, index)`: a per-sample SplitMix64 stream is
//! keyed by them (`rng.rs`), so samples can be generated in any order and in parallel.
//!
//! ```no_run
//! use cfkit_pipeline::fashionshift::{generate, FashionMnist, FashionShiftConfig, Split, DEBIAN_DIR};
//! let fm = FashionMnist::load(std::path::Path::new(DEBIAN_DIR))?;
//! let cfg = FashionShiftConfig::default();
//! let s = generate(&fm, &cfg, "ood-sketch".parse::<Split>()?, 0)?;
//! assert_eq!(s.pixels.len(), 56 * 56 * 3);
//! # Ok::<(), cfkit_pipeline::fashionshift::FashionShiftError>(())
//! ```

mod backgrounds;
mod config;
mod idx;
mod render;
use cfkit_counterfactual::rng;
mod shape;
mod splits;

use std::path::PathBuf;

pub use backgrounds::{FAMILY_NAMES, NUM_FAMILIES};
pub use config::{FashionShiftConfig, SplitSizes};
pub use idx::{FashionMnist, Part, DEBIAN_DIR};
pub use render::{Placement, Rendering};
pub use splits::{family_of_class, Split, SPLITS};

use rng::{fnv1a64, SplitMix64};

/// Fashion-MNIST class names in label order (Fashion-MNIST README).
pub const CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Everything that can go wrong in FashionShift.
#[derive(Debug, thiserror::Error)]
pub enum FashionShiftError {
    #[error(
        "Fashion-MNIST file {path} not found; install the Debian package `dataset-fashion-mnist` \
         (it puts the four IDX files in /usr/share/datasets/fashion-mnist) or point to a directory \
         holding train-/t10k-images-idx3-ubyte.gz and train-/t10k-labels-idx1-ubyte.gz"
    )]
    MissingFile { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a complete gzip stream: {source}")]
    Gzip {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a Fashion-MNIST IDX file: {detail}")]
    BadIdx { path: PathBuf, detail: String },
    #[error("unknown FashionShift split {name:?}; expected one of {:?}", SPLITS)]
    UnknownSplit { name: String },
    #[error("index {index} out of range for split {split} of {len} samples")]
    IndexOutOfRange {
        split: Split,
        index: usize,
        len: usize,
    },
    #[error("invalid FashionShift config: {0}")]
    InvalidConfig(String),
}

/// What a sample is, without its pixels (cheap: see [`describe`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SampleInfo {
    pub split: Split,
    pub index: usize,
    /// Class, 0..9 (see [`CLASS_NAMES`]).
    pub label: u8,
    /// The Fashion-MNIST garment shown: part and index in that part.
    pub source: (Part, usize),
    /// Background family, 0..9 (see [`FAMILY_NAMES`]; family `c` is class `c`'s).
    pub background: u8,
    pub rendering: Rendering,
    pub placement: Placement,
}

impl SampleInfo {
    /// `true` when the background is the family of the sample's own class.
    #[cfg(test)]
    pub(crate) fn background_matches_label(&self) -> bool {
        self.background == family_of_class(self.label)
    }
}

/// One generated image with its metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub info: SampleInfo,
    /// Canvas side (`image_size`).
    pub size: u32,
    /// `size * size * 3` RGB bytes, row-major (HWC).
    pub pixels: Vec<u8>,
    /// `size * size` garment mask (the garment's shape alpha > 0.5, whatever the rendering).
    pub object_mask: Vec<bool>,
}

/// Number of samples of the split named `split`.
pub(crate) fn split_len(cfg: &FashionShiftConfig, split: &str) -> Result<usize, FashionShiftError> {
    Ok(cfg.sizes.get(split.parse()?))
}

/// The metadata of sample `index` of `split`, and the sample's generator positioned after it.
fn plan(
    fm: &FashionMnist,
    cfg: &FashionShiftConfig,
    split: Split,
    index: usize,
) -> Result<(SampleInfo, SplitMix64), FashionShiftError> {
    cfg.validate()?;
    let len = cfg.sizes.get(split);
    if index >= len {
        return Err(FashionShiftError::IndexOutOfRange { split, index, len });
    }
    let mut rng = SplitMix64::from_keys(&[cfg.seed, fnv1a64(split.name()), index as u64]);
    let (part, source) = splits::garment(cfg.seed, split, index);
    let label = fm.label(part, source);
    let background = splits::background_family(split, label, cfg.spurious_rate, &mut rng);
    let rendering = splits::rendering(split, &mut rng);
    let placement = render::draw_placement(&splits::nuisance(split), cfg.image_size, &mut rng);
    Ok((
        SampleInfo {
            split,
            index,
            label,
            source: (part, source),
            background,
            rendering,
            placement,
        },
        rng,
    ))
}

/// The metadata of sample `index` of `split` (no pixels drawn; identical to `generate(..).info`).
pub fn describe(
    fm: &FashionMnist,
    cfg: &FashionShiftConfig,
    split: Split,
    index: usize,
) -> Result<SampleInfo, FashionShiftError> {
    plan(fm, cfg, split, index).map(|(info, _)| info)
}

/// Generates sample `index` of `split`: a pure function of `(cfg, split, index)`.
pub fn generate(
    fm: &FashionMnist,
    cfg: &FashionShiftConfig,
    split: Split,
    index: usize,
) -> Result<Sample, FashionShiftError> {
    let (info, mut rng) = plan(fm, cfg, split, index)?;
    let garment = fm.image(info.source.0, info.source.1);
    let (pixels, object_mask) = render::render(
        garment,
        info.background,
        info.rendering,
        &info.placement,
        &splits::nuisance(split),
        cfg.image_size,
        &mut rng,
    );
    Ok(Sample {
        info,
        size: cfg.image_size,
        pixels,
        object_mask,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::OnceLock;

    /// The real Fashion-MNIST from Debian's `dataset-fashion-mnist`, loaded once per test binary.
    pub(crate) fn fmnist() -> &'static FashionMnist {
        static FM: OnceLock<FashionMnist> = OnceLock::new();
        FM.get_or_init(|| {
            FashionMnist::load(std::path::Path::new(DEBIAN_DIR)).unwrap_or_else(|e| panic!("{e}"))
        })
    }

    fn small_cfg(seed: u64) -> FashionShiftConfig {
        FashionShiftConfig {
            seed,
            ..Default::default()
        }
    }

    #[test]
    fn deterministic_per_seed_split_index() {
        let fm = fmnist();
        for split in Split::ALL {
            let a = generate(fm, &small_cfg(0), split, 5).unwrap();
            assert_eq!(a, generate(fm, &small_cfg(0), split, 5).unwrap(), "{split}");
            assert_eq!(a.info, describe(fm, &small_cfg(0), split, 5).unwrap());
            assert_ne!(
                a.pixels,
                generate(fm, &small_cfg(1), split, 5).unwrap().pixels,
                "{split}"
            );
            assert_ne!(
                a.pixels,
                generate(fm, &small_cfg(0), split, 6).unwrap().pixels,
                "{split}"
            );
            assert_eq!(a.pixels.len(), 56 * 56 * 3);
            assert_eq!(a.object_mask.len(), 56 * 56);
        }
        // Another canvas size works and keeps the garment inside.
        let cfg = FashionShiftConfig {
            image_size: 112,
            ..Default::default()
        };
        let s = generate(fm, &cfg, Split::Train, 0).unwrap();
        assert_eq!(s.pixels.len(), 112 * 112 * 3);
        assert!(s.info.placement.x + s.info.placement.size <= 112);
    }

    #[test]
    fn errors_for_bad_requests() {
        let fm = fmnist();
        let cfg = FashionShiftConfig::default();
        assert!(matches!(
            generate(fm, &cfg, Split::Val, 2_000),
            Err(FashionShiftError::IndexOutOfRange { .. })
        ));
        assert!(split_len(&cfg, "nope")
            .unwrap_err()
            .to_string()
            .contains("nope"));
        assert_eq!(split_len(&cfg, "ood-near").unwrap(), 2_000);
        let bad = FashionShiftConfig {
            spurious_rate: 1.5,
            ..Default::default()
        };
        assert!(matches!(
            generate(fm, &bad, Split::Train, 0),
            Err(FashionShiftError::InvalidConfig(_))
        ));
    }

    #[test]
    fn background_label_statistics_per_split() {
        let (fm, cfg) = (fmnist(), FashionShiftConfig::default());
        let rate = |split: Split| {
            let n = 2_000;
            (0..n)
                .filter(|&i| {
                    describe(fm, &cfg, split, i)
                        .unwrap()
                        .background_matches_label()
                })
                .count() as f64
                / n as f64
        };
        for split in [Split::Train, Split::Val, Split::TestId, Split::OodNear] {
            assert!(
                (rate(split) - 0.9).abs() < 0.025,
                "{split}: {}",
                rate(split)
            );
        }
        assert_eq!(rate(Split::OodBgAnti), 0.0);
        for split in [
            Split::Pretrain,
            Split::OodBgRandom,
            Split::OodSketch,
            Split::OodRender,
        ] {
            assert!(
                (rate(split) - 0.1).abs() < 0.025,
                "{split}: {}",
                rate(split)
            );
        }
        // Classes stay balanced in every split (Fashion-MNIST is shuffled).
        for split in Split::ALL {
            let mut counts = [0usize; 10];
            (0..2_000)
                .for_each(|i| counts[describe(fm, &cfg, split, i).unwrap().label as usize] += 1);
            assert!(
                counts.iter().all(|&c| (140..=260).contains(&c)),
                "{split}: {counts:?}"
            );
        }
    }

    #[test]
    fn mask_covers_the_garment() {
        let (fm, cfg) = (fmnist(), FashionShiftConfig::default());
        for split in [Split::Pretrain, Split::OodSketch, Split::OodRender] {
            for i in 0..20 {
                let s = generate(fm, &cfg, split, i).unwrap();
                let p = s.info.placement;
                let n = s.size as usize;
                let area = s.object_mask.iter().filter(|&&m| m).count();
                // Garments cover a good part of their box (Fashion-MNIST garments fill ~50 % of 28x28).
                assert!(
                    area as f64 > 0.15 * f64::from(p.size * p.size),
                    "{split} {i}: mask area {area}"
                );
                for (j, &m) in s.object_mask.iter().enumerate() {
                    let (x, y) = ((j % n) as u32, (j / n) as u32);
                    if m {
                        assert!(x >= p.x && x < p.x + p.size && y >= p.y && y < p.y + p.size);
                    }
                }
                // The filled renderings contrast with the background (light garment on dark
                // background or the reverse): the mean colours under and outside the mask differ.
                let mean = |want: bool| -> [f64; 3] {
                    let mut acc = [0.0; 3];
                    let mut cnt = 0.0;
                    for j in 0..n * n {
                        if s.object_mask[j] == want {
                            (0..3).for_each(|k| acc[k] += f64::from(s.pixels[3 * j + k]));
                            cnt += 1.0;
                        }
                    }
                    acc.map(|v| v / cnt)
                };
                let (inside, outside) = (mean(true), mean(false));
                let diff: f64 = (0..3).map(|k| (inside[k] - outside[k]).abs()).sum();
                if s.info.rendering != Rendering::Sketch {
                    assert!(
                        diff > 60.0,
                        "{split} {i} {:?}: garment barely differs ({diff})",
                        s.info.rendering
                    );
                }
            }
        }
    }
}
