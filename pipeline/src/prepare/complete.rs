//! Whole-file checks for truncation that the decoders let through, and where a truncated JPEG
//! ends.
//!
//! The `image` crate's WebP decoder ignores a RIFF container that is shorter than it declares.
//! Pillow (torchvision's default loader) refuses it ("could not create decoder object"), so a file
//! it cannot read must not become a training image here. PNG, GIF and BMP decoders already fail
//! on missing pixel data; JPEGs are judged by libjpeg itself, as Pillow judges them
//! (`crate::prepare::jpeg`), and `jpeg_truncation` only says where such a file stops.

/// `Some(reason)` when `bytes` are a WebP file whose data end early.
pub fn truncation(bytes: &[u8]) -> Option<String> {
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return webp_truncation(bytes);
    }
    None
}

/// Walks the JPEG marker segments (ITU-T T.81 annex B.1) from SOI to EOI: every segment's
/// declared length must be present and every entropy-coded scan must end at a marker; a file
/// that ends before EOI (0xFFD9) is truncated, and the reason says where. Bytes after EOI are
/// ignored, as decoders do. Stricter than libjpeg on damaged data (a stray marker inside a scan
/// can look like a segment running past the end), so it words a verdict and never makes one.
pub(crate) fn jpeg_truncation(bytes: &[u8]) -> Option<String> {
    let short = |what: &str| {
        Some(format!(
            "truncated JPEG: the file ({} bytes) ends {what}, before the end-of-image marker",
            bytes.len()
        ))
    };
    let mut pos = 2usize;
    loop {
        // Expect a marker: 0xFF (fill bytes allowed) then a code; skip stray bytes as libjpeg does.
        while pos < bytes.len() && bytes[pos] != 0xFF {
            pos += 1;
        }
        while pos < bytes.len() && bytes[pos] == 0xFF {
            pos += 1;
        }
        let Some(&code) = bytes.get(pos) else {
            return short("between segments");
        };
        pos += 1;
        match code {
            0xD9 => return None,
            // Standalone markers without a length: TEM, RST0-7, SOI.
            0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let Some(len) = bytes.get(pos..pos + 2) else {
            return short(&format!("inside the header of segment 0xFF{code:02X}"));
        };
        let len = u16::from_be_bytes([len[0], len[1]]) as usize;
        if len < 2 || pos + len > bytes.len() {
            return short(&format!("inside segment 0xFF{code:02X}"));
        }
        pos += len;
        if code == 0xDA {
            // Entropy-coded data: 0xFF is followed by 0x00 (stuffing) or RST0-7 inside a scan.
            loop {
                match bytes.get(pos..pos + 2) {
                    None => return short("inside the compressed image data"),
                    Some([0xFF, 0x00 | 0xD0..=0xD7]) => pos += 2,
                    Some([0xFF, _]) => break,
                    Some(_) => pos += 1,
                }
            }
        }
    }
}

/// A RIFF container declares its size after the `RIFF` tag (little-endian, counting from byte 8).
fn webp_truncation(bytes: &[u8]) -> Option<String> {
    let declared = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize + 8;
    (bytes.len() < declared).then(|| {
        format!(
            "truncated WebP: the RIFF container declares {declared} bytes, the file has {}",
            bytes.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, an APP0 segment, SOS with 3 bytes of scan data (one stuffed 0xFF00, one RST0), EOI.
    const JPEG: &[u8] = &[
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0xFF,
        0x00, 0xFF, 0xD0, 0x34, 0xFF, 0xD9,
    ];

    #[test]
    fn jpeg_truncation_says_where_the_file_stops() {
        assert_eq!(jpeg_truncation(JPEG), None);
        let mut trailing = JPEG.to_vec();
        trailing.extend_from_slice(b"junk after EOI");
        assert_eq!(jpeg_truncation(&trailing), None);
        for cut in 2..JPEG.len() {
            let why = jpeg_truncation(&JPEG[..cut]).expect("every cut before EOI is truncated");
            assert!(why.starts_with("truncated JPEG"), "{why}");
        }
        assert!(jpeg_truncation(&JPEG[..16])
            .unwrap()
            .contains("compressed image data"));
        assert!(jpeg_truncation(&JPEG[..7])
            .unwrap()
            .contains("segment 0xFFE0"));
        // Not a WebP: `truncation` leaves JPEGs to libjpeg.
        assert_eq!(truncation(&JPEG[..7]), None);
    }

    #[test]
    fn webp_needs_its_declared_size() {
        let mut webp = b"RIFF\x08\x00\x00\x00WEBPVP8 ".to_vec();
        assert_eq!(truncation(&webp), None);
        webp[4] = 9;
        assert!(truncation(&webp)
            .unwrap()
            .contains("declares 17 bytes, the file has 16"));
        assert_eq!(truncation(b"\x89PNG\r\n\x1a\n"), None);
    }
}
