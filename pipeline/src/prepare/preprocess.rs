//! CLIP image preprocessing as the reference code runs it, byte-exact with torchvision 0.28 and
//! Pillow 13: every file is first converted to RGB as torchvision's `ImageFolder` loader does
//! (`Image.open(f).convert("RGB")`: [`crate::prepare::rgb`]), then
//!
//! ```text
//! Compose([Resize(S, interpolation=BICUBIC), CenterCrop(S)])
//! ```
//!
//! or, for models whose preprocessing is another (open_clip's `preprocess_cfg`:
//! [`cfkit_schemas::Resize`]), bilinear instead of bicubic, `ResizeKeepRatio(S, longest=1)` +
//! `CenterCropOrPad(S, fill)`, or `Resize((S, S))`.
//!
//! The output is an `S x S` RGB8 image, i.e. an array of shape `[S, S, 3]` (row-major, HWC);
//! `ToTensor`/`Normalize` are not here. Resampling is Pillow 13's own antialiased bicubic, pass
//! order included (see [`crate::prepare::resample`]), always on RGB: with the conversion first
//! there are no mode-dependent paths left (no premultiplied alpha, no NEAREST for palettes).

use cfkit_schemas::{Resize, ResizeMode};
use image::RgbImage;

use crate::prepare::decode::Reject;
use crate::prepare::resample::{resize_window_with, Filter};
use crate::prepare::rgb::{load, Loaded};

