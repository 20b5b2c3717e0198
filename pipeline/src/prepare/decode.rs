//! Turning one source file into a stored image, or a reason to quarantine it.
//!
//! Order of checks: readable, non-empty, a known image format (sniffed from the bytes, not the
//! extension), complete (a WebP reaches its declared size: [`crate::prepare::complete`]),
//! dimensions under the decompression-bomb limit (read from the header before any pixel is
//! decoded), a full decode under an allocation limit to RGB as Pillow's `convert("RGB")` gives it
//! ([`crate::prepare::rgb`]; JPEG by libjpeg-turbo, which also judges whether a JPEG is truncated
//! or broken at the points Pillow does: `crate::prepare::jpeg`), the border crop, then CLIP
//! preprocessing.
//!
//! Formats: what torchvision's default loader (`PIL.Image.open(f).convert("RGB")`) reads in
//! ImageNet-style datasets — JPEG (baseline, progressive, grey, CMYK), PNG, WebP, BMP and GIF
//! (its first frame). A file Pillow refuses is quarantined here too (`tests/realfiles.rs`
//! checks both verdicts on a corpus of real photographs and damaged copies).

use std::io::Cursor;

use cfkit_schemas::{encode_png, Resize, RgbPixels};
use image::{ImageFormat, ImageReader};
use serde::Serialize;

use crate::prepare::complete::truncation;
use crate::prepare::jpeg;
use crate::prepare::preprocess::preprocess_loaded;
use crate::prepare::rgb::{load, Loaded};
use crate::prepare::sources::SourceItem;

/// Default limit on source pixels: Pillow's `MAX_IMAGE_PIXELS` (89,478,485) × 2, the size at which
/// Pillow raises `DecompressionBombError` instead of warning.
pub const DEFAULT_MAX_PIXELS: u64 = 2 * 89_478_485;

/// Why a file was not turned into an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Reject {
    Unreadable(String),
    Empty,
    NotAnImage,
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    /// The file ends before its image data do (Pillow: "image file is truncated").
    Truncated(String),
    Corrupt(String),
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reject::Unreadable(e) => write!(f, "unreadable: {e}"),
            Reject::Empty => write!(f, "empty file (0 bytes)"),
            Reject::NotAnImage => write!(f, "not an image (no known image signature in the bytes)"),
            Reject::TooLarge {
                width,
                height,
                max_pixels,
            } => {
                write!(
                    f,
                    "{width}x{height} pixels exceeds the decompression-bomb limit of {max_pixels}"
                )
            }
            Reject::Truncated(e) => write!(f, "{e}"),
            Reject::Corrupt(e) => write!(f, "cannot decode: {e}"),
        }
    }
}

impl std::error::Error for Reject {}

/// A preprocessed source image.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// PNG of the S×S RGB image.
    pub png: Vec<u8>,
    pub orig_width: u32,
    pub orig_height: u32,
    /// blake3 of the source file's bytes.
    pub source_blake3: String,
}

/// How a source image becomes stored pixels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PixelSpec {
    pub size: u32,
    pub max_pixels: u64,
    /// Pixels cut from every side before preprocessing (ObjectNet's protocol: PIL
    /// `crop((b, b, w - b, h - b))`); 0 for every other set.
    pub border_crop: u32,
    pub resize: Resize,
}

/// Reads, checks, decodes and preprocesses one listed image (a file, a tar member, a spilled
/// Parquet row).
pub(crate) fn prepare_item(item: &SourceItem, spec: &PixelSpec) -> Result<Prepared, Reject> {
    let bytes = item.read().map_err(|e| Reject::Unreadable(e.to_string()))?;
    prepare_bytes_with(&bytes, spec)
}

/// [`prepare_item`] on bytes already in memory, CLIP's preprocessing, without a border crop.
pub fn prepare_bytes(bytes: &[u8], size: u32, max_pixels: u64) -> Result<Prepared, Reject> {
    let spec = PixelSpec {
        size,
        max_pixels,
        border_crop: 0,
        resize: Resize::default(),
    };
    prepare_bytes_with(bytes, &spec)
}

