//! The garment's shape and its scaling: which Fashion-MNIST pixels are garment, bilinear scaling
//! to the garment's box, and the Sobel edges that sketches are drawn from.

use super::idx::{PIXELS, SIDE};

/// Grey level below which a Fashion-MNIST pixel may be background (out of 255). FMNIST backgrounds
/// are 0 with faint noise up to about 10 (JPEG-like halos, faint strips of the product photo's
/// backdrop), while dark garments (white products, negated by FMNIST) can be as faint as 8-30;
/// 8 keeps almost all dark garments whole (checked on contact sheets of the faintest test images).
const BACKGROUND_LEVEL: u8 = 8;
/// Enclosed dark regions up to this many pixels (of 28x28) are dark parts of the garment and are
/// filled; larger ones are real holes (bag handles, gaps between trouser legs) and stay open.
/// (This and the next value were chosen by eye on contact sheets of test garments.)
const MAX_FILLED_HOLE: usize = 12;
/// Foreground specks smaller than this many pixels (8-connected) are backdrop noise, not garment.
const MIN_GARMENT_PART: usize = 8;

/// Connected components of the pixels where `member` holds (4- or 8-connected), as index lists.
fn components(member: &dyn Fn(usize) -> bool, eight: bool) -> Vec<Vec<usize>> {
    let mut seen = vec![false; PIXELS];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for start in 0..PIXELS {
        if seen[start] || !member(start) {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut comp = Vec::new();
        while let Some(i) = stack.pop() {
            comp.push(i);
            let (x, y) = ((i % SIDE) as isize, (i / SIDE) as isize);
            for (dx, dy) in [
                (-1, 0),
                (1, 0),
                (0, -1),
                (0, 1),
                (-1, -1),
                (1, -1),
                (-1, 1),
                (1, 1),
            ] {
                if !eight && dx != 0 && dy != 0 {
                    continue;
                }
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= SIDE as isize || ny >= SIDE as isize {
                    continue;
                }
                let j = ny as usize * SIDE + nx as usize;
                if !seen[j] && member(j) {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        out.push(comp);
    }
    out
}

/// The garment's shape on the 28x28 grid: 1 on the garment, 0 elsewhere. Background is every dark
/// pixel (< [`BACKGROUND_LEVEL`]) 4-connected to the border or in an enclosed dark region larger
/// than [`MAX_FILLED_HOLE`], plus bright specks (8-connected) smaller than [`MIN_GARMENT_PART`].
/// (4- and 8-connectivity for the two phases is the usual dual pair of digital topology.) Edges
/// are anti-aliased later by bilinear scaling.
pub(super) fn garment_alpha(img: &[u8]) -> Vec<f32> {
    assert_eq!(img.len(), PIXELS);
    let mut is_bg = vec![false; PIXELS];
    for comp in components(&|i| img[i] < BACKGROUND_LEVEL, false) {
        let touches_border = comp.iter().any(|&i| {
            let (x, y) = (i % SIDE, i / SIDE);
            x == 0 || y == 0 || x == SIDE - 1 || y == SIDE - 1
        });
        if touches_border || comp.len() > MAX_FILLED_HOLE {
            comp.into_iter().for_each(|i| is_bg[i] = true);
        }
    }
    let fg = is_bg.clone();
    for comp in components(&|i| !fg[i], true) {
        if comp.len() < MIN_GARMENT_PART {
            comp.into_iter().for_each(|i| is_bg[i] = true);
        }
    }
    is_bg.iter().map(|&b| if b { 0.0 } else { 1.0 }).collect()
}

/// Bilinear sample of a 28x28 field at continuous coordinates (pixel centres at `k + 0.5`), zero
/// outside the grid (Fashion-MNIST's own background is 0).
fn bilinear(f: &[f32], x: f64, y: f64) -> f32 {
    let (x, y) = (x - 0.5, y - 0.5);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = ((x - x0) as f32, (y - y0) as f32);
    let at = |xi: f64, yi: f64| -> f32 {
        if xi < 0.0 || yi < 0.0 || xi >= SIDE as f64 || yi >= SIDE as f64 {
            0.0
        } else {
            f[yi as usize * SIDE + xi as usize]
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Scales a 28x28 Fashion-MNIST garment to a `box_side`-pixel square (bilinear, pixel centres
/// aligned, optionally mirrored left-right): returns its grey levels in `[0, 1]` and its shape
/// alpha (see [`garment_alpha`]), each `box_side * box_side`, row-major.
pub(super) fn scale_garment(
    garment: &[u8],
    box_side: usize,
    flipped: bool,
) -> (Vec<f32>, Vec<f32>) {
    let alpha28 = garment_alpha(garment);
    let grey28: Vec<f32> = garment.iter().map(|&v| f32::from(v) / 255.0).collect();
    let b = box_side;
    let k = SIDE as f64 / b as f64;
    let mut grey = vec![0f32; b * b];
    let mut shape = vec![0f32; b * b];
    for i in 0..b * b {
        let (bx, by) = (i % b, i / b);
        let bx = if flipped { b - 1 - bx } else { bx };
        let (sx, sy) = ((bx as f64 + 0.5) * k, (by as f64 + 0.5) * k);
        grey[i] = bilinear(&grey28, sx, sy);
        shape[i] = bilinear(&alpha28, sx, sy).clamp(0.0, 1.0);
    }
    (grey, shape)
}

/// 3x3 Sobel gradient magnitude of an `n x n` field (zero padding), divided by 4 so that a unit
/// step edge scores 1.
pub(super) fn sobel(f: &[f32], n: usize) -> Vec<f32> {
    let at = |x: isize, y: isize| {
        if x < 0 || y < 0 || x >= n as isize || y >= n as isize {
            0.0
        } else {
            f[y as usize * n + x as usize]
        }
    };
    (0..n * n)
        .map(|i| {
            let (x, y) = ((i % n) as isize, (i / n) as isize);
            let gx = at(x + 1, y - 1) + 2.0 * at(x + 1, y) + at(x + 1, y + 1)
                - at(x - 1, y - 1)
                - 2.0 * at(x - 1, y)
                - at(x - 1, y + 1);
            let gy = at(x - 1, y + 1) + 2.0 * at(x, y + 1) + at(x + 1, y + 1)
                - at(x - 1, y - 1)
                - 2.0 * at(x, y - 1)
                - at(x + 1, y - 1);
            (gx * gx + gy * gy).sqrt() / 4.0
        })
        .collect()
}

/// Sketch line strength from edge magnitudes: outline edges (shape) count fully, interior grey
/// edges twice (they are fainter); lines start at magnitude 0.25 and are solid from 0.5.
pub(super) fn sketch_line(shape_edge: f32, grey_edge: f32) -> f32 {
    ((shape_edge.max(2.0 * grey_edge) - 0.25) / 0.25).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_holes_are_filled_large_ones_stay_open() {
        // A 10x10 ring with a 2x2 dark centre (filled) and a 20x20 ring with a 16x16 hole (open).
        let mut img = vec![0u8; PIXELS];
        for y in 2..26 {
            for x in 2..26 {
                let inner = (4..24).contains(&x) && (4..24).contains(&y);
                img[y * SIDE + x] = if inner { 0 } else { 200 };
            }
        }
        let a = garment_alpha(&img);
        assert_eq!(a[0], 0.0);
        assert_eq!(a[2 * SIDE + 2], 1.0);
        assert_eq!(a[14 * SIDE + 14], 0.0, "a 400-pixel hole is a real hole");
        let mut small = vec![0u8; PIXELS];
        for y in 10..14 {
            for x in 10..14 {
                small[y * SIDE + x] = if (11..13).contains(&x) && (11..13).contains(&y) {
                    0
                } else {
                    90
                };
            }
        }
        let a = garment_alpha(&small);
        assert_eq!(
            a[11 * SIDE + 11],
            1.0,
            "a 4-pixel hole is part of the garment"
        );
        // Faint backdrop noise: a 3-pixel speck is dropped, a diagonal 8-pixel strap is kept.
        let mut specks = small.clone();
        (0..3).for_each(|k| specks[20 * SIDE + 3 + k] = 40);
        (0..8).for_each(|k| specks[(16 + k) * SIDE + 16 + k] = 40);
        let a = garment_alpha(&specks);
        assert_eq!(a[20 * SIDE + 4], 0.0);
        assert_eq!(a[19 * SIDE + 19], 1.0);
        assert_eq!(a[11 * SIDE + 11], 1.0);
    }

    #[test]
    fn every_real_garment_has_a_solid_shape() {
        let fm = super::super::tests::fmnist();
        let mut areas: Vec<usize> = (0..super::super::Part::Test.num_garments())
            .map(|i| {
                let a = garment_alpha(fm.image(super::super::Part::Test, i));
                a.iter().filter(|&&v| v > 0.5).count()
            })
            .collect();
        areas.sort_unstable();
        // Fashion-MNIST garments cover about half of the 28x28 frame; the thinnest (sandals,
        // narrow trousers) still cover dozens of pixels.
        assert!(
            areas[0] >= 40,
            "smallest garment shape: {} pixels",
            areas[0]
        );
        assert!(
            areas[areas.len() / 2] >= 300,
            "median: {}",
            areas[areas.len() / 2]
        );
    }
}
