//! CLIP image preprocessing, byte-exact with OpenAI CLIP / open_clip's torchvision pipeline:
//!
//! ```text
//! Compose([Resize(S, interpolation=BICUBIC), CenterCrop(S), lambda im: im.convert("RGB")])
//! ```
//!
//! applied to `PIL.Image.open(file)` (torchvision 0.28, Pillow 13). The output is an `S x S` RGB8
//! image, i.e. an array of shape `[S, S, 3]` (row-major, HWC); `ToTensor`/`Normalize` are not here.
//!
//! Resampling is Pillow 13's own algorithm, pass order included (see [`crate::prepare::resample`]). Pillow
//! decisions that depend on the PIL image *mode*, which the `image` crate's decoded pixels no
//! longer show, are reproduced:
//! - `RGBA` and `LA` are resized premultiplied by alpha, then un-premultiplied (Pillow
//!   `Image.resize`); `convert("RGB")` then drops alpha (`LA` -> grey replicated).
//! - Modes `P` (palette) and `1` (1-bit) are resized with NEAREST (Pillow `Image.resize`). Pass
//!   [`ResizeFilter::Nearest`], or use [`clip_preprocess_encoded`], which sniffs PNG headers.
//! - Grey/RGB PNGs with a `tRNS` colour key stay `L`/`RGB` in Pillow (the key is only metadata), while
//!   the `image` crate adds an alpha channel; [`clip_preprocess_encoded`] drops it again.
//!
//! Deliberate deviations from Pillow:
//! - 16-bit samples are scaled to 8 bits first as `round(v / 257) = (v + 128) / 257`. (Pillow opens
//!   16-bit grey as `I;16`, whose `convert("RGB")` clips every value above 255 to 255, and 16-bit RGB
//!   as 8-bit by truncation `v >> 8`, which differs from ours by at most 1 per input sample.)
//! - `f32` images (not produced by the PNG/JPEG decoders) are scaled as `round(clamp(v, 0, 1) * 255)`.
//! - CMYK JPEGs are converted to RGB by the `image` crate at decode time, before resizing; Pillow
//!   resizes in CMYK and converts last. JPEG decoding itself also differs slightly between
//!   zune-jpeg and libjpeg-turbo. Neither is a resampling difference.
//! - EXIF orientation and ICC profiles are ignored, as `PIL.Image.open` ignores them.

use image::{DynamicImage, ImageBuffer, RgbImage};

pub use crate::prepare::pil_mode::{pil_hints, PilHints, ResizeFilter};
use crate::prepare::resample::{
    premultiply_alpha, resize_bicubic_window, resize_nearest_window, unpremultiply_alpha,
};

/// An 8-bit interleaved image: `data` has shape `[h, w, ch]`, `ch` in 1..=4 (L, LA, RGB, RGBA).
struct Raw {
    w: usize,
    h: usize,
    ch: usize,
    data: Vec<u8>,
}

/// 16-bit -> 8-bit as `round(v / 257)` (exact: `v / 257` is never a half-integer).
fn u16_to_u8(v: u16) -> u8 {
    ((u32::from(v) + 128) / 257) as u8
}

/// `f32` in [0, 1] -> 8-bit as `round(clamp(v, 0, 1) * 255)`.
fn f32_to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

impl Raw {
    /// Any decoded image as 8-bit samples, keeping its channel layout (grey stays grey).
    fn from_dynamic(img: &DynamicImage) -> Raw {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (ch, data): (usize, Vec<u8>) = match img {
            DynamicImage::ImageLuma8(b) => (1, b.as_raw().clone()),
            DynamicImage::ImageLumaA8(b) => (2, b.as_raw().clone()),
            DynamicImage::ImageRgb8(b) => (3, b.as_raw().clone()),
            DynamicImage::ImageRgba8(b) => (4, b.as_raw().clone()),
            DynamicImage::ImageLuma16(b) => (1, b.as_raw().iter().map(|&v| u16_to_u8(v)).collect()),
            DynamicImage::ImageLumaA16(b) => {
                (2, b.as_raw().iter().map(|&v| u16_to_u8(v)).collect())
            }
            DynamicImage::ImageRgb16(b) => (3, b.as_raw().iter().map(|&v| u16_to_u8(v)).collect()),
            DynamicImage::ImageRgba16(b) => (4, b.as_raw().iter().map(|&v| u16_to_u8(v)).collect()),
            DynamicImage::ImageRgb32F(b) => (3, b.as_raw().iter().map(|&v| f32_to_u8(v)).collect()),
            DynamicImage::ImageRgba32F(b) => {
                (4, b.as_raw().iter().map(|&v| f32_to_u8(v)).collect())
            }
            other => (4, other.to_rgba8().into_raw()), // future colour types of the non-exhaustive enum
        };
        Raw { w, h, ch, data }
    }

