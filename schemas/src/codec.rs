//! Encoding and decoding of stored images: uint8 RGB as PNG (lossless, so counterfactual pixels
//! can be checked exactly against their original and donor).

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, ImageFormat};

use crate::error::{Result, SchemaError};

/// An uint8 RGB image, row-major, `pixels.len() == 3 * width * height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbPixels {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// PNG-encodes RGB pixels (fast deflate, adaptive filters: about as small as default settings on
/// photographs at a fraction of the time).
pub fn encode_png(img: &RgbPixels) -> Result<Vec<u8>> {
    if img.pixels.len() != 3 * img.width as usize * img.height as usize {
        return Err(SchemaError::Record(format!(
            "{} bytes for a {}x{} RGB image",
            img.pixels.len(),
            img.width,
            img.height
        )));
    }
    let mut out = Vec::with_capacity(img.pixels.len() / 2);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(&img.pixels, img.width, img.height, ExtendedColorType::Rgb8)
        .map_err(|e| SchemaError::Record(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

/// Decodes a stored image (PNG; any colour type is converted to RGB).
pub fn decode_image(bytes: &[u8]) -> Result<RgbPixels> {
    let img = image::load_from_memory_with_format(bytes, ImageFormat::Png)
        .map_err(|e| SchemaError::Record(format!("stored image does not decode as PNG: {e}")))?
        .into_rgb8();
    Ok(RgbPixels {
        width: img.width(),
        height: img.height(),
        pixels: img.into_raw(),
    })
}

/// Decodes a stored image that must be `size`×`size` pixels (every image of a split has the
/// split's size) to its uint8 HWC pixels.
pub fn decode_image_sized(bytes: &[u8], size: u32) -> Result<Vec<u8>> {
    let img = decode_image(bytes)?;
    if img.width != size || img.height != size {
        return Err(SchemaError::Record(format!(
            "stored image is {}x{}, expected {size}x{size}",
            img.width, img.height
        )));
    }
    Ok(img.pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_is_lossless() {
        let img = RgbPixels {
            width: 5,
            height: 3,
            pixels: (0..45).map(|i| (i * 37 % 256) as u8).collect(),
        };
        let back = decode_image(&encode_png(&img).unwrap()).unwrap();
        assert_eq!(back, img);
        assert!(encode_png(&RgbPixels {
            width: 2,
            height: 2,
            pixels: vec![0; 5]
        })
        .is_err());
        let png = encode_png(&img).unwrap();
        assert!(decode_image_sized(&png, 5).is_err());
        assert!(
            decode_image_sized(
                &encode_png(&RgbPixels {
                    width: 4,
                    height: 4,
                    pixels: vec![7; 48]
                })
                .unwrap(),
                4
            )
            .unwrap()
                == vec![7; 48]
        );
        assert!(decode_image(b"not a png")
            .unwrap_err()
            .to_string()
            .contains("PNG"));
    }
}
