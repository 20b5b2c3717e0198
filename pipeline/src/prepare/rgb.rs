//! Every file as RGB, the way Pillow's `convert("RGB")` gives it ([`decode_rgb`]), before anything
//! else happens to it (border crop, resize) — as the reference loads images: torchvision's
//! `ImageFolder` loader runs `Image.open(f).convert("RGB")`, then the transforms.
//!
//! For PNG, WebP and BMP, what Pillow opens and how it converts, by what the `image` crate returns
//! for the same file (`pillow_rgb`):
//! - grey (`L`; 1-, 2- and 4-bit grey come scaled to 0..=255, as Pillow's `1`, `L;2`, `L;4`
//!   unpackers scale them) -> the grey value in R, G and B;
//! - with alpha (`LA`, `RGBA`, a palette or grey/RGB with a `tRNS` transparent colour, which the
//!   `image` crate expands to alpha) -> the colour, alpha dropped: `convert("RGB")` neither
//!   composites nor premultiplies, and a palette's transparent index keeps its palette colour;
//! - 16-bit grey opens as `I;16`, whose conversion to RGB keeps values up to 255 and clips the
//!   rest to 255 (`I16_RGB`: a real 16-bit photograph comes out nearly white, in the reference as
//!   here); 16-bit RGB, RGBA and grey + alpha open as 8-bit with the high byte of each sample
//!   (rawmodes `RGB;16B`, `RGBA;16B`, `LA;16B`), i.e. `v >> 8`.

use std::io::Cursor;

use image::{DynamicImage, GrayImage, ImageFormat, ImageReader, Limits, RgbImage};

use crate::prepare::decode::{decode_error, Reject};
use crate::prepare::gif_frame::first_frame;
use crate::prepare::jpeg;

/// What `convert("RGB")` gives for a file. A grey file's RGB image has R = G = B, so it is kept as
/// its one grey channel: the resize treats channels independently with the same taps, so resizing
/// the grey channel and repeating it gives the same bytes as resizing the RGB image, on a third of
/// the samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// R = G = B = the grey value.
    Grey(GrayImage),
    Rgb(RgbImage),
}

impl Loaded {
    /// `(width, height)` in pixels.
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Loaded::Grey(g) => g.dimensions(),
            Loaded::Rgb(c) => c.dimensions(),
        }
    }

    /// The RGB image itself (grey repeated into R, G and B).
    pub fn into_rgb(self) -> RgbImage {
        match self {
            Loaded::Rgb(c) => c,
            Loaded::Grey(g) => {
                let (w, h) = g.dimensions();
                let data = g.into_raw().into_iter().flat_map(|v| [v; 3]).collect();
                RgbImage::from_raw(w, h, data).expect("an RGB buffer of the image's shape")
            }
        }
    }

    /// The `w x h` window at `(x, y)` (inside the image).
    pub(crate) fn crop(&self, x: u32, y: u32, w: u32, h: u32) -> Loaded {
        use image::imageops::crop_imm;
        match self {
            Loaded::Grey(g) => Loaded::Grey(crop_imm(g, x, y, w, h).to_image()),
            Loaded::Rgb(c) => Loaded::Rgb(crop_imm(c, x, y, w, h).to_image()),
        }
    }

    /// `([height, width, channels] samples, channels)`: 1 for grey, 3 for RGB.
    pub(crate) fn samples(&self) -> (&[u8], usize) {
        match self {
            Loaded::Grey(g) => (g.as_raw(), 1),
            Loaded::Rgb(c) => (c.as_raw(), 3),
        }
    }
}

/// `bytes` (a complete file, checked beforehand) decoded and converted to RGB as
/// `Image.open(f).convert("RGB")` gives it: [`load`] as an [`RgbImage`].
pub fn decode_rgb(bytes: &[u8], max_alloc: u64) -> Result<RgbImage, Reject> {
    load(bytes, max_alloc).map(Loaded::into_rgb)
}

/// `bytes` (a complete file, checked beforehand) decoded and converted as
/// `Image.open(f).convert("RGB")` converts it, grey files kept grey ([`Loaded`]): JPEG by
/// libjpeg-turbo (`crate::prepare::jpeg`), GIF's first frame as Pillow composes it
/// (`first_frame`), PNG, WebP and BMP by the `image` crate, then `pillow_rgb`. At most
/// `max_alloc` bytes are allocated for the decoded image.
pub fn load(bytes: &[u8], max_alloc: u64) -> Result<Loaded, Reject> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Reject::Unreadable(e.to_string()))?;
    match reader.format() {
        None => Err(Reject::NotAnImage),
        Some(ImageFormat::Jpeg) => jpeg::load(bytes),
        Some(ImageFormat::Gif) => first_frame(bytes, max_alloc).map(Loaded::Rgb).map_err(|e| {
            if e.contains("nexpected") && e.contains("nd") {
                Reject::Truncated(format!("truncated GIF: {e}"))
            } else {
                Reject::Corrupt(e)
            }
        }),
        Some(format) => {
            let mut limits = Limits::default();
            limits.max_alloc = Some(max_alloc);
            reader.limits(limits);
            let img = reader.decode().map_err(|e| decode_error(format, &e))?;
            Ok(pillow_rgb(img))
        }
    }
}

