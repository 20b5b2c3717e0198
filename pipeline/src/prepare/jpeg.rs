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

use image::{GrayImage, RgbImage};
use mozjpeg::{ColorSpace, DctMethod, Decompress};

use super::decode::Reject;
use super::rgb::Loaded;

/// `bytes` (a complete JPEG) as `Image.open(f).convert("RGB")` gives it (grey JPEGs kept grey).
pub(crate) fn load(bytes: &[u8]) -> Result<Loaded, Reject> {
    // libjpeg reports a fatal error by unwinding out of its error handler (the `mozjpeg` crate's
    // error manager); the message is the panic's payload.
    let decoded = std::panic::catch_unwind(|| decode(bytes)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "libjpeg failed".into());
        Reject::Corrupt(msg)
    })?;
    decoded.map_err(|e| Reject::Corrupt(format!("JPEG: {e}")))
}

fn decode(bytes: &[u8]) -> std::io::Result<Loaded> {
    let mut d = Decompress::builder().from_mem(bytes)?;
    d.dct_method(DctMethod::IntegerSlow);
    d.do_fancy_upsampling(true);
    let (w, h) = (d.width() as u32, d.height() as u32);
    let components = d.components().len();
    let short = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the decoder returned fewer rows than the header declares",
        )
    };
    let out = match components {
        1 => {
            let mut s = d.to_colorspace(ColorSpace::JCS_GRAYSCALE)?;
            let grey: Vec<u8> = s.read_scanlines()?;
            s.finish()?;
            return GrayImage::from_raw(w, h, grey)
                .map(Loaded::Grey)
                .ok_or_else(short);
        }
        3 => {
            let mut s = d.to_colorspace(ColorSpace::JCS_RGB)?;
            let rgb: Vec<u8> = s.read_scanlines()?;
            s.finish()?;
            rgb
        }
        4 => {
            let mut s = d.to_colorspace(ColorSpace::JCS_CMYK)?;
            let cmyk: Vec<u8> = s.read_scanlines()?;
            s.finish()?;
            cmyk.chunks_exact(4)
                .flat_map(|p| adobe_cmyk_to_rgb([p[0], p[1], p[2], p[3]]))
                .collect()
        }
        n => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("cannot handle {n}-layer images (Pillow reads 1, 3 or 4)"),
            ))
        }
    };
    RgbImage::from_raw(w, h, out)
        .map(Loaded::Rgb)
        .ok_or_else(short)
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
    fn garbage_is_an_error_not_a_panic() {
        let err = load(b"\xff\xd8\xff\xe0 not really a jpeg").unwrap_err();
        assert!(matches!(err, Reject::Corrupt(_)), "{err}");
    }
}
