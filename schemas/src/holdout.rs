//! Which rows of a split are held out for validation: stratified by class as the reference's
//! `train_test_split(stratify=labels)` is, and keyed by each row's stable identity (its `id`, the
//! source file's path, stored alike in clean and counterfactual rows), so every method trained on
//! the same images — FT on clean shards, masked FD on counterfactual shards — holds out the same
//! rows, whatever order or row groups the shards have. `cfkit prepare --holdout` writes the
//! hold-out as a split of its own; `[data] val_holdout` of a training run draws it at run time.
//!
//! Quotas: class `c` of `n_c` rows gets `n * n_c / N` rows, rounded by largest remainder so that
//! the total is exactly `n` (ties: the lower class). Within a class the rows with the smallest
//! keys `blake3(seed, "cfkit.holdout", id)` are held out.

/// The key that orders a row within its class.
fn key(seed: u64, id: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.update(b"cfkit.holdout\0");
    h.update(id.as_bytes());
    *h.finalize().as_bytes()
}

/// Per class, how many rows to hold out of `counts[c]` for `n` in all (largest remainder).
pub fn quotas(counts: &[usize], n: usize) -> Vec<usize> {
    let total: usize = counts.iter().sum();
    let n = n.min(total);
    if total == 0 {
        return vec![0; counts.len()];
    }
    let mut quota: Vec<usize> = counts.iter().map(|&c| c * n / total).collect();
    let mut rem: Vec<(usize, usize)> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| ((c * n) % total, i))
        .collect();
    rem.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let short = n - quota.iter().sum::<usize>();
    for &(_, i) in rem.iter().take(short) {
        quota[i] += 1;
    }
    quota
}

/// For rows `(id, label)` (labels in `0..num_classes`), whether each is held out: `n` rows in
/// all, stratified, chosen by `seed` (see the module docs). The answer for a row depends only on
/// the ids and labels of the split, never on their order.
pub fn held_out(rows: &[(&str, usize)], num_classes: usize, n: usize, seed: u64) -> Vec<bool> {
    let mut by_class: Vec<Vec<([u8; 32], usize)>> = vec![Vec::new(); num_classes];
    for (i, &(id, label)) in rows.iter().enumerate() {
        by_class[label].push((key(seed, id), i));
    }
    let counts: Vec<usize> = by_class.iter().map(Vec::len).collect();
    let mut out = vec![false; rows.len()];
    for (members, q) in by_class.iter_mut().zip(quotas(&counts, n)) {
        members.sort_unstable();
        for &(_, i) in members.iter().take(q) {
            out[i] = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, classes: usize) -> Vec<(String, usize)> {
        (0..n)
            .map(|i| {
                (
                    format!("c{}/img{i:05}.jpg", i % classes),
                    (i * 7 % 11) % classes,
                )
            })
            .collect()
    }

    #[test]
    fn stratified_exact_and_independent_of_order() {
        let r = rows(387, 5);
        let refs: Vec<(&str, usize)> = r.iter().map(|(id, l)| (id.as_str(), *l)).collect();
        let held = held_out(&refs, 5, 60, 3);
        assert_eq!(held.iter().filter(|h| **h).count(), 60);
        for c in 0..5 {
            let n_c = refs.iter().filter(|r| r.1 == c).count() as f64;
            let v_c = refs
                .iter()
                .zip(&held)
                .filter(|(r, h)| r.1 == c && **h)
                .count() as f64;
            assert!((v_c - 60.0 * n_c / 387.0).abs() < 1.0, "class {c}: {v_c}");
        }
        // Reversed order: the same ids are held out.
        let rev: Vec<(&str, usize)> = refs.iter().rev().copied().collect();
        let held_rev = held_out(&rev, 5, 60, 3);
        let ids = |rs: &[(&str, usize)], h: &[bool]| -> std::collections::BTreeSet<String> {
            rs.iter()
                .zip(h)
                .filter(|(_, h)| **h)
                .map(|(r, _)| r.0.to_string())
                .collect()
        };
        assert_eq!(ids(&refs, &held), ids(&rev, &held_rev));
        // Seeded.
        assert_eq!(held_out(&refs, 5, 60, 3), held);
        assert_ne!(held_out(&refs, 5, 60, 4), held);
    }

    #[test]
    fn quotas_sum_exactly() {
        assert_eq!(quotas(&[10, 10, 10], 10), vec![4, 3, 3]);
        assert_eq!(quotas(&[1, 0, 99], 5), vec![0, 0, 5]);
        assert_eq!(quotas(&[3, 3], 100), vec![3, 3]);
        assert_eq!(quotas(&[], 5), Vec::<usize>::new());
    }
}
