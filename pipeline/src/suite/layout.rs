//! Finding each set of the suite under a root directory and listing its images with labels,
//! checked against the set's folder convention.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::{PipelineError, Result};
use crate::prepare::sources::{rel_id, walk, ListingProblem, Location, SourceItem, SourceListing};
use crate::suite::protocol::{Folders, ImagenetProtocol, SetProtocol};

/// One set, listed: its images with labels over the set's own classes, and how each set class
/// is scored against the model's 1000 ImageNet classes.
#[derive(Debug, Clone)]
pub struct SetListing {
    pub name: String,
    pub dir: PathBuf,
    pub id: bool,
    /// Classes of the set (wnids, or ObjectNet folder names) and the labelled images.
    pub listing: SourceListing,
    /// Per set class: the ImageNet class indices that count as correct.
    pub correct: Vec<Vec<i64>>,
    /// ImageNet classes the argmax may choose (R, A: their 200; ObjectNet: the 125 mapped);
    /// `None`: all 1000.
    pub allowed: Option<Vec<i64>>,
    pub border_crop: u32,
    /// Images in the standard release, to compare with what was found.
    pub expected_images: usize,
    /// Class folders of the set that are absent (a partial copy).
    pub missing_classes: usize,
    /// Folders present but outside the protocol (ObjectNet's unmapped classes).
    pub unscored_folders: usize,
}

fn subfolders(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| PipelineError::io(dir, e))? {
        let e = e.map_err(|e| PipelineError::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && e.path().is_dir() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// The directory of set `name` under `root`: `explicit` if given, else the first of the set's
/// usual directory names and `root/<name>` that exists (its `images/` or `val/` sub-folder if it
/// has one).
pub fn locate(
    root: &Path,
    name: &str,
    set: &SetProtocol,
    explicit: Option<&Path>,
) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return if dir.is_dir() {
            Ok(dir.to_path_buf())
        } else {
            Err(PipelineError::Input(format!(
                "{name}: '{}' is not a directory",
                dir.display()
            )))
        };
    }
    // The usual names first (`imagenet/val` before a bare `imagenet/` holding train/ and val/).
    let mut tried = set.dir_names.clone();
    tried.push(name.to_string());
    tried.extend(
        super::containers::CLIP_BENCHMARK_DIRS
            .iter()
            .filter(|(set, _)| *set == name)
            .map(|(_, dir)| dir.to_string()),
    );
    for rel in &tried {
        let dir = root.join(rel);
        if dir.is_dir() {
            // ObjectNet's release keeps its class folders under images/, ImageNet its
            // validation images under val/.
            for inner in ["images", "val"] {
                if dir.join(inner).is_dir() {
                    return Ok(dir.join(inner));
                }
            }
            return Ok(dir);
        }
    }
    Err(PipelineError::Input(format!(
        "{name}: no directory under '{}' (tried {}); pass --set-dir {name}=PATH, or leave the set out with --sets",
        root.display(),
        tried.join(", ")
    )))
}

fn unknown_folders_error(
    name: &str,
    dir: &Path,
    unknown: &[String],
    expected: &str,
) -> PipelineError {
    let shown: Vec<&str> = unknown.iter().take(5).map(String::as_str).collect();
    PipelineError::Input(format!(
        "{name} at '{}': {} folder(s) are not {expected}: {}{}",
        dir.display(),
        unknown.len(),
        shown.join(", "),
        if unknown.len() > shown.len() {
            ", ..."
        } else {
            ""
        }
    ))
}

/// Lists set `name` in `dir` by its folder convention; a folder the convention does not allow
/// is an error naming it (except ObjectNet's unmapped classes, which the protocol skips).
/// A WebDataset or Hugging Face Parquet copy of the set is listed by its label convention
/// instead ([`super::containers`]).
pub fn list_set(p: &ImagenetProtocol, name: &str, dir: &Path) -> Result<SetListing> {
    let set = p.set(name)?;
    if let Some(form) = super::containers::detect(dir)? {
        return super::containers::list_container_set(p, name, set, dir, form);
    }
    let folders = subfolders(dir)?;
    if folders.is_empty() {
        return Err(PipelineError::Input(format!(
            "{name} at '{}': no class folders; the set must be an ImageFolder tree ({})",
            dir.display(),
            match set.folders {
                Folders::Wnid => "<dir>/<wnid>/<image>, e.g. n01440764/",
                Folders::Index => "<dir>/<class index 0..999>/<image>",
                Folders::Objectnet => "<dir>/<objectnet class>/<image>, e.g. alarm_clock/",
            }
        )));
    }
    let plan = match set.folders {
        Folders::Wnid => plan_wnid(p, set, name, dir, &folders)?,
        Folders::Index => plan_index(p, name, dir, &folders)?,
        Folders::Objectnet => plan_objectnet(p, name, dir, &folders)?,
    };
    let ClassPlan {
        classes,
        correct,
        allowed,
        used,
        unscored,
    } = plan;
    let mut listing = SourceListing {
        classes,
        description: format!("imagenet-suite:{name}:{}", dir.display()),
        ..Default::default()
    };
    let canon = dir.canonicalize().map_err(|e| PipelineError::io(dir, e))?;
    for (label, folder) in &used {
        let mut visited = HashSet::from([canon.clone()]);
        let mut files = Vec::new();
        let class_dir = dir.join(folder);
        walk(&class_dir, &mut visited, &mut files, &mut listing.problems);
        if files.is_empty() {
            listing.problems.push(ListingProblem {
                path: class_dir,
                reason: "empty class folder".into(),
            });
        }
        listing.items.extend(files.into_iter().map(|f| SourceItem {
            id: rel_id(dir, &f),
            location: Location::File(f),
            label: *label as i64,
        }));
    }
    Ok(SetListing {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        id: set.id,
        missing_classes: correct.len() - used.len(),
        listing,
        correct,
        allowed,
        border_crop: set.border_crop_px,
        expected_images: set.num_images,
        unscored_folders: unscored,
    })
}

