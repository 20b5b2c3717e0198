//! Decode + preprocess throughput of source image files on one thread, for `just bench-decode`
//! (cfkit_tools.bench.decode runs it next to Pillow + torchvision on the same files).
//!
//! Usage: `bench_decode LIST SIZE ROUNDS MODE`. LIST is a text file with one image path per line;
//! every file is read into memory first, then processed ROUNDS times. MODE `preprocess`: decode,
//! conversion to RGB as Pillow's `convert("RGB")`, resize and center crop (what the reference's
//! loader + transforms do); `prepare`: all of `cfkit prepare`'s per-file work (the checks, the
//! above, and the PNG encode of the stored image). Prints one JSON line:
//! `{"files", "images", "seconds", "images_per_s_per_core", "size", "mode", "checksum"}`.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use cfkit_pipeline::prepare::decode::{prepare_bytes, DEFAULT_MAX_PIXELS};
use cfkit_pipeline::prepare::preprocess::clip_preprocess_encoded;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, list, size, rounds, mode] = args.as_slice() else {
        bail!("usage: bench_decode LIST SIZE ROUNDS MODE (MODE: preprocess or prepare)");
    };
    let (size, rounds): (u32, usize) = (size.parse()?, rounds.parse()?);
    let text = std::fs::read_to_string(list).with_context(|| format!("reading {list}"))?;
    let files = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|p| std::fs::read(p).with_context(|| format!("reading {p}")))
        .collect::<Result<Vec<_>>>()?;
    // One value per image that depends on every output byte, so nothing is optimised away.
    let run = |bytes: &[u8]| -> Result<usize> {
        Ok(match mode.as_str() {
            "preprocess" => clip_preprocess_encoded(bytes, size)?
                .as_raw()
                .iter()
                .map(|&v| usize::from(v))
                .sum(),
            "prepare" => prepare_bytes(bytes, size, DEFAULT_MAX_PIXELS)?.png.len(),
            other => bail!("unknown mode {other:?} (preprocess or prepare)"),
        })
    };
    let t0 = Instant::now();
    let (mut images, mut checksum) = (0usize, 0usize);
    for _ in 0..rounds {
        for f in &files {
            checksum = checksum.wrapping_add(run(f)?);
            images += 1;
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    println!(
        "{{\"files\": {}, \"images\": {images}, \"seconds\": {seconds:.4}, \"images_per_s_per_core\": {:.1}, \"size\": {size}, \"mode\": \"{mode}\", \"checksum\": {checksum}}}",
        files.len(),
        images as f64 / seconds
    );
    Ok(())
}
