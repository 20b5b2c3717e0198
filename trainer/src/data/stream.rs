//! The background loader: reads the row groups a run order needs, decodes the stored images on
//! the rayon pool, and sends ready batches through a bounded channel (`prefetch` batches ahead of
//! the training step).
//!
//! The loader thread hands the device uint8 pixels (a quarter of float input's bytes; on a GPU
//! from pinned memory without waiting, [`super::upload`]); [`BatchStream::next`] turns them into
//! the model's normalised float input where they are, on the consumer's thread, so no float work
//! is left on the loader's cores.
//!
//! Memory stays flat in the dataset size: a row group is read when the order first needs one of
//! its rows, only the rows still to come are kept, and each is dropped once sent. With a shuffle
//! buffer of B rows the loader holds about B rows plus one row group.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread::JoinHandle;

use cfkit_models::{pixels_tensor, Normalize};
use cfkit_schemas::fields::{COUNTERFACTUAL_COLUMNS, VARIANTS};
use cfkit_schemas::{
    batch_to_counterfactuals_select, batch_to_images, decode_image_sized, ImageRecord,
    VariantSelect,
};
use crossbeam_channel::{bounded, Receiver};
use rayon::prelude::*;
use tch::{Device, Tensor};

use super::compact::resolve_compact;
use super::plan::RowRef;
use super::source::SplitSource;
use super::targets::{
    assemble, pick_variant, BatchExtras, DecodedVariant, TargetRow, TargetSpec, Targets,
    VariantImage,
};
use super::upload::upload;
use crate::error::{Result, TrainError};

/// A row the loader could not use, with the reason (the run records it and goes on).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
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
    /// Images [N, 3, S, S], float32, normalised as the model's input, on the requested device
    /// (a raw batch, [`BatchStream::next_raw`]: the uint8 pixels [N, S, S, 3]).
    pub images: Tensor,
    /// Labels [N], int64, on the requested device.
    pub labels: Tensor,
    pub ids: Vec<String>,
    /// Rows of this batch that could not be decoded (not in `images`).
    pub skipped: Vec<Skipped>,
    /// uint8 HWC pixels of `images` (when asked for).
    pub pixels: Option<Vec<Vec<u8>>>,
    /// Stored teacher targets (when asked for).
    pub targets: Option<Targets>,
    /// The generator's background family of each row, when every row has its ground truth
    /// (`scene_truth` datasets).
    pub bg_family: Option<Vec<i32>>,
}

impl Batch {
    /// A raw batch's uint8 pixels (images and counterfactual images) -> the model's input.
    pub fn normalized(mut self, normalize: &Normalize) -> Batch {
        self.images = normalize.input(&self.images);
        if let Some(t) = &mut self.targets {
            t.images = t.images.as_ref().map(|i| normalize.input(i));
        }
        self
    }

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
    normalize: Normalize,
}

/// Where a batch's images go and how they are normalised: the model's (its config's mean and
/// std).
#[derive(Debug, Clone, Copy)]
pub struct ModelInput {
    pub device: Device,
    pub normalize: Normalize,
}

impl ModelInput {
    /// The input of a model of `config` on `device`.
    pub fn of(config: &cfkit_models::VisionConfig, device: Device) -> Self {
        ModelInput {
            device,
            normalize: config.normalize(),
        }
    }
}

