//! The nine FashionShift splits: which garments each one shows, and how it draws the background
//! family, the rendering and the nuisance parameters.
//!
//! | split | garments (Fashion-MNIST part, index pool) | rendering | background family |
//! |---|---|---|---|
//! | `pretrain` | train `0..36000` | any of the 5, uniform | uniform over 10, label-independent |
//! | `train` | train `36000..54000` | photo | label's family w.p. `spurious_rate`, else one of the 9 others |
//! | `val` | train `54000..60000` | photo | as `train` |
//! | `test-id` | test `0..2500` | photo | as `train` |
//! | `ood-bg-random` | test `5000..10000` (shared) | photo | uniform over 10 |
//! | `ood-bg-anti` | test `5000..10000` (shared) | photo | one of the 9 families of other classes |
//! | `ood-sketch` | test `5000..10000` (shared) | sketch | uniform over 10 |
//! | `ood-render` | test `5000..10000` (shared) | silhouette, negative or pixelated | uniform over 10 |
//! | `ood-near` | test `2500..5000` | photo, shifted nuisance | as `train` |
//!
//! Pools are fixed, so the garments of one split never depend on the sizes of the others. The pools
//! of `pretrain`/`train`/`val` are disjoint, and so are those of `test-id`, `ood-near` and the four
//! shift sets. The four shift sets deliberately share one pool *and one garment order*: sample `i`
//! of each is the same garment under a different shift (a paired design, so differences between
//! them measure the shift, not the garments); Fashion-MNIST's 10,000 test garments are too few for
//! six disjoint sets of 2,000. Within its pool a split visits garments in a seeded permutation; a
//! split larger than its pool wraps around (same garments again, fresh nuisance). The pool sizes
//! are the default split sizes rounded up generously (pretrain 20,000 of 36,000; train 10,000 of
//! 18,000; val 2,000 of 6,000; test sets 2,000 of 2,500 or 5,000). Fashion-MNIST's files are
//! shuffled, so every contiguous pool is close to class-balanced.

use std::ops::Range;
use std::str::FromStr;

use super::backgrounds::NUM_FAMILIES;
use super::idx::Part;
use super::render::{Nuisance, Rendering};
use super::FashionShiftError;
use cfkit_counterfactual::rng::{fnv1a64, hash_keys, AffinePermutation, SplitMix64};

/// Split names, in [`Split::ALL`] order.
pub const SPLITS: [&str; 9] = [
    "pretrain",
    "train",
    "val",
    "test-id",
    "ood-bg-random",
    "ood-bg-anti",
    "ood-sketch",
    "ood-render",
    "ood-near",
];

/// A FashionShift split (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Pretrain,
    Train,
    Val,
    TestId,
    OodBgRandom,
    OodBgAnti,
    OodSketch,
    OodRender,
    OodNear,
}

impl Split {
    /// Every split, in [`SPLITS`] order.
    pub(crate) const ALL: [Split; 9] = [
        Split::Pretrain,
        Split::Train,
        Split::Val,
        Split::TestId,
        Split::OodBgRandom,
        Split::OodBgAnti,
        Split::OodSketch,
        Split::OodRender,
        Split::OodNear,
    ];

    /// The split's name, as in [`SPLITS`].
    pub fn name(self) -> &'static str {
        SPLITS[self as usize]
    }
    /// The Fashion-MNIST part and index range this split takes its garments from.
    pub(crate) fn garment_pool(self) -> (Part, Range<usize>) {
        match self {
            Split::Pretrain => (Part::Train, 0..36_000),
            Split::Train => (Part::Train, 36_000..54_000),
            Split::Val => (Part::Train, 54_000..60_000),
            Split::TestId => (Part::Test, 0..2_500),
            Split::OodNear => (Part::Test, 2_500..5_000),
            Split::OodBgRandom | Split::OodBgAnti | Split::OodSketch | Split::OodRender => {
                (Part::Test, 5_000..10_000)
            }
        }
    }

    /// The key of this split's garment order: shared by the four shift sets (paired design).
    fn pool_key(self) -> u64 {
        match self {
            Split::OodBgRandom | Split::OodBgAnti | Split::OodSketch | Split::OodRender => {
                fnv1a64("ood-shift-pool")
            }
            other => fnv1a64(other.name()),
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = FashionShiftError;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Split::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| FashionShiftError::UnknownSplit {
                name: name.to_owned(),
            })
    }
}

/// The garment (part, index) shown by sample `index` of `split` under `seed`.
pub(super) fn garment(seed: u64, split: Split, index: usize) -> (Part, usize) {
    let (part, pool) = split.garment_pool();
    let perm = AffinePermutation::new(pool.len() as u64, hash_keys(&[seed, split.pool_key()]));
    (part, pool.start + perm.apply(index as u64) as usize)
}

/// The background family of the class `label`: family `c` belongs to class `c` (an arbitrary but
/// fixed pairing; the families are listed in `backgrounds::FAMILY_NAMES`).
pub fn family_of_class(label: u8) -> u8 {
    label
}

/// A family drawn uniformly from the nine families other than `avoid`.
fn other_family(avoid: u8, rng: &mut SplitMix64) -> u8 {
    let f = rng.below(NUM_FAMILIES as u64 - 1) as u8;
    if f >= avoid {
        f + 1
    } else {
        f
    }
}

