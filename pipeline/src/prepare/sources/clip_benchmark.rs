//! clip_benchmark's WebDataset layout beside the tars (LAION-AI/CLIP_benchmark,
//! clip_benchmark/webdataset_builder.py and datasets/builder.py `build_wds_dataset`):
//! `<set>/test/{0..N-1}.tar`, `<set>/test/nshards.txt` (N), `<set>/classnames.txt` (the name of
//! label i on line i).

use std::path::{Path, PathBuf};

use crate::error::{PipelineError, Result};

/// clip_benchmark's class-name file, next to (or one level above) the shards.
pub(crate) const CLASSNAMES_FILE: &str = "classnames.txt";

/// A directory given as input with clip_benchmark's `nshards.txt` must hold that many shards.
pub(crate) fn check_nshards(inputs: &[PathBuf], files: &[PathBuf]) -> Result<()> {
    for dir in inputs.iter().filter(|p| p.is_dir()) {
        let path = dir.join("nshards.txt");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let n: usize = text.trim().parse().map_err(|_| {
            PipelineError::Input(format!(
                "'{}': expected an integer, found '{}'",
                path.display(),
                text.trim()
            ))
        })?;
        let found = files
            .iter()
            .filter(|f| f.parent() == Some(dir.as_path()))
            .count();
        if found != n {
            return Err(PipelineError::Input(format!(
                "'{}' says {n} shards, '{}' holds {found} .tar files (an incomplete download?)",
                path.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// The lines of a `classnames.txt` (blank lines skipped): names by position, duplicates allowed
/// (CLIP's ImageNet names have some).
pub(crate) fn read_names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::io(path, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// `classnames.txt` in the shards' directory or its parent (clip_benchmark: `<set>/test/N.tar`
/// with `<set>/classnames.txt`).
pub(crate) fn find_classnames(files: &[PathBuf]) -> Option<PathBuf> {
    let dir = files.first()?.parent()?;
    [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(CLASSNAMES_FILE))
        .find(|p| p.is_file())
}
