//! Evaluation: top-1 accuracy on named sets, with the ImageNet-variant protocols — a class subset
//! (logits restricted to the set's classes before argmax, as ImageNet-R/-A) and a many-to-one
//! label map (correct if the argmax is any mapped class, as ObjectNet) — and the ID and OOD
//! means. One [`Evaluator`] scores every set; what a dataset's rows carry beyond their labels
//! (FashionShift's background family) is tallied by a [`Breakdown`] hook.
//!
//! The means, one definition everywhere: the ID mean over the ID sets, the OOD mean over the OOD
//! sets that are not reported apart. A set is OOD when configured so, else when its name starts
//! with `ood`; it is reported apart (shown, in neither mean) when configured so, else when its
//! name ends with `-near` — a near-distribution set that keeps the training distribution's
//! shortcut (FashionShift's `ood-near`), as RESULTS.md reports it.

mod background;
mod splits;
pub mod suite;

pub use background::{background_table, BackgroundSplit, BackgroundTally};
pub use splits::{default_splits, split_sets, SplitProtocol};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::ResolvedEvalSet;
use crate::data::{Batch, BatchExtras, BatchStream, ModelInput, RowRef, Skipped, SplitSource};
use crate::error::{Result, TrainError};
use crate::student::Student;

/// The result on one set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SetResult {
    pub name: String,
    pub ood: bool,
    /// Shown but counted in neither mean (see the module docs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub apart: bool,
    pub images: usize,
    pub correct: usize,
    pub top1: f64,
    /// Rows that could not be decoded (not counted).
    pub skipped: usize,
    /// Fingerprint of the split's shards that were scored (`SplitSource::fingerprint`; empty
    /// in reports written before it was recorded).
    #[serde(default)]
    pub fingerprint: String,
    /// With the generator's ground truth: top-1 on the rows whose background is their class's
    /// family and on the others (FashionShift's shortcut, measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<BackgroundSplit>,
}

/// What scoring a source gave.
#[derive(Debug, Clone, Default)]
pub struct SourceScore {
    pub images: usize,
    pub correct: usize,
    pub skipped: Vec<Skipped>,
}

/// Results on every set, plus the summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvalReport {
    /// Per set, in the configured order.
    pub sets: Vec<SetResult>,
    /// Mean top-1 over the ID sets (`None` without any).
    pub id_mean: Option<f64>,
    /// Mean top-1 over the OOD sets not reported apart (`None` without any).
    pub ood_mean: Option<f64>,
}

/// Whether a set named `name` counts as OOD and whether it is reported apart, unless configured:
/// OOD when the name starts with `ood`, apart when it ends with `-near` (module docs).
pub(crate) fn default_role(name: &str) -> (bool, bool) {
    (name.starts_with("ood"), name.ends_with("-near"))
}

impl EvalReport {
    pub fn new(sets: Vec<SetResult>) -> Self {
        let mean = |ood: bool| {
            let v: Vec<f64> = sets
                .iter()
                .filter(|s| s.ood == ood && !s.apart)
                .map(|s| s.top1)
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        EvalReport {
            id_mean: mean(false),
            ood_mean: mean(true),
            sets,
        }
    }
}

/// How a set's labels are scored against the model's classes.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    /// Per set label: the model classes that count as correct.
    pub correct: Vec<Vec<i64>>,
    /// Model classes the argmax may choose (`None`: all).
    pub allowed: Option<Vec<i64>>,
}

