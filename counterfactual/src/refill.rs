//! Donor draws and patch refill on unnormalised uint8 pixels (DESIGN §3: refill happens before
//! CLIP normalisation, so copying bytes is exactly the reference's copy of [0, 1] floats).
//!
//! Donors come from a pool of `n` images (the same batch offline, so that a reader can find them):
//! single fill uses a seeded permutation of the pool (an image may be its own donor, as with the
//! reference's `images[randperm(N)]`); multi fill gives every image its own offset in `1..n` at
//! every patch, so a patch never comes from the image itself (the reference's
//! `randint(1, N, (N, 1, w, w))`: one shift per image *and* patch).

use crate::error::{CounterfactualError, Result};
use crate::rng::SplitMix64;

/// Square images of `image_size` pixels cut into `patch_size` patches, row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchGrid {
    pub image_size: usize,
    pub patch_size: usize,
}

impl PatchGrid {
    pub fn new(image_size: usize, patch_size: usize) -> Result<Self> {
        if patch_size == 0 || image_size == 0 || !image_size.is_multiple_of(patch_size) {
            return Err(CounterfactualError::Input(format!(
                "image size {image_size} is not a positive multiple of the patch size {patch_size}"
            )));
        }
        Ok(PatchGrid {
            image_size,
            patch_size,
        })
    }

    pub fn side(&self) -> usize {
        self.image_size / self.patch_size
    }

    pub fn num_patches(&self) -> usize {
        self.side() * self.side()
    }

    /// Bytes of one RGB image.
    pub fn image_bytes(&self) -> usize {
        3 * self.image_size * self.image_size
    }
}

/// Single-fill donors: a seeded permutation of `0..n` (Fisher–Yates).
pub(crate) fn single_fill_donors(n: usize, rng: &mut SplitMix64) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        perm.swap(i, j);
    }
    perm
}

/// Multi-fill shifts, one per image and patch (image-major: all `p` patches of image 0, then
/// image 1, …), each in `1..n`; the donor of image `i` at patch `j` is `(i + shift[i][j]) % n`.
/// Needs `n >= 2`.
pub(crate) fn multi_fill_shifts(
    n: usize,
    p: usize,
    rng: &mut SplitMix64,
) -> Result<Vec<Vec<usize>>> {
    if n < 2 {
        return Err(CounterfactualError::Input(format!(
            "multi fill needs a donor pool of at least 2 images, got {n}"
        )));
    }
    Ok((0..n)
        .map(|_| {
            (0..p)
                .map(|_| 1 + rng.below(n as u64 - 1) as usize)
                .collect()
        })
        .collect())
}

/// The counterfactual: `original` with every masked patch `j` copied from `donor(j)` at the same
/// position. Images are HWC uint8 RGB of `grid.image_size`²; `mask` has `grid.num_patches()` entries.
pub fn refill<'a>(
    original: &[u8],
    mask: &[bool],
    grid: PatchGrid,
    donor: impl Fn(usize) -> &'a [u8],
) -> Result<Vec<u8>> {
    let (s, ps, side) = (grid.image_size, grid.patch_size, grid.side());
    if original.len() != grid.image_bytes() || mask.len() != grid.num_patches() {
        return Err(CounterfactualError::Input(format!(
            "refill: image of {} bytes and mask of {} patches for a {s}x{s} image in {ps}-pixel patches",
            original.len(),
            mask.len()
        )));
    }
    let mut out = original.to_vec();
    for (j, _) in mask.iter().enumerate().filter(|(_, &m)| m) {
        let src = donor(j);
        if src.len() != out.len() {
            return Err(CounterfactualError::Input(format!(
                "refill: donor of patch {j} has {} bytes, expected {}",
                src.len(),
                out.len()
            )));
        }
        let (py, px) = (j / side, j % side);
        for y in py * ps..(py + 1) * ps {
            let row = 3 * (y * s + px * ps);
            out[row..row + 3 * ps].copy_from_slice(&src[row..row + 3 * ps]);
        }
    }
    Ok(out)
}

