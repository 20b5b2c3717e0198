//! Every (strategy, variant) draw of a builder batch at once, where the batch's pixels are (the
//! GPU in a GPU build): the same masks, donors and refilled bytes as [`crate::draw`]'s per-image
//! host draw, made by a few batched tensor operations instead of a copy loop per image and patch.
//!
//! What comes from seeds alone is drawn on the host exactly as the host draw does (random masks,
//! donor permutations and shifts: a few thousand small integers), then uploaded; what comes from
//! the CAM is computed on the device (object and context masks: `cam > rate` / `cam <= rate` in
//! float32, the host draw's comparison); the refill is one gather of patches over the batch for
//! all draws together. Nothing is read back: the caller downloads the results once per batch.

use tch::{Device, Kind, Tensor};

use crate::error::{CounterfactualError, Result};
use crate::refill::{multi_fill_shifts, single_fill_donors, PatchGrid};
use crate::rng::SplitMix64;
use crate::strategy::{FillKind, MaskKind, Strategy};

/// The draws of one batch: V = number of (strategy, seed) pairs, N images, P patches.
#[derive(Debug)]
pub struct BatchDraws {
    /// [V, N, P] bool on the device (true = masked).
    pub masks: Tensor,
    /// Per draw and image, the batch indices of its donors: one (single fill), one per patch
    /// (multi fill), none (no fill) — as [`crate::draw::CounterfactualDraw::donors`].
    pub donors: Vec<Vec<Vec<usize>>>,
    /// [V, N, S, S, 3] uint8 on the device: the refilled images (no fill: the originals).
    pub images: Tensor,
}

/// Draws `draws` (strategy, seed) over the batch `images` (uint8 [N, S, S, 3] on any device)
/// with its `cams` ([N, P] float32, max-normalised, on the same device; read only by object and
/// context masks), on the patch `grid`. Equal, draw by draw, to [`crate::draw`]'s host draw with
/// the same CAM rows, strategy and seed.
pub fn draw_batch(
    images: &Tensor,
    cams: &Tensor,
    draws: &[(Strategy, u64)],
    grid: PatchGrid,
) -> Result<BatchDraws> {
    let (s, ps, side, p) = (
        grid.image_size as i64,
        grid.patch_size as i64,
        grid.side() as i64,
        grid.num_patches() as i64,
    );
    let n = images.size().first().copied().unwrap_or(0);
    if images.size() != [n, s, s, 3] || images.kind() != Kind::Uint8 {
        return Err(CounterfactualError::Input(format!(
            "batched draw: images must be uint8 [N, {s}, {s}, 3], got {:?} {:?}",
            images.kind(),
            images.size()
        )));
    }
    if cams.size() != [n, p] {
        return Err(CounterfactualError::Input(format!(
            "batched draw: CAMs must be [{n}, {p}], got {:?}",
            cams.size()
        )));
    }
    let device = images.device();
    let nu = n as usize;
    let cams = cams.to_kind(Kind::Float);
    let mut masks = Vec::with_capacity(draws.len());
    let mut refill_masks = Vec::with_capacity(draws.len());
    let mut sources: Vec<i64> = Vec::with_capacity(draws.len() * nu * p as usize);
    let mut donors = Vec::with_capacity(draws.len());
    for &(strategy, seed) in draws {
        let mask = draw_mask(&strategy, &cams, seed, nu, p as usize, device);
        let (d, per_patch) = draw_donors(&strategy, seed, nu, p as usize)?;
        // The patch each output patch is read from, as a row of the [N·P, patch] table (no
        // fill: the image's own).
        for (i, row) in per_patch.iter().enumerate() {
            sources.extend(
                (0..p).map(|j| row.get(j as usize).map_or(i as i64, |&d| d as i64) * p + j),
            );
        }
        refill_masks.push(match strategy.fill {
            FillKind::None => mask.zeros_like(),
            _ => mask.shallow_clone(),
        });
        masks.push(mask);
        donors.push(d);
    }
    let v = draws.len() as i64;
    if draws.is_empty() {
        return Ok(BatchDraws {
            masks: Tensor::zeros([0, n, p], (Kind::Bool, device)),
            donors,
            images: Tensor::zeros([0, n, s, s, 3], (Kind::Uint8, device)),
        });
    }
    // [N, S, S, 3] -> [N·P, ps·ps·3]: patch j of image i is row i·P + j (row-major patches).
    let patches = images
        .view([n, side, ps, side, ps, 3])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([n * p, ps * ps * 3]);
    let from = Tensor::from_slice(&sources).to_device(device);
    let donated = patches.index_select(0, &from).view([v, n, p, ps * ps * 3]);
    let own = patches.view([1, n, p, ps * ps * 3]);
    let refill = Tensor::stack(&refill_masks, 0).unsqueeze(-1);
    let out = donated.where_self(&refill, &own);
    let images = out
        .view([v * n, side, side, ps, ps, 3])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([v, n, s, s, 3]);
    Ok(BatchDraws {
        masks: Tensor::stack(&masks, 0),
        donors,
        images,
    })
}

