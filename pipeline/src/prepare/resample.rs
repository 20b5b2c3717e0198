//! Pillow-exact resampling of interleaved 8-bit images.
//!
//! A port of the 8-bit paths of Pillow's `Image.resize` (Pillow 13, `src/libImaging/Resample.c`,
//! `Geometry.c` and the premultiplication in `Convert.c`), so that CLIP preprocessing gives the same
//! bytes as `torchvision.transforms.Resize(interpolation=BICUBIC)` on a PIL image.
//!
//! Buffers are row-major, interleaved `u8` of shape `[height, width, channels]`, `channels` in 1..=4.
//! Pillow's 8-bit resampler treats every band independently with the same coefficients, so one loop
//! over `channels` reproduces its 1-, 2- (only bands 0 and 3 are real), 3- and 4-band variants.

/// Fixed-point fraction bits of the 8-bit coefficients (Pillow Resample.c: `PRECISION_BITS (32 - 8 - 2)`:
/// 8 bits for the result, 2 extra bits for negative lobes / sums above 1.0, in a 32-bit int).
pub(crate) const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Support radius of the bicubic filter before scaling (Pillow Resample.c: `BICUBIC = {bicubic_filter, 2.0}`).
pub(crate) const BICUBIC_SUPPORT: f64 = 2.0;

/// Bicubic convolution parameter `a` (Pillow Resample.c: `#define a -0.5` in `bicubic_filter`).
pub(crate) const BICUBIC_A: f64 = -0.5;

/// Pillow's `bicubic_filter(x)` (Keys cubic convolution kernel with `a = -0.5`).
fn bicubic_filter(x: f64) -> f64 {
    let a = BICUBIC_A;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// Pillow's `clip8`: `clip8_lookups[in >> PRECISION_BITS]`, a table that saturates to 0..=255.
#[inline]
fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Per-output-pixel filter taps along one axis, already in fixed point.
struct Coeffs {
    /// Maximum taps per output pixel (Pillow: `ksize = (int)ceil(support) * 2 + 1`).
    ksize: usize,
    /// `(first input index, number of taps)` per output pixel (Pillow: `bounds`).
    bounds: Vec<(usize, usize)>,
    /// `count * ksize` fixed-point weights, zero past each pixel's taps (Pillow: `normalize_coeffs_8bpc`).
    k: Vec<i32>,
}

/// Pillow `precompute_coeffs` + `normalize_coeffs_8bpc` for the box `[0, in_size)` -> `out_size`,
/// for the output indices `first..first + count` only (each index's taps depend on nothing else).
///
/// Pillow passes the box as C `float`s, so `in_size` goes through `f32` exactly as it does there.
fn precompute_coeffs(in_size: usize, out_size: usize, first: usize, count: usize) -> Coeffs {
    let (in0, in1) = (0.0f32, in_size as f32);
    let scale = f64::from(in1 - in0) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = BICUBIC_SUPPORT * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(count);
    let mut k = vec![0i32; count * ksize];
    let mut w = vec![0f64; ksize];
    let ss = 1.0 / filterscale;
    for (i, xx) in (first..first + count).enumerate() {
        let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
        // C `(int)` truncates toward zero; Rust `as` does too (and saturates instead of UB).
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
        let n = (xmax - xmin).clamp(0, ksize as i64) as usize;
        let mut ww = 0.0;
        for (x, wx) in w.iter_mut().enumerate().take(n) {
            // Same operation order as Pillow: ((x + xmin) - center + 0.5) * ss.
            *wx = bicubic_filter(((x as i64 + xmin) as f64 - center + 0.5) * ss);
            ww += *wx;
        }
        for (kx, &wx) in k[i * ksize..i * ksize + n].iter_mut().zip(&w) {
            let v = if ww != 0.0 { wx / ww } else { wx };
            let f = v * f64::from(1u32 << PRECISION_BITS);
            *kx = if v < 0.0 {
                (-0.5 + f) as i32
            } else {
                (0.5 + f) as i32
            };
        }
        bounds.push((xmin as usize, n));
    }
    Coeffs { ksize, bounds, k }
}
/// Whether Pillow runs the vertical pass first (Pillow 13, `ImagingResampleInner`, since
/// python-pillow/Pillow#9549: when the height shrinks by more than twice as many pixels as the
/// width, `in_h >= out_h && in_h - out_h > 2 * (in_w - out_w)`). Pillow <= 12 always went
/// horizontal first. Matters because the intermediate image is rounded to `u8`.
pub(crate) fn vertical_first(w: usize, h: usize, out_w: usize, out_h: usize) -> bool {
    let d = |a: usize, b: usize| a as i64 - b as i64;
    h >= out_h && d(h, out_h) > 2 * d(w, out_w)
}

/// Smallest range of source indices the taps of `c` read.
fn span(c: &Coeffs) -> (usize, usize) {
    let lo = c.bounds.iter().map(|b| b.0).min().unwrap_or(0);
    let hi = c.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(lo);
    (lo, hi.max(lo))
}

/// One horizontal pass (Pillow `ImagingResampleHorizontal_8bpc`): `src` is `[_, src_w, ch]` whose
/// column 0 is source column `col0`; reads rows `row0..row0 + rows`; returns `[rows, taps, ch]`.
fn horizontal(
    src: &[u8],
    src_w: usize,
    ch: usize,
    row0: usize,
    rows: usize,
    col0: usize,
    c: &Coeffs,
) -> Vec<u8> {
    let out_w = c.bounds.len();
    let mut out = vec![0u8; rows * out_w * ch];
    for y in 0..rows {
        let src_row = &src[(y + row0) * src_w * ch..(y + row0 + 1) * src_w * ch];
        for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
            let k = &c.k[xx * c.ksize..xx * c.ksize + n];
            for ci in 0..ch {
                let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                for (x, &kx) in k.iter().enumerate() {
                    ss += i64::from(src_row[(x + xmin - col0) * ch + ci]) * i64::from(kx);
                }
                out[(y * out_w + xx) * ch + ci] = clip8(ss);
            }
        }
    }
    out
}

