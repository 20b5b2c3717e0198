//! The PIL mode a file opens in, as far as it changes preprocessing: Pillow resizes modes `P`
//! (palette) and `1` (1-bit) with NEAREST whatever filter is asked for, and keeps a `tRNS`
//! colour key as metadata where the `image` crate adds an alpha channel. The decoded pixels no
//! longer show the mode, so it is read from the file's header.

/// The resampling filter Pillow uses for the image's mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeFilter {
    /// `Image.BICUBIC`, antialiased (every mode except `P` and `1`); what CLIP asks for.
    Bicubic,
    /// What Pillow silently uses instead for modes `P` (palette) and `1` (1-bit).
    Nearest,
}

/// What the encoded bytes tell about the PIL mode (see [`pil_hints`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PilHints {
    /// Filter Pillow would use for this file's mode.
    pub filter: ResizeFilter,
    /// The decoder's alpha channel comes only from a `tRNS` colour key, which Pillow ignores.
    pub drop_alpha: bool,
}

/// Sniff the header of a PNG or BMP file for what Pillow's mode would change (other formats give
/// the defaults; GIF is decoded by [`crate::prepare::gif_frame`], which knows its mode).
pub fn pil_hints(bytes: &[u8]) -> PilHints {
    if bytes.starts_with(b"BM") {
        return PilHints {
            filter: bmp_filter(bytes),
            drop_alpha: false,
        };
    }
    png_hints(bytes)
}

/// PNG:
/// colour type 3 (palette, Pillow mode `P`) or grey at bit depth 1 (mode `1`) -> NEAREST;
/// a `tRNS` chunk on grey or RGB (colour types 0 and 2) -> drop the decoder's alpha.
/// PNG layout (PNG spec 5.2-5.3, 11.2.2): 8-byte signature, then chunks of
/// `length u32 BE | type [u8; 4] | data | crc`, the first being IHDR with bit depth at byte 24 and
/// colour type at byte 25 of the file.
fn png_hints(bytes: &[u8]) -> PilHints {
    let mut hints = PilHints {
        filter: ResizeFilter::Bicubic,
        drop_alpha: false,
    };
    if bytes.len() < 33 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return hints;
    }
    let (depth, colour) = (bytes[24], bytes[25]);
    if colour == 3 || (colour == 0 && depth == 1) {
        hints.filter = ResizeFilter::Nearest;
    }
    let mut pos = 8usize;
    while let Some(head) = pos.checked_add(8).and_then(|end| bytes.get(pos..end)) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"tRNS" => hints.drop_alpha = colour == 0 || colour == 2,
            b"IDAT" | b"IEND" => break,
            _ => {}
        }
        pos = pos.saturating_add(12).saturating_add(len);
    }
    hints
}

/// BMP (Pillow `BmpImagePlugin`): up to 8 bits per pixel the file holds a palette and opens as
/// `P`, except a palette that is exactly the grey ramp `(i, i, i)` opens as `L` (bicubic) and a
/// 2-entry black/white one as `1`. Layout (Microsoft BITMAPINFOHEADER / BITMAPCOREHEADER): the
/// DIB header starts at byte 14 with its size; bits per pixel at byte 24 (12-byte core header)
/// or 28; the colour count at byte 46 (0: 2^bpp); the palette follows the DIB header, 3 bytes per
/// entry (core) or 4 (BGRx).
fn bmp_filter(bytes: &[u8]) -> ResizeFilter {
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let Some(header) = u32_at(14) else {
        return ResizeFilter::Bicubic;
    };
    let core = header == 12;
    let Some(bpp) = u16_at(if core { 24 } else { 28 }) else {
        return ResizeFilter::Bicubic;
    };
    if bpp == 0 || bpp > 8 {
        return ResizeFilter::Bicubic;
    }
    let colours = match (core, u32_at(46)) {
        (false, Some(n)) if n > 0 && n <= 256 => n as usize,
        _ => 1usize << bpp,
    };
    let entry = if core { 3 } else { 4 };
    let start = 14 + header as usize;
    let grey_values: Vec<usize> = if colours == 2 {
        vec![0, 255]
    } else {
        (0..colours).collect()
    };
    let grey = grey_values.iter().enumerate().all(|(i, &v)| {
        bytes
            .get(start + i * entry..start + i * entry + 3)
            .is_some_and(|rgb| rgb.iter().all(|&c| c as usize == v))
    });
    if grey && colours != 2 {
        ResizeFilter::Bicubic
    } else {
        ResizeFilter::Nearest
    }
}
