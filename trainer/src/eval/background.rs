//! Accuracy split by background, for datasets that carry the generator's ground truth
//! (FashionShift): the rows whose background family is their class's against the others.

use serde::{Deserialize, Serialize};

use super::{Breakdown, EvalReport};
use crate::data::Batch;

/// Accuracy split by whether a row's background family is its class's (FashionShift: family c
/// belongs to class c): a model that uses the background as a shortcut does better on the
/// matching rows than on the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackgroundSplit {
    pub matching_images: usize,
    pub matching_correct: usize,
    pub other_images: usize,
    pub other_correct: usize,
}

impl BackgroundSplit {
    /// Top-1 on the matching rows and on the others (None without rows).
    pub fn top1(&self) -> (Option<f64>, Option<f64>) {
        let f = |c: usize, n: usize| (n > 0).then(|| c as f64 / n as f64);
        (
            f(self.matching_correct, self.matching_images),
            f(self.other_correct, self.other_images),
        )
    }
}

/// The [`Breakdown`] that tallies [`BackgroundSplit`] while a set is scored: a split only when
/// every scored row carried its background family.
#[derive(Debug, Clone, Copy)]
pub struct BackgroundTally {
    split: BackgroundSplit,
    /// Rows seen, and whether every one had a family.
    rows: usize,
    complete: bool,
}

impl Default for BackgroundTally {
    fn default() -> Self {
        BackgroundTally {
            split: BackgroundSplit::default(),
            rows: 0,
            complete: true,
        }
    }
}

impl BackgroundTally {
    /// The split, when rows were scored and every one had its family.
    pub fn split(&self) -> Option<BackgroundSplit> {
        (self.complete && self.rows > 0).then_some(self.split)
    }
}

impl Breakdown for BackgroundTally {
    fn observe(&mut self, batch: &Batch, labels: &[i64], correct: &[bool]) {
        self.rows += labels.len();
        let Some(families) = &batch.bg_family else {
            self.complete = false;
            return;
        };
        let b = &mut self.split;
        for ((f, l), c) in families.iter().zip(labels).zip(correct) {
            // FashionShift: family c is class c's.
            if i64::from(*f) == *l {
                b.matching_images += 1;
                b.matching_correct += usize::from(*c);
            } else {
                b.other_images += 1;
                b.other_correct += usize::from(*c);
            }
        }
    }
}

/// A table of the sets that have the split (empty when none has).
pub fn background_table(report: &EvalReport) -> String {
    let rows: Vec<String> = report
        .sets
        .iter()
        .filter_map(|r| {
            let b = r.background?;
            let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.2}", 100.0 * v));
            let (m, o) = b.top1();
            let gap = match (m, o) {
                (Some(m), Some(o)) => format!("{:+.2}", 100.0 * (m - o)),
                _ => "–".into(),
            };
            Some(format!(
                "| {} | {} ({}) | {} ({}) | {gap} |\n",
                r.name,
                pct(m),
                b.matching_images,
                pct(o),
                b.other_images
            ))
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    String::from(
        "\n| set | top-1 (%), background of the class (rows) | top-1 (%), other backgrounds (rows) | gap |\n|---|---:|---:|---:|\n",
    ) + &rows.concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::SetResult;

    #[test]
    fn the_table_lists_the_split_sets_only() {
        let set = |name: &str, background| SetResult {
            name: name.into(),
            ood: false,
            apart: false,
            images: 10,
            correct: 6,
            top1: 0.6,
            skipped: 0,
            fingerprint: String::new(),
            background,
        };
        let b = BackgroundSplit {
            matching_images: 8,
            matching_correct: 6,
            other_images: 2,
            other_correct: 0,
        };
        assert_eq!(b.top1(), (Some(0.75), Some(0.0)));
        let rep = EvalReport::new(vec![set("val", Some(b)), set("real", None)]);
        let t = background_table(&rep);
        assert!(t.contains("| val | 75.00 (8) | 0.00 (2) | +75.00 |"), "{t}");
        assert!(!t.contains("real"));
        assert_eq!(
            background_table(&EvalReport::new(vec![set("real", None)])),
            ""
        );
    }
}
