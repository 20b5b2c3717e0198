//! One draw of counterfactuals for a batch: per-image masks from the CAM, donors from the batch,
//! refilled images, and the no-fill key mask. The offline builder and the trainer's online mode
//! both call this, so for the same CAM, images, strategy and seed they produce the same samples.
//!
//! Seeding: `seed` drives the donor draw (single fill: a permutation; multi fill: a shift per
//! image and patch) and image `i`'s random mask uses `hash(seed, i)`.

use tch::{Device, Tensor};

/// Version of the draw semantics (masks, donors, refill) for a given CAM, strategy and seed,
/// recorded in counterfactual shards so that shards of different semantics are told apart:
/// * 1: Bernoulli masks for `RandMaskNoFill`, one multi-fill shift per patch for the batch;
///   GradCAM on the last block's `layer_norm1` input, averaged over patch tokens.
/// * 2 (the reference's, Coxy7/robust-finetuning `utils/masking.py`): `RandMaskNoFill(r)` keeps
///   exactly `int(P·(1 − r))` patches; multi fill draws a shift per image and patch; GradCAM on
///   the `ln_1` output with gradients summed over all tokens.
pub const DRAW_VERSION: u32 = 2;

use crate::error::{CounterfactualError, Result};
use crate::refill::{multi_fill_shifts, refill, single_fill_donors, PatchGrid};
use crate::rng::SplitMix64;
use crate::strategy::{FillKind, Strategy};

/// Counterfactuals of a batch of `n` images.
#[derive(Debug, Clone, PartialEq)]
pub struct CounterfactualDraw {
    /// Per image, one flag per patch (true = masked).
    pub masks: Vec<Vec<bool>>,
    /// Per image, the batch indices of its donors: one (single fill), one per patch (multi
    /// fill), none (no fill).
    pub donors: Vec<Vec<usize>>,
    /// Refilled HWC uint8 images (no fill: the originals; the mask is applied in the model).
    pub images: Vec<Vec<u8>>,
}

/// Draws one counterfactual per image. `images`: HWC uint8 of `grid.image_size`²; `cams`: [P]
/// max-normalised scores per image (unused by random masks).
pub(crate) fn draw_counterfactuals(
    images: &[Vec<u8>],
    cams: &[Vec<f32>],
    strategy: &Strategy,
    seed: u64,
    grid: PatchGrid,
) -> Result<CounterfactualDraw> {
    let n = images.len();
    if cams.len() != n {
        return Err(CounterfactualError::Input(format!(
            "draw_counterfactuals: {n} images but {} CAMs",
            cams.len()
        )));
    }
    let masks: Vec<Vec<bool>> = (0..n)
        .map(|i| strategy.mask(&cams[i], &mut SplitMix64::from_keys(&[seed, i as u64])))
        .collect();
    let mut rng = SplitMix64::from_keys(&[seed]);
    let (images, donors) = match strategy.fill {
        FillKind::Single => {
            let perm = single_fill_donors(n, &mut rng);
            let imgs = (0..n)
                .map(|i| refill(&images[i], &masks[i], grid, |_| &images[perm[i]]))
                .collect::<Result<Vec<_>>>()?;
            (imgs, perm.into_iter().map(|d| vec![d]).collect())
        }
        FillKind::Multi => {
            // Image i's patch j comes from (i + shift[i][j]) % n: a shift per image and patch.
            let shifts = multi_fill_shifts(n, grid.num_patches(), &mut rng)?;
            let donors: Vec<Vec<usize>> = shifts
                .iter()
                .enumerate()
                .map(|(i, row)| row.iter().map(|s| (i + s) % n).collect())
                .collect();
            let imgs = (0..n)
                .map(|i| refill(&images[i], &masks[i], grid, |j| &images[donors[i][j]]))
                .collect::<Result<Vec<_>>>()?;
            (imgs, donors)
        }
        FillKind::None => (images.to_vec(), vec![Vec::new(); n]),
    };
    Ok(CounterfactualDraw {
        masks,
        donors,
        images,
    })
}

/// Masks as the [N, P] bool tensor that `VisionForward::key_mask` takes (no-fill strategies:
/// masked keys are hidden in every block, which for the class token equals dropping them).
pub fn key_mask_tensor(masks: &[Vec<bool>], device: Device) -> Result<Tensor> {
    let p = masks.first().map(Vec::len).unwrap_or(0);
    if masks.iter().any(|m| m.len() != p) {
        return Err(CounterfactualError::Input(
            "key mask: every image needs the same number of patches".into(),
        ));
    }
    let flat: Vec<bool> = masks.iter().flatten().copied().collect();
    Ok(Tensor::from_slice(&flat)
        .view([masks.len() as i64, p as i64])
        .to_device(device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::MaskKind;

    #[test]
    fn draws_follow_the_seed_and_the_strategy() {
        let grid = PatchGrid::new(56, 8).unwrap();
        let images: Vec<Vec<u8>> = (0..5u8).map(|k| vec![k * 40; grid.image_bytes()]).collect();
        let cams: Vec<Vec<f32>> = (0..5)
            .map(|k| (0..49).map(|j| ((j * 7 + k) % 49) as f32 / 48.0).collect())
            .collect();
        let single = Strategy::new(MaskKind::Object, FillKind::Single, 0.3).unwrap();
        let a = draw_counterfactuals(&images, &cams, &single, 11, grid).unwrap();
        assert_eq!(
            a,
            draw_counterfactuals(&images, &cams, &single, 11, grid).unwrap()
        );
        for (i, cam) in cams.iter().enumerate() {
            // Object mask = CAM above the threshold; masked patches come from the donor.
            let want: Vec<bool> = cam.iter().map(|&c| c > 0.3).collect();
            assert_eq!(a.masks[i], want);
            let d = a.donors[i][0];
            let j = a.masks[i].iter().position(|&m| m).unwrap();
            let (py, px) = (j / 7, j % 7);
            assert_eq!(a.images[i][3 * (py * 8 * 56 + px * 8)], images[d][0]);
        }
        let multi = Strategy::new(MaskKind::Random, FillKind::Multi, 0.5).unwrap();
        let m = draw_counterfactuals(&images, &cams, &multi, 11, grid).unwrap();
        assert!(m
            .donors
            .iter()
            .enumerate()
            .all(|(i, d)| d.len() == 49 && !d.contains(&i)));
        // The reference draws a donor shift per image and patch: at some patch, two images are
        // shifted differently (a shared shift would make donor - image the same for all).
        let shift = |i: usize, j: usize| (m.donors[i][j] + 5 - i) % 5;
        assert!((0..49).any(|j| (1..5).any(|i| shift(i, j) != shift(0, j))));
        assert_ne!(
            m.masks,
            draw_counterfactuals(&images, &cams, &multi, 12, grid)
                .unwrap()
                .masks
        );
        let none = Strategy::new(MaskKind::Context, FillKind::None, 0.6).unwrap();
        let z = draw_counterfactuals(&images, &cams, &none, 11, grid).unwrap();
        assert_eq!(z.images, images);
        let km = key_mask_tensor(&z.masks, Device::Cpu).unwrap();
        assert_eq!(km.size(), [5, 49]);
        assert!(draw_counterfactuals(&images, &cams[..4], &single, 1, grid).is_err());
    }
}
