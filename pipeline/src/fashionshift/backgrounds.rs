//! Procedural background texture families: the spurious cue of FashionShift.
//!
//! A background is a scalar pattern field `t(x, y)` in `[0, 1]` from one of [`NUM_FAMILIES`]
//! families, coloured by blending two palette colours (`(1 - t) * c0 + t * c1`). Family identity is
//! carried by the *geometry* of the pattern only: colours are drawn independently of the family
//! (see `render::background_palette`), so a model can only learn the family from texture.
//!
//! Every family has random parameters (orientation, period, phase, centre, ...) so there is variety
//! within a family. Lengths are given in pixels of the reference 56-pixel canvas and scaled by
//! `size / 56` for other canvas sizes; the ranges were chosen by eye on contact sheets so that the
//! texture has several periods inside an 8x8 ViT patch neighbourhood (so a patch shows its family)
//! and the families stay apart (for example wave amplitudes are large enough not to look like
//! straight stripes).

use std::f64::consts::{PI, TAU};

use cfkit_counterfactual::rng::{mix64, SplitMix64};

/// Number of background families (one per Fashion-MNIST class).
pub const NUM_FAMILIES: usize = 10;

/// Names of the families, indexed by family id.
pub const FAMILY_NAMES: [&str; NUM_FAMILIES] = [
    "stripes",
    "checkerboard",
    "polka-dots",
    "clouds",
    "gradient",
    "rings",
    "waves",
    "grid",
    "bricks",
    "marble",
];

/// The reference canvas side that the length ranges below are expressed in.
const REFERENCE_SIZE: f64 = 56.0;

/// Soft square wave of a phase: 1/2 + 3/2 sin, clamped. The factor 3/2 gives flat tops with about
/// a fifth of each period as a smooth edge (anti-aliasing without supersampling).
#[inline]
fn soft_square(phase: f64) -> f64 {
    (0.5 + 1.5 * phase.sin()).clamp(0.0, 1.0)
}

/// Soft step: 1 where `d < 0`, 0 where `d > 1`, linear in between (one-pixel anti-aliased edge).
#[inline]
fn inside(d: f64) -> f64 {
    (0.5 - d).clamp(0.0, 1.0)
}

/// Value noise on an integer lattice of hashed values in `[0, 1]`, smoothstep-interpolated.
fn value_noise(key: u64, x: f64, y: f64) -> f64 {
    let (xi, yi) = (x.floor(), y.floor());
    let (fx, fy) = (x - xi, y - yi);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let lattice = |dx: i64, dy: i64| -> f64 {
        let h = mix64(
            key ^ mix64(((xi as i64 + dx) as u64) ^ ((yi as i64 + dy) as u64).rotate_left(32)),
        );
        (h >> 11) as f64 / (1u64 << 53) as f64
    };
    let top = lattice(0, 0) * (1.0 - sx) + lattice(1, 0) * sx;
    let bottom = lattice(0, 1) * (1.0 - sx) + lattice(1, 1) * sx;
    top * (1.0 - sy) + bottom * sy
}

/// Fractal sum of `octaves` value-noise octaves (lacunarity 2, gain 1/2), normalised to `[0, 1]`.
fn fbm(key: u64, x: f64, y: f64, octaves: u32) -> f64 {
    let (mut sum, mut amp, mut norm, mut freq) = (0.0, 1.0, 0.0, 1.0);
    for o in 0..octaves {
        sum += amp * value_noise(key.wrapping_add(u64::from(o)), x * freq, y * freq);
        norm += amp;
        amp *= 0.5;
        freq *= 2.0;
    }
    sum / norm
}

/// A random rotation: returns `(cos, sin)` of an angle uniform in `[0, max)`.
fn rotation(rng: &mut SplitMix64, max: f64) -> (f64, f64) {
    let a = rng.uniform(0.0, max);
    (a.cos(), a.sin())
}

/// A pixel-centre function of a pattern family.
type Field = Box<dyn Fn(f64, f64) -> f64>;

/// Draws a length in `[lo, hi)` reference pixels, times `unit`.
fn draw_len(rng: &mut SplitMix64, lo: f64, hi: f64, unit: f64) -> f64 {
    rng.uniform(lo, hi) * unit
}