/// Cuts `b` pixels from every side (`b = 0`: the image itself).
fn crop_border(img: Loaded, b: u32) -> Result<Loaded, Reject> {
    let (w, h) = img.dimensions();
    if b == 0 {
        return Ok(img);
    }
    if w <= b.saturating_mul(2) || h <= b.saturating_mul(2) {
        return Err(Reject::Corrupt(format!(
            "{w}x{h} pixels is too small for the {b}-px border crop"
        )));
    }
    Ok(img.crop(b, b, w - 2 * b, h - 2 * b))
}

/// [`prepare_bytes`] by `spec`.
pub(crate) fn prepare_bytes_with(bytes: &[u8], spec: &PixelSpec) -> Result<Prepared, Reject> {
    let max_pixels = spec.max_pixels;
    if bytes.is_empty() {
        return Err(Reject::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Reject::Unreadable(e.to_string()))?;
    let (width, height) = match reader.format() {
        None => return Err(Reject::NotAnImage),
        // libjpeg judges JPEGs, header included, as it does for Pillow.
        Some(ImageFormat::Jpeg) => jpeg::dimensions(bytes)?,
        Some(_) => {
            if let Some(why) = truncation(bytes) {
                return Err(Reject::Truncated(why));
            }
            reader
                .into_dimensions()
                .map_err(|e| Reject::Corrupt(e.to_string()))?
        }
    };
    if width as u64 * height as u64 > max_pixels {
        return Err(Reject::TooLarge {
            width,
            height,
            max_pixels,
        });
    }
    // Room for the decoded image at up to 16-bit RGBA, and nothing beyond.
    let max_alloc = max_pixels.saturating_mul(8).max(1 << 20);
    // As the reference loads it: RGB first, then the border crop and the resize.
    let img = crop_border(load(bytes, max_alloc)?, spec.border_crop)?;
    let rgb = preprocess_loaded(&img, spec.size, &spec.resize);
    let (w, h) = rgb.dimensions();
    let png = encode_png(&RgbPixels {
        width: w,
        height: h,
        pixels: rgb.into_raw(),
    })
    .map_err(|e| Reject::Corrupt(e.to_string()))?;
    Ok(Prepared {
        png,
        orig_width: width,
        orig_height: height,
        source_blake3: blake3::hash(bytes).to_hex().to_string(),
    })
}

/// A decoder error, as [`Reject::Truncated`] when the data ran out (the decoders report it as an
/// I/O end-of-file or in their own words) and [`Reject::Corrupt`] otherwise.
pub(crate) fn decode_error(format: ImageFormat, e: &image::ImageError) -> Reject {
    let text = e.to_string();
    let lower = text.to_lowercase();
    let eof = matches!(e, image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof)
        || ["end of file", "unexpected end", "fill whole buffer"]
            .iter()
            .any(|w| lower.contains(w));
    if eof {
        Reject::Truncated(format!(
            "truncated {}: the data end early ({})",
            format
                .extensions_str()
                .first()
                .unwrap_or(&"image")
                .to_uppercase(),
            text.trim()
        ))
    } else {
        Reject::Corrupt(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        encode_png(&RgbPixels {
            width: w,
            height: h,
            pixels: vec![128; (3 * w * h) as usize],
        })
        .unwrap()
    }

    #[test]
    fn rejects_say_why() {
        assert_eq!(
            prepare_bytes(b"", 8, DEFAULT_MAX_PIXELS).unwrap_err(),
            Reject::Empty
        );
        assert_eq!(
            prepare_bytes(b"hello world, not an image", 8, DEFAULT_MAX_PIXELS).unwrap_err(),
            Reject::NotAnImage
        );
        let good = png(20, 10);
        let truncated = &good[..good.len() - 20];
        let err = prepare_bytes(truncated, 8, DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(matches!(err, Reject::Truncated(_)), "{err}");
        assert!(err.to_string().starts_with("truncated PNG"), "{err}");
        let err = prepare_bytes(&good, 8, 100).unwrap_err();
        assert_eq!(
            err,
            Reject::TooLarge {
                width: 20,
                height: 10,
                max_pixels: 100
            }
        );
        assert!(err.to_string().contains("20x10"));
        let ok = prepare_bytes(&good, 8, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!((ok.orig_width, ok.orig_height), (20, 10));
        let back = cfkit_schemas::decode_image(&ok.png).unwrap();
        assert_eq!((back.width, back.height), (8, 8));
    }
}
