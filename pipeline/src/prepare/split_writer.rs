//! Writes one split as shards: items are produced in parallel (rayon) in chunks, joined to the
//! writer thread by a bounded crossbeam channel, and written in input order, so the output does not
//! depend on thread timing. Shard k holds the good rows among inputs `[k·R, (k+1)·R)`, which makes
//! the shard plan a function of the input listing alone.

use std::path::Path;

use cfkit_schemas::layout::shard_relpath;
use cfkit_schemas::{
    images_to_batch, shard_schema, DatasetInfo, ImageRecord, ShardSummary, ShardWriter,
    WriterOptions,
};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::error::Result;

/// Inputs produced per parallel chunk.
const CHUNK: usize = 256;
/// Rows per Arrow batch handed to the shard writer.
const BATCH_ROWS: usize = 128;
/// Chunks in flight between the producers and the writer.
const CHANNEL_DEPTH: usize = 4;

/// An input that did not become a row: its id or path, and why.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Rejected {
    pub path: String,
    pub reason: String,
}

/// What writing a split produced.
#[derive(Debug, Clone)]
pub(crate) struct SplitOutput {
    pub shards: Vec<ShardSummary>,
    pub rows: u64,
    pub rejected: Vec<Rejected>,
    /// (id, source blake3) of every row, in order.
    pub sources: Vec<(String, String)>,
    pub seconds: f64,
}

/// A progress bar with images/s, hidden when `quiet` (indicatif also hides it off a terminal).
pub fn progress_bar(len: u64, label: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>14} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    pb
}

/// Produces `n` items with `produce` and writes them under `out/data/<split>-…`.
pub(crate) fn write_split<F>(
    out: &Path,
    info: &DatasetInfo,
    n: usize,
    rows_per_shard: usize,
    options: WriterOptions,
    quiet: bool,
    produce: F,
) -> Result<SplitOutput>
where
    F: Fn(usize) -> std::result::Result<ImageRecord, Rejected> + Sync,
{
    let start = std::time::Instant::now();
    let rows_per_shard = rows_per_shard.max(1);
    let num_shards = n.div_ceil(rows_per_shard).max(1);
    let schema = shard_schema(info, None);
    let pb = progress_bar(n as u64, &info.split, quiet);
    let (tx, rx) = crossbeam_channel::bounded::<
        Vec<(usize, std::result::Result<ImageRecord, Rejected>)>,
    >(CHANNEL_DEPTH);
    let mut output = SplitOutput {
        shards: Vec::new(),
        rows: 0,
        rejected: Vec::new(),
        sources: Vec::new(),
        seconds: 0.0,
    };
    std::thread::scope(|s| -> Result<()> {
        let produce = &produce;
        s.spawn(move || {
            for start in (0..n).step_by(CHUNK) {
                let end = (start + CHUNK).min(n);
                let chunk: Vec<_> = (start..end)
                    .into_par_iter()
                    .map(|i| (i, produce(i)))
                    .collect();
                if tx.send(chunk).is_err() {
                    return; // the writer stopped on an error
                }
            }
        });
        // `rx` moves in here, so an early error drops it and unblocks the producer.
        let rx = rx;
        let mut shard = 0usize;
        let mut writer = ShardWriter::try_new(
            out,
            &shard_relpath(&info.split, 0, num_shards),
            schema.clone(),
            options,
        )?;
        let mut pending: Vec<ImageRecord> = Vec::with_capacity(BATCH_ROWS);
        for chunk in rx.iter() {
            for (i, result) in chunk {
                let k = i / rows_per_shard;
                while k > shard {
                    if !pending.is_empty() {
                        writer.write(&images_to_batch(&schema, &pending)?)?;
                        pending.clear();
                    }
                    output.shards.push(writer.close()?);
                    shard += 1;
                    writer = ShardWriter::try_new(
                        out,
                        &shard_relpath(&info.split, shard, num_shards),
                        schema.clone(),
                        options,
                    )?;
                }
                match result {
                    Ok(rec) => {
                        output
                            .sources
                            .push((rec.id.clone(), rec.source_blake3.clone()));
                        pending.push(rec);
                        if pending.len() == BATCH_ROWS {
                            writer.write(&images_to_batch(&schema, &pending)?)?;
                            pending.clear();
                        }
                    }
                    Err(rej) => output.rejected.push(rej),
                }
                pb.inc(1);
            }
        }
        if !pending.is_empty() {
            writer.write(&images_to_batch(&schema, &pending)?)?;
        }
        output.shards.push(writer.close()?);
        // Shards whose inputs ran out (n < planned) are still written, empty, so names stay complete.
        while output.shards.len() < num_shards {
            shard += 1;
            let w = ShardWriter::try_new(
                out,
                &shard_relpath(&info.split, shard, num_shards),
                schema.clone(),
                options,
            )?;
            output.shards.push(w.close()?);
        }
        Ok(())
    })?;
    pb.finish_and_clear();
    output.rows = output.shards.iter().map(|s| s.rows).sum();
    output.seconds = start.elapsed().as_secs_f64();
    Ok(output)
}
