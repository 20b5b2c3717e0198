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

use cfkit_models::counterfactual::draw::key_mask_tensor;
use cfkit_models::counterfactual::rng::{fnv1a64, hash_keys};
use cfkit_models::pixels_to_input;
use cfkit_schemas::{
    batch_to_counterfactuals, batch_to_images, decode_image, CounterfactualRecord, ImageRecord,
};
use crossbeam_channel::{bounded, Receiver};
use rayon::prelude::*;
use tch::{Device, Tensor};

use super::plan::RowRef;
use super::source::SplitSource;
use crate::config::VariantChoice;
use crate::error::{Result, TrainError};

/// What a batch carries besides the clean images and labels.
#[derive(Debug, Clone, Default)]
pub struct BatchExtras {
    /// Keep the uint8 HWC pixels of the clean images (online counterfactuals refill them).
    pub pixels: bool,
    /// Teacher targets read from counterfactual shards.
    pub targets: Option<TargetSpec>,
}

/// Which stored teacher targets to read.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// None: the clean image's teacher feature. Some: a variant of this strategy (its image, mask
    /// and teacher feature).
    pub strategy: Option<StoredStrategy>,
    pub choice: VariantChoice,
    pub seed: u64,
    pub epoch: u64,
}

/// A strategy as stored: its name in the shards and whether it is a no-fill one (the mask is
/// then applied in the student's forward).
#[derive(Debug, Clone)]
pub struct StoredStrategy {
    pub name: String,
    pub no_fill: bool,
}

/// Teacher targets of a batch, aligned with its rows.
#[derive(Debug)]
pub struct Targets {
    /// Teacher features [N, D] of the clean images or of the chosen counterfactuals.
    pub features: Tensor,
    /// Counterfactual images [N, 3, S, S], CLIP-normalised (masked targets only).
    pub images: Option<Tensor>,
    /// [N, P] bool masks for no-fill strategies (hidden keys in the student's forward).
    pub key_mask: Option<Tensor>,
    /// The stored variant index used per row (masked targets only).
    pub variants: Vec<i32>,
}

/// The chosen variant of a row: its index, mask and image (encoded, then decoded pixels).
type ChosenVariant = (i32, Vec<bool>, Vec<u8>);

/// The parts of a counterfactual record a batch needs (the chosen variant only).
struct TargetRow {
    feature: Vec<f32>,
    variant: Option<ChosenVariant>,
}

