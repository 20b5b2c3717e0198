//! How a build's work is cut and shared among workers. The unit is one batch of one input
//! shard: its rows, its donor pool and its seeds depend on the shard and the batch index alone
//! (`super::batch::variant_seed`). The batches of the split, in (shard, batch) order, are cut
//! into `count` contiguous runs of nearly equal length, one per worker, whatever the number of
//! input shards (more workers than shards, one huge shard: every worker gets its share). A
//! worker writes one output file per input shard its run touches: the shard's own name when the
//! run holds all of its batches (always, with one worker), else a piece named after the batch
//! range (`cfkit_schemas::layout::piece_relpath`). The rows are a single worker's, in its
//! order; a worker whose run is empty writes an empty manifest part.

use std::ops::Range;

use cfkit_schemas::layout::piece_relpath;
use cfkit_schemas::SplitEntry;

use super::{batch_bounds, Workers};

/// Batches `batches` of input shard `shard`: its rows `rows`, written to `file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub shard: usize,
    pub batches: Range<usize>,
    pub rows: Range<usize>,
    /// The output file, relative to the output directory.
    pub file: String,
}

/// The pieces of worker `workers` for the split `entry` at `batch_size` rows per batch.
pub fn pieces(entry: &SplitEntry, batch_size: usize, workers: Workers) -> Vec<Piece> {
    let bounds: Vec<Vec<(usize, usize)>> = entry
        .shards
        .iter()
        .map(|s| batch_bounds(s.rows as usize, batch_size))
        .collect();
    let total: usize = bounds.iter().map(Vec::len).sum();
    let mine = workers.index * total / workers.count..(workers.index + 1) * total / workers.count;
    let mut out = Vec::new();
    let mut first = 0;
    for (k, b) in bounds.iter().enumerate() {
        let shard = first..first + b.len();
        first = shard.end;
        let (start, end) = (mine.start.max(shard.start), mine.end.min(shard.end));
        if start >= end {
            continue;
        }
        let batches = start - shard.start..end - shard.start;
        let file = &entry.shards[k].file;
        out.push(Piece {
            shard: k,
            rows: b[batches.start].0..b[batches.end - 1].1,
            file: if batches == (0..b.len()) {
                file.clone()
            } else {
                piece_relpath(file, batches.start, batches.end)
            },
            batches,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfkit_schemas::ShardSummary;

    fn entry(rows: &[u64]) -> SplitEntry {
        SplitEntry {
            classes: vec!["a".into()],
            rows: rows.iter().sum(),
            shards: rows
                .iter()
                .enumerate()
                .map(|(k, &r)| ShardSummary {
                    file: format!("data/train-{k:05}-of-{:05}.parquet", rows.len()),
                    rows: r,
                    bytes: 0,
                    blake3: String::new(),
                    row_groups: 0,
                })
                .collect(),
        }
    }

    fn all(e: &SplitEntry, batch: usize, count: usize) -> Vec<Vec<Piece>> {
        (0..count)
            .map(|index| pieces(e, batch, Workers { count, index }))
            .collect()
    }

    #[test]
    fn one_worker_builds_whole_shards_under_their_own_names() {
        let e = entry(&[100, 0, 37]);
        let p = pieces(&e, 16, Workers::default());
        assert_eq!(p.len(), 2); // the empty shard has nothing to build
        assert_eq!(p[0].file, e.shards[0].file);
        assert_eq!((p[0].batches.clone(), p[0].rows.clone()), (0..7, 0..100));
        assert_eq!((p[1].shard, p[1].rows.clone()), (2, 0..37));
    }

    #[test]
    fn workers_share_any_split_evenly_and_cover_it_once() {
        // One shard, more workers than shards; many shards, fewer workers.
        for (rows, batch, count) in [
            (vec![1000u64], 64, 3),
            (vec![100, 100, 50, 7], 16, 2),
            (vec![40], 16, 5),
        ] {
            let e = entry(&rows);
            let parts = all(&e, batch, count);
            let units: Vec<usize> = parts
                .iter()
                .map(|p| p.iter().map(|x| x.batches.len()).sum())
                .collect();
            let total: usize = rows
                .iter()
                .map(|&r| batch_bounds(r as usize, batch).len())
                .sum();
            assert_eq!(units.iter().sum::<usize>(), total, "{rows:?}");
            assert!(
                units.iter().max().unwrap() - units.iter().min().unwrap() <= 1,
                "{units:?}"
            );
            // In worker order the pieces cover every shard's rows once, in order.
            for (k, r) in rows.iter().enumerate() {
                let mut next = 0;
                for p in parts.iter().flatten().filter(|p| p.shard == k) {
                    assert_eq!(p.rows.start, next);
                    next = p.rows.end;
                }
                assert_eq!(next as u64, *r);
            }
        }
        // 33 rows at 16 per batch are 2 batches (the lone last row folds in): 5 workers, 3 idle.
        let parts = all(&entry(&[33]), 16, 5);
        assert_eq!(parts.iter().filter(|p| p.is_empty()).count(), 3);
        let named: Vec<&str> = parts.iter().flatten().map(|p| p.file.as_str()).collect();
        assert_eq!(
            named,
            [
                "data/train-00000-of-00001.b00000-00001.parquet",
                "data/train-00000-of-00001.b00001-00002.parquet"
            ]
        );
    }
}