    /// Back to a `DynamicImage` of the matching 8-bit colour type.
    #[cfg(test)]
    fn into_dynamic(self) -> DynamicImage {
        let (w, h) = (self.w as u32, self.h as u32);
        // `data.len() == w * h * ch` is an invariant of every `Raw` built in this module.
        let bad = "Raw buffer length matches its shape";
        match self.ch {
            1 => DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, self.data).expect(bad)),
            2 => DynamicImage::ImageLumaA8(ImageBuffer::from_raw(w, h, self.data).expect(bad)),
            3 => DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, self.data).expect(bad)),
            _ => DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, self.data).expect(bad)),
        }
    }

    /// LA or RGBA: the last channel is alpha.
    fn has_alpha(&self) -> bool {
        matches!(self.ch, 2 | 4)
    }

    /// Remove the last (alpha) channel: LA -> L, RGBA -> RGB.
    fn without_alpha(self) -> Raw {
        if !self.has_alpha() {
            return self;
        }
        let ch = self.ch - 1;
        let data = self
            .data
            .chunks_exact(self.ch)
            .flat_map(|p| p[..ch].iter().copied())
            .collect();
        Raw { ch, data, ..self }
    }
}

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

/// Crop offsets `(top, left)` of torchvision `CenterCrop(size)` on a `width x height` image that is
/// at least `size` on both sides: `int(round((h - size) / 2.0))`, likewise for the width.
#[cfg(test)]
pub(crate) fn center_crop_offsets(width: u32, height: u32, size: u32) -> (u32, u32) {
    (crop_axis(height, size).0, crop_axis(width, size).0)
}

/// Resize + center-crop fused: only the crop window of the resized image is computed, which is
/// bit-identical (every output pixel of Pillow's two passes depends only on its own row/column
/// coefficients) and keeps extreme aspect ratios (1 x 5000) cheap. Returns `[win_h, win_w, ch]`
/// for window `[x0, y0, win_w, win_h]` of the `out_w x out_h` resize.
fn resize_window(raw: &Raw, out: (u32, u32), filter: ResizeFilter, win: [u32; 4]) -> Raw {
    let (ow, oh) = (out.0 as usize, out.1 as usize);
    let [x0, y0, ww, wh] = win.map(|v| v as usize);
    // Pillow returns a copy when the size is unchanged (before any premultiplication).
    if (ow, oh) == (raw.w, raw.h) {
        let mut data = Vec::with_capacity(ww * wh * raw.ch);
        for y in y0..y0 + wh {
            data.extend_from_slice(
                &raw.data[(y * raw.w + x0) * raw.ch..(y * raw.w + x0 + ww) * raw.ch],
            );
        }
        return Raw {
            w: ww,
            h: wh,
            ch: raw.ch,
            data,
        };
    }
    let data = match filter {
        ResizeFilter::Nearest => {
            resize_nearest_window(&raw.data, raw.w, raw.h, raw.ch, ow, oh, [x0, y0, ww, wh])
        }
        ResizeFilter::Bicubic if raw.has_alpha() => {
            let mut pre = raw.data.clone();
            premultiply_alpha(&mut pre, raw.ch);
            let mut d = resize_bicubic_window(&pre, raw.w, raw.h, raw.ch, ow, oh, [x0, y0, ww, wh]);
            unpremultiply_alpha(&mut d, raw.ch);
            d
        }
        ResizeFilter::Bicubic => {
            resize_bicubic_window(&raw.data, raw.w, raw.h, raw.ch, ow, oh, [x0, y0, ww, wh])
        }
    };
    Raw {
        w: ww,
        h: wh,
        ch: raw.ch,
        data,
    }
}

