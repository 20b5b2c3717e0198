//! Pillow-exact resampling of interleaved 8-bit images.
//!
//! A port of the 8-bit bicubic and bilinear paths of Pillow's `Image.resize` (Pillow 13,
//! `src/libImaging/Resample.c`), so that CLIP preprocessing gives the same bytes as
//! `torchvision.transforms.Resize(interpolation=BICUBIC or BILINEAR)` on a PIL "RGB" image.
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

/// Support radius of the bilinear (triangle) filter (Pillow Resample.c: `BILINEAR = {bilinear_filter, 1.0}`).
pub(crate) const BILINEAR_SUPPORT: f64 = 1.0;

/// A resampling filter of Pillow's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    Bicubic,
    Bilinear,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bicubic => BICUBIC_SUPPORT,
            Filter::Bilinear => BILINEAR_SUPPORT,
        }
    }

    fn eval(self, x: f64) -> f64 {
        match self {
            Filter::Bicubic => bicubic_filter(x),
            Filter::Bilinear => bilinear_filter(x),
        }
    }
}

impl From<cfkit_schemas::Interpolation> for Filter {
    fn from(i: cfkit_schemas::Interpolation) -> Self {
        match i {
            cfkit_schemas::Interpolation::Bicubic => Filter::Bicubic,
            cfkit_schemas::Interpolation::Bilinear => Filter::Bilinear,
        }
    }
}

/// Pillow's `bilinear_filter(x)`: `1 - |x|` inside the support, 0 outside.
fn bilinear_filter(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

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
fn clip8(v: i32) -> u8 {
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
fn precompute_coeffs(
    filter: Filter,
    in_size: usize,
    out_size: usize,
    first: usize,
    count: usize,
) -> Coeffs {
    let (in0, in1) = (0.0f32, in_size as f32);
    let scale = f64::from(in1 - in0) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
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
            *wx = filter.eval(((x as i64 + xmin) as f64 - center + 0.5) * ss);
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

/// Rounding offset every accumulator starts from (Pillow: `ss = 1 << (PRECISION_BITS - 1)`).
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// `acc + p * k` in Pillow's `int` arithmetic. For 8-bit samples and normalised bicubic taps the
/// sum stays far inside `i32` (|taps| sum to about 1.25 * 2^22, times 255 < 2^31); wrapping keeps
/// even a pathological tap set from panicking, and wraps as Pillow's C does.
#[inline(always)]
fn mac(acc: i32, p: u8, k: i32) -> i32 {
    acc.wrapping_add(i32::from(p).wrapping_mul(k))
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
    match ch {
        1 => horizontal_n::<1>(src, src_w, row0, rows, col0, c),
        2 => horizontal_n::<2>(src, src_w, row0, rows, col0, c),
        3 => horizontal_n::<3>(src, src_w, row0, rows, col0, c),
        4 => horizontal_n::<4>(src, src_w, row0, rows, col0, c),
        _ => panic!("{ch} channels: the resampler handles 1 to 4"),
    }
}

/// [`horizontal`] for `CH` channels, known at compile time so the taps loop keeps one
/// accumulator per channel in registers.
fn horizontal_n<const CH: usize>(
    src: &[u8],
    src_w: usize,
    row0: usize,
    rows: usize,
    col0: usize,
    c: &Coeffs,
) -> Vec<u8> {
    let out_w = c.bounds.len();
    let mut out = vec![0u8; rows * out_w * CH];
    if out.is_empty() {
        return out;
    }
    for (y, out_row) in out.chunks_exact_mut(out_w * CH).enumerate() {
        let src_row = &src[(y + row0) * src_w * CH..][..src_w * CH];
        for ((&(xmin, n), taps), px) in c
            .bounds
            .iter()
            .zip(c.k.chunks_exact(c.ksize))
            .zip(out_row.chunks_exact_mut(CH))
        {
            let mut acc = [HALF; CH];
            let window = &src_row[(xmin - col0) * CH..][..n * CH];
            for (p, &k) in window.chunks_exact(CH).zip(&taps[..n]) {
                for (a, &v) in acc.iter_mut().zip(p) {
                    *a = mac(*a, v, k);
                }
            }
            for (o, a) in px.iter_mut().zip(acc) {
                *o = clip8(a);
            }
        }
    }
    out
}

/// One vertical pass (Pillow `ImagingResampleVertical_8bpc`): `src` is `[_, src_w, ch]` whose row
/// 0 is source row `row0`; reads columns `col0..col0 + cols`; returns `[taps, cols, ch]`. Each
/// output row accumulates whole source rows (the same sums as Pillow's per-pixel loop, in an order
/// the compiler vectorises).
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
    if out.is_empty() {
        return out;
    }
    let mut acc = vec![HALF; stride];
    for ((&(ymin, n), taps), out_row) in c
        .bounds
        .iter()
        .zip(c.k.chunks_exact(c.ksize))
        .zip(out.chunks_exact_mut(stride))
    {
        acc.fill(HALF);
        for (y, &k) in taps[..n].iter().enumerate() {
            let row = &src[((y + ymin - row0) * src_w + col0) * ch..][..stride];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a = mac(*a, p, k);
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
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
/// start at `1 << (PRECISION_BITS - 1)` (round half up); sums are Pillow's `int` ([`mac`]). Empty
/// sizes give zero pixels.
pub(crate) fn resize_window_with(
    filter: Filter,
    src: &[u8],
    (w, h, ch): (usize, usize, usize),
    (out_w, out_h): (usize, usize),
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
    let hor = (out_w != w).then(|| precompute_coeffs(filter, w, out_w, x0, win_w));
    let vert = (out_h != h).then(|| precompute_coeffs(filter, h, out_h, y0, win_h));
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