/// A stored counterfactual recomposed from clean pixels (compact shards keep the mask and donor
/// ids, not the image): `donors` holds the donors' HWC uint8 images as stored — none (no fill:
/// the image is the original), one (single fill) or one per patch (multi fill) — and the result
/// is exactly what [`refill`] made when the shard was built. The grid is the square one the mask
/// implies (`P` patches of `image_size / sqrt(P)` pixels).
pub fn recompose(
    original: &[u8],
    mask: &[bool],
    donors: &[&[u8]],
    image_size: usize,
) -> Result<Vec<u8>> {
    let p = mask.len();
    let side = (1..=image_size).find(|s| s * s >= p).unwrap_or(0);
    if side == 0 || side * side != p {
        return Err(CounterfactualError::Input(format!(
            "recompose: a mask of {p} patches is not a square grid"
        )));
    }
    let grid = PatchGrid::new(image_size, image_size / side.max(1))?;
    match donors.len() {
        0 => Ok(original.to_vec()),
        1 => refill(original, mask, grid, |_| donors[0]),
        n if n == p => refill(original, mask, grid, |j| donors[j]),
        n => Err(CounterfactualError::Input(format!(
            "recompose: {n} donors for {p} patches (expected 0, 1 or {p})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(grid: PatchGrid, seed: u8) -> Vec<u8> {
        (0..grid.image_bytes())
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn outside_the_mask_is_the_original_inside_is_the_donor() {
        let grid = PatchGrid::new(56, 8).unwrap();
        let (a, b, c) = (image(grid, 1), image(grid, 2), image(grid, 3));
        let mask: Vec<bool> = (0..49).map(|j| j % 3 == 0).collect();
        let single = refill(&a, &mask, grid, |_| &b).unwrap();
        let multi = refill(&a, &mask, grid, |j| if j % 2 == 0 { &b } else { &c }).unwrap();
        for y in 0..56 {
            for x in 0..56 {
                let j = (y / 8) * 7 + x / 8;
                let k = 3 * (y * 56 + x);
                let want_single = if mask[j] { &b } else { &a };
                let want_multi = if !mask[j] {
                    &a
                } else if j % 2 == 0 {
                    &b
                } else {
                    &c
                };
                assert_eq!(single[k..k + 3], want_single[k..k + 3], "pixel ({x}, {y})");
                assert_eq!(multi[k..k + 3], want_multi[k..k + 3], "pixel ({x}, {y})");
            }
        }
        assert_eq!(refill(&a, &[false; 49], grid, |_| &b).unwrap(), a);
        assert!(refill(&a, &[true; 48], grid, |_| &b).is_err());
    }

    #[test]
    fn recompose_equals_refill_for_every_fill() {
        let grid = PatchGrid::new(56, 8).unwrap();
        let (a, b, c) = (image(grid, 1), image(grid, 2), image(grid, 3));
        let mask: Vec<bool> = (0..49).map(|j| j % 4 == 1).collect();
        assert_eq!(recompose(&a, &mask, &[], 56).unwrap(), a);
        assert_eq!(
            recompose(&a, &mask, &[&b], 56).unwrap(),
            refill(&a, &mask, grid, |_| &b).unwrap()
        );
        let per_patch: Vec<&[u8]> = (0..49)
            .map(|j| if j % 2 == 0 { &b[..] } else { &c[..] })
            .collect();
        assert_eq!(
            recompose(&a, &mask, &per_patch, 56).unwrap(),
            refill(&a, &mask, grid, |j| per_patch[j]).unwrap()
        );
        assert!(recompose(&a, &mask, &[&b, &c], 56)
            .unwrap_err()
            .to_string()
            .contains("2 donors"));
        assert!(recompose(&a, &mask[..48], &[&b], 56).is_err());
    }

    #[test]
    fn donors_are_permutations_and_multi_fill_never_uses_the_image_itself() {
        let mut rng = SplitMix64::from_keys(&[3]);
        let mut perm = single_fill_donors(17, &mut rng);
        perm.sort();
        assert_eq!(perm, (0..17).collect::<Vec<_>>());
        for n in 2..12 {
            let shifts = multi_fill_shifts(n, 49, &mut rng).unwrap();
            assert_eq!(shifts.len(), n);
            for (i, row) in shifts.iter().enumerate() {
                assert!(row.len() == 49 && row.iter().all(|s| (i + s) % n != i));
            }
        }
        // Per image and patch (as the reference draws them): with 8 images, some patch has
        // different shifts for different images.
        let shifts = multi_fill_shifts(8, 49, &mut rng).unwrap();
        assert!((0..49).any(|j| shifts.iter().any(|row| row[j] != shifts[0][j])));
        assert!(multi_fill_shifts(1, 49, &mut rng).is_err());
        assert!(PatchGrid::new(50, 8).is_err());
    }
}
