//! One piece of a build (an input shard, or a run of its batches: [`super::pieces`]): skipped
//! when the manifest already lists it intact, else read, run through three stages — decode
//! (rayon) -> device (this thread) -> encode (rayon) + write — and closed into place with its
//! quarantine file and a manifest update.
//!
//! Pipelined, the stages are threads joined by bounded channels of two batches each, so at most
//! ~6 batches are in memory and the device never waits for PNG work; sequential, they run one
//! after the other per batch. The output is the same either way.

use std::path::Path;
use std::time::Instant;

use cfkit_outdir::crash_point;
use cfkit_schemas::{counterfactuals_to_batch, ImageRecord, ShardReader, ShardWriter};
use crossbeam_channel::bounded;
use indicatif::ProgressBar;

use super::batch::{compute_pools, decode_batch, encode_batch, BatchSpec, ComputedBatch};
use super::batch::{DecodedBatch, Teacher};
use super::pieces::Piece;
use super::stats::StrategyStats;
use super::WarmStart;
use super::{batch_bounds, quarantine, Build, Pipelining};
use crate::error::{PipelineError, Result};

/// A piece's batches: (batch index within the input shard, first row, end row).
type Batches = Vec<(usize, usize, usize)>;

/// The device stage of one shard: sets rejected rows aside, computes, keeps time.
struct DeviceStage<'a> {
    teacher: Teacher<'a>,
    spec: BatchSpec<'a>,
    rejected: Vec<(String, String)>,
    busy_s: f64,
    since: Instant,
    pb: &'a ProgressBar,
    /// Donor pools per device pass.
    pools: usize,
    /// The run's first device batch (set once, by whichever shard computes first).
    warm: &'a mut Option<WarmStart>,
    /// Device seconds of the run before this shard.
    before_s: f64,
}

impl DeviceStage<'_> {
    /// One device pass over `pools` (batch index, decoded rows), each its own donor pool.
    fn run(&mut self, pools: Vec<(usize, DecodedBatch)>) -> Result<Vec<ComputedBatch>> {
        let mut kept = Vec::with_capacity(pools.len());
        for (b, mut decoded) in pools {
            self.rejected.append(&mut decoded.rejected);
            if !decoded.rows.is_empty() {
                kept.push((b, decoded));
            }
        }
        if kept.is_empty() {
            return Ok(Vec::new());
        }
        let t0 = Instant::now();
        let rows = kept.iter().map(|(_, d)| d.rows.len() as u64).sum();
        let computed = compute_pools(&self.teacher, kept, &self.spec)?;
        self.busy_s += t0.elapsed().as_secs_f64();
        if self.warm.is_none() {
            *self.warm = Some(WarmStart {
                at: Instant::now(),
                rows,
                device_s: self.before_s + self.busy_s,
            });
        }
        let busy = self.busy_s / self.since.elapsed().as_secs_f64().max(1e-9);
        self.pb
            .set_message(format!("device busy {:.0}%", 100.0 * busy));
        Ok(computed)
    }
}

/// The encode + write stage of one shard.
struct Sink<'a> {
    writer: ShardWriter,
    stats: StrategyStats,
    rows: u64,
    schema: &'a arrow_schema::SchemaRef,
    pb: ProgressBar,
}

impl Sink<'_> {
    fn put(&mut self, computed: ComputedBatch) -> Result<()> {
        let records = encode_batch(computed)?;
        self.stats.add_records(&records);
        self.writer
            .write(&counterfactuals_to_batch(self.schema, &records)?)?;
        self.rows += records.len() as u64;
        self.pb.inc(records.len() as u64);
        Ok(())
    }
}

