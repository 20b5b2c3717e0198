//! JPEG decoded as Pillow decodes it, so that the pixels cfkit stores are the reference's. Pillow
//! (`JpegImagePlugin` + `libImaging/JpegDecode.c`) runs libjpeg-turbo's decompressor with its
//! defaults — the accurate integer IDCT (`JDCT_ISLOW`) and fancy (triangular) chroma upsampling —
//! and asks for an output colour space by the number of components: 1 -> `L` (grey), 3 -> `RGB`
//! (libjpeg converts from YCbCr, or takes RGB as stored), 4 -> `CMYK` read with Adobe's inverted
//! polarity (`CMYK;I`: every sample is `255 - v`), which `convert("RGB")` turns into RGB with
//! Pillow's `cmyk2rgb`. The decompressor here is the one MozJPEG vendors (libjpeg-turbo's,
//! unchanged on the decoding side), built from source by cargo (`mozjpeg-sys`).
//!
//! EXIF orientation is ignored, as `PIL.Image.open` ignores it.
//!
//! Which files count as readable follows Pillow too. Pillow feeds libjpeg through a suspending
//! source (`libImaging/JpegDecode.c`): when libjpeg asks for bytes past the end of the file before
//! the last scanline is out, `ImageFile.load` raises "image file is truncated"; once every
//! scanline is out, running out of data in `jpeg_finish_decompress` (markers after the image) is
//! ignored; any fatal libjpeg error is "broken data stream". Here libjpeg reads from memory and,
//! at the end of the data, warns `JWRN_JPEG_EOF` (and feeds a fake EOI) or fails with
//! `JERR_FILE_READ` when skipping past the end; [`load`] notes when that happens and judges the
//! file at the same points as Pillow. libjpeg alone judges JPEGs (header and size included), so a
//! file libjpeg reads is never refused by another decoder's stricter parser.

use std::io;

use image::{GrayImage, RgbImage};
use mozjpeg::{ColorSpace, DctMethod, Decompress};

use super::complete::jpeg_truncation;
use super::decode::Reject;
use super::jpeg_guard::{error_manager, guarded, Outcome};
use super::rgb::Loaded;

fn truncated(bytes: &[u8]) -> Reject {
    Reject::Truncated(jpeg_truncation(bytes).unwrap_or_else(|| {
        format!(
            "truncated JPEG: libjpeg needs data past the end of the file ({} bytes) before the \
             last row of pixels",
            bytes.len()
        )
    }))
}

fn judged<T>(bytes: &[u8], outcome: Outcome<T>) -> Result<T, Reject> {
    match outcome {
        Outcome::Done(v) => Ok(v),
        Outcome::RanOut => Err(truncated(bytes)),
        Outcome::Failed(why) => Err(Reject::Corrupt(format!("JPEG: {why}"))),
    }
}

/// `(width, height)` from the header, as libjpeg reads it.
pub(crate) fn dimensions(bytes: &[u8]) -> Result<(u32, u32), Reject> {
    let outcome = guarded(|| {
        let d = Decompress::builder()
            .with_err(error_manager())
            .from_mem(bytes)?;
        Ok((d.width() as u32, d.height() as u32))
    });
    judged(bytes, outcome)
}

