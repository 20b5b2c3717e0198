//! Where images come from: an ImageFolder tree, a CSV / Parquet manifest of (path, label),
//! Hugging Face datasets Parquet files (images inside), or WebDataset tar shards.
//!
//! A listing is made before any image is read, so that the output can be split into shards
//! deterministically; it holds each image's identity, label and location, never its bytes.
//! Problems found while listing (empty class folders, symlink loops, unreadable directories,
//! samples without a label, damaged tar headers) are returned for the quarantine file, not
//! raised.

mod brace;
pub(crate) mod clip_benchmark;
mod files;
pub mod hf_parquet;
mod labels;
mod manifest;
pub(crate) mod spill;
mod tar;
pub mod webdataset;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use manifest::list_manifest;

use crate::error::{PipelineError, Result};

/// One input image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceItem {
    /// Stable id: the path relative to the source root, `/`-separated (ImageFolder, manifest);
    /// `<file>:<row>` (Hugging Face Parquet); `<shard>/<key>` (WebDataset).
    pub id: String,
    pub location: Location,
    pub label: i64,
}

/// Where an image's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file of its own.
    File(PathBuf),
    /// `len` bytes at `offset` of a container file (a tar member's data).
    Member {
        container: Arc<Path>,
        offset: u64,
        len: u64,
    },
    /// Row `row` of a Parquet file's image column: copied to a spill file before decoding
    /// ([`spill`]), since a row inside a Parquet column chunk cannot be read on its own.
    ParquetRow {
        file: Arc<Path>,
        row: u64,
        column: Arc<str>,
    },
    /// A [`Location::ParquetRow`] after spilling: `len` bytes at `offset` of `spill`.
    Spilled {
        file: Arc<Path>,
        row: u64,
        spill: Arc<Path>,
        offset: u64,
        len: u64,
    },
    /// A Parquet row whose image is the file its `path` names (its bytes are null).
    Referenced {
        file: Arc<Path>,
        row: u64,
        target: PathBuf,
    },
    /// A Parquet row without an image (null bytes and no file path): quarantined with `reason`.
    Unavailable {
        file: Arc<Path>,
        row: u64,
        reason: String,
    },
}

impl SourceItem {
    /// Where the image came from, for the quarantine file: the file, or the container and the
    /// image's identity in it.
    pub fn origin(&self) -> String {
        match &self.location {
            Location::File(p) => p.display().to_string(),
            Location::Member { container, .. } => format!("{} ({})", container.display(), self.id),
            Location::Referenced { file, row, target } => {
                format!(
                    "{} row {row} ({}) -> {}",
                    file.display(),
                    self.id,
                    target.display()
                )
            }
            Location::ParquetRow { file, row, .. }
            | Location::Spilled { file, row, .. }
            | Location::Unavailable { file, row, .. } => {
                format!("{} row {row} ({})", file.display(), self.id)
            }
        }
    }

    /// The image's bytes.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        match &self.location {
            Location::File(p) | Location::Referenced { target: p, .. } => std::fs::read(p),
            Location::Member {
                container,
                offset,
                len,
            } => read_range(container, *offset, *len),
            Location::Spilled {
                spill, offset, len, ..
            } => read_range(spill, *offset, *len),
            Location::Unavailable { reason, .. } => Err(std::io::Error::other(reason.clone())),
            Location::ParquetRow { .. } => Err(std::io::Error::other(
                "a Parquet row is read after spilling (internal: spill::spill_parquet_rows was not run)",
            )),
        }
    }
}

/// The error of a container source in which nothing usable was found: `what`, and the first
/// problem met, which usually says why.
pub(crate) fn nothing_usable(what: String, problems: &[ListingProblem]) -> PipelineError {
    let first = problems
        .first()
        .map(|p| format!(" (first problem: {}: {})", p.path.display(), p.reason))
        .unwrap_or_default();
    PipelineError::Input(format!("{what}{first}"))
}

/// `inputs` as the user gave them, comma-separated (for descriptions and errors).
pub(crate) fn show_inputs(inputs: &[PathBuf]) -> String {
    inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `len` bytes at `offset` of `path`; a file shorter than that is an error.
fn read_range(path: &Path, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf)?;
    Ok(buf)
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
            location: Location::File(p),
            label: label as i64,
        }));
    }
    listing.description = format!("image-folder:{}", root.display());
    Ok(listing)
}