/// Draws the background family of a sample of `split` with class `label`.
pub(super) fn background_family(
    split: Split,
    label: u8,
    spurious_rate: f64,
    rng: &mut SplitMix64,
) -> u8 {
    let own = family_of_class(label);
    match split {
        Split::Train | Split::Val | Split::TestId | Split::OodNear => {
            if rng.chance(spurious_rate) {
                own
            } else {
                other_family(own, rng)
            }
        }
        Split::OodBgAnti => other_family(own, rng),
        Split::Pretrain | Split::OodBgRandom | Split::OodSketch | Split::OodRender => {
            rng.below(NUM_FAMILIES as u64) as u8
        }
    }
}

/// Draws the rendering of a sample of `split`.
pub(super) fn rendering(split: Split, rng: &mut SplitMix64) -> Rendering {
    const OTHER: [Rendering; 3] = [
        Rendering::Silhouette,
        Rendering::Negative,
        Rendering::Pixelated,
    ];
    match split {
        Split::Pretrain => Rendering::ALL[rng.below(Rendering::ALL.len() as u64) as usize],
        Split::OodSketch => Rendering::Sketch,
        Split::OodRender => OTHER[rng.below(OTHER.len() as u64) as usize],
        _ => Rendering::Photo,
    }
}

/// The nuisance parameters of `split`: `ood-near` is shifted, every other split uses the default.
pub(super) fn nuisance(split: Split) -> Nuisance {
    match split {
        Split::OodNear => Nuisance::near(),
        _ => Nuisance::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_round_trip() {
        for s in Split::ALL {
            assert_eq!(s.name().parse::<Split>().unwrap(), s);
        }
        let err = "ood-foo".parse::<Split>().unwrap_err().to_string();
        assert!(
            err.contains("ood-foo") && err.contains("ood-bg-anti"),
            "{err}"
        );
    }

    fn garments(split: Split, n: usize) -> HashSet<(Part, usize)> {
        (0..n).map(|i| garment(0, split, i)).collect()
    }

    #[test]
    fn garment_pools_are_disjoint_and_permutations() {
        // Full pools: every split visits each garment of its pool exactly once.
        for s in [
            Split::Train,
            Split::Val,
            Split::TestId,
            Split::OodNear,
            Split::OodSketch,
        ] {
            let (_, pool) = s.garment_pool();
            assert_eq!(garments(s, pool.len()).len(), pool.len(), "{s}");
        }
        let pre = garments(Split::Pretrain, 20_000);
        let train = garments(Split::Train, 10_000);
        let val = garments(Split::Val, 2_000);
        assert!(pre.is_disjoint(&train) && pre.is_disjoint(&val) && train.is_disjoint(&val));
        let test_id = garments(Split::TestId, 2_000);
        let near = garments(Split::OodNear, 2_000);
        assert!(test_id.is_disjoint(&near));
        for s in [
            Split::OodBgRandom,
            Split::OodBgAnti,
            Split::OodSketch,
            Split::OodRender,
        ] {
            let g = garments(s, 2_000);
            assert!(g.is_disjoint(&test_id) && g.is_disjoint(&near), "{s}");
            assert!(g.iter().all(|&(p, _)| p == Part::Test));
        }
        // Paired design: the shift sets show the same garment at the same index.
        for i in [0, 17, 1999] {
            assert_eq!(
                garment(0, Split::OodBgAnti, i),
                garment(0, Split::OodSketch, i)
            );
        }
        // The seed changes which garments a split shows.
        assert_ne!(
            garments(Split::Train, 100),
            (0..100).map(|i| garment(1, Split::Train, i)).collect()
        );
    }

    #[test]
    fn background_rules() {
        let mut rng = SplitMix64::from_keys(&[3]);
        let n = 20_000;
        let rate = |split: Split, rng: &mut SplitMix64| {
            let hits = (0..n)
                .filter(|i| {
                    let label = (i % 10) as u8;
                    background_family(split, label, 0.9, rng) == family_of_class(label)
                })
                .count();
            hits as f64 / n as f64
        };
        assert!((rate(Split::Train, &mut rng) - 0.9).abs() < 0.01);
        assert_eq!(rate(Split::OodBgAnti, &mut rng), 0.0);
        assert!((rate(Split::Pretrain, &mut rng) - 0.1).abs() < 0.01);
        // Anti-correlated families are uniform over the other nine.
        let mut counts = [0usize; NUM_FAMILIES];
        (0..n).for_each(|_| {
            counts[usize::from(background_family(Split::OodBgAnti, 4, 0.9, &mut rng))] += 1
        });
        assert_eq!(counts[4], 0);
        assert!(counts
            .iter()
            .enumerate()
            .all(|(f, &c)| f == 4 || c.abs_diff(n / 9) < n / 60));
    }

    #[test]
    fn rendering_rules() {
        let mut rng = SplitMix64::from_keys(&[4]);
        let seen = |s: Split, rng: &mut SplitMix64| {
            (0..500).map(|_| rendering(s, rng)).collect::<HashSet<_>>()
        };
        assert_eq!(seen(Split::Pretrain, &mut rng).len(), Rendering::ALL.len());
        for s in [
            Split::Train,
            Split::Val,
            Split::TestId,
            Split::OodNear,
            Split::OodBgAnti,
            Split::OodBgRandom,
        ] {
            assert_eq!(seen(s, &mut rng), HashSet::from([Rendering::Photo]), "{s}");
        }
        assert_eq!(
            seen(Split::OodSketch, &mut rng),
            HashSet::from([Rendering::Sketch])
        );
        assert_eq!(
            seen(Split::OodRender, &mut rng),
            HashSet::from([
                Rendering::Silhouette,
                Rendering::Negative,
                Rendering::Pixelated
            ])
        );
    }
}
