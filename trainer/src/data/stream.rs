//! The background loader: reads the row groups a run order needs, decodes the stored images on
//! the rayon pool, and sends ready batches through a bounded channel (`prefetch` batches ahead of
//! the training step).
//!
//! Memory stays flat in the dataset size: a row group is read when the order first needs one of
//! its rows, only the rows still to come are kept, and each is dropped once sent. With a shuffle
//! buffer of B rows the loader holds about B rows plus one row group.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread::JoinHandle;

use cfkit_models::pixels_to_input;
use cfkit_schemas::{batch_to_images, decode_image, ImageRecord};
use crossbeam_channel::{bounded, Receiver};
use rayon::prelude::*;
use tch::{Device, Tensor};

use super::plan::RowRef;
use super::source::SplitSource;
use crate::error::{Result, TrainError};

/// A row the loader could not use, with the reason (the run records it and goes on).
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub id: String,
    pub shard: String,
    pub reason: String,
}

/// One decoded batch.
#[derive(Debug)]
pub struct Batch {
    /// Index of this batch in its order (0-based).
    pub index: usize,
    /// CLIP-normalised images [N, 3, S, S], float32, on the requested device.
    pub images: Tensor,
    /// Labels [N], int64, on the requested device.
    pub labels: Tensor,
    pub ids: Vec<String>,
    /// Rows of this batch that could not be decoded (not in `images`).
    pub skipped: Vec<Skipped>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// A running loader; iterate it for batches. Dropping it stops the thread.
pub struct BatchStream {
    rx: Option<Receiver<Result<Batch>>>,
    handle: Option<JoinHandle<()>>,
}

impl BatchStream {
    /// Streams `order[start_batch * batch_size..]` in batches of `batch_size` rows.
    pub fn start(
        source: Arc<SplitSource>,
        order: Arc<Vec<RowRef>>,
        batch_size: usize,
        start_batch: usize,
        prefetch: usize,
        device: Device,
    ) -> Self {
        let (tx, rx) = bounded(prefetch.max(1));
        let handle = std::thread::Builder::new()
            .name("cfkit-loader".into())
            .spawn(move || {
                let mut state = LoaderState::new(&source, &order, batch_size, start_batch);
                let chunks =
                    order[(start_batch * batch_size).min(order.len())..].chunks(batch_size);
                for (i, chunk) in chunks.enumerate() {
                    let batch = state.batch(&source, chunk, start_batch + i, device);
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        return;
                    }
                }
            })
            .expect("spawning the loader thread");
        BatchStream {
            rx: Some(rx),
            handle: Some(handle),
        }
    }
}

impl Iterator for BatchStream {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        let rx = self.rx.as_ref()?;
        match rx.recv() {
            Ok(b) => Some(b),
            Err(_) => {
                // Channel closed: the thread finished (or panicked).
                let handle = self.handle.take();
                self.rx = None;
                match handle.map(|h| h.join()) {
                    Some(Err(_)) => Some(Err(TrainError::LoaderGone)),
                    _ => None,
                }
            }
        }
    }
}

impl Drop for BatchStream {
    fn drop(&mut self) {
        // Closing the receiver makes the thread's next send fail, so it stops.
        self.rx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Rows read but not yet sent, per row group.
struct LoaderState {
    needed: HashMap<u32, HashSet<u32>>,
    loaded: HashMap<u32, HashMap<u32, ImageRecord>>,
}

impl LoaderState {
    fn new(_source: &SplitSource, order: &[RowRef], batch_size: usize, start: usize) -> Self {
        let mut needed: HashMap<u32, HashSet<u32>> = HashMap::new();
        for r in &order[(start * batch_size).min(order.len())..] {
            needed.entry(r.group).or_default().insert(r.row);
        }
        LoaderState {
            needed,
            loaded: HashMap::new(),
        }
    }

    fn take(&mut self, source: &SplitSource, r: RowRef) -> Result<ImageRecord> {
        if !self.loaded.contains_key(&r.group) {
            let g = source.groups[r.group as usize];
            let reader = &source.shards[g.shard as usize];
            let keep = self.needed.remove(&r.group).unwrap_or_default();
            let mut rows = HashMap::with_capacity(keep.len());
            let mut offset = 0u32;
            for b in reader.read_row_group(g.group as usize, 1024)? {
                let n = b.num_rows() as u32;
                if (offset..offset + n).any(|i| keep.contains(&i)) {
                    for (i, rec) in batch_to_images(&b, reader.path())?.into_iter().enumerate() {
                        let i = offset + i as u32;
                        if keep.contains(&i) {
                            rows.insert(i, rec);
                        }
                    }
                }
                offset += n;
            }
            self.loaded.insert(r.group, rows);
        }
        let rows = self.loaded.get_mut(&r.group).expect("inserted above");
        let rec = rows.remove(&r.row).ok_or_else(|| {
            TrainError::Data(format!(
                "row {} of row group {} was requested twice or does not exist",
                r.row, r.group
            ))
        })?;
        if rows.is_empty() {
            self.loaded.remove(&r.group);
        }
        Ok(rec)
    }

    fn batch(
        &mut self,
        source: &SplitSource,
        chunk: &[RowRef],
        index: usize,
        device: Device,
    ) -> Result<Batch> {
        let records: Vec<(RowRef, ImageRecord)> = chunk
            .iter()
            .map(|r| Ok((*r, self.take(source, *r)?)))
            .collect::<Result<_>>()?;
        let size = source.image_size;
        let decoded: Vec<std::result::Result<Vec<u8>, String>> = records
            .par_iter()
            .map(|(_, rec)| {
                let img = decode_image(&rec.image.bytes).map_err(|e| e.to_string())?;
                if img.width != size || img.height != size {
                    return Err(format!(
                        "image is {}x{}, the split's images are {size}x{size}",
                        img.width, img.height
                    ));
                }
                Ok(img.pixels)
            })
            .collect();
        let mut pixels = Vec::with_capacity(records.len());
        let mut labels = Vec::with_capacity(records.len());
        let mut ids = Vec::with_capacity(records.len());
        let mut skipped = Vec::new();
        for ((r, rec), img) in records.into_iter().zip(decoded) {
            match img {
                Ok(p) => {
                    pixels.push(p);
                    labels.push(rec.label);
                    ids.push(rec.id);
                }
                Err(reason) => {
                    let g = source.groups[r.group as usize];
                    skipped.push(Skipped {
                        id: rec.id,
                        shard: source.shards[g.shard as usize].path().display().to_string(),
                        reason,
                    })
                }
            }
        }
        let images = if pixels.is_empty() {
            Tensor::zeros([0, 3, size as i64, size as i64], (tch::Kind::Float, device))
        } else {
            pixels_to_input(&pixels, size as usize, device)
        };
        Ok(Batch {
            index,
            images,
            labels: Tensor::from_slice(&labels).to_device(device),
            ids,
            skipped,
        })
    }
}
