//! Evaluation sets kept as WebDataset tars (clip_benchmark's `wds_<set>` copies: `test/N.tar`
//! with `.webp`/`.png`/`.jpg` + `.cls` members, `classnames.txt` one level up) or as Hugging Face
//! datasets Parquet, listed onto the set's protocol.
//!
//! Label conventions (LAION-AI/CLIP_benchmark, clip_benchmark/datasets/builder.py
//! `build_dataset`, and datasets/objectnet.py): a label is an index into the set's own class list
//! in its own order — ImageNet, -Sketch: the 1,000 classes in wnid order; -V2: the 1,000
//! indices (its folder numbers); -R, -A: their 200 wnids sorted (ImageFolder over wnid folders);
//! ObjectNet: the 113 folders that map to ImageNet, sorted, named by ObjectNet's labels in lower
//! case. clip_benchmark's `classnames.txt` holds CLIP's names (its `en_classnames.json`
//! imagenet1k list is assets/imagenet/classnames.txt line for line), so it is checked against
//! the names the set's classes must have: a copy of another set, or in another order, is an
//! error that names the first differences. A dataset whose class names are the set's own ids
//! (wnids, ObjectNet folders; e.g. a Parquet `wnid` column) is mapped by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::layout::{full_plan, SetListing};
use super::protocol::{Folders, ImagenetProtocol, SetProtocol};
use crate::error::{PipelineError, Result};
use crate::prepare::sources::clip_benchmark::{find_classnames, read_names, CLASSNAMES_FILE};
use crate::prepare::sources::hf_parquet::{list_hf_parquet, HfColumns};
use crate::prepare::sources::webdataset::{list_webdataset, WdsClasses, WdsLabel};
use crate::prepare::sources::{ListingProblem, SourceListing};

/// Share of `classnames.txt` lines that must be the expected names (after case and separator
/// folding) for the labels to be read as the set's convention.
const NAMES_AGREE: f64 = 0.9;

/// clip_benchmark's directory of each set's WebDataset copy: the Hub repository
/// `clip-benchmark/wds_<dataset>` of its dataset `wds/<dataset>` (LAION-AI/CLIP_benchmark,
/// benchmark/webdatasets.txt and README), looked for under the suite's root after the set's
/// usual names.
pub(crate) const CLIP_BENCHMARK_DIRS: [(&str, &str); 6] = [
    ("imagenet", "wds_imagenet1k"),
    ("imagenet-v2", "wds_imagenetv2"),
    ("imagenet-r", "wds_imagenet-r"),
    ("imagenet-sketch", "wds_imagenet_sketch"),
    ("objectnet", "wds_objectnet"),
    ("imagenet-a", "wds_imagenet-a"),
];

/// How a set directory holds its images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetForm {
    /// Tar shards in this directory.
    WebDataset(PathBuf),
    /// These Parquet files.
    HfParquet(Vec<PathBuf>),
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The container form of `dir`, if it is one: tars in it or in `test/` (clip_benchmark), or
/// Parquet files in it, `data/` or `test/` (the Hub's layouts; of several splits' files the
/// `validation` ones, else the `test` ones). `None`: an ImageFolder tree.
pub(crate) fn detect(dir: &Path) -> Result<Option<SetForm>> {
    for d in [dir.to_path_buf(), dir.join("test")] {
        if !files_with(&d, "tar").is_empty() {
            return Ok(Some(SetForm::WebDataset(d)));
        }
    }
    for d in [dir.to_path_buf(), dir.join("data"), dir.join("test")] {
        let all = files_with(&d, "parquet");
        if all.is_empty() {
            continue;
        }
        let named = |prefix: &str| -> Vec<PathBuf> {
            all.iter()
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                })
                .cloned()
                .collect()
        };
        let chosen = [named("validation"), named("test")]
            .into_iter()
            .find(|v| !v.is_empty())
            .unwrap_or(all);
        return Ok(Some(SetForm::HfParquet(chosen)));
    }
    Ok(None)
}

/// The names a set's classes must have in a clip_benchmark `classnames.txt`, in label order.
fn expected_names(p: &ImagenetProtocol, set: &SetProtocol, classes: &[String]) -> Vec<String> {
    match set.folders {
        Folders::Wnid => classes
            .iter()
            .map(|w| {
                p.index_of(w)
                    .map_or_else(String::new, |i| p.classnames[i as usize].clone())
            })
            .collect(),
        Folders::Index => p.classnames.clone(),
        Folders::Objectnet => classes
            .iter()
            .map(|f| p.objectnet_labels.get(f).cloned().unwrap_or_default())
            .collect(),
    }
}