impl Scoring {
    /// Matches set classes to model classes by name (every set class must be a model class),
    /// or through a label map file `{set class: [model classes]}`.
    pub fn new(
        set_classes: &[String],
        model_classes: &[String],
        restrict: bool,
        label_map: Option<&Path>,
    ) -> Result<Self> {
        let index: BTreeMap<&str, i64> = model_classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i as i64))
            .collect();
        let lookup = |name: &str, whence: &str| {
            index.get(name).copied().ok_or_else(|| {
                TrainError::Data(format!(
                    "{whence}: class '{name}' is not one of the model's {} classes",
                    model_classes.len()
                ))
            })
        };
        let by_name = set_classes.iter().all(|c| index.contains_key(c.as_str()));
        let correct: Vec<Vec<i64>> = match label_map {
            // ImageFolder trees name classes by folder (wnids, sanitised names): with as many
            // classes as the model and no name match, labels are taken as model class indices,
            // as torchvision's ImageFolder + a 1000-way head does.
            None if !by_name && set_classes.len() == model_classes.len() => {
                (0..set_classes.len() as i64).map(|i| vec![i]).collect()
            }
            None => set_classes
                .iter()
                .map(|c| {
                    lookup(c, "eval set").map(|i| vec![i]).map_err(|e| {
                        TrainError::Data(format!(
                            "{e}; give a label map {{set class: [model classes]}} to match them"
                        ))
                    })
                })
                .collect::<Result<_>>()?,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
                let map: BTreeMap<String, Vec<String>> =
                    serde_json::from_str(&text).map_err(|e| {
                        TrainError::Config(format!(
                        "label map '{}': {e} (expected {{\"set class\": [\"model class\", ...]}})",
                        path.display()
                    ))
                    })?;
                let whence = format!("label map '{}'", path.display());
                set_classes
                    .iter()
                    .map(|c| {
                        let targets = map.get(c).ok_or_else(|| {
                            TrainError::Data(format!("{whence}: set class '{c}' has no entry"))
                        })?;
                        if targets.is_empty() {
                            return Err(TrainError::Data(format!(
                                "{whence}: set class '{c}' maps to no class"
                            )));
                        }
                        targets.iter().map(|t| lookup(t, &whence)).collect()
                    })
                    .collect::<Result<_>>()?
            }
        };
        let allowed = restrict.then(|| {
            let mut v: Vec<i64> = correct.iter().flatten().copied().collect();
            v.sort_unstable();
            v.dedup();
            v
        });
        Ok(Scoring { correct, allowed })
    }

    /// Number of correct predictions in a batch: logits [N, C], set labels [N].
    pub fn count_correct(&self, logits: &Tensor, labels: &[i64]) -> Result<usize> {
        Ok(self
            .correct_rows(logits, labels)?
            .iter()
            .filter(|c| **c)
            .count())
    }

    /// Whether each row's prediction counts as correct.
    pub(crate) fn correct_rows(&self, logits: &Tensor, labels: &[i64]) -> Result<Vec<bool>> {
        let pred: Vec<i64> = match &self.allowed {
            None => Vec::try_from(logits.argmax(-1, false).to_device(Device::Cpu))?,
            Some(allowed) => {
                let idx = Tensor::from_slice(allowed).to_device(logits.device());
                let sub = logits.index_select(1, &idx).argmax(-1, false);
                let sub: Vec<i64> = Vec::try_from(sub.to_device(Device::Cpu))?;
                sub.into_iter().map(|i| allowed[i as usize]).collect()
            }
        };
        Ok(pred
            .iter()
            .zip(labels)
            .map(|(p, l)| self.correct[*l as usize].contains(p))
            .collect())
    }
}

/// Tallies what the rows of a set carry beyond their labels, batch by batch, as they are scored.
pub(crate) trait Breakdown {
    /// `labels` and whether each row's prediction was `correct`, for the rows of `batch`.
    fn observe(&mut self, batch: &Batch, labels: &[i64], correct: &[bool]);
}

/// A breakdown that tallies nothing.
pub(crate) struct NoBreakdown;

impl Breakdown for NoBreakdown {
    fn observe(&mut self, _: &Batch, _: &[i64], _: &[bool]) {}
}

/// Scores a model on sets: its forward in batches of `batch_size` on `device`, no gradient.
pub struct Evaluator<'a> {
    student: &'a Student,
    batch_size: usize,
    device: Device,
}

impl<'a> Evaluator<'a> {
    pub fn new(student: &'a Student, batch_size: usize, device: Device) -> Self {
        Evaluator {
            student,
            batch_size,
            device,
        }
    }

