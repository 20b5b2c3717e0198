//! Labels as sources spell them — class names, or integer class indices — turned into indices
//! over one class list, by the same rule for every source (manifests, Hugging Face Parquet,
//! WebDataset).

use std::collections::{BTreeMap, BTreeSet};

/// Resolves raw label strings against a class list.
pub(crate) struct LabelIndex {
    classes: Vec<String>,
    by_name: BTreeMap<String, usize>,
    /// Every raw label was an integer: integers are indices into `classes`.
    all_ints: bool,
}

impl LabelIndex {
    /// The classes of `raw` labels: `class_list` when given; else, when every label is an
    /// integer, `"0"..="max"` (indices, ordered numerically, never as strings); else the sorted
    /// distinct names.
    pub(crate) fn new<'a>(
        raw: impl Iterator<Item = &'a str> + Clone,
        class_list: Option<Vec<String>>,
    ) -> Self {
        let all_ints = raw.clone().all(|l| l.trim().parse::<u64>().is_ok());
        let classes = match class_list {
            Some(c) => c,
            None if all_ints => match raw.map(|l| l.trim().parse::<u64>().unwrap_or(0)).max() {
                Some(max) => (0..=max).map(|i| i.to_string()).collect(),
                None => Vec::new(),
            },
            None => raw
                .map(str::to_string)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        Self::with_classes(classes, all_ints)
    }

    /// Labels over a known class list: a name of the list, or (when `ints_are_indices`) an
    /// index below its length.
    pub(crate) fn with_classes(classes: Vec<String>, ints_are_indices: bool) -> Self {
        let by_name = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        LabelIndex {
            classes,
            by_name,
            all_ints: ints_are_indices,
        }
    }

    /// The index of `label`, or why it is not one.
    pub(crate) fn get(&self, label: &str) -> Result<usize, String> {
        if let Some(&i) = self.by_name.get(label) {
            return Ok(i);
        }
        match label.trim().parse::<usize>() {
            Ok(i) if self.all_ints && i < self.classes.len() => Ok(i),
            _ => Err(format!(
                "label '{label}' is not a known class (expected one of {} class names{})",
                self.classes.len(),
                if self.all_ints {
                    format!(" or an index below {}", self.classes.len())
                } else {
                    String::new()
                }
            )),
        }
    }

    /// A `--classes` list over a dataset that names its own classes: the counts must agree (the
    /// list renames the dataset's classes by index, as `assets/imagenet/wnids.txt` renames
    /// Hugging Face ImageNet's English names).
    pub(crate) fn renaming(
        list: Vec<String>,
        list_file: &std::path::Path,
        own: Option<(&[String], String)>,
    ) -> Result<Self, String> {
        if let Some((names, source)) = own {
            if names.len() != list.len() {
                return Err(format!(
                    "'{}' lists {} classes, {source} names {}; the labels index the dataset's own list",
                    list_file.display(),
                    list.len(),
                    names.len()
                ));
            }
        }
        Ok(Self::with_classes(list, true))
    }

    pub(crate) fn into_classes(self) -> Vec<String> {
        self.classes
    }

    #[cfg(test)]
    pub(crate) fn classes(&self) -> &[String] {
        &self.classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_labels_are_indices_and_names_are_names() {
        let ints = ["2", "0", "10"];
        let idx = LabelIndex::new(ints.iter().copied(), None);
        assert_eq!(idx.classes().len(), 11, "0..=10, numeric");
        assert_eq!(idx.get("10"), Ok(10));
        let names = ["dog", "cat", "dog"];
        let idx = LabelIndex::new(names.iter().copied(), None);
        assert_eq!(idx.classes(), ["cat", "dog"]);
        assert_eq!(idx.get("dog"), Ok(1));
        assert!(idx.get("1").unwrap_err().contains("not a known class"));
        let given = Some(vec!["x".to_string(), "y".to_string()]);
        let idx = LabelIndex::new(["1", "0"].iter().copied(), given);
        assert_eq!(idx.get("1"), Ok(1));
        assert!(idx.get("2").unwrap_err().contains("index below 2"));
    }
}