/// Families 0-3: stripes, checkerboard, polka dots, clouds.
fn tiling_field(family: u8, rng: &mut SplitMix64, unit: f64) -> Field {
    let len = |rng: &mut SplitMix64, lo: f64, hi: f64| draw_len(rng, lo, hi, unit);
    match family {
        0 => {
            // Straight stripes, period 5-11 px, any orientation.
            let (c, s) = rotation(rng, PI);
            let (p, ph) = (len(rng, 5.0, 11.0), rng.uniform(0.0, TAU));
            Box::new(move |x, y| soft_square(TAU * (x * c + y * s) / p + ph))
        }
        1 => {
            // Checkerboard, cells 5-9 px, rotated up to 90 degrees.
            let (c, s) = rotation(rng, PI / 2.0);
            let (cell, ox, oy) = (
                len(rng, 5.0, 9.0),
                rng.uniform(0.0, TAU),
                rng.uniform(0.0, TAU),
            );
            Box::new(move |x, y| {
                let (u, v) = (x * c + y * s, -x * s + y * c);
                (0.5 + 3.0 * (PI * u / cell + ox).sin() * (PI * v / cell + oy).sin())
                    .clamp(0.0, 1.0)
            })
        }
        2 => {
            // Polka dots on a staggered (hexagonal-ish) lattice, spacing 9-14 px, radius 22-33 %.
            let (c, s) = rotation(rng, PI);
            let d = len(rng, 9.0, 14.0);
            let r = d * rng.uniform(0.22, 0.33);
            let (ox, oy) = (rng.uniform(0.0, d), rng.uniform(0.0, d));
            Box::new(move |x, y| {
                let (u, v) = (x * c + y * s + ox, -x * s + y * c + oy);
                let row = (v / d).round();
                let shift = if (row as i64).rem_euclid(2) == 1 {
                    d / 2.0
                } else {
                    0.0
                };
                let du = u - shift - ((u - shift) / d).round() * d;
                let dv = v - row * d;
                inside((du * du + dv * dv).sqrt() - r)
            })
        }
        _ => {
            // Clouds: 3-octave value noise, base cell 10-18 px, contrast-stretched.
            let (cell, key) = (len(rng, 10.0, 18.0), rng.next_u64());
            Box::new(move |x, y| {
                ((fbm(key, x / cell, y / cell, 3) - 0.5) * 2.5 + 0.5).clamp(0.0, 1.0)
            })
        }
    }
}