/// One vertical pass (Pillow `ImagingResampleVertical_8bpc`): `src` is `[_, src_w, ch]` whose row
/// 0 is source row `row0`; reads columns `col0..col0 + cols`; returns `[taps, cols, ch]`.
fn vertical(
    src: &[u8],
    src_w: usize,
    ch: usize,
    row0: usize,
    col0: usize,
    cols: usize,
    c: &Coeffs,
) -> Vec<u8> {
    let stride = cols * ch;
    let mut out = vec![0u8; c.bounds.len() * stride];
    for (yy, &(ymin, n)) in c.bounds.iter().enumerate() {
        let k = &c.k[yy * c.ksize..yy * c.ksize + n];
        for i in 0..stride {
            let mut ss: i64 = 1 << (PRECISION_BITS - 1);
            for (y, &ky) in k.iter().enumerate() {
                ss +=
                    i64::from(src[(y + ymin - row0) * src_w * ch + col0 * ch + i]) * i64::from(ky);
            }
            out[yy * stride + i] = clip8(ss);
        }
    }
    out
}

/// The window `[x0, y0, win_w, win_h]` of Pillow's bicubic `w x h -> out_w x out_h` resize, shape
/// `[win_h, win_w, ch]`, bit-identical to cropping the full result (Pillow computes every output
/// column/row from its own coefficients only, so only the window and the source rows/columns its
/// taps read are computed).
///
/// As Pillow 13: two separable passes, the intermediate rounded and clipped to `u8` (`clip8`), in
/// the order given by [`vertical_first`]; a pass whose size is unchanged is skipped. Accumulators
/// start at `1 << (PRECISION_BITS - 1)` (round half up). Sums are `i64` (Pillow: `int`, which
/// cannot overflow for 8-bit input), so no input can panic. Empty sizes give zero pixels.
pub(crate) fn resize_bicubic_window(
    src: &[u8],
    w: usize,
    h: usize,
    ch: usize,
    out_w: usize,
    out_h: usize,
    win: [usize; 4],
) -> Vec<u8> {
    let [x0, y0, win_w, win_h] = win;
    assert_eq!(src.len(), w * h * ch, "buffer is not [h, w, ch]");
    assert!(
        x0 + win_w <= out_w && y0 + win_h <= out_h,
        "window outside the output"
    );
    if w == 0 || h == 0 || win_w == 0 || win_h == 0 {
        return vec![0; win_w * win_h * ch];
    }
    let hor = (out_w != w).then(|| precompute_coeffs(w, out_w, x0, win_w));
    let vert = (out_h != h).then(|| precompute_coeffs(h, out_h, y0, win_h));
    match (hor, vert) {
        (None, None) => horizontal_copy(src, w, ch, x0, y0, win_w, win_h),
        (Some(hc), None) => horizontal(src, w, ch, y0, win_h, 0, &hc),
        (None, Some(vc)) => vertical(src, w, ch, 0, x0, win_w, &vc),
        (Some(hc), Some(vc)) if vertical_first(w, h, out_w, out_h) => {
            let (c0, c1) = span(&hc);
            let tmp = vertical(src, w, ch, 0, c0, c1 - c0, &vc);
            horizontal(&tmp, c1 - c0, ch, 0, win_h, c0, &hc)
        }
        (Some(hc), Some(vc)) => {
            let (r0, r1) = span(&vc);
            let tmp = horizontal(src, w, ch, r0, r1 - r0, 0, &hc);
            vertical(&tmp, win_w, ch, r0, 0, win_w, &vc)
        }
    }
}