/// torchvision `Resize(size, interpolation=BICUBIC)` on a PIL image: shorter side to `size` (see
/// [`resized_size`]) with Pillow's resampling for `filter`. The result keeps the channel layout
/// at 8 bits (Luma8, LumaA8, Rgb8 or Rgba8; 16-bit input is scaled as documented in the module).
#[cfg(test)]
pub(crate) fn resize_shorter_side(
    img: &DynamicImage,
    size: u32,
    filter: ResizeFilter,
) -> DynamicImage {
    let raw = Raw::from_dynamic(img);
    let (ow, oh) = resized_size(img.width(), img.height(), size);
    resize_window(&raw, (ow, oh), filter, [0, 0, ow, oh]).into_dynamic()
}

/// Place window `(src_x, src_y, w, h)` of `raw` at `(dst_x, dst_y)` in a zeroed `size x size` canvas.
fn paste(raw: &Raw, size: u32, x: (u32, u32, u32), y: (u32, u32, u32)) -> Raw {
    let (s, ch) = (size as usize, raw.ch);
    let mut data = vec![0u8; s * s * ch];
    let (sx, dx, w) = (x.0 as usize, x.1 as usize, x.2 as usize);
    for r in 0..y.2 as usize {
        let src = ((r + y.0 as usize) * raw.w + sx) * ch;
        let dst = ((r + y.1 as usize) * s + dx) * ch;
        data[dst..dst + w * ch].copy_from_slice(&raw.data[src..src + w * ch]);
    }
    Raw {
        w: s,
        h: s,
        ch,
        data,
    }
}

/// torchvision `CenterCrop(size)`: zero-pads a side shorter than `size` first (left/top get
/// `(size - n) // 2`), then crops at [`center_crop_offsets`]. Keeps the colour type (8-bit).
#[cfg(test)]
pub(crate) fn center_crop(img: &DynamicImage, size: u32) -> DynamicImage {
    let raw = Raw::from_dynamic(img);
    let (x, y) = (crop_axis(img.width(), size), crop_axis(img.height(), size));
    paste(&raw, size, x, y).into_dynamic()
}

/// Pillow `convert("RGB")` of an L, LA, RGB or RGBA image: grey is replicated, alpha dropped.
#[cfg(test)]
pub(crate) fn to_rgb(img: &DynamicImage) -> RgbImage {
    raw_to_rgb(Raw::from_dynamic(img))
}

fn raw_to_rgb(raw: Raw) -> RgbImage {
    let data: Vec<u8> = match raw.ch {
        1 | 2 => raw
            .data
            .chunks_exact(raw.ch)
            .flat_map(|p| [p[0]; 3])
            .collect(),
        3 => raw.data,
        _ => raw
            .data
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
    };
    ImageBuffer::from_raw(raw.w as u32, raw.h as u32, data).expect("RGB buffer matches its shape")
}

/// CLIP preprocessing of a decoded image: shorter side -> `size` (Pillow-exact antialiased
/// bicubic), center crop `size x size`, RGB. Output shape `[size, size, 3]`, `u8`.
/// Use [`clip_preprocess_encoded`] for files, so palette and 1-bit PNGs get Pillow's NEAREST.
pub fn clip_preprocess(img: &DynamicImage, size: u32) -> RgbImage {
    clip_preprocess_with(img, size, ResizeFilter::Bicubic)
}

/// [`clip_preprocess`] with an explicit filter (Pillow uses [`ResizeFilter::Nearest`] for P and 1).
pub fn clip_preprocess_with(img: &DynamicImage, size: u32, filter: ResizeFilter) -> RgbImage {
    clip_preprocess_raw(Raw::from_dynamic(img), size, filter)
}

fn clip_preprocess_raw(raw: Raw, size: u32, filter: ResizeFilter) -> RgbImage {
    let (ow, oh) = resized_size(raw.w as u32, raw.h as u32, size);
    let (x, y) = (crop_axis(ow, size), crop_axis(oh, size));
    let win = resize_window(&raw, (ow, oh), filter, [x.0, y.0, x.2, y.2]);
    raw_to_rgb(paste(&win, size, (0, x.1, x.2), (0, y.1, y.2)))
}