/// `bytes` (a JPEG) as `Image.open(f).convert("RGB")` gives it (grey JPEGs kept grey), or why
/// Pillow would refuse it.
pub(crate) fn load(bytes: &[u8]) -> Result<Loaded, Reject> {
    let mut finish = None;
    let pixels = judged(
        bytes,
        guarded(|| {
            let mut d = Decompress::builder()
                .with_err(error_manager())
                .from_mem(bytes)?;
            d.dct_method(DctMethod::IntegerSlow);
            d.do_fancy_upsampling(true);
            let (w, h) = (d.width() as u32, d.height() as u32);
            let components = d.components().len();
            let colour = match components {
                1 => ColorSpace::JCS_GRAYSCALE,
                3 => ColorSpace::JCS_RGB,
                4 => ColorSpace::JCS_CMYK,
                n => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("cannot handle {n}-layer images (Pillow reads 1, 3 or 4)"),
                    ))
                }
            };
            let mut s = d.to_colorspace(colour)?;
            let samples: Vec<u8> = s.read_scanlines()?;
            finish = Some(s);
            Ok((w, h, components, samples))
        }),
    )?;
    // Every row is out: what `jpeg_finish_decompress` meets after the image is Pillow's only if
    // it is a fatal error other than running out of data.
    if let Some(s) = finish {
        if let Outcome::Failed(why) = guarded(|| s.finish()) {
            return Err(Reject::Corrupt(format!("JPEG: {why}")));
        }
    }
    let (w, h, components, samples) = pixels;
    let short = || Reject::Corrupt("JPEG: fewer rows than the header declares".into());
    match components {
        1 => GrayImage::from_raw(w, h, samples)
            .map(Loaded::Grey)
            .ok_or_else(short),
        3 => RgbImage::from_raw(w, h, samples)
            .map(Loaded::Rgb)
            .ok_or_else(short),
        _ => {
            let rgb = samples
                .chunks_exact(4)
                .flat_map(|p| adobe_cmyk_to_rgb([p[0], p[1], p[2], p[3]]))
                .collect();
            RgbImage::from_raw(w, h, rgb)
                .map(Loaded::Rgb)
                .ok_or_else(short)
        }
    }
}

/// `x * y / 255` rounded, as Pillow's `MULDIV255` (`libImaging/ImagingUtils.h`):
/// `t = x * y + 128; ((t >> 8) + t) >> 8`.
fn muldiv255(x: u32, y: u32) -> u32 {
    let t = x * y + 128;
    ((t >> 8) + t) >> 8
}

/// One pixel as stored by an Adobe CMYK JPEG to RGB, as Pillow does it: the `CMYK;I` unpacker
/// inverts every sample, then `cmyk2rgb` (`libImaging/Convert.c`) computes, with `nk = 255 - k`,
/// `channel = clip8(nk - muldiv255(c, nk))`.
fn adobe_cmyk_to_rgb(stored: [u8; 4]) -> [u8; 3] {
    let [c, m, y, k] = stored.map(|v| 255 - u32::from(v));
    let nk = 255 - k;
    // `nk - muldiv255(v, nk)` lies in 0..=255 for 8-bit inputs, so Pillow's clip is a no-op.
    [c, m, y].map(|v| (nk - muldiv255(v, nk)) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_as_pillow_converts_it() {
        // Stored (inverted) white: C = M = Y = K = 0 after inversion -> white.
        assert_eq!(adobe_cmyk_to_rgb([255, 255, 255, 255]), [255, 255, 255]);
        // Full black ink (stored K = 0) -> black whatever the other inks.
        assert_eq!(adobe_cmyk_to_rgb([17, 99, 200, 0]), [0, 0, 0]);
        // Pillow: nk = 255 - k = 200; c = 255 - 155 = 100 -> 200 - muldiv255(100, 200) = 200 - 78.
        assert_eq!(adobe_cmyk_to_rgb([155, 255, 0, 200])[0], 122);
        assert_eq!(muldiv255(255, 255), 255);
        assert_eq!(muldiv255(100, 200), 78);
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        // An APP0 segment declaring 8302 bytes in a 22-byte file: Pillow's "Truncated File Read".
        let err = load(b"\xff\xd8\xff\xe0 not really a jpeg").unwrap_err();
        assert!(matches!(err, Reject::Truncated(_)), "{err}");
        // A complete marker structure whose frame header declares 0 lines.
        let sof_zero_height: &[u8] = &[
            0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x00, 0x00, 0x10, 0x01, 0x01, 0x11,
            0x00, 0xFF, 0xD9,
        ];
        let err = load(sof_zero_height).unwrap_err();
        assert!(matches!(err, Reject::Corrupt(_)), "{err}");
        assert!(dimensions(sof_zero_height).is_err());
    }
}