/// One draw's masks [N, P] bool on `device`: from the CAM on the device (object, context), or
/// from the per-image seeds on the host (random), as [`Strategy::mask`] draws them.
fn draw_mask(
    strategy: &Strategy,
    cams: &Tensor,
    seed: u64,
    n: usize,
    p: usize,
    device: Device,
) -> Tensor {
    // The host draw compares f32 CAM values with the rate as f32; this f64 holds that f32 value
    // exactly, so the float32 comparison on the device is the same.
    let t = f64::from(strategy.rate as f32);
    match strategy.mask {
        MaskKind::Object => cams.gt(t),
        MaskKind::Context => cams.le(t),
        MaskKind::Random => {
            let zeros = vec![0f32; p];
            let flat: Vec<bool> = (0..n)
                .flat_map(|i| strategy.mask(&zeros, &mut SplitMix64::from_keys(&[seed, i as u64])))
                .collect();
            Tensor::from_slice(&flat)
                .view([n as i64, p as i64])
                .to_device(device)
        }
    }
}

/// One draw's donors: (as stored, per image; per image and patch).
#[allow(clippy::type_complexity)]
fn draw_donors(
    strategy: &Strategy,
    seed: u64,
    n: usize,
    p: usize,
) -> Result<(Vec<Vec<usize>>, Vec<Vec<usize>>)> {
    let mut rng = SplitMix64::from_keys(&[seed]);
    Ok(match strategy.fill {
        FillKind::Single => {
            let perm = single_fill_donors(n, &mut rng);
            (
                perm.iter().map(|&d| vec![d]).collect(),
                perm.iter().map(|&d| vec![d; p]).collect(),
            )
        }
        FillKind::Multi => {
            let donors: Vec<Vec<usize>> = multi_fill_shifts(n, p, &mut rng)?
                .iter()
                .enumerate()
                .map(|(i, row)| row.iter().map(|s| (i + s) % n).collect())
                .collect();
            (donors.clone(), donors)
        }
        FillKind::None => (vec![Vec::new(); n], vec![Vec::new(); n]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draw::draw_counterfactuals;

    /// Pseudo-random pixels and CAMs of `n` images with ties at the threshold values.
    fn batch(n: usize, grid: PatchGrid) -> (Vec<Vec<u8>>, Vec<Vec<f32>>) {
        let mut rng = SplitMix64::from_keys(&[99]);
        let images = (0..n)
            .map(|_| {
                (0..grid.image_bytes())
                    .map(|_| rng.below(256) as u8)
                    .collect()
            })
            .collect();
        let cams = (0..n)
            .map(|_| {
                (0..grid.num_patches())
                    .map(|j| match j % 7 {
                        0 => 0.3f32,
                        1 => 0.5,
                        2 => 1.0,
                        _ => rng.below(1 << 20) as f32 / (1 << 20) as f32,
                    })
                    .collect()
            })
            .collect();
        (images, cams)
    }

    #[test]
    fn every_strategy_gives_the_host_draws_bytes() {
        let grid = PatchGrid::new(56, 8).unwrap();
        let n = 6;
        let (images, cams) = batch(n, grid);
        let draws: Vec<(Strategy, u64)> = Strategy::reference_defaults()
            .into_iter()
            .flat_map(|s| [(s, 7), (s, 1234)])
            .collect();
        let flat: Vec<u8> = images.iter().flatten().copied().collect();
        let x = Tensor::from_slice(&flat).view([n as i64, 56, 56, 3]);
        let c = Tensor::from_slice(&cams.iter().flatten().copied().collect::<Vec<f32>>())
            .view([n as i64, 49]);
        let got = draw_batch(&x, &c, &draws, grid).unwrap();
        assert_eq!(got.images.size(), [draws.len() as i64, n as i64, 56, 56, 3]);
        for (v, &(strategy, seed)) in draws.iter().enumerate() {
            let want = draw_counterfactuals(&images, &cams, &strategy, seed, grid).unwrap();
            let masks: Vec<bool> = Vec::try_from(got.masks.get(v as i64).reshape([-1])).unwrap();
            assert_eq!(
                masks,
                want.masks.concat(),
                "{strategy} seed {seed}: masks differ"
            );
            assert_eq!(got.donors[v], want.donors, "{strategy} seed {seed}: donors");
            let pixels: Vec<u8> = Vec::try_from(got.images.get(v as i64).reshape([-1])).unwrap();
            assert!(
                pixels == want.images.concat(),
                "{strategy} seed {seed}: refilled bytes differ"
            );
        }
        // No draws: empty results of the right shape.
        let none = draw_batch(&x, &c, &[], grid).unwrap();
        assert_eq!(none.images.size(), [0, n as i64, 56, 56, 3]);
        assert_eq!(none.masks.size(), [0, n as i64, 49]);
        // Shapes are checked.
        assert!(draw_batch(&x.to_kind(Kind::Float), &c, &draws, grid).is_err());
        assert!(draw_batch(&x, &c.narrow(1, 0, 10), &draws, grid).is_err());
        // Multi fill needs two images in the pool.
        let one = draw_batch(&x.narrow(0, 0, 1), &c.narrow(0, 0, 1), &draws, grid);
        assert!(one.is_err());
    }
}