fn fold(s: &str) -> String {
    s.trim()
        .to_lowercase()
        .replace(['_', '-'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// For each of the dataset's own classes, the set class it is.
fn relabel(
    name: &str,
    dir: &Path,
    own: &[String],
    classes: &[String],
    expected: Option<&[String]>,
) -> Result<Vec<usize>> {
    let pos: BTreeMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    // Named by the set's own ids: map by name.
    if let Some(map) = own
        .iter()
        .map(|c| pos.get(c.as_str()).copied())
        .collect::<Option<Vec<_>>>()
    {
        return Ok(map);
    }
    // Integer labels without names: indices into the set's classes.
    let indices = own
        .iter()
        .enumerate()
        .all(|(i, c)| c.parse::<usize>().ok() == Some(i));
    if indices && own.len() <= classes.len() {
        return Ok((0..own.len()).collect());
    }
    if own.len() != classes.len() {
        return Err(PipelineError::Input(format!(
            "{name} at '{}': the copy names {} classes (e.g. '{}'), {name}'s convention is {} classes labelled by index in its own order (wnids, ImageNet indices or ObjectNet folders, sorted); is this a copy of another set?",
            dir.display(),
            own.len(),
            own.first().map_or("", String::as_str),
            classes.len()
        )));
    }
    if let Some(expected) = expected {
        let differ: Vec<usize> = (0..own.len())
            .filter(|&i| fold(&own[i]) != fold(&expected[i]))
            .collect();
        if differ.len() as f64 > (1.0 - NAMES_AGREE) * own.len() as f64 {
            let shown: Vec<String> = differ
                .iter()
                .take(3)
                .map(|&i| {
                    format!(
                        "label {i} is '{}' where {name} has '{}'",
                        own[i], expected[i]
                    )
                })
                .collect();
            return Err(PipelineError::Input(format!(
                "{name} at '{}': {CLASSNAMES_FILE} disagrees with {name}'s classes in their label order on {} of {} names ({}); the labels would be scored against the wrong classes",
                dir.display(),
                differ.len(),
                own.len(),
                shown.join("; ")
            )));
        }
    }
    Ok((0..own.len()).collect())
}

/// Lists a container copy of set `name` in `dir` onto the set's protocol.
pub(crate) fn list_container_set(
    p: &ImagenetProtocol,
    name: &str,
    set: &SetProtocol,
    dir: &Path,
    form: SetForm,
) -> Result<SetListing> {
    let plan = full_plan(p, set, name)?;
    let (mut listing, expected, what): (SourceListing, Option<Vec<String>>, &str) = match &form {
        SetForm::WebDataset(tars) => {
            // Labels are indices; clip_benchmark's classnames.txt (duplicates and all) names
            // them and is checked against the set's classes.
            let mut listing = list_webdataset(
                std::slice::from_ref(tars),
                &WdsLabel::Member("cls".into()),
                WdsClasses::Labels,
            )?;
            let indexed = listing
                .classes
                .iter()
                .enumerate()
                .all(|(i, c)| c.parse::<usize>().ok() == Some(i));
            let expected = match find_classnames(&files_with(tars, "tar")) {
                Some(f) if indexed => {
                    listing.classes = read_names(&f)?;
                    Some(expected_names(p, set, &plan.classes))
                }
                _ => None,
            };
            (listing, expected, "webdataset")
        }
        SetForm::HfParquet(files) => {
            // Hugging Face's ClassLabel names are WordNet's, not CLIP's: checked by count.
            (
                list_hf_parquet(files, &HfColumns::default(), None)?,
                None,
                "hf-parquet",
            )
        }
    };
    let map = relabel(
        name,
        dir,
        &listing.classes,
        &plan.classes,
        expected.as_deref(),
    )?;
    // A label past the names the copy gives is that sample's problem, not the run's.
    let (items, beyond): (Vec<_>, Vec<_>) = std::mem::take(&mut listing.items)
        .into_iter()
        .partition(|it| (it.label as usize) < map.len());
    for it in beyond {
        listing.problems.push(ListingProblem {
            path: dir.to_path_buf(),
            reason: format!(
                "{}: label {} is past the copy's {} classes",
                it.origin(),
                it.label,
                map.len()
            ),
        });
    }
    listing.items = items;
    for item in &mut listing.items {
        item.label = map[item.label as usize] as i64;
    }
    let mut present = vec![false; plan.classes.len()];
    for item in &listing.items {
        present[item.label as usize] = true;
    }
    listing.classes = plan.classes.clone();
    listing.description = format!("imagenet-suite:{name}:{what}:{}", dir.display());
    Ok(SetListing {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        id: set.id,
        missing_classes: present.iter().filter(|&&x| !x).count(),
        listing,
        correct: plan.correct,
        allowed: plan.allowed,
        border_crop: set.border_crop_px,
        expected_images: set.num_images,
        unscored_folders: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_names_map_by_name_index_labels_by_position_and_wrong_names_fail() {
        let classes: Vec<String> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let expected: Vec<String> = ["goldfish", "great white shark", "tiger_shark"]
            .map(String::from)
            .to_vec();
        let dir = Path::new("x");
        let own = ["n3", "n1"].map(String::from);
        assert_eq!(relabel("s", dir, &own, &classes, None).unwrap(), [2, 0]);
        let own = ["0", "1"].map(String::from);
        assert_eq!(relabel("s", dir, &own, &classes, None).unwrap(), [0, 1]);
        let own = ["Goldfish", "great-white shark", "tiger shark"].map(String::from);
        assert_eq!(
            relabel("s", dir, &own, &classes, Some(&expected)).unwrap(),
            [0, 1, 2]
        );
        let own = ["tiger shark", "goldfish", "great white shark"].map(String::from);
        let e = relabel("s", dir, &own, &classes, Some(&expected))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("disagrees") && e.contains("label 0 is 'tiger shark'"),
            "{e}"
        );
        let own = ["a", "b"].map(String::from);
        let e = relabel("s", dir, &own, &classes, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("names 2 classes") && e.contains("convention is 3"),
            "{e}"
        );
    }
}
