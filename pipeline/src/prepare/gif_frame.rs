//! The first frame of a GIF as RGB, as `PIL.Image.open(f).convert("RGB")` presents it
//! (torchvision's loader reads only that frame). The `image` crate composes frames to RGBA and
//! blanks transparent pixels; Pillow keeps frame 0 as palette indices (mode `P`), so
//! `convert("RGB")` shows the palette colour of the transparent index. Pillow's rules
//! (`GifImagePlugin`):
//! - the canvas is the logical screen, filled with the frame's transparent index if it has one,
//!   else index 0, and the frame is pasted at its offset;
//! - the palette is the frame's local one, else the global one;
//! - a palette that is exactly the grey ramp (entry i = (i, i, i)) opens as mode `L` instead
//!   (the same RGB values once converted).

use std::io::Cursor;
use std::num::NonZeroU64;

use gif::{ColorOutput, DecodeOptions, MemoryLimit};
use image::RgbImage;

/// Decodes frame 0 of `bytes` (at most `max_alloc` bytes per frame buffer) into the RGB image
/// Pillow's `convert("RGB")` gives.
pub(crate) fn first_frame(bytes: &[u8], max_alloc: u64) -> Result<RgbImage, String> {
    let mut options = DecodeOptions::new();
    options.set_color_output(ColorOutput::Indexed);
    if let Some(limit) = NonZeroU64::new(max_alloc) {
        options.set_memory_limit(MemoryLimit::Bytes(limit));
    }
    let mut decoder = options
        .read_info(Cursor::new(bytes))
        .map_err(|e| e.to_string())?;
    let (w, h) = (decoder.width() as usize, decoder.height() as usize);
    let global = decoder.global_palette().map(<[u8]>::to_vec);
    let frame = decoder
        .read_next_frame()
        .map_err(|e| e.to_string())?
        .ok_or("the GIF holds no image")?;
    let mut canvas = vec![frame.transparent.unwrap_or(0); w * h];
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    let (left, top) = (frame.left as usize, frame.top as usize);
    for y in 0..fh.min(h.saturating_sub(top)) {
        let cols = fw.min(w.saturating_sub(left));
        let src = &frame.buffer[y * fw..y * fw + cols];
        canvas[(top + y) * w + left..(top + y) * w + left + cols].copy_from_slice(src);
    }
    let palette = frame.palette.clone().or(global).unwrap_or_default();
    let rgb: Vec<u8> = canvas
        .iter()
        .flat_map(|&i| {
            let at = 3 * i as usize;
            palette
                .get(at..at + 3)
                .map_or([0, 0, 0], |c| [c[0], c[1], c[2]])
        })
        .collect();
    RgbImage::from_raw(w as u32, h as u32, rgb).ok_or_else(|| "bad GIF canvas".to_string())
}
