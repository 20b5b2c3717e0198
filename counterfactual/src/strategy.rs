//! Counterfactual strategies (DESIGN §3): which patches to mask — object (CAM > t), context
//! (CAM <= t) or random (each patch with probability p) — and how to fill them — from one donor
//! (single), from a donor per patch (multi), or not at all (no fill: the masked tokens are dropped
//! or hidden from attention in the model's forward).
//!
//! Names follow the reference code's classes: `ObjMaskSingleFill(0.3)`, `RandMaskNoFill(0.75)`, ….

use std::fmt;
use std::str::FromStr;

use crate::error::{CounterfactualError, Result};
use crate::rng::SplitMix64;

/// Which patches are masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaskKind {
    /// Patches whose CAM is above the threshold.
    Object,
    /// Patches whose CAM is at or below the threshold (the complement of `Object`).
    Context,
    /// Each patch independently with the given probability.
    Random,
}

/// How masked patches are filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FillKind {
    /// All masked patches from one donor image, at the same positions.
    Single,
    /// Each masked patch from its own donor (never the image itself).
    Multi,
    /// Not filled: the model drops the tokens (random) or masks their keys (object/context).
    None,
}

/// A mask kind, a fill kind and the threshold (object/context) or probability (random).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Strategy {
    pub mask: MaskKind,
    pub fill: FillKind,
    pub rate: f64,
}

impl Strategy {
    pub fn new(mask: MaskKind, fill: FillKind, rate: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(CounterfactualError::Input(format!(
                "strategy rate must lie in [0, 1], got {rate}"
            )));
        }
        Ok(Strategy { mask, fill, rate })
    }

    /// The nine strategies of the reference code with their default rates.
    pub fn reference_defaults() -> Vec<Strategy> {
        use FillKind as F;
        use MaskKind as M;
        [
            (M::Object, F::Single, 0.3),
            (M::Context, F::Single, 0.5),
            (M::Random, F::Single, 0.5),
            (M::Object, F::Multi, 0.6),
            (M::Context, F::Multi, 0.3),
            (M::Random, F::Multi, 0.5),
            (M::Object, F::None, 0.3),
            (M::Context, F::None, 0.6),
            (M::Random, F::None, 0.75),
        ]
        .into_iter()
        .map(|(mask, fill, rate)| Strategy { mask, fill, rate })
        .collect()
    }

    /// Per-patch mask for one image (true = masked). `cam`: [P] scores (max-normalised); `rng`
    /// is used only by random masks. As the reference draws them:
    /// * object / context: CAM > t / CAM <= t;
    /// * random with fill (`RandMaskSingleFill`, `RandMaskMultiFill`): each patch independently
    ///   with probability `rate` (the reference's `uniform() < prob` per patch);
    /// * random without fill (`RandMaskNoFill(r)`): exactly `int(P·(1 − r))` patches are kept, a
    ///   uniformly random subset (the reference's `randperm(P)[:n_keep]`), the rest masked.
    pub fn mask(&self, cam: &[f32], rng: &mut SplitMix64) -> Vec<bool> {
        let t = self.rate as f32;
        match (self.mask, self.fill) {
            (MaskKind::Object, _) => cam.iter().map(|&c| c > t).collect(),
            (MaskKind::Context, _) => cam.iter().map(|&c| c <= t).collect(),
            (MaskKind::Random, FillKind::None) => {
                let p = cam.len();
                let keep = self.kept_patches(p);
                // Partial Fisher–Yates: the first `keep` entries become a uniform random subset.
                let mut order: Vec<usize> = (0..p).collect();
                for i in 0..keep {
                    let j = i + rng.below((p - i) as u64) as usize;
                    order.swap(i, j);
                }
                let mut mask = vec![true; p];
                for &k in &order[..keep] {
                    mask[k] = false;
                }
                mask
            }
            (MaskKind::Random, _) => cam.iter().map(|_| rng.chance(self.rate)).collect(),
        }
    }

    /// `RandMaskNoFill(r)` keeps `int(p·(1 − r))` of `p` patches (the reference's `n_keep`).
    pub(crate) fn kept_patches(&self, p: usize) -> usize {
        ((p as f64) * (1.0 - self.rate)).floor() as usize
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = match self.mask {
            MaskKind::Object => "Obj",
            MaskKind::Context => "Ctx",
            MaskKind::Random => "Rand",
        };
        let fill = match self.fill {
            FillKind::Single => "SingleFill",
            FillKind::Multi => "MultiFill",
            FillKind::None => "NoFill",
        };
        write!(f, "{m}Mask{fill}({})", self.rate)
    }
}

impl schemars::JsonSchema for Strategy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Strategy".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "a masking strategy, Obj|Ctx|Rand + Mask + SingleFill|MultiFill|NoFill + (rate), e.g. ObjMaskSingleFill(0.3)",
        })
    }
}

