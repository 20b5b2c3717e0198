//! Where images come from: an ImageFolder tree, or a CSV / Parquet manifest of (path, label).
//!
//! A listing is made before any image is read, so that the output can be split into shards
//! deterministically. Problems found while listing (empty class folders, symlink loops,
//! unreadable directories) are returned for the quarantine file, not raised.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::Array;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{PipelineError, Result};

/// One input image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceItem {
    /// Stable id: the path relative to the source root, `/`-separated.
    pub id: String,
    pub path: PathBuf,
    pub label: i64,
}

/// A problem met while listing, recorded in the quarantine file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingProblem {
    pub path: PathBuf,
    pub reason: String,
}

/// Everything a source holds.
#[derive(Debug, Clone, Default)]
pub struct SourceListing {
    pub classes: Vec<String>,
    pub items: Vec<SourceItem>,
    pub problems: Vec<ListingProblem>,
    /// Human-readable description (for the dataset metadata).
    pub description: String,
}

/// Reads a class-list file (one name per line, blank lines and `#` comments skipped, no duplicates).
pub(crate) fn read_class_list(path: &Path) -> Result<Vec<String>> {
    cfkit_models::load_class_names(path).map_err(|e| PipelineError::Input(e.to_string()))
}

/// Files under `dir`, recursively, following symlinks; loops and unreadable entries are problems.
pub(crate) fn walk(
    dir: &Path,
    visited: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<ListingProblem>,
) {
    let canon = match dir.canonicalize() {
        Ok(c) => c,
        Err(e) => {
            problems.push(ListingProblem {
                path: dir.into(),
                reason: format!("unreadable directory: {e}"),
            });
            return;
        }
    };
    if !visited.insert(canon) {
        problems.push(ListingProblem {
            path: dir.into(),
            reason: "symlink loop (directory already visited)".into(),
        });
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(ListingProblem {
                path: dir.into(),
                reason: format!("unreadable directory: {e}"),
            });
            return;
        }
    };
    let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for p in names {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, visited, files, problems),
            Ok(m) if m.is_file() => files.push(p),
            Ok(_) => problems.push(ListingProblem {
                path: p,
                reason: "not a regular file".into(),
            }),
            Err(e) => problems.push(ListingProblem {
                path: p,
                reason: format!("broken or unreadable entry: {e}"),
            }),
        }
    }
}

pub(crate) fn rel_id(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// An ImageFolder tree: `root/<class>/**/<file>`. Classes are the sorted sub-folder names, or
/// the names and order of `class_list` (then other folders are reported and skipped).
pub fn list_image_folder(root: &Path, class_list: Option<&Path>) -> Result<SourceListing> {
    let entries = std::fs::read_dir(root).map_err(|e| PipelineError::io(root, e))?;
    let mut folders: BTreeSet<String> = BTreeSet::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && e.path().is_dir() {
            folders.insert(name);
        }
    }
    let mut listing = SourceListing {
        classes: match class_list {
            Some(p) => read_class_list(p)?,
            None => folders.iter().cloned().collect(),
        },
        ..Default::default()
    };
    if listing.classes.is_empty() {
        return Err(PipelineError::Input(format!(
            "'{}' has no class sub-folders",
            root.display()
        )));
    }
    let wanted: HashSet<&String> = listing.classes.iter().collect();
    for f in folders.iter().filter(|f| !wanted.contains(f)) {
        listing.problems.push(ListingProblem {
            path: root.join(f),
            reason: "folder is not in the class list; skipped".into(),
        });
    }
    let root_canon = root
        .canonicalize()
        .map_err(|e| PipelineError::io(root, e))?;
    for (label, class) in listing.classes.clone().iter().enumerate() {
        // Per class: the root counts as visited, so a link back up is a loop; links into other
        // classes' folders are followed, as torchvision's ImageFolder does.
        let mut visited = HashSet::from([root_canon.clone()]);
        let dir = root.join(class);
        if !dir.is_dir() {
            listing.problems.push(ListingProblem {
                path: dir,
                reason: "class folder is missing".into(),
            });
            continue;
        }
        let mut files = Vec::new();
        walk(&dir, &mut visited, &mut files, &mut listing.problems);
        if files.is_empty() {
            listing.problems.push(ListingProblem {
                path: dir.clone(),
                reason: "empty class folder".into(),
            });
        }
        listing.items.extend(files.into_iter().map(|p| SourceItem {
            id: rel_id(root, &p),
            path: p,
            label: label as i64,
        }));
    }
    listing.description = format!("image-folder:{}", root.display());
    Ok(listing)
}