/// Families 4-9: gradient, rings, waves, grid, bricks, marble.
fn free_field(family: u8, rng: &mut SplitMix64, size: usize, unit: f64) -> Field {
    let len = |rng: &mut SplitMix64, lo: f64, hi: f64| draw_len(rng, lo, hi, unit);
    match family {
        4 => {
            // Linear gradient across the whole canvas, any direction: no texture at all.
            let (c, s) = rotation(rng, TAU);
            let n = size as f64;
            let corners = [0.0, n * c, n * s, n * (c + s)];
            let lo = corners.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = corners.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            Box::new(move |x, y| ((x * c + y * s - lo) / (hi - lo)).clamp(0.0, 1.0))
        }
        5 => {
            // Concentric rings, period 6-11 px, centre anywhere in a 1.5x enlarged canvas.
            let n = size as f64;
            let (cx, cy) = (
                rng.uniform(-0.25 * n, 1.25 * n),
                rng.uniform(-0.25 * n, 1.25 * n),
            );
            let (p, ph) = (len(rng, 6.0, 11.0), rng.uniform(0.0, TAU));
            Box::new(move |x, y| soft_square(TAU * ((x - cx).hypot(y - cy)) / p + ph))
        }
        6 => {
            // Waves: stripes (period 7-12 px) displaced by a sinusoid of wavelength 14-22 px and
            // amplitude 3-5 px, so each stripe visibly snakes.
            let (c, s) = rotation(rng, PI);
            let (p, lambda, amp) = (
                len(rng, 7.0, 12.0),
                len(rng, 14.0, 22.0),
                len(rng, 3.0, 5.0),
            );
            let (ph, ph2) = (rng.uniform(0.0, TAU), rng.uniform(0.0, TAU));
            Box::new(move |x, y| {
                let (u, v) = (x * c + y * s, -x * s + y * c);
                soft_square(TAU * (v + amp * (TAU * u / lambda + ph2).sin()) / p + ph)
            })
        }
        7 => {
            // Grid of thin lines (1.2-2 px wide) every 8-13 px, rotated up to 90 degrees.
            let (c, s) = rotation(rng, PI / 2.0);
            let (g, w) = (len(rng, 8.0, 13.0), len(rng, 1.2, 2.0));
            let (ox, oy) = (rng.uniform(0.0, g), rng.uniform(0.0, g));
            Box::new(move |x, y| {
                let (u, v) = (x * c + y * s + ox, -x * s + y * c + oy);
                let du = (u - (u / g).round() * g).abs();
                let dv = (v - (v / g).round() * g).abs();
                inside(du.min(dv) - w / 2.0)
            })
        }
        8 => {
            // Bricks: courses 6-9 px high, bricks 1.8-2.6 courses long, mortar 1-1.6 px, each
            // course shifted by half a brick; horizontal or vertical.
            let h = len(rng, 6.0, 9.0);
            let (w, m) = (h * rng.uniform(1.8, 2.6), len(rng, 1.0, 1.6));
            let (ox, oy, vertical) = (rng.uniform(0.0, w), rng.uniform(0.0, h), rng.chance(0.5));
            Box::new(move |x, y| {
                let (u, v) = if vertical {
                    (y + ox, x + oy)
                } else {
                    (x + ox, y + oy)
                };
                let course = (v / h).floor();
                let u = u + if (course as i64).rem_euclid(2) == 1 {
                    w / 2.0
                } else {
                    0.0
                };
                let dv = (v - (v / h).round() * h).abs();
                let du = (u - (u / w).round() * w).abs();
                inside(du.min(dv) - m / 2.0)
            })
        }
        _ => {
            // Marble: thin veins where a turbulence-displaced sine crosses zero, period 12-20 px,
            // displacement 3-6 rad of 3-octave noise (cell 16-26 px).
            let (c, s) = rotation(rng, PI);
            let (p, cell, key) = (len(rng, 12.0, 20.0), len(rng, 16.0, 26.0), rng.next_u64());
            let turb = rng.uniform(3.0, 6.0);
            Box::new(move |x, y| {
                let ph = TAU * (x * c + y * s) / p + turb * fbm(key, x / cell, y / cell, 3);
                (1.0 - ph.sin().abs()).powi(6)
            })
        }
    }
}

/// Fills `field` (`size * size`, row-major) with the pattern of `family` drawn from `rng`.
/// `scale` multiplies every length (1 = the reference look; other values shift the nuisance).
pub(super) fn pattern(
    family: u8,
    rng: &mut SplitMix64,
    size: usize,
    scale: f64,
    field: &mut [f32],
) {
    assert_eq!(field.len(), size * size);
    assert!(
        usize::from(family) < NUM_FAMILIES,
        "background family {family} out of range"
    );
    let unit = scale * size as f64 / REFERENCE_SIZE;
    // Every family draws its parameters first, then evaluates a closure per pixel centre.
    let f = if family < 4 {
        tiling_field(family, rng, unit)
    } else {
        free_field(family, rng, size, unit)
    };
    for (i, t) in field.iter_mut().enumerate() {
        let (x, y) = ((i % size) as f64 + 0.5, (i / size) as f64 + 0.5);
        *t = f(x, y) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(family: u8, key: u64) -> Vec<f32> {
        let mut f = vec![0.0; 56 * 56];
        pattern(family, &mut SplitMix64::from_keys(&[key]), 56, 1.0, &mut f);
        f
    }

    #[test]
    fn every_family_is_in_range_deterministic_and_varied() {
        for fam in 0..NUM_FAMILIES as u8 {
            let a = field(fam, 1);
            assert!(
                a.iter().all(|t| (0.0..=1.0).contains(t)),
                "{}",
                FAMILY_NAMES[fam as usize]
            );
            assert_eq!(a, field(fam, 1));
            assert_ne!(
                a,
                field(fam, 2),
                "{} has no within-family variety",
                FAMILY_NAMES[fam as usize]
            );
            // Not flat: both colours are visible.
            let (lo, hi) = a
                .iter()
                .fold((1f32, 0f32), |(l, h), &t| (l.min(t), h.max(t)));
            assert!(
                hi - lo > 0.5,
                "{} is nearly flat: {lo}..{hi}",
                FAMILY_NAMES[fam as usize]
            );
        }
    }
}
