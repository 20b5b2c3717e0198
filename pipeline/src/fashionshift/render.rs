//! Drawing one FashionShift image: placement, palette, the renderings, compositing. (Which pixels
//! are garment is `shape.rs`; background textures are `backgrounds.rs`.)
//!
//! Contrast rule: each image is either a *light* background with a dark garment or a *dark*
//! background with a light garment (a fair coin). Background colours stay in their value band and
//! the garment in the other, so the garment is always visible while hue, saturation and texture
//! vary freely. Colour value bands below are HSV values chosen on contact sheets: background light
//! band 0.75-0.97 (its second colour 0.12-0.25 darker), dark band 0.08-0.30 (second colour
//! 0.12-0.25 lighter); garment shades 0.05-0.42 on light, 0.55-1.0 on dark backgrounds.

use super::backgrounds;
use super::shape;
use cfkit_counterfactual::rng::SplitMix64;

/// How the garment is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rendering {
    /// Tinted with a random colour, shaded by the garment's own grey levels (the ID rendering).
    Photo,
    /// Outline drawing: thresholded Sobel edges of the garment as lines, no fill.
    Sketch,
    /// Flat single-colour fill of the garment's shape.
    Silhouette,
    /// Colour negative of a photo rendering (shading and hue inverted).
    Negative,
    /// Photo rendering averaged over 2-3 pixel blocks (of a 56-pixel canvas).
    Pixelated,
}

impl Rendering {
    /// Every rendering.
    pub(crate) const ALL: [Rendering; 5] = [
        Rendering::Photo,
        Rendering::Sketch,
        Rendering::Silhouette,
        Rendering::Negative,
        Rendering::Pixelated,
    ];

    /// Lower-case name (`photo`, `sketch`, `silhouette`, `negative`, `pixelated`).
    pub fn name(self) -> &'static str {
        match self {
            Rendering::Photo => "photo",
            Rendering::Sketch => "sketch",
            Rendering::Silhouette => "silhouette",
            Rendering::Negative => "negative",
            Rendering::Pixelated => "pixelated",
        }
    }
}

/// Where the garment's square box sits on the canvas (pixels), and whether it is mirrored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub x: u32,
    pub y: u32,
    /// Side of the square box the 28x28 garment is scaled to.
    pub size: u32,
    /// Mirrored left-right.
    pub flipped: bool,
}

/// Nuisance parameters of a split (ranges are `(lo, hi)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Nuisance {
    /// Garment box side as a fraction of the canvas side.
    pub size_frac: (f64, f64),
    /// HSV saturation of the background colours.
    pub bg_saturation: (f64, f64),
    /// HSV saturation of the garment colour.
    pub garment_saturation: (f64, f64),
    /// Multiplier of every texture length.
    pub texture_scale: f64,
}

impl Default for Nuisance {
    /// The ID look: garment 30-44 px of 56 (54-79 %, so it always fits with room to move).
    fn default() -> Self {
        Self {
            size_frac: (30.0 / 56.0, 44.0 / 56.0),
            bg_saturation: (0.15, 0.6),
            garment_saturation: (0.2, 0.8),
            texture_scale: 1.0,
        }
    }
}

impl Nuisance {
    /// The `ood-near` look (a re-sampled near-ID set, like ImageNet-V2): smaller garments
    /// (26-40 px), more saturated colours, textures 10 % coarser. Overlaps the ID ranges.
    pub(super) fn near() -> Self {
        Self {
            size_frac: (26.0 / 56.0, 40.0 / 56.0),
            bg_saturation: (0.35, 0.8),
            garment_saturation: (0.5, 1.0),
            texture_scale: 1.1,
        }
    }
}