/// Labels as read from a manifest: names or integers.
fn resolve_labels(
    raw: Vec<(String, String)>,
    class_list: Option<Vec<String>>,
    manifest: &Path,
    root: &Path,
) -> Result<SourceListing> {
    let all_ints = raw.iter().all(|(_, l)| l.trim().parse::<u64>().is_ok());
    let classes = match class_list {
        Some(c) => c,
        // Integer labels are class indices (sorted numerically, never as strings).
        None if all_ints => {
            let max = raw
                .iter()
                .map(|(_, l)| l.trim().parse::<u64>().unwrap())
                .max()
                .unwrap_or(0);
            (0..=max).map(|i| i.to_string()).collect()
        }
        None => raw
            .iter()
            .map(|(_, l)| l.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let index: BTreeMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut items = Vec::with_capacity(raw.len());
    for (row, (path, label)) in raw.iter().enumerate() {
        let idx = match index.get(label.as_str()) {
            Some(&i) => i,
            None => match label.trim().parse::<usize>() {
                Ok(i) if all_ints && i < classes.len() => i,
                _ => {
                    return Err(PipelineError::Input(format!(
                        "'{}' row {}: label '{label}' is not a known class (expected one of {} classes or an index below {})",
                        manifest.display(),
                        row + 1,
                        classes.len(),
                        classes.len()
                    )))
                }
            },
        };
        let p = Path::new(path);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            root.join(p)
        };
        items.push(SourceItem {
            id: path.replace('\\', "/"),
            path: full,
            label: idx as i64,
        });
    }
    Ok(SourceListing {
        classes,
        items,
        problems: Vec::new(),
        description: format!("manifest:{}", manifest.display()),
    })
}

fn read_csv(path: &Path) -> Result<Vec<(String, String)>> {
    let mut rdr = csv::Reader::from_path(path)
        .map_err(|e| PipelineError::Input(format!("'{}': {e}", path.display())))?;
    let headers = rdr
        .headers()
        .map_err(|e| PipelineError::Input(format!("'{}': {e}", path.display())))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                PipelineError::Input(format!(
                    "'{}': header has no '{name}' column (found: {})",
                    path.display(),
                    headers.iter().collect::<Vec<_>>().join(", ")
                ))
            })
    };
    let (pi, li) = (col("path")?, col("label")?);
    let mut out = Vec::new();
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| {
            PipelineError::Input(format!("'{}' row {}: {e}", path.display(), row + 1))
        })?;
        match (rec.get(pi), rec.get(li)) {
            (Some(p), Some(l)) if !p.is_empty() => out.push((p.to_string(), l.to_string())),
            _ => {
                return Err(PipelineError::Input(format!(
                    "'{}' row {}: empty path or label",
                    path.display(),
                    row + 1
                )))
            }
        }
    }
    Ok(out)
}

fn read_parquet(path: &Path) -> Result<Vec<(String, String)>> {
    let bad = |m: String| PipelineError::Input(format!("'{}': {m}", path.display()));
    let file = File::open(path).map_err(|e| PipelineError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(e.to_string()))?
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let paths = batch
            .column_by_name("path")
            .ok_or_else(|| bad("no 'path' column".into()))?;
        let paths = paths
            .as_string_opt::<i32>()
            .ok_or_else(|| bad("column 'path' is not utf8".into()))?;
        let labels = batch
            .column_by_name("label")
            .ok_or_else(|| bad("no 'label' column".into()))?;
        for i in 0..batch.num_rows() {
            let label = if let Some(s) = labels.as_string_opt::<i32>() {
                s.value(i).to_string()
            } else if let Some(n) = labels.as_primitive_opt::<Int64Type>() {
                n.value(i).to_string()
            } else {
                return Err(bad(format!(
                    "column 'label' must be utf8 or int64, found {}",
                    labels.data_type()
                )));
            };
            if paths.is_null(i) || labels.is_null(i) {
                return Err(bad(format!("row {}: null path or label", i + 1)));
            }
            out.push((paths.value(i).to_string(), label));
        }
    }
    Ok(out)
}

/// A CSV (`path,label` header) or Parquet (`path`, `label` columns) manifest. Relative paths are
/// resolved against `root` (default: the manifest's directory). Labels are class names, or class
/// indices when every label is an integer.
pub fn list_manifest(
    manifest: &Path,
    root: Option<&Path>,
    class_list: Option<&Path>,
) -> Result<SourceListing> {
    let raw = match manifest.extension().and_then(|e| e.to_str()) {
        Some("csv") => read_csv(manifest)?,
        Some("parquet") => read_parquet(manifest)?,
        _ => {
            return Err(PipelineError::Input(format!(
                "'{}': a manifest must be .csv or .parquet",
                manifest.display()
            )))
        }
    };
    if raw.is_empty() {
        return Err(PipelineError::Input(format!(
            "'{}' lists no images",
            manifest.display()
        )));
    }
    let base = root
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.parent().unwrap_or(Path::new(".")).to_path_buf());
    let classes = class_list.map(read_class_list).transpose()?;
    resolve_labels(raw, classes, manifest, &base)
}