    /// Scores `rows` of `source` (every row, in stored order, for `None`) under `scoring`,
    /// handing each batch to `breakdown`.
    pub(crate) fn score_with(
        &self,
        source: Arc<SplitSource>,
        rows: Option<Vec<RowRef>>,
        scoring: &Scoring,
        breakdown: &mut dyn Breakdown,
    ) -> Result<SourceScore> {
        source.check_fits(self.student.config())?;
        let rows = rows.unwrap_or_else(|| all_rows(&source));
        let _g = tch::no_grad_guard();
        let mut score = SourceScore::default();
        let stream = BatchStream::start(
            source.clone(),
            Arc::new(rows),
            self.batch_size,
            0,
            2,
            ModelInput::of(self.student.config(), self.device),
            BatchExtras::default(),
        );
        for batch in stream {
            let batch = batch?;
            score.skipped.extend(batch.skipped.iter().cloned());
            if batch.is_empty() {
                continue;
            }
            let labels: Vec<i64> = Vec::try_from(batch.labels.to_device(Device::Cpu))?;
            if let Some(bad) = labels
                .iter()
                .find(|l| **l < 0 || **l as usize >= scoring.correct.len())
            {
                return Err(TrainError::Data(format!(
                    "split '{}' of '{}': label {bad} is outside its {} classes",
                    source.split,
                    source.dir.display(),
                    scoring.correct.len()
                )));
            }
            let logits = self.student.logits(&batch.images)?.to_kind(Kind::Float);
            let ok = scoring.correct_rows(&logits, &labels)?;
            score.correct += ok.iter().filter(|c| **c).count();
            score.images += labels.len();
            breakdown.observe(&batch, &labels, &ok);
        }
        Ok(score)
    }

    /// [`Evaluator::score_with`] without a breakdown.
    pub fn score(
        &self,
        source: Arc<SplitSource>,
        rows: Option<Vec<RowRef>>,
        scoring: &Scoring,
    ) -> Result<SourceScore> {
        self.score_with(source, rows, scoring, &mut NoBreakdown)
    }

    /// Every row of `source` under `scoring`, as the set `name` (`ood`, `apart`: its role in the
    /// means), with the background breakdown where the rows carry the generator's ground truth.
    pub fn scored(
        &self,
        name: &str,
        (ood, apart): (bool, bool),
        source: Arc<SplitSource>,
        scoring: &Scoring,
    ) -> Result<SetResult> {
        let fingerprint = source.fingerprint.clone();
        let mut tally = BackgroundTally::default();
        let s = self.score_with(source, None, scoring, &mut tally)?;
        Ok(SetResult {
            name: name.to_string(),
            ood,
            apart,
            images: s.images,
            correct: s.correct,
            top1: if s.images == 0 {
                0.0
            } else {
                s.correct as f64 / s.images as f64
            },
            skipped: s.skipped.len(),
            fingerprint,
            background: tally.split(),
        })
    }

    /// One named set (a split of a shard dataset), matched to the model's classes by name or
    /// through its label map.
    pub fn set(&self, set: &ResolvedEvalSet) -> Result<SetResult> {
        let source = Arc::new(SplitSource::open(&set.shards, &set.split)?);
        let scoring = Scoring::new(
            &source.classes,
            &self.student.classes,
            set.restrict,
            set.label_map.as_deref(),
        )?;
        self.scored(&set.name, (set.ood, set.apart), source, &scoring)
    }

    /// Every configured set, and their means.
    pub fn sets(&self, sets: &[ResolvedEvalSet]) -> Result<EvalReport> {
        let results = sets
            .iter()
            .map(|set| self.set(set))
            .collect::<Result<_>>()?;
        Ok(EvalReport::new(results))
    }
}

/// Every row of a split, in stored order.
pub fn all_rows(source: &SplitSource) -> Vec<RowRef> {
    source
        .groups
        .iter()
        .enumerate()
        .flat_map(|(g, info)| {
            (0..info.rows).map(move |r| RowRef {
                group: g as u32,
                row: r,
            })
        })
        .collect()
}

/// The report as one row of the paper's table: a column per set in report order (top-1 in
/// percent), then the OOD mean.
pub(crate) fn paper_table(label: &str, report: &EvalReport) -> String {
    let mut head = String::from("| model |");
    let mut rule = String::from("|---|");
    let mut row = format!("| {label} |");
    for r in &report.sets {
        head += &format!(" {}{} |", r.name, if r.ood { "" } else { " (ID)" });
        rule += "---:|";
        row += &format!(" {:.2} |", 100.0 * r.top1);
    }
    if let Some(m) = report.ood_mean {
        head += " OOD mean |";
        rule += "---:|";
        row += &format!(" {:.2} |", 100.0 * m);
    }
    format!("{head}\n{rule}\n{row}\n")
}

