//! Per-strategy statistics of a build — mask ratios, and how often a donor shares its
//! recipient's class next to how often donors drawn at random from the rows would — the summary
//! `build-counterfactuals` prints and records in run.json.

use std::collections::BTreeMap;

use cfkit_schemas::CounterfactualRecord;
use serde::Serialize;

/// Mask-ratio statistics of one strategy.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default, schemars::JsonSchema)]
pub struct MaskStats {
    pub variants: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

/// Donors of one strategy: how many were drawn, how many were the recipient itself (single
/// fill's donors are a random permutation of the batch, as the reference's are, so about one
/// image per batch keeps its own pixels), and how many of the others share its class.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, Default, schemars::JsonSchema)]
pub struct DonorStats {
    /// Donor images drawn (one per image for single fill, one per patch for multi fill, none
    /// for no-fill strategies).
    pub draws: u64,
    /// Of those, the recipient itself.
    pub own_image: u64,
    /// Of the others, donors of the recipient's class.
    pub same_class: u64,
}

impl DonorStats {
    /// `same_class` over the donors that are other images (None without any).
    pub fn rate(&self) -> Option<f64> {
        let others = self.draws - self.own_image;
        (others > 0).then(|| self.same_class as f64 / others as f64)
    }
}

/// The same-class rate of donors drawn uniformly from other rows of these class counts:
/// `sum_c n_c (n_c - 1) / (N (N - 1))` (about `sum_c p_c^2`: what the reference's shuffled
/// batches give).
pub fn random_same_class_rate(counts: impl IntoIterator<Item = u64>) -> f64 {
    let (mut pairs, mut n) = (0u128, 0u128);
    for c in counts {
        let c = u128::from(c);
        pairs += c * c.saturating_sub(1);
        n += c;
    }
    if n < 2 {
        return 0.0;
    }
    pairs as f64 / (n * (n - 1)) as f64
}

/// Running statistics of a build: (variants, sum of mask ratios, min, max) and donors per
/// strategy name, rows per label.
#[derive(Debug, Clone, Default)]
pub(super) struct StrategyStats {
    masks: BTreeMap<String, (u64, f64, f64, f64)>,
    donors: BTreeMap<String, DonorStats>,
    labels: BTreeMap<i64, u64>,
}

impl StrategyStats {
    fn add(&mut self, strategy: &str, (n, sum, min, max): (u64, f64, f64, f64)) {
        let st = self.masks.entry(strategy.to_string()).or_insert((
            0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ));
        *st = (st.0 + n, st.1 + sum, st.2.min(min), st.3.max(max));
    }

    /// Adds every variant of `records`, the rows of one batch (every donor is one of them).
    pub(super) fn add_records(&mut self, records: &[CounterfactualRecord]) {
        let label: std::collections::HashMap<&str, i64> = records
            .iter()
            .map(|r| (r.base.id.as_str(), r.base.label))
            .collect();
        for r in records {
            *self.labels.entry(r.base.label).or_default() += 1;
            for v in &r.variants {
                let masked = v.mask.iter().filter(|&&m| m).count();
                let ratio = masked as f64 / v.mask.len().max(1) as f64;
                self.add(&v.strategy, (1, ratio, ratio, ratio));
                let d = self.donors.entry(v.strategy.clone()).or_default();
                for id in &v.donor_ids {
                    d.draws += 1;
                    if *id == r.base.id {
                        d.own_image += 1;
                    } else {
                        d.same_class += u64::from(label.get(id.as_str()) == Some(&r.base.label));
                    }
                }
            }
        }
    }

    pub(super) fn merge(&mut self, other: StrategyStats) {
        for (k, v) in other.masks {
            self.add(&k, v);
        }
        for (k, v) in other.donors {
            let d = self.donors.entry(k).or_default();
            d.draws += v.draws;
            d.own_image += v.own_image;
            d.same_class += v.same_class;
        }
        for (k, v) in other.labels {
            *self.labels.entry(k).or_default() += v;
        }
    }

    /// Donors per strategy, and the same-class rate random donors would have over these rows.
    pub(super) fn donors(&self) -> (BTreeMap<String, DonorStats>, f64) {
        (
            self.donors.clone(),
            random_same_class_rate(self.labels.values().copied()),
        )
    }

    /// The mask-ratio summary per strategy.
    pub(super) fn summary(self) -> BTreeMap<String, MaskStats> {
        self.masks
            .into_iter()
            .map(|(k, (n, sum, min, max))| {
                let mean = sum / n.max(1) as f64;
                let stats = MaskStats {
                    variants: n,
                    mean,
                    min,
                    max,
                };
                (k, stats)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::random_same_class_rate;

    #[test]
    fn random_donors_share_a_class_about_sum_p_squared() {
        // 1,000 classes of 8: 8 * 7 * 1000 / (8000 * 7999).
        let r = random_same_class_rate(std::iter::repeat_n(8, 1000));
        assert!((r - 56_000.0 / 63_992_000.0).abs() < 1e-15);
        assert_eq!(random_same_class_rate([5]), 1.0);
        assert_eq!(random_same_class_rate([1, 1]), 0.0);
        assert_eq!(random_same_class_rate([]), 0.0);
    }
}