/// Decode PNG/JPEG bytes with the `image` crate and preprocess them as CLIP does on
/// `PIL.Image.open` of the same bytes, applying [`pil_hints`] (palette/1-bit NEAREST, colour-key
/// alpha dropped). Output shape `[size, size, 3]`, `u8`.
pub fn clip_preprocess_encoded(bytes: &[u8], size: u32) -> image::ImageResult<RgbImage> {
    let img = image::load_from_memory(bytes)?;
    Ok(clip_preprocess_decoded(&img, bytes, size))
}

/// [`clip_preprocess_encoded`] for an image the caller already decoded from `bytes` (with its own
/// limits); `bytes` only supply the PIL-mode hints.
pub(crate) fn clip_preprocess_decoded(img: &DynamicImage, bytes: &[u8], size: u32) -> RgbImage {
    let hints = pil_hints(bytes);
    let mut raw = Raw::from_dynamic(img);
    if hints.drop_alpha {
        raw = raw.without_alpha();
    }
    clip_preprocess_raw(raw, size, hints.filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Rgb};

    fn noise(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 37 + y * 11) as u8, (x * y) as u8, (x ^ y) as u8])
        })
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
        assert_eq!(center_crop_offsets(298, 224, 224), (0, 37));
        assert_eq!(center_crop_offsets(69, 64, 64), (0, 2)); // round(2.5) = 2
        assert_eq!(center_crop_offsets(71, 64, 64), (0, 4)); // round(3.5) = 4
        assert_eq!(center_crop_offsets(64, 67, 64), (2, 0)); // round(1.5) = 2
    }

    #[test]
    fn identity_when_already_square() {
        let img = noise(64, 64);
        assert_eq!(
            clip_preprocess(&DynamicImage::ImageRgb8(img.clone()), 64),
            img
        );
    }

    #[test]
    fn crop_pads_small_images_with_zeros() {
        let img = DynamicImage::ImageLuma8(GrayImage::from_pixel(3, 5, image::Luma([200])));
        let out = to_rgb(&center_crop(&img, 6));
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
            let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([10, 128, 250])));
            let out = clip_preprocess(&img, 32);
            assert_eq!(out.dimensions(), (32, 32));
            assert!(out.pixels().all(|p| *p == Rgb([10, 128, 250])), "{w}x{h}");
        }
        assert_eq!(
            clip_preprocess(&DynamicImage::new_rgb8(0, 0), 8).dimensions(),
            (8, 8)
        );
        assert_eq!(
            clip_preprocess(&DynamicImage::new_rgb8(5, 5), 0).dimensions(),
            (0, 0)
        );
    }

    #[test]
    fn fused_crop_equals_full_resize_then_crop() {
        let img = DynamicImage::ImageRgb8(noise(97, 61));
        let full = resize_shorter_side(&img, 40, ResizeFilter::Bicubic);
        assert_eq!((full.width(), full.height()), (63, 40));
        assert_eq!(to_rgb(&center_crop(&full, 40)), clip_preprocess(&img, 40));
    }

    #[test]
    fn pass_order_follows_pillow_13() {
        use crate::prepare::resample::vertical_first;
        assert!(vertical_first(37, 135, 16, 58)); // 77 > 2 * 21
        assert!(!vertical_first(83, 157, 64, 121)); // 36 <= 2 * 19
        assert!(!vertical_first(7, 5, 89, 64)); // height grows
        assert!(vertical_first(101, 107, 104, 57)); // width grows, height shrinks
    }

    #[test]
    fn sixteen_bit_rounds_to_nearest() {
        assert_eq!(
            [0, 128, 129, 385, 386, 65535].map(u16_to_u8),
            [0, 0, 1, 1, 2, 255]
        );
    }

    #[test]
    fn png_header_sniffing() {
        let mut png =
            b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x03\0\0\0crc!".to_vec();
        assert_eq!(pil_hints(&png).filter, ResizeFilter::Nearest);
        png[25] = 2;
        png.extend_from_slice(b"\0\0\0\x06tRNS\0\0\0\0\0\0crc!");
        assert_eq!(
            pil_hints(&png),
            PilHints {
                filter: ResizeFilter::Bicubic,
                drop_alpha: true
            }
        );
        assert_eq!(pil_hints(b"\xff\xd8\xff").filter, ResizeFilter::Bicubic);
    }
}
