//! Per-strategy mask-ratio statistics of a build (the summary `build-counterfactuals` prints and
//! records in run.json).

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

/// Running (variants, sum of mask ratios, min, max) per strategy name.
#[derive(Debug, Clone, Default)]
pub(super) struct StrategyStats(BTreeMap<String, (u64, f64, f64, f64)>);

impl StrategyStats {
    fn add(&mut self, strategy: &str, (n, sum, min, max): (u64, f64, f64, f64)) {
        let st = self.0.entry(strategy.to_string()).or_insert((
            0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ));
        *st = (st.0 + n, st.1 + sum, st.2.min(min), st.3.max(max));
    }

    /// Adds every variant of `records`.
    pub(super) fn add_records(&mut self, records: &[CounterfactualRecord]) {
        for r in records {
            for v in &r.variants {
                let masked = v.mask.iter().filter(|&&m| m).count();
                let ratio = masked as f64 / v.mask.len().max(1) as f64;
                self.add(&v.strategy, (1, ratio, ratio, ratio));
            }
        }
    }

    pub(super) fn merge(&mut self, other: StrategyStats) {
        for (k, v) in other.0 {
            self.add(&k, v);
        }
    }

    /// The summary per strategy.
    pub(super) fn summary(self) -> BTreeMap<String, MaskStats> {
        self.0
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