/// Copy window `[x0, y0, win_w, win_h]` of `[_, w, ch]` (Pillow returns a copy when no pass is needed).
fn horizontal_copy(
    src: &[u8],
    w: usize,
    ch: usize,
    x0: usize,
    y0: usize,
    win_w: usize,
    win_h: usize,
) -> Vec<u8> {
    (y0..y0 + win_h)
        .flat_map(|y| &src[(y * w + x0) * ch..(y * w + x0 + win_w) * ch])
        .copied()
        .collect()
}

/// Nearest-neighbour resize exactly as Pillow does for modes "P" and "1" (`Image.resize` forces
/// NEAREST there; `_imaging.c` `_resize` -> `ImagingTransform` affine -> `Geometry.c`
/// `ImagingScaleAffine`), window `[x0, y0, win_w, win_h]` of the `out_w x out_h` result, shape
/// `[win_h, win_w, ch]`. The source position starts at `scale / 2` and advances by repeated `f64`
/// addition of `scale` (as in Pillow, not `scale * (i + 0.5)`), then truncates; positions outside
/// the source give 0 (Pillow's `fill`).
pub(crate) fn resize_nearest_window(
    src: &[u8],
    w: usize,
    h: usize,
    ch: usize,
    out_w: usize,
    out_h: usize,
    win: [usize; 4],
) -> Vec<u8> {
    let [x0, y0, win_w, win_h] = win;
    assert_eq!(src.len(), w * h * ch, "buffer is not [h, w, ch]");
    assert!(
        x0 + win_w <= out_w && y0 + win_h <= out_h,
        "window outside the output"
    );
    let mut out = vec![0u8; win_w * win_h * ch];
    if w == 0 || h == 0 {
        return out;
    }
    // Pillow: a[0] = (double)(box[2] - box[0]) / xsize with a float box; COORD(v) = v < 0 ? -1 : (int)v.
    let positions = |n_in: usize, n_out: usize, first: usize, count: usize| -> Vec<Option<usize>> {
        let a = f64::from(n_in as f32) / n_out as f64;
        let mut o = a * 0.5;
        (0..first + count)
            .map(|_| {
                let i = if o < 0.0 { -1 } else { o as i64 };
                o += a;
                (i >= 0 && (i as usize) < n_in).then_some(i as usize)
            })
            .skip(first)
            .collect()
    };
    let xs = positions(w, out_w, x0, win_w);
    for (y, yi) in positions(h, out_h, y0, win_h).into_iter().enumerate() {
        let Some(yi) = yi else { continue };
        for (x, xi) in xs.iter().enumerate() {
            if let Some(xi) = *xi {
                let s = (yi * w + xi) * ch;
                out[(y * win_w + x) * ch..][..ch].copy_from_slice(&src[s..s + ch]);
            }
        }
    }
    out
}

/// Pillow `MULDIV255(a, b)`: `(t = a * b + 128, ((t >> 8) + t) >> 8)`, i.e. round(a * b / 255).
#[inline]
fn muldiv255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// Premultiply colour by alpha in place, as Pillow's `RGBA -> RGBa` / `LA -> La` conversion
/// (Convert.c `rgbA2rgba`, `lA2la`). The last channel is alpha; `ch` is 2 or 4.
pub(crate) fn premultiply_alpha(buf: &mut [u8], ch: usize) {
    for px in buf.chunks_exact_mut(ch) {
        let (colour, alpha) = px.split_at_mut(ch - 1);
        for c in colour {
            *c = muldiv255(*c, alpha[0]);
        }
    }
}

/// Undo [`premultiply_alpha`] in place, as Pillow's `RGBa -> RGBA` / `La -> LA` conversion
/// (Convert.c `rgba2rgbA`, `la2lA`): alpha 0 or 255 leaves colour as is, otherwise
/// `min(255, 255 * c / alpha)` with integer division.
pub(crate) fn unpremultiply_alpha(buf: &mut [u8], ch: usize) {
    for px in buf.chunks_exact_mut(ch) {
        let (colour, alpha) = px.split_at_mut(ch - 1);
        let a = u32::from(alpha[0]);
        if a == 0 || a == 255 {
            continue;
        }
        for c in colour {
            *c = (255 * u32::from(*c) / a).min(255) as u8;
        }
    }
}
