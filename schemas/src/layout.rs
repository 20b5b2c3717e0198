//! Where shards live: `OUT/data/<split>-NNNNN-of-MMMMM.parquet` (the Hugging Face convention) and
//! `OUT/manifest.json`.

use std::path::{Path, PathBuf};

/// Sub-directory holding the shards.
pub(crate) const DATA_DIR: &str = "data";
/// File name of the manifest beside `data/`.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Suffix of a shard being written; renamed away when the shard is complete.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// `data/<split>-NNNNN-of-MMMMM.parquet`, relative to the output directory.
pub fn shard_relpath(split: &str, index: usize, count: usize) -> PathBuf {
    Path::new(DATA_DIR).join(format!("{split}-{index:05}-of-{count:05}.parquet"))
}

/// The file of batches `first..end` of the shard `file` (`data/<split>-NNNNN-of-MMMMM.parquet`),
/// when build workers split a shard: `data/<split>-NNNNN-of-MMMMM.bFFFFF-EEEEE.parquet`.
pub fn piece_relpath(file: &str, first: usize, end: usize) -> String {
    let stem = file.strip_suffix(".parquet").unwrap_or(file);
    format!("{stem}.b{first:05}-{end:05}.parquet")
}

/// Parses a shard file name (also a [`piece_relpath`] name) into (split, index, count).
pub(crate) fn parse_shard_name(name: &str) -> Option<(String, usize, usize)> {
    let mut stem = name.strip_suffix(".parquet")?;
    if let Some((shard, range)) = stem.rsplit_once(".b") {
        let (a, b) = range.split_once('-')?;
        if a.len() >= 5 && b.len() >= 5 && a.parse::<usize>().is_ok() && b.parse::<usize>().is_ok()
        {
            stem = shard;
        }
    }
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (split, index) = rest.rsplit_once('-')?;
    if split.is_empty() || index.len() < 5 || count.len() < 5 {
        return None;
    }
    Some((split.to_string(), index.parse().ok()?, count.parse().ok()?))
}

/// Checks a split name: non-empty, `[A-Za-z0-9_.]` and inner `-`, so that file names parse back.
pub fn valid_split_name(split: &str) -> bool {
    !split.is_empty()
        && !split.starts_with('-')
        && split
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The manifest part of worker `index` of `count` (`cfkit build-counterfactuals --num-workers`),
/// joined into `manifest.json` by `cfkit merge`.
pub fn worker_manifest_name(index: usize, count: usize) -> String {
    format!("manifest.worker-{index:05}-of-{count:05}.json")
}

/// Parses a [`worker_manifest_name`] into (index, count).
pub fn parse_worker_manifest_name(name: &str) -> Option<(usize, usize)> {
    let rest = name
        .strip_prefix("manifest.worker-")?
        .strip_suffix(".json")?;
    let (i, n) = rest.split_once("-of-")?;
    let (i, n) = (i.parse().ok()?, n.parse().ok()?);
    (i < n).then_some((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_manifest_names_round_trip() {
        let n = worker_manifest_name(3, 12);
        assert_eq!(n, "manifest.worker-00003-of-00012.json");
        assert_eq!(parse_worker_manifest_name(&n), Some((3, 12)));
        assert_eq!(
            parse_worker_manifest_name("manifest.worker-00012-of-00012.json"),
            None
        );
        assert_eq!(parse_worker_manifest_name("manifest.json"), None);
    }

    #[test]
    fn names_round_trip() {
        let p = shard_relpath("test-ood-sketch", 3, 12);
        assert_eq!(p, Path::new("data/test-ood-sketch-00003-of-00012.parquet"));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            parse_shard_name(name),
            Some(("test-ood-sketch".into(), 3, 12))
        );
        assert_eq!(parse_shard_name("train.parquet"), None);
        let piece = piece_relpath("data/train-00002-of-00004.parquet", 3, 7);
        assert_eq!(piece, "data/train-00002-of-00004.b00003-00007.parquet");
        assert_eq!(
            parse_shard_name("train-00002-of-00004.b00003-00007.parquet"),
            Some(("train".into(), 2, 4))
        );
        assert!(valid_split_name("test-id") && !valid_split_name("a/b") && !valid_split_name(""));
    }
}