impl FromStr for Strategy {
    type Err = CounterfactualError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            CounterfactualError::Input(format!(
                "unknown strategy '{s}' (expected e.g. ObjMaskSingleFill(0.3): Obj|Ctx|Rand + Mask + \
                 SingleFill|MultiFill|NoFill + (rate))"
            ))
        };
        let (head, rest) = s.trim().split_once('(').ok_or_else(bad)?;
        let rate: f64 = rest
            .strip_suffix(')')
            .ok_or_else(bad)?
            .trim()
            .parse()
            .map_err(|_| bad())?;
        let (m, fill) = head.split_once("Mask").ok_or_else(bad)?;
        let mask = match m {
            "Obj" => MaskKind::Object,
            "Ctx" => MaskKind::Context,
            "Rand" => MaskKind::Random,
            _ => return Err(bad()),
        };
        let fill = match fill {
            "SingleFill" => FillKind::Single,
            "MultiFill" => FillKind::Multi,
            "NoFill" => FillKind::None,
            _ => return Err(bad()),
        };
        Strategy::new(mask, fill, rate)
    }
}

/// Configs hold strategies by name (`"ObjMaskSingleFill(0.3)"`): parsed when the config is
/// loaded, written back as the same name.
impl serde::Serialize for Strategy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Strategy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_explained() {
        for s in Strategy::reference_defaults() {
            assert_eq!(s.to_string().parse::<Strategy>().unwrap(), s);
        }
        assert_eq!(
            Strategy::reference_defaults()[0].to_string(),
            "ObjMaskSingleFill(0.3)"
        );
        for bad in [
            "ObjMaskSingle(0.3)",
            "FooMaskNoFill(0.1)",
            "ObjMaskNoFill(2)",
            "ObjMaskNoFill",
        ] {
            assert!(bad.parse::<Strategy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn configs_read_and_write_strategies_by_name() {
        let s: Vec<Strategy> =
            serde_json::from_str(r#"["ObjMaskSingleFill(0.3)", "RandMaskNoFill(0.75)"]"#).unwrap();
        assert_eq!(
            s[1],
            Strategy::new(MaskKind::Random, FillKind::None, 0.75).unwrap()
        );
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"["ObjMaskSingleFill(0.3)","RandMaskNoFill(0.75)"]"#
        );
        let err = serde_json::from_str::<Strategy>(r#""ObjMaskFill(0.3)""#).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown strategy 'ObjMaskFill(0.3)'"),
            "{err}"
        );
    }

    #[test]
    fn object_and_context_masks_are_complements() {
        let cam: Vec<f32> = (0..49).map(|i| ((i * 37) % 49) as f32 / 48.0).collect();
        let mut rng = SplitMix64::from_keys(&[1]);
        for t in [0.0, 0.3, 0.5, 1.0] {
            let o = Strategy::new(MaskKind::Object, FillKind::Single, t)
                .unwrap()
                .mask(&cam, &mut rng);
            let c = Strategy::new(MaskKind::Context, FillKind::Single, t)
                .unwrap()
                .mask(&cam, &mut rng);
            assert!(o.iter().zip(&c).all(|(a, b)| a != b), "t = {t}");
            assert_eq!(
                o.iter().filter(|&&m| m).count(),
                cam.iter().filter(|&&v| v > t as f32).count()
            );
        }
    }

    #[test]
    fn rand_mask_no_fill_keeps_exactly_the_reference_count() {
        let cam = vec![0.0f32; 49];
        for rate in [0.75, 0.5, 0.3, 0.0, 1.0] {
            let s = Strategy::new(MaskKind::Random, FillKind::None, rate).unwrap();
            let want = (49.0 * (1.0 - rate)) as usize; // Python's int(n_patch * (1 - mask_rate))
            let mut seen = std::collections::HashSet::new();
            for image in 0..200u64 {
                let m = s.mask(&cam, &mut SplitMix64::from_keys(&[5, image]));
                assert_eq!(m.iter().filter(|&&b| !b).count(), want, "rate {rate}");
                seen.insert(m);
            }
            // A random subset per image, not a fixed one.
            assert!(seen.len() > 1 || want == 0 || want == 49, "rate {rate}");
        }
        assert_eq!(
            Strategy::new(MaskKind::Random, FillKind::None, 0.75)
                .unwrap()
                .kept_patches(49),
            12
        );
    }

    #[test]
    fn random_masks_have_the_requested_rate_and_follow_the_seed() {
        let cam = vec![0.0f32; 10_000];
        let s = Strategy::new(MaskKind::Random, FillKind::Single, 0.75).unwrap();
        let m = s.mask(&cam, &mut SplitMix64::from_keys(&[7]));
        let rate = m.iter().filter(|&&b| b).count() as f64 / m.len() as f64;
        assert!((rate - 0.75).abs() < 0.02, "{rate}");
        assert_eq!(m, s.mask(&cam, &mut SplitMix64::from_keys(&[7])));
        assert_ne!(m, s.mask(&cam, &mut SplitMix64::from_keys(&[8])));
    }
}