/// `img` as Pillow's `convert("RGB")` of the same file gives it.
pub(crate) fn pillow_rgb(img: DynamicImage) -> Loaded {
    let (w, h) = (img.width(), img.height());
    let grey = |v: Vec<u8>| Loaded::Grey(GrayImage::from_raw(w, h, v).expect("grey of its shape"));
    let rgb = |v: Vec<u8>| Loaded::Rgb(RgbImage::from_raw(w, h, v).expect("RGB of its shape"));
    let colour = |s: &[u8], ch: usize| -> Vec<u8> {
        s.chunks_exact(ch)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect()
    };
    let high = |s: &[u16]| -> Vec<u8> { s.iter().map(|&v| (v >> 8) as u8).collect() };
    match img {
        DynamicImage::ImageLuma8(b) => grey(b.into_raw()),
        DynamicImage::ImageLumaA8(b) => grey(b.as_raw().iter().step_by(2).copied().collect()),
        DynamicImage::ImageRgb8(b) => Loaded::Rgb(b),
        DynamicImage::ImageRgba8(b) => rgb(colour(b.as_raw(), 4)),
        // I;16 -> RGB: `v <= 255 ? v : 255`.
        DynamicImage::ImageLuma16(b) => {
            grey(b.as_raw().iter().map(|&v| v.min(255) as u8).collect())
        }
        DynamicImage::ImageLumaA16(b) => grey(
            b.as_raw()
                .iter()
                .step_by(2)
                .map(|&v| (v >> 8) as u8)
                .collect(),
        ),
        DynamicImage::ImageRgb16(b) => rgb(high(b.as_raw())),
        DynamicImage::ImageRgba16(b) => rgb(colour(&high(b.as_raw()), 4)),
        // Float images are not produced by these decoders; other future colour types of the
        // non-exhaustive enum go through the crate's own conversion.
        other => Loaded::Rgb(other.to_rgb8()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageBuffer, Luma, LumaA, Rgba};

    #[test]
    fn conversions_follow_pillow() {
        let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(1, 1, Rgba([10, 20, 30, 0])));
        assert_eq!(pillow_rgb(rgba).into_rgb().as_raw(), &[10, 20, 30]); // alpha dropped, not composited
        let la = DynamicImage::ImageLumaA8(ImageBuffer::from_pixel(1, 1, LumaA([77, 5])));
        assert_eq!(pillow_rgb(la).into_rgb().as_raw(), &[77, 77, 77]);
        let g = DynamicImage::ImageLuma8(GrayImage::from_pixel(1, 1, Luma([9])));
        assert_eq!(pillow_rgb(g).into_rgb().as_raw(), &[9, 9, 9]);
        let g16 =
            DynamicImage::ImageLuma16(ImageBuffer::from_raw(3, 1, vec![7u16, 255, 256]).unwrap());
        assert_eq!(
            pillow_rgb(g16).into_rgb().as_raw(),
            &[7, 7, 7, 255, 255, 255, 255, 255, 255]
        );
        let rgb16 = DynamicImage::ImageRgb16(
            ImageBuffer::from_raw(1, 1, vec![0x12ffu16, 0xff00, 0x00ff]).unwrap(),
        );
        assert_eq!(pillow_rgb(rgb16).into_rgb().as_raw(), &[0x12, 0xff, 0x00]);
    }

    #[test]
    fn grey_files_stay_one_channel() {
        let g = DynamicImage::ImageLuma8(GrayImage::from_pixel(2, 1, Luma([9])));
        assert!(matches!(pillow_rgb(g), Loaded::Grey(_)));
        let la = DynamicImage::ImageLumaA16(ImageBuffer::from_pixel(1, 1, LumaA([300u16, 0])));
        assert_eq!(
            pillow_rgb(la),
            Loaded::Grey(GrayImage::from_pixel(1, 1, Luma([1])))
        );
        let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(1, 1, Rgba([1, 1, 1, 9])));
        assert!(matches!(pillow_rgb(rgba), Loaded::Rgb(_)));
    }
}