/// Picks the variant of `strategy` for this epoch, or says why there is none.
fn pick_variant(
    rec: &CounterfactualRecord,
    spec: &TargetSpec,
) -> std::result::Result<TargetRow, String> {
    let Some(strategy) = &spec.strategy else {
        return Ok(TargetRow {
            feature: rec.teacher_feature.clone(),
            variant: None,
        });
    };
    let candidates: Vec<_> = rec
        .variants
        .iter()
        .filter(|v| v.strategy == strategy.name)
        .collect();
    if candidates.is_empty() {
        return Err(format!(
            "no variant of strategy {} in this row",
            strategy.name
        ));
    }
    let k = candidates.len() as u64;
    let i = match spec.choice {
        VariantChoice::Epoch => spec.epoch % k,
        VariantChoice::Seeded => hash_keys(&[spec.seed, spec.epoch, fnv1a64(&rec.base.id)]) % k,
    };
    let v = candidates[i as usize];
    Ok(TargetRow {
        feature: v.teacher_feature.clone(),
        variant: Some((v.variant, v.mask.clone(), v.image.bytes.clone())),
    })
}

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
    /// uint8 HWC pixels of `images` (when asked for).
    pub pixels: Option<Vec<Vec<u8>>>,
    /// Stored teacher targets (when asked for).
    pub targets: Option<Targets>,
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
        Self::start_with(
            source,
            order,
            batch_size,
            start_batch,
            prefetch,
            device,
            BatchExtras::default(),
        )
    }

    /// As [`BatchStream::start`], with pixels and/or stored teacher targets in each batch.
    pub fn start_with(
        source: Arc<SplitSource>,
        order: Arc<Vec<RowRef>>,
        batch_size: usize,
        start_batch: usize,
        prefetch: usize,
        device: Device,
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

/// Rows read but not yet sent, per row group: the base record and, with targets, the chosen
/// variant (or why there is none).
type Row = (ImageRecord, Option<std::result::Result<TargetRow, String>>);

struct LoaderState {
    needed: HashMap<u32, HashSet<u32>>,
    loaded: HashMap<u32, HashMap<u32, Row>>,
    extras: BatchExtras,
}

/// A row decoded for a batch.
struct Decoded {
    pixels: Vec<u8>,
    target: Option<(Vec<f32>, Option<ChosenVariant>)>,
}

fn decode_sized(bytes: &[u8], size: u32, what: &str) -> std::result::Result<Vec<u8>, String> {
    let img = decode_image(bytes).map_err(|e| format!("{what}: {e}"))?;
    if img.width != size || img.height != size {
        return Err(format!(
            "{what} is {}x{}, the split's images are {size}x{size}",
            img.width, img.height
        ));
    }
    Ok(img.pixels)
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
            let mut offset = 0u32;
            for b in reader.read_row_group(g.group as usize, 1024)? {
                let n = b.num_rows() as u32;
                if (offset..offset + n).any(|i| keep.contains(&i)) {
                    let recs: Vec<Row> = match &self.extras.targets {
                        None => batch_to_images(&b, reader.path())?
                            .into_iter()
                            .map(|r| (r, None))
                            .collect(),
                        Some(spec) => batch_to_counterfactuals(&b, reader.path())?
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
        let records: Vec<(RowRef, Row)> = chunk
            .iter()
            .map(|r| Ok((*r, self.take(source, *r)?)))
            .collect::<Result<_>>()?;
        let size = source.image_size;
        let decoded: Vec<std::result::Result<Decoded, String>> = records
            .par_iter()
            .map(|(_, (rec, target))| {
                let pixels = decode_sized(&rec.image.bytes, size, "image")?;
                let target = match target {
                    None => None,
                    Some(Err(reason)) => return Err(reason.clone()),
                    Some(Ok(t)) => Some((
                        t.feature.clone(),
                        match &t.variant {
                            None => None,
                            Some((v, mask, bytes)) => Some((
                                *v,
                                mask.clone(),
                                decode_sized(bytes, size, &format!("variant {v} image"))?,
                            )),
                        },
                    )),
                };
                Ok(Decoded { pixels, target })
            })
            .collect();
        let mut good: Vec<Decoded> = Vec::with_capacity(records.len());
        let mut labels = Vec::with_capacity(records.len());
        let mut ids = Vec::with_capacity(records.len());
        let mut skipped = Vec::new();
        for ((r, (rec, _)), d) in records.into_iter().zip(decoded) {
            match d {
                Ok(d) => {
                    good.push(d);
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
        let to_input = |imgs: &[&Vec<u8>]| {
            if imgs.is_empty() {
                Tensor::zeros([0, 3, size as i64, size as i64], (tch::Kind::Float, device))
            } else {
                let owned: Vec<Vec<u8>> = imgs.iter().map(|v| (*v).clone()).collect();
                pixels_to_input(&owned, size as usize, device)
            }
        };
        let clean: Vec<&Vec<u8>> = good.iter().map(|d| &d.pixels).collect();
        let images = to_input(&clean);
        let targets = match &self.extras.targets {
            None => None,
            Some(spec) => Some(self.targets(spec, &good, device, &to_input)?),
        };
        let pixels = self
            .extras
            .pixels
            .then(|| good.into_iter().map(|d| d.pixels).collect());
        Ok(Batch {
            index,
            images,
            labels: Tensor::from_slice(&labels).to_device(device),
            ids,
            skipped,
            pixels,
            targets,
        })
    }

    fn targets(
        &self,
        spec: &TargetSpec,
        good: &[Decoded],
        device: Device,
        to_input: &dyn Fn(&[&Vec<u8>]) -> Tensor,
    ) -> Result<Targets> {
        let rows: Vec<_> = good
            .iter()
            .map(|d| d.target.as_ref().expect("targets were read for every row"))
            .collect();
        let d = rows.first().map(|(f, _)| f.len()).unwrap_or(0);
        let flat: Vec<f32> = rows.iter().flat_map(|(f, _)| f.iter().copied()).collect();
        if flat.len() != d * rows.len() {
            return Err(TrainError::Data(
                "teacher features of one batch differ in length".into(),
            ));
        }
        let features = Tensor::from_slice(&flat)
            .view([rows.len() as i64, d as i64])
            .to_device(device);
        let Some(strategy) = &spec.strategy else {
            return Ok(Targets {
                features,
                images: None,
                key_mask: None,
                variants: Vec::new(),
            });
        };
        let variants: Vec<_> = rows
            .iter()
            .map(|(_, v)| v.as_ref().expect("masked targets carry a variant"))
            .collect();
        let images = to_input(&variants.iter().map(|v| &v.2).collect::<Vec<_>>());
        let key_mask = if strategy.no_fill && !variants.is_empty() {
            let masks: Vec<Vec<bool>> = variants.iter().map(|v| v.1.clone()).collect();
            Some(key_mask_tensor(&masks, device)?)
        } else {
            None
        };
        Ok(Targets {
            features,
            images: Some(images),
            key_mask,
            variants: variants.iter().map(|v| v.0).collect(),
        })
    }
}