impl BatchStream {
    /// Streams `order[start_batch * batch_size..]` in batches of `batch_size` rows, with
    /// `extras` (pixels and/or stored teacher targets) in each batch.
    pub fn start(
        source: Arc<SplitSource>,
        order: Arc<Vec<RowRef>>,
        batch_size: usize,
        start_batch: usize,
        prefetch: usize,
        input: ModelInput,
        extras: BatchExtras,
    ) -> Self {
        let (tx, rx) = bounded(prefetch.max(1));
        let handle = std::thread::Builder::new()
            .name("cfkit-loader".into())
            .spawn(move || {
                let mut state = LoaderState::new(&order, batch_size, start_batch, extras);
                let chunks =
                    order[(start_batch * batch_size).min(order.len())..].chunks(batch_size);
                for (i, chunk) in chunks.enumerate() {
                    let batch = state.batch(&source, chunk, start_batch + i, input);
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
            normalize: input.normalize,
        }
    }

    /// The next batch as the loader thread made it: uint8 pixels [N, S, S, 3] on the device, not
    /// yet normalised (what `just bench-storage` times as the loader's work).
    pub fn next_raw(&mut self) -> Option<Result<Batch>> {
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

impl Iterator for BatchStream {
    type Item = Result<Batch>;

    /// The next batch, its images normalised as the model's input (on the device they are on).
    fn next(&mut self) -> Option<Self::Item> {
        let normalize = self.normalize;
        self.next_raw().map(|b| b.map(|b| b.normalized(&normalize)))
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

/// Rows read but not yet sent, per row group: the base record and, with targets, the chosen
/// variant (or why there is none).
pub(super) type Row = (ImageRecord, Option<std::result::Result<TargetRow, String>>);

struct LoaderState {
    needed: HashMap<u32, HashSet<u32>>,
    loaded: HashMap<u32, HashMap<u32, Row>>,
    extras: BatchExtras,
}

/// A row decoded for a batch.
struct Decoded {
    pixels: Vec<u8>,
    target: Option<(Vec<f32>, Option<DecodedVariant>)>,
}

fn decode_sized(bytes: &[u8], size: u32, what: &str) -> std::result::Result<Vec<u8>, String> {
    decode_image_sized(bytes, size).map_err(|e| format!("{what}: {e}"))
}

impl LoaderState {
    fn new(order: &[RowRef], batch_size: usize, start: usize, extras: BatchExtras) -> Self {
        let mut needed: HashMap<u32, HashSet<u32>> = HashMap::new();
        for r in &order[(start * batch_size).min(order.len())..] {
            needed.entry(r.group).or_default().insert(r.row);
        }
        LoaderState {
            needed,
            loaded: HashMap::new(),
            extras,
        }
    }

    fn take(&mut self, source: &SplitSource, r: RowRef) -> Result<Row> {
        if !self.loaded.contains_key(&r.group) {
            let g = source.groups[r.group as usize];
            let reader = &source.shards[g.shard as usize];
            let keep = self.needed.remove(&r.group).unwrap_or_default();
            let mut rows = HashMap::with_capacity(keep.len());
            // Compact shards: the clean images of rows this order does not need may still be
            // donors of rows it does.
            let masked =
                source.compact() && matches!(&self.extras.targets, Some(t) if t.strategy.is_some());
            let mut others: HashMap<String, Vec<u8>> = HashMap::new();
            // Read only what the run uses: no stored targets -> the image columns; the clean
            // teacher targets -> everything but `variants`; a strategy -> its variants only.
            let (skip, select): (&[&str], _) = match &self.extras.targets {
                None => (&COUNTERFACTUAL_COLUMNS, VariantSelect::None),
                Some(TargetSpec { strategy: None, .. }) => (&[VARIANTS], VariantSelect::None),
                Some(TargetSpec {
                    strategy: Some(s), ..
                }) => (&[], VariantSelect::Strategy(&s.name)),
            };
            let mut offset = 0u32;
            for b in reader.read_row_group_except(g.group as usize, 1024, skip)? {
                let n = b.num_rows() as u32;
                if (offset..offset + n).any(|i| keep.contains(&i)) {
                    let recs: Vec<Row> = match &self.extras.targets {
                        None => batch_to_images(&b, reader.path())?
                            .into_iter()
                            .map(|r| (r, None))
                            .collect(),
                        Some(spec) => batch_to_counterfactuals_select(&b, reader.path(), select)?
                            .into_iter()
                            .map(|r| {
                                let t = pick_variant(&r, spec);
                                (r.base, Some(t))
                            })
                            .collect(),
                    };
                    for (i, rec) in recs.into_iter().enumerate() {
                        let i = offset + i as u32;
                        if keep.contains(&i) {
                            rows.insert(i, rec);
                        } else if masked {
                            others.insert(rec.0.id, rec.0.image.bytes);
                        }
                    }
                } else if masked {
                    for rec in batch_to_images(&b, reader.path())? {
                        others.insert(rec.id, rec.image.bytes);
                    }
                }
                offset += n;
            }
            resolve_compact(&mut rows, &others, source.image_size);
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
        input: ModelInput,
    ) -> Result<Batch> {
        let device = input.device;
        let mut records: Vec<(RowRef, Row)> = chunk
            .iter()
            .map(|r| Ok((*r, self.take(source, *r)?)))
            .collect::<Result<_>>()?;
        let size = source.image_size;
        // Each row's target is moved out (pixels already decoded or recomposed are not copied).
        let decoded: Vec<std::result::Result<Decoded, String>> = records
            .par_iter_mut()
            .map(|(_, (rec, target))| {
                let target = match target.take() {
                    None => None,
                    Some(Err(reason)) => return Err(reason),
                    Some(Ok(t)) => Some(t),
                };
                let pixels = match target.as_ref().and_then(|t| t.clean.as_ref()) {
                    Some(_) => None,
                    None => Some(decode_sized(&rec.image.bytes, size, "image")?),
                };
                let (pixels, target) = match target {
                    None => (pixels.expect("decoded above"), None),
                    Some(t) => {
                        let variant = match t.variant {
                            None => None,
                            Some((v, mask, image)) => Some((
                                v,
                                mask,
                                match image {
                                    VariantImage::Png(bytes) => {
                                        decode_sized(&bytes, size, &format!("variant {v} image"))?
                                    }
                                    VariantImage::Pixels(p) => p,
                                    VariantImage::Donors(_) => {
                                        return Err(format!(
                                            "variant {v}: its donors were not resolved"
                                        ))
                                    }
                                },
                            )),
                        };
                        let clean = match (pixels, t.clean) {
                            (Some(p), _) | (None, Some(p)) => p,
                            (None, None) => unreachable!("decoded when not resolved"),
                        };
                        (clean, Some((t.feature, variant)))
                    }
                };
                Ok(Decoded { pixels, target })
            })
            .collect();
        let mut good: Vec<Decoded> = Vec::with_capacity(records.len());
        let mut labels = Vec::with_capacity(records.len());
        let mut ids = Vec::with_capacity(records.len());
        let mut families = Vec::with_capacity(records.len());
        let mut skipped = Vec::new();
        for ((r, (rec, _)), d) in records.into_iter().zip(decoded) {
            match d {
                Ok(d) => {
                    good.push(d);
                    families.push(rec.truth.as_ref().map(|t| t.bg_family));
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
        // uint8 pixels to the device; normalised by the consumer (`Batch::normalized`).
        let to_input = |imgs: &[&Vec<u8>]| upload(pixels_tensor(imgs, size as usize), device);
        let clean: Vec<&Vec<u8>> = good.iter().map(|d| &d.pixels).collect();
        let images = to_input(&clean);
        let targets = match &self.extras.targets {
            None => None,
            Some(spec) => {
                let rows: Vec<_> = good
                    .iter()
                    .map(|d| d.target.as_ref().expect("targets were read for every row"))
                    .collect();
                Some(assemble(spec, &rows, device, &to_input)?)
            }
        };
        let pixels = self
            .extras
            .pixels
            .then(|| good.into_iter().map(|d| d.pixels).collect());
        Ok(Batch {
            index,
            images,
            labels: upload(Tensor::from_slice(&labels), device),
            ids,
            skipped,
            pixels,
            targets,
            bg_family: families.into_iter().collect(),
        })
    }
}