/// The report as a Markdown table (top-1 in percent).
pub fn markdown_table(report: &EvalReport) -> String {
    let mut s = String::from("| set | kind | images | top-1 (%) |\n|---|---|---:|---:|\n");
    for r in &report.sets {
        s += &format!(
            "| {} | {} | {} | {:.2} |\n",
            r.name,
            match (r.ood, r.apart) {
                (_, true) => "apart",
                (true, false) => "OOD",
                (false, false) => "ID",
            },
            r.images,
            100.0 * r.top1
        );
    }
    if let Some(m) = report.id_mean {
        s += &format!("| **ID mean** | | | {:.2} |\n", 100.0 * m);
    }
    if let Some(m) = report.ood_mean {
        s += &format!("| **OOD mean** | | | {:.2} |\n", 100.0 * m);
    }
    if report.sets.iter().any(|r| r.apart) {
        s += "\nSets marked apart are shown but counted in neither mean.\n";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn by_name_restricted_and_many_to_one_scoring() {
        let model = names(&["cat", "dog", "car", "bus"]);
        // Logits: row 0 argmax "car" (2) overall, "dog" among {cat, dog}; row 1 argmax "bus".
        let logits = Tensor::from_slice(&[0.1f32, 0.5, 0.9, 0.2, 0.0, 0.1, 0.3, 0.8]).view([2, 4]);
        // A set whose classes are a subset, in another order: labels index the set's list.
        let set = names(&["dog", "cat"]);
        let plain = Scoring::new(&set, &model, false, None).unwrap();
        assert_eq!(plain.correct, vec![vec![1], vec![0]]);
        assert_eq!(plain.count_correct(&logits, &[0, 0]).unwrap(), 0);
        let restricted = Scoring::new(&set, &model, true, None).unwrap();
        assert_eq!(restricted.allowed, Some(vec![0, 1]));
        // Row 0 now predicts dog (correct for label 0 = dog); row 1 among {cat, dog}: dog (0.1 > 0.0).
        assert_eq!(restricted.count_correct(&logits, &[0, 1]).unwrap(), 1);
        assert_eq!(restricted.count_correct(&logits, &[0, 0]).unwrap(), 2);

        // Many-to-one: "vehicle" counts car or bus.
        let dir = std::env::temp_dir().join(format!("cfkit-labelmap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let map = dir.join("map.json");
        std::fs::write(
            &map,
            r#"{"vehicle": ["car", "bus"], "pet": ["cat", "dog"]}"#,
        )
        .unwrap();
        let set = names(&["vehicle", "pet"]);
        let s = Scoring::new(&set, &model, false, Some(&map)).unwrap();
        assert_eq!(s.count_correct(&logits, &[0, 0]).unwrap(), 2);
        assert_eq!(s.count_correct(&logits, &[1, 1]).unwrap(), 0);

        // Folder-named classes (no name matches, same count): labels are class indices.
        let wnids = names(&["n1", "n2", "n3", "n4"]);
        let s = Scoring::new(&wnids, &model, false, None).unwrap();
        assert_eq!(s.correct, vec![vec![0], vec![1], vec![2], vec![3]]);

        // Errors name the class and the file.
        let e = Scoring::new(&names(&["horse"]), &model, false, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("'horse'"), "{e}");
        std::fs::write(&map, r#"{"vehicle": ["car", "plane"]}"#).unwrap();
        let e = Scoring::new(&names(&["vehicle"]), &model, false, Some(&map))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'plane'") && e.contains("map.json"), "{e}");
        let e = Scoring::new(&names(&["pet"]), &model, false, Some(&map))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'pet' has no entry"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn report_means_split_id_and_ood() {
        let r = |name: &str, ood: bool, top1: f64| SetResult {
            name: name.into(),
            ood,
            apart: default_role(name).1,
            images: 10,
            correct: (top1 * 10.0) as usize,
            top1,
            skipped: 0,
            fingerprint: String::new(),
            background: None,
        };
        let rep = EvalReport::new(vec![
            r("id", false, 0.9),
            r("o1", true, 0.5),
            r("o2", true, 0.3),
            r("ood-near", true, 0.8),
        ]);
        assert_eq!(rep.id_mean, Some(0.9));
        // ood-near is reported apart: the OOD mean is over o1 and o2 only.
        assert!((rep.ood_mean.unwrap() - 0.4).abs() < 1e-12);
        let t = markdown_table(&rep);
        assert!(t.contains("| **OOD mean** | | | 40.00 |"), "{t}");
        assert!(t.contains("| ood-near | apart | 10 | 80.00 |"), "{t}");
        assert_eq!(default_role("ood-sketch"), (true, false));
        assert_eq!(default_role("test-id"), (false, false));
        assert_eq!(EvalReport::new(vec![r("id", false, 0.9)]).ood_mean, None);
    }
}
