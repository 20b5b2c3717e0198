//! Which rows a run reads, and in which order.
//!
//! Every order is a pure function of the run seed (and the epoch), computed from row counts alone
//! without reading any image, so a resumed run recomputes the exact order of an interrupted one
//! and skips the batches it already took. There is no mutable RNG state to save.
//!
//! An epoch: the row groups are permuted (seeded by `(seed, epoch)`), their rows stream in that
//! order through a shuffle buffer of `buffer` rows, and each output row is drawn uniformly from the
//! buffer. A buffer at least as large as the split gives a uniform permutation; a smaller one keeps
//! memory bounded (the loader holds only rows whose turn is near).

use cfkit_counterfactual::rng::{fnv1a64, SplitMix64};

/// One row of a split: index into [`super::SplitSource::groups`] and row within that group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowRef {
    pub group: u32,
    pub row: u32,
}

/// Splits rows into (train, validation): `n_val` rows held out, stratified by label and keyed by
/// each row's id (`cfkit_schemas::holdout`: the same ids whatever the shards' order or row
/// groups). `labels[group][row]`, `ids[group][row]`. Both lists are in dataset order.
pub fn stratified_holdout(
    labels: &[Vec<i64>],
    ids: &[Vec<String>],
    num_classes: usize,
    n_val: usize,
    seed: u64,
) -> (Vec<RowRef>, Vec<RowRef>) {
    let mut refs = Vec::new();
    let mut rows = Vec::new();
    for (g, (labels, ids)) in labels.iter().zip(ids).enumerate() {
        for (r, (&label, id)) in labels.iter().zip(ids).enumerate() {
            refs.push(RowRef {
                group: g as u32,
                row: r as u32,
            });
            rows.push((id.as_str(), label as usize));
        }
    }
    let held = cfkit_schemas::holdout::held_out(&rows, num_classes, n_val, seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (r, h) in refs.into_iter().zip(held) {
        if h {
            val.push(r);
        } else {
            train.push(r);
        }
    }
    (train, val)
}

/// The row order of one training epoch over `rows` (any subset of the split, e.g. the train part
/// of a hold-out), as described in the module docs.
pub fn epoch_order(rows: &[RowRef], seed: u64, epoch: u64, buffer: usize) -> Vec<RowRef> {
    let key = fnv1a64("cfkit.epoch");
    let mut rng = SplitMix64::from_keys(&[seed, key, epoch]);
    // Rows grouped by row group, groups in first-appearance order, then permuted (Fisher–Yates).
    let mut groups: Vec<Vec<RowRef>> = Vec::new();
    let mut sorted = rows.to_vec();
    sorted.sort_unstable();
    for r in sorted {
        match groups.last_mut() {
            Some(g) if g[0].group == r.group => g.push(r),
            _ => groups.push(vec![r]),
        }
    }
    for i in (1..groups.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        groups.swap(i, j);
    }
    let cap = buffer.max(1);
    let mut buf: Vec<RowRef> = Vec::with_capacity(cap.min(rows.len()));
    let mut out = Vec::with_capacity(rows.len());
    for r in groups.into_iter().flatten() {
        buf.push(r);
        if buf.len() >= cap {
            let i = rng.below(buf.len() as u64) as usize;
            out.push(buf.swap_remove(i));
        }
    }
    while !buf.is_empty() {
        let i = rng.below(buf.len() as u64) as usize;
        out.push(buf.swap_remove(i));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(groups: &[usize], classes: i64) -> Vec<Vec<i64>> {
        let mut k = 0;
        groups
            .iter()
            .map(|&n| {
                (0..n)
                    .map(|_| {
                        k += 1;
                        (k * 7 % 11) % classes
                    })
                    .collect()
            })
            .collect()
    }

    fn ids(labels: &[Vec<i64>]) -> Vec<Vec<String>> {
        let mut k = 0;
        labels
            .iter()
            .map(|g| {
                g.iter()
                    .map(|_| {
                        k += 1;
                        format!("img{k:05}.jpg")
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn holdout_is_stratified_exact_and_disjoint() {
        let l = labels(&[100, 37, 250], 5);
        let i = ids(&l);
        let (train, val) = stratified_holdout(&l, &i, 5, 60, 3);
        assert_eq!(val.len(), 60);
        assert_eq!(train.len() + val.len(), 387);
        let set: std::collections::HashSet<_> = train.iter().collect();
        assert!(val.iter().all(|v| !set.contains(v)));
        // Per class: val share within one row of the proportional share.
        for c in 0..5 {
            let n_c = l.iter().flatten().filter(|x| **x == c).count() as f64;
            let v_c = val
                .iter()
                .filter(|r| l[r.group as usize][r.row as usize] == c)
                .count() as f64;
            assert!((v_c - 60.0 * n_c / 387.0).abs() < 1.0, "class {c}: {v_c}");
        }
        // Deterministic in the seed, different across seeds.
        assert_eq!(stratified_holdout(&l, &i, 5, 60, 3).1, val);
        assert_ne!(stratified_holdout(&l, &i, 5, 60, 4).1, val);
        // The same rows in other row groups (another shard layout): the same ids held out.
        let flat_l = vec![l.concat()];
        let flat_i = vec![i.concat()];
        let (_, val2) = stratified_holdout(&flat_l, &flat_i, 5, 60, 3);
        let held = |v: &[RowRef], i: &[Vec<String>]| -> std::collections::BTreeSet<String> {
            v.iter()
                .map(|r| i[r.group as usize][r.row as usize].clone())
                .collect()
        };
        assert_eq!(held(&val, &i), held(&val2, &flat_i));
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let rows: Vec<RowRef> = (0..3u32)
            .flat_map(|g| (0..50u32).map(move |r| RowRef { group: g, row: r }))
            .collect();
        for buffer in [1, 16, 1000] {
            let a = epoch_order(&rows, 7, 0, buffer);
            let mut s = a.clone();
            s.sort();
            assert_eq!(s, rows, "buffer {buffer}: not a permutation");
            assert_eq!(a, epoch_order(&rows, 7, 0, buffer));
            if buffer > 1 {
                // (With buffer 1 only the 3! group orders differ, so seeds may collide.)
                assert_ne!(a, epoch_order(&rows, 7, 1, buffer));
                assert_ne!(a, epoch_order(&rows, 8, 0, buffer));
            }
        }
        // A buffer of 1 keeps rows of a group together and in order.
        let a = epoch_order(&rows, 7, 0, 1);
        assert!(a.windows(2).filter(|w| w[0].group != w[1].group).count() == 2);
        // A full buffer mixes groups from the start.
        let b = epoch_order(&rows, 7, 0, 1000);
        let first_groups: std::collections::HashSet<u32> =
            b[..20].iter().map(|r| r.group).collect();
        assert_eq!(first_groups.len(), 3);
    }
}