impl Build<'_> {
    /// Builds `piece` (or keeps it, when a previous run finished it intact).
    pub fn piece(&mut self, piece: &Piece) -> Result<()> {
        let k = piece.shard;
        let shard = self.entry.shards[k].clone();
        let done = self
            .manifest
            .splits
            .get(&self.cfg.source.split)
            .and_then(|e| e.shards.iter().find(|s| s.file == piece.file));
        if let Some(prev) = done {
            if ShardReader::open_verified(&self.out.join(&prev.file), prev.bytes, &prev.blake3)
                .is_ok()
            {
                self.tally.skipped += 1;
                self.tally.rows += prev.rows;
                self.pb.inc(piece.rows.len() as u64);
                return Ok(());
            }
        }
        let reader = ShardReader::open_verified(
            &self.cfg.source.shards.join(&shard.file),
            shard.bytes,
            &shard.blake3,
        )?;
        let images = reader.read_images()?;
        let c = &self.cfg.counterfactuals;
        // The piece's batches, numbered within the input shard (the number keys their seeds).
        let batches: Batches = batch_bounds(images.len(), c.batch_size)
            .into_iter()
            .enumerate()
            .filter(|(b, _)| piece.batches.contains(b))
            .map(|(b, (s, e))| (b, s, e))
            .collect();
        let vision = self.model.vision()?;
        let mut device = DeviceStage {
            teacher: Teacher {
                vision,
                head: &self.head,
                device: self.device,
                cam: c.cam,
                autocast: c.precision.prepare(self.device),
            },
            spec: BatchSpec {
                strategies: &c.strategies,
                variants: c.variants,
                seed: c.seed,
                shard: k,
                batch: 0,
                store_logits: c.store_logits,
                compact: c.compact,
            },
            rejected: Vec::new(),
            busy_s: 0.0,
            since: Instant::now(),
            pb: &self.pb,
            pools: c.device_batch_size.map_or(1, |d| d / c.batch_size).max(1),
            warm: &mut self.tally.warm,
            before_s: self.tally.device_s,
        };
        let sink = Sink {
            writer: ShardWriter::try_new(
                &self.out,
                Path::new(&piece.file),
                self.schema.clone(),
                self.writer_options,
            )?,
            stats: StrategyStats::default(),
            rows: 0,
            schema: &self.schema,
            pb: self.pb.clone(),
        };
        crash_point("build:writer");
        let size = vision.config.image_size as usize;
        let pipelined = match self.opts.pipelining {
            Pipelining::On => true,
            Pipelining::Off => false,
            Pipelining::Auto => self.device.is_cuda(),
        };
        let sink = if pipelined {
            run_overlapped(&images, &batches, size, &mut device, sink)?
        } else {
            run_sequential(&images, &batches, size, &mut device, sink)?
        };
        let (busy_s, rejected) = (device.busy_s, device.rejected);
        let t = &mut self.tally;
        t.device_s += busy_s;
        t.rows += sink.rows;
        t.stats.merge(sink.stats);
        quarantine::write(&self.out, &piece.file, &rejected)?;
        let summary = sink.writer.close()?;
        crash_point("build:shard");
        self.manifest
            .add_shard(&self.cfg.source.split, &self.entry.classes, summary);
        self.manifest.write_file(&self.manifest_path)?;
        crash_point("build:manifest");
        t.written += 1;
        Ok(())
    }
}

fn run_sequential<'a>(
    images: &[ImageRecord],
    batches: &Batches,
    size: usize,
    device: &mut DeviceStage,
    mut sink: Sink<'a>,
) -> Result<Sink<'a>> {
    for group in batches.chunks(device.pools) {
        let pools = group
            .iter()
            .map(|&(b, s, e)| (b, decode_batch(images[s..e].to_vec(), size)))
            .collect();
        for computed in device.run(pools)? {
            sink.put(computed)?;
        }
    }
    Ok(sink)
}

fn run_overlapped<'a>(
    images: &[ImageRecord],
    batches: &Batches,
    size: usize,
    device: &mut DeviceStage,
    mut sink: Sink<'a>,
) -> Result<Sink<'a>> {
    std::thread::scope(|scope| {
        let (tx_dec, rx_dec) = bounded::<(usize, DecodedBatch)>(2);
        let (tx_enc, rx_enc) = bounded::<ComputedBatch>(2);
        scope.spawn(move || {
            for &(b, s, e) in batches {
                if tx_dec
                    .send((b, decode_batch(images[s..e].to_vec(), size)))
                    .is_err()
                {
                    return;
                }
            }
        });
        let encoder = scope.spawn(move || -> Result<Sink<'a>> {
            for computed in rx_enc {
                sink.put(computed)?;
            }
            Ok(sink)
        });
        // Pools in groups of `device.pools` per device pass (the last group may be smaller).
        let mut group = Vec::with_capacity(device.pools);
        let mut rx = rx_dec.into_iter().peekable();
        'pass: while let Some(pool) = rx.next() {
            group.push(pool);
            if group.len() < device.pools && rx.peek().is_some() {
                continue;
            }
            for computed in device.run(std::mem::take(&mut group))? {
                if tx_enc.send(computed).is_err() {
                    break 'pass; // the encoder failed; its error is returned below
                }
            }
        }
        drop(tx_enc);
        encoder
            .join()
            .map_err(|_| PipelineError::Input("the encoder thread panicked".into()))?
    })
}