/// Output size `(width, height)` of torchvision `Resize(size)` for a `width x height` image: the
/// shorter side becomes `size`, the longer `int(size * long / short)` (torchvision
/// `_compute_resized_output_size`; `size * long` is an exact integer, the division is one correctly
/// rounded `f64` division as in Python, then truncation). Ties (`width == height`) count as portrait.
pub(crate) fn resized_size(width: u32, height: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = ((u64::from(size) * u64::from(long)) as f64 / f64::from(short)) as u32;
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// Output size `(width, height)` of open_clip's `ResizeKeepRatio(size, longest=1)` for a square
/// target: `ratio = max(h / size, w / size)` (Python floats), each side `round(side / ratio)`
/// (Python's round: half to even).
pub(crate) fn longest_size(width: u32, height: u32, size: u32) -> (u32, u32) {
    let s = f64::from(size);
    let ratio = (f64::from(height) / s).max(f64::from(width) / s);
    if ratio <= 0.0 {
        return (width, height);
    }
    let side = |n: u32| (f64::from(n) / ratio).round_ties_even() as u32;
    (side(width), side(height))
}

/// Python's `int(round(x / 2.0))` for an integer `x >= 0`: round half to even.
fn half_round_even(x: u32) -> u32 {
    let k = x / 2;
    if x % 2 == 1 && k % 2 == 1 {
        k + 1
    } else {
        k
    }
}

/// How one axis of length `n` maps into a crop of length `size` (torchvision `center_crop`):
/// `(source offset, destination offset, length)`. A short axis is zero-padded with
/// `(size - n) // 2` before it (torchvision's `padding_ltrb`); a long one is cropped from
/// `int(round((n - size) / 2.0))`, Python rounding (half to even).
fn crop_axis(n: u32, size: u32) -> (u32, u32, u32) {
    if n < size {
        (0, (size - n) / 2, n)
    } else {
        (half_round_even(n - size), 0, size)
    }
}

/// Resize + center-crop fused: only the crop window `[x0, y0, win_w, win_h]` of the
/// `out.0 x out.1` resize of `src` (`[h, w, ch]`) is computed, which is bit-identical (every output
/// pixel of Pillow's two passes depends only on its own row/column coefficients) and keeps extreme
/// aspect ratios (1 x 5000) cheap. Returns `[win_h, win_w, ch]`.
fn resize_window(
    filter: Filter,
    src: &[u8],
    (w, h, ch): (usize, usize, usize),
    out: (u32, u32),
    win: [u32; 4],
) -> Vec<u8> {
    let (ow, oh) = (out.0 as usize, out.1 as usize);
    let [x0, y0, ww, wh] = win.map(|v| v as usize);
    // Pillow returns a copy when the size is unchanged.
    if (ow, oh) == (w, h) {
        let mut data = Vec::with_capacity(ww * wh * ch);
        for y in y0..y0 + wh {
            data.extend_from_slice(&src[(y * w + x0) * ch..(y * w + x0 + ww) * ch]);
        }
        return data;
    }
    resize_window_with(filter, src, (w, h, ch), (ow, oh), [x0, y0, ww, wh])
}

/// Window `[wh, ww, ch]` (`ch` 1: grey, repeated into R, G and B; or 3) placed at `(dx, dy)` in a
/// `size x size` RGB canvas of `fill`.
fn paste(
    win: &[u8],
    ch: usize,
    (ww, wh): (u32, u32),
    size: u32,
    (dx, dy): (u32, u32),
    fill: u8,
) -> RgbImage {
    let (s, ww) = (size as usize, ww as usize);
    let mut data = vec![fill; s * s * 3];
    for r in 0..wh as usize {
        let dst = ((r + dy as usize) * s + dx as usize) * 3;
        let row = &win[r * ww * ch..(r + 1) * ww * ch];
        let out = &mut data[dst..dst + ww * 3];
        if ch == 1 {
            for (px, &v) in out.chunks_exact_mut(3).zip(row) {
                px.fill(v);
            }
        } else {
            out.copy_from_slice(row);
        }
    }
    RgbImage::from_raw(size, size, data).expect("an RGB canvas of its shape")
}

/// Preprocessing of `[h, w, ch]` samples (`ch` 1 for grey, 3 for RGB) by `resize`: the resize of
/// its mode, then the center crop (or, where the image is smaller, the padding) to the square.
fn preprocess_samples(
    src: &[u8],
    (w, h, ch): (u32, u32, usize),
    size: u32,
    resize: &Resize,
) -> RgbImage {
    let (ow, oh) = match resize.mode {
        ResizeMode::Shortest => resized_size(w, h, size),
        ResizeMode::Longest => longest_size(w, h, size),
        ResizeMode::Squash => (size, size),
    };
    // torchvision's CenterCrop pads with 0; open_clip's CenterCropOrPad with its fill colour.
    let fill = if resize.mode == ResizeMode::Longest {
        resize.fill
    } else {
        0
    };
    let (x, y) = (crop_axis(ow, size), crop_axis(oh, size));
    let shape = (w as usize, h as usize, ch);
    let filter = Filter::from(resize.interpolation);
    let win = resize_window(filter, src, shape, (ow, oh), [x.0, y.0, x.2, y.2]);
    paste(&win, ch, (x.2, y.2), size, (x.1, y.1), fill)
}

/// CLIP preprocessing of an RGB image: shorter side -> `size` (Pillow-exact antialiased
/// bicubic), center crop `size x size` (zero-padded where the image is smaller). Output shape
/// `[size, size, 3]`, `u8`.
pub fn clip_preprocess(img: &RgbImage, size: u32) -> RgbImage {
    preprocess_samples(
        img.as_raw(),
        (img.width(), img.height(), 3),
        size,
        &Resize::default(),
    )
}

/// [`clip_preprocess`] of a loaded image; a grey one is resized as one channel and repeated into
/// R, G and B at the end (the same bytes as resizing its RGB image, a third of the work).
pub fn clip_preprocess_loaded(img: &Loaded, size: u32) -> RgbImage {
    preprocess_loaded(img, size, &Resize::default())
}

/// A loaded image preprocessed by `resize` (CLIP's when it is the default). Output shape
/// `[size, size, 3]`, `u8`.
pub fn preprocess_loaded(img: &Loaded, size: u32, resize: &Resize) -> RgbImage {
    let (w, h) = img.dimensions();
    let (src, ch) = img.samples();
    preprocess_samples(src, (w, h, ch), size, resize)
}

/// A file's bytes decoded and converted to RGB as the reference loader does, then preprocessed:
/// [`clip_preprocess_loaded`] of [`load`]. Output shape `[size, size, 3]`.
pub fn clip_preprocess_encoded(bytes: &[u8], size: u32) -> Result<RgbImage, Reject> {
    Ok(clip_preprocess_loaded(&load(bytes, u64::MAX)?, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn noise(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 37 + y * 11) as u8, (x * y) as u8, (x ^ y) as u8])
        })
    }

    /// torchvision `Resize(size, BICUBIC)` alone (the whole resized image).
    fn resize_shorter_side(img: &RgbImage, size: u32) -> RgbImage {
        let (ow, oh) = resized_size(img.width(), img.height(), size);
        let shape = (img.width() as usize, img.height() as usize, 3);
        let win = resize_window(Filter::Bicubic, img, shape, (ow, oh), [0, 0, ow, oh]);
        RgbImage::from_raw(ow, oh, win).unwrap()
    }

    /// torchvision `CenterCrop(size)` alone.
    fn center_crop(img: &RgbImage, size: u32) -> RgbImage {
        let (x, y) = (crop_axis(img.width(), size), crop_axis(img.height(), size));
        let shape = (img.width() as usize, img.height() as usize, 3);
        let win = resize_window(
            Filter::Bicubic,
            img,
            shape,
            img.dimensions(),
            [x.0, y.0, x.2, y.2],
        );
        paste(&win, 3, (x.2, y.2), size, (x.1, y.1), 0)
    }

    #[test]
    fn sizes_follow_torchvision() {
        assert_eq!(resized_size(500, 375, 224), (298, 224)); // int(224 * 500 / 375) = 298
        assert_eq!(resized_size(375, 500, 224), (224, 298));
        assert_eq!(resized_size(7, 5, 64), (89, 64)); // 89.6 -> 89
        assert_eq!(resized_size(3000, 40, 64), (4800, 64));
        assert_eq!(resized_size(64, 64, 64), (64, 64));
        assert_eq!(resized_size(1, 5000, 224), (224, 1_120_000));
    }

    #[test]
    fn crop_offsets_round_half_to_even() {
        let off = |w, h, s| (crop_axis(h, s).0, crop_axis(w, s).0);
        assert_eq!(off(298, 224, 224), (0, 37));
        assert_eq!(off(69, 64, 64), (0, 2)); // round(2.5) = 2
        assert_eq!(off(71, 64, 64), (0, 4)); // round(3.5) = 4
        assert_eq!(off(64, 67, 64), (2, 0)); // round(1.5) = 2
    }

    #[test]
    fn grey_kept_grey_gives_the_bytes_of_its_rgb_image() {
        // Up- and downscales, both pass orders, padding, and the unchanged-size copy.
        for (w, h, size) in [
            (90, 400, 64),
            (400, 90, 64),
            (7, 5, 64),
            (64, 64, 64),
            (331, 250, 224),
        ] {
            let grey =
                image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 31) ^ (y * 7)) as u8]));
            let loaded = Loaded::Grey(grey);
            let want = clip_preprocess(&loaded.clone().into_rgb(), size);
            assert_eq!(
                clip_preprocess_loaded(&loaded, size),
                want,
                "{w}x{h} -> {size}"
            );
        }
    }

    #[test]
    fn longest_sizes_follow_open_clip() {
        // ratio = 500 / 224; 375 / ratio = 168.0 -> 168.
        assert_eq!(longest_size(500, 375, 224), (224, 168));
        assert_eq!(longest_size(375, 500, 224), (168, 224));
        assert_eq!(longest_size(64, 64, 32), (32, 32));
        // 5 / (7 / 64) = 45.71 -> 46.
        assert_eq!(longest_size(7, 5, 64), (64, 46));
    }

    #[test]
    fn longest_pads_with_the_fill_and_squash_fills_the_square() {
        let img = RgbImage::from_pixel(40, 20, Rgb([200; 3]));
        let resize = |mode, fill| Resize {
            mode,
            interpolation: cfkit_schemas::Interpolation::Bilinear,
            fill,
        };
        let out = preprocess_samples(
            img.as_raw(),
            (40, 20, 3),
            20,
            &resize(ResizeMode::Longest, 7),
        );
        // 40x20 -> 20x10, centered: rows 0..5 and 15..20 are the fill.
        assert_eq!(out.get_pixel(3, 2), &Rgb([7; 3]));
        assert_eq!(out.get_pixel(3, 10), &Rgb([200; 3]));
        assert_eq!(out.get_pixel(3, 17), &Rgb([7; 3]));
        let out = preprocess_samples(
            img.as_raw(),
            (40, 20, 3),
            20,
            &resize(ResizeMode::Squash, 7),
        );
        assert!(out.pixels().all(|p| *p == Rgb([200; 3])));
    }

    #[test]
    fn identity_when_already_square() {
        let img = noise(64, 64);
        assert_eq!(clip_preprocess(&img, 64), img);
    }

    #[test]
    fn crop_pads_small_images_with_zeros() {
        let img = RgbImage::from_pixel(3, 5, Rgb([200; 3]));
        let out = center_crop(&img, 6);
        assert_eq!(out.get_pixel(0, 0), &Rgb([0, 0, 0])); // pad left (6-3)//2 = 1
        assert_eq!(out.get_pixel(1, 0), &Rgb([200; 3]));
        assert_eq!(out.get_pixel(3, 4), &Rgb([200; 3]));
        assert_eq!(out.get_pixel(4, 0), &Rgb([0, 0, 0])); // pad right 2
        assert_eq!(out.get_pixel(1, 5), &Rgb([0, 0, 0])); // pad bottom 1
    }

    #[test]
    fn constant_images_stay_constant_and_odd_sizes_do_not_panic() {
        for (w, h) in [
            (1, 1),
            (1, 5000),
            (5000, 1),
            (7, 5),
            (2, 3),
            (65, 64),
            (300, 2),
        ] {
            let img = RgbImage::from_pixel(w, h, Rgb([10, 128, 250]));
            let out = clip_preprocess(&img, 32);
            assert_eq!(out.dimensions(), (32, 32));
            assert!(out.pixels().all(|p| *p == Rgb([10, 128, 250])), "{w}x{h}");
        }
        assert_eq!(
            clip_preprocess(&RgbImage::new(0, 0), 8).dimensions(),
            (8, 8)
        );
        assert_eq!(
            clip_preprocess(&RgbImage::new(5, 5), 0).dimensions(),
            (0, 0)
        );
    }

    #[test]
    fn fused_crop_equals_full_resize_then_crop() {
        let img = noise(97, 61);
        let full = resize_shorter_side(&img, 40);
        assert_eq!(full.dimensions(), (63, 40));
        assert_eq!(center_crop(&full, 40), clip_preprocess(&img, 40));
    }

    #[test]
    fn pass_order_follows_pillow_13() {
        use crate::prepare::resample::vertical_first;
        assert!(vertical_first(37, 135, 16, 58)); // 77 > 2 * 21
        assert!(!vertical_first(83, 157, 64, 121)); // 36 <= 2 * 19
        assert!(!vertical_first(7, 5, 89, 64)); // height grows
        assert!(vertical_first(101, 107, 104, 57)); // width grows, height shrinks
    }
}
