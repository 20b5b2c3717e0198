//! Read + decode throughput of image shards, for `just bench-data`.
//!
//! Usage: bench_data DIR SPLIT THREADS. Reads every shard of SPLIT listed in DIR/manifest.json,
//! row group by row group, and PNG-decodes every image on a rayon pool of THREADS threads.
//! Prints one JSON line: {"images", "seconds", "images_per_s", "threads"}.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use cfkit_schemas::{batch_to_images, decode_image, Manifest, ShardReader};
use rayon::prelude::*;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, split, threads) = match args.as_slice() {
        [_, d, s, t] => (Path::new(d), s.as_str(), t.parse::<usize>()?),
        _ => anyhow::bail!("usage: bench_data DIR SPLIT THREADS"),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let manifest = Manifest::read(dir)?;
    let entry = manifest
        .splits
        .get(split)
        .with_context(|| format!("no split '{split}'"))?;
    let t0 = Instant::now();
    let mut images = 0usize;
    let mut checksum = 0u64;
    for shard in &entry.shards {
        let reader = ShardReader::open(&dir.join(&shard.file))?;
        for g in 0..reader.num_row_groups() {
            for batch in reader.read_row_group(g, 1024)? {
                let rows = batch_to_images(&batch, reader.path())?;
                let sums: Vec<u64> = pool.install(|| {
                    rows.par_iter()
                        .map(|r| {
                            decode_image(&r.image.bytes)
                                .map(|p| p.pixels.iter().map(|&v| v as u64).sum::<u64>())
                        })
                        .collect::<Result<_, _>>()
                })?;
                images += rows.len();
                checksum = checksum.wrapping_add(sums.iter().sum::<u64>());
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"impl": "cfkit", "images": images, "seconds": secs, "images_per_s": images as f64 / secs, "threads": threads, "pixel_sum": checksum})
    );
    Ok(())
}