/// How a set's folders become labelled classes.
pub(super) struct ClassPlan {
    /// The set's classes in label order.
    pub(super) classes: Vec<String>,
    /// Per set class: the ImageNet indices that count as correct.
    pub(super) correct: Vec<Vec<i64>>,
    pub(super) allowed: Option<Vec<i64>>,
    /// label -> folder, for the folders present.
    used: BTreeMap<usize, String>,
    unscored: usize,
}

/// The plan of a set with every class present: its classes in its own label order (sorted
/// wnids, the 1000 indices, sorted ObjectNet folders — the order clip_benchmark's and Hugging
/// Face's copies label by) and how each is scored.
pub(super) fn full_plan(p: &ImagenetProtocol, set: &SetProtocol, name: &str) -> Result<ClassPlan> {
    let dir = Path::new(name);
    match set.folders {
        Folders::Wnid => plan_wnid(p, set, name, dir, p.set_wnids(set)),
        Folders::Index => {
            let all: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
            plan_index(p, name, dir, &all)
        }
        Folders::Objectnet => {
            let all: Vec<String> = p.objectnet.keys().cloned().collect();
            plan_objectnet(p, name, dir, &all)
        }
    }
}

/// Wnid folders: each must be one of the set's wnids (all 1000, or its 200-class subset).
fn plan_wnid(
    p: &ImagenetProtocol,
    set: &SetProtocol,
    name: &str,
    dir: &Path,
    folders: &[String],
) -> Result<ClassPlan> {
    let wnids = p.set_wnids(set);
    let pos: BTreeMap<&str, usize> = wnids
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i))
        .collect();
    let unknown: Vec<String> = folders
        .iter()
        .filter(|f| !pos.contains_key(f.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        let what = if wnids.len() == 1000 {
            "ImageNet wnids".to_string()
        } else {
            format!("among the set's {} wnids", wnids.len())
        };
        return Err(unknown_folders_error(name, dir, &unknown, &what));
    }
    let correct = wnids
        .iter()
        .map(|w| p.index_of(w).map(|i| vec![i]))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            PipelineError::Input(format!("{name}: a subset wnid is not an ImageNet wnid"))
        })?;
    Ok(ClassPlan {
        classes: wnids.to_vec(),
        allowed: (wnids.len() < 1000).then(|| correct_flat(wnids, p)),
        correct,
        used: folders
            .iter()
            .map(|f| (pos[f.as_str()], f.clone()))
            .collect(),
        unscored: 0,
    })
}

/// ImageNet-V2: folders `0`..`999`; the label is the number.
fn plan_index(
    p: &ImagenetProtocol,
    name: &str,
    dir: &Path,
    folders: &[String],
) -> Result<ClassPlan> {
    let mut used = BTreeMap::new();
    let mut unknown = Vec::new();
    for f in folders {
        match f.parse::<usize>() {
            Ok(i) if i < 1000 && f == &i.to_string() => {
                used.insert(i, f.clone());
            }
            _ => unknown.push(f.clone()),
        }
    }
    if !unknown.is_empty() {
        return Err(unknown_folders_error(
            name,
            dir,
            &unknown,
            "class indices 0..999",
        ));
    }
    Ok(ClassPlan {
        classes: p.wnids.clone(),
        correct: (0..1000).map(|i| vec![i]).collect(),
        allowed: None,
        used,
        unscored: 0,
    })
}

/// ObjectNet: the 113 mapped folders are scored (many-to-one onto 125 ImageNet classes, the
/// argmax restricted to those); its other folders have no ImageNet class and are skipped.
fn plan_objectnet(
    p: &ImagenetProtocol,
    name: &str,
    dir: &Path,
    folders: &[String],
) -> Result<ClassPlan> {
    let keys: Vec<&String> = p.objectnet.keys().collect();
    let used: BTreeMap<usize, String> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| folders.contains(k))
        .map(|(i, k)| (i, (*k).clone()))
        .collect();
    if used.is_empty() {
        return Err(PipelineError::Input(format!(
            "{name} at '{}': none of the {} ObjectNet folders that map to ImageNet (e.g. {}) is there",
            dir.display(),
            keys.len(),
            keys.iter().take(3).map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    let correct: Vec<Vec<i64>> = p.objectnet.values().cloned().collect();
    let mut allowed: Vec<i64> = correct.iter().flatten().copied().collect();
    allowed.sort_unstable();
    allowed.dedup();
    Ok(ClassPlan {
        classes: keys.into_iter().cloned().collect(),
        correct,
        allowed: Some(allowed),
        unscored: folders.len() - used.len(),
        used,
    })
}

fn correct_flat(wnids: &[String], p: &ImagenetProtocol) -> Vec<i64> {
    let mut v: Vec<i64> = wnids.iter().filter_map(|w| p.index_of(w)).collect();
    v.sort_unstable();
    v
}
