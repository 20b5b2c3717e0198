//! The files a container source names: given files, directories of them, brace patterns.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::brace;
use crate::error::{PipelineError, Result};

/// The files `inputs` name, in order: a file as given; a directory: its files ending in
/// `.<ext>` (not recursive), in natural order (`2.tar` before `10.tar`); a name with braces: its
/// expansions ([`brace::expand`]). A name that does not exist is an error (a mistyped range
/// should not silently drop shards); the same file named twice is taken once.
pub(crate) fn expand_inputs(inputs: &[PathBuf], ext: &str) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for input in inputs {
        let text = input.to_string_lossy();
        let names: Vec<PathBuf> = if !input.exists() && text.contains('{') {
            brace::expand(&text)
                .map_err(PipelineError::Input)?
                .into_iter()
                .map(PathBuf::from)
                .collect()
        } else {
            vec![input.clone()]
        };
        for name in names {
            if name.is_dir() {
                let mut found = dir_files(&name, ext)?;
                if found.is_empty() {
                    return Err(PipelineError::Input(format!(
                        "'{}' holds no .{ext} files",
                        name.display()
                    )));
                }
                found.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
                out.extend(found);
            } else if name.is_file() {
                out.push(name);
            } else {
                return Err(PipelineError::Input(format!(
                    "'{}' does not exist{}",
                    name.display(),
                    if name.as_os_str() != input.as_os_str() {
                        format!(" (from '{}')", input.display())
                    } else {
                        String::new()
                    }
                )));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())));
    Ok(out)
}

fn dir_files(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| PipelineError::io(dir, e))? {
        let p = e.map_err(|e| PipelineError::io(dir, e))?.path();
        let hidden = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && p.is_file() && p.extension().is_some_and(|x| x == ext) {
            found.push(p);
        }
    }
    Ok(found)
}

/// Orders digit runs by value, the rest by character.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (trim_zeros(&a[..na]), trim_zeros(&b[..nb]));
                let ord = da.len().cmp(&db.len()).then(da.cmp(db)).then(na.cmp(&nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (&a[na..], &b[nb..]);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|&&c| c == b'0').count();
    &d[n.min(d.len().saturating_sub(1))..]
}

/// A short name per file for row ids: its file name where that is unique among `files`, else the
/// path as given.
pub(crate) fn short_names(files: &[PathBuf]) -> Vec<String> {
    let name = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    let mut count: HashMap<String, usize> = HashMap::new();
    for f in files {
        *count.entry(name(f)).or_default() += 1;
    }
    files
        .iter()
        .map(|f| {
            let n = name(f);
            if count[&n] == 1 {
                n
            } else {
                f.to_string_lossy().replace('\\', "/")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_reads_numbers_as_numbers() {
        let mut v = vec![
            "10.tar",
            "2.tar",
            "1.tar",
            "train-0010.tar",
            "train-0002.tar",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "1.tar",
                "2.tar",
                "10.tar",
                "train-0002.tar",
                "train-0010.tar"
            ]
        );
    }

    #[test]
    fn names_are_short_where_they_are_unique() {
        let files = [
            PathBuf::from("a/0.tar"),
            PathBuf::from("b/0.tar"),
            PathBuf::from("b/1.tar"),
        ];
        assert_eq!(short_names(&files), ["a/0.tar", "b/0.tar", "1.tar"]);
    }
}