/// HSV (all in `[0, 1]`, hue wrapping) to RGB in `[0, 1]` (the standard hexcone model).
pub(super) fn hsv_to_rgb(h: f64, s: f64, v: f64) -> [f64; 3] {
    let h6 = h.rem_euclid(1.0) * 6.0;
    let f = h6 - h6.floor();
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match h6 as u32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// Draws the placement of a garment on a `canvas`-pixel square.
pub(super) fn draw_placement(n: &Nuisance, canvas: u32, rng: &mut SplitMix64) -> Placement {
    let lo = ((n.size_frac.0 * f64::from(canvas)).round() as u32).clamp(1, canvas);
    let hi = ((n.size_frac.1 * f64::from(canvas)).round() as u32).clamp(lo, canvas);
    let size = rng.range_inclusive(lo, hi);
    let x = rng.range_inclusive(0, canvas - size);
    let y = rng.range_inclusive(0, canvas - size);
    Placement {
        x,
        y,
        size,
        flipped: rng.chance(0.5),
    }
}

/// Renders a sample: returns the `canvas x canvas x 3` RGB8 pixels and the garment mask (shape
/// alpha > 0.5). Draws, in order: brightness side, background palette and pattern, garment colour.
pub(super) fn render(
    garment: &[u8],
    family: u8,
    rendering: Rendering,
    place: &Placement,
    n: &Nuisance,
    canvas: u32,
    rng: &mut SplitMix64,
) -> (Vec<u8>, Vec<bool>) {
    let s = canvas as usize;
    let light = rng.chance(0.5);
    // Background: two colours of nearby value in the chosen band, hues up to 0.35 turns apart.
    let (h0, sat0) = (
        rng.unit(),
        rng.uniform(n.bg_saturation.0, n.bg_saturation.1),
    );
    let (h1, sat1) = (
        h0 + rng.uniform(-0.35, 0.35),
        rng.uniform(n.bg_saturation.0, n.bg_saturation.1),
    );
    let (v0, dv) = if light {
        (rng.uniform(0.75, 0.97), -rng.uniform(0.12, 0.25))
    } else {
        (rng.uniform(0.08, 0.30), rng.uniform(0.12, 0.25))
    };
    let (c0, c1) = (hsv_to_rgb(h0, sat0, v0), hsv_to_rgb(h1, sat1, v0 + dv));
    let mut field = vec![0f32; s * s];
    backgrounds::pattern(family, rng, s, n.texture_scale, &mut field);
    let mut rgb: Vec<[f32; 3]> = field
        .iter()
        .map(|&t| {
            let t = f64::from(t);
            [0, 1, 2].map(|k| (c0[k] * (1.0 - t) + c1[k] * t) as f32)
        })
        .collect();

    // Garment colour; its value runs from `lo` (darkest garment grey) to `hi` (brightest).
    let (gh, gs) = (
        rng.unit(),
        rng.uniform(n.garment_saturation.0, n.garment_saturation.1),
    );
    let (lo, hi) = if light { (0.05, 0.42) } else { (0.55, 1.0) };
    let block = ((rng.range_inclusive(2, 3) * canvas) as f64 / 56.0)
        .round()
        .max(2.0) as usize;

    // The garment's grey levels and shape, scaled to its box.
    let b = place.size as usize;
    let (grey, shape) = shape::scale_garment(garment, b, place.flipped);
    let photo = |g: f32, lo: f64, hi: f64| {
        hsv_to_rgb(gh, gs, lo + (hi - lo) * f64::from(g)).map(|c| c as f32)
    };

    // Per-pixel garment colour and opacity in the box; `mask_alpha` decides the object mask.
    let mut colour = vec![[0f32; 3]; b * b];
    let mut draw = shape.clone();
    match rendering {
        Rendering::Photo => (0..b * b).for_each(|i| colour[i] = photo(grey[i], lo, hi)),
        Rendering::Silhouette => colour.fill(photo(1.0, lo, hi)),
        Rendering::Negative => {
            // Photo for the opposite band, inverted: lands back in this image's garment band.
            let (olo, ohi) = if light { (0.55, 1.0) } else { (0.05, 0.42) };
            (0..b * b).for_each(|i| colour[i] = photo(grey[i], olo, ohi).map(|c| 1.0 - c));
        }
        Rendering::Sketch => {
            let (es, eg) = (shape::sobel(&shape, b), shape::sobel(&grey, b));
            let ink = if light {
                hsv_to_rgb(gh, gs * 0.5, 0.08)
            } else {
                hsv_to_rgb(gh, gs * 0.3, 0.97)
            };
            colour.fill(ink.map(|c| c as f32));
            (0..b * b).for_each(|i| draw[i] = shape::sketch_line(es[i], eg[i]));
        }
        Rendering::Pixelated => {
            for i in 0..b * b {
                colour[i] = photo(grey[i], lo, hi);
            }
            for by in (0..b).step_by(block) {
                for bx in (0..b).step_by(block) {
                    let cells: Vec<usize> = (by..(by + block).min(b))
                        .flat_map(|y| (bx..(bx + block).min(b)).map(move |x| y * b + x))
                        .collect();
                    let a: f32 = cells.iter().map(|&i| shape[i]).sum::<f32>();
                    let mut c = [0f32; 3];
                    cells
                        .iter()
                        .for_each(|&i| (0..3).for_each(|k| c[k] += colour[i][k] * shape[i]));
                    let c = if a > 0.0 { c.map(|v| v / a) } else { c };
                    let a = a / cells.len() as f32;
                    cells.iter().for_each(|&i| (colour[i], draw[i]) = (c, a));
                }
            }
        }
    }
    let mask_alpha = if rendering == Rendering::Sketch {
        &shape
    } else {
        &draw
    };

    let mut mask = vec![false; s * s];
    for i in 0..b * b {
        let (cx, cy) = (place.x as usize + i % b, place.y as usize + i / b);
        let j = cy * s + cx;
        let a = draw[i];
        rgb[j] = [0, 1, 2].map(|k| rgb[j][k] * (1.0 - a) + colour[i][k] * a);
        mask[j] = mask_alpha[i] > 0.5;
    }
    let pixels = rgb
        .iter()
        .flat_map(|c| c.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8))
        .collect();
    (pixels, mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_primaries() {
        assert_eq!(hsv_to_rgb(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]);
        assert_eq!(hsv_to_rgb(1.0 / 3.0, 1.0, 1.0), [0.0, 1.0, 0.0]);
        assert_eq!(hsv_to_rgb(0.5, 0.0, 0.5), [0.5, 0.5, 0.5]);
    }

    #[test]
    fn placement_fits_the_canvas() {
        let mut rng = SplitMix64::from_keys(&[9]);
        for n in [Nuisance::default(), Nuisance::near()] {
            for _ in 0..1000 {
                let p = draw_placement(&n, 56, &mut rng);
                assert!(p.x + p.size <= 56 && p.y + p.size <= 56);
                assert!((26..=44).contains(&p.size));
            }
        }
    }
}
