//! `cfkit prepare` and `cfkit demo-data`: sources to image shards, with a quarantine file, a
//! duplicate report, a manifest and a run record in the output directory.

pub mod complete;
pub mod decode;
mod demo;
pub mod gif_frame;
mod jpeg;
mod jpeg_guard;
pub mod preprocess;
pub mod record;
pub mod resample;
pub mod rgb;
pub mod sources;
pub mod split_writer;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use cfkit_outdir::DirLock;
use cfkit_schemas::layout::MANIFEST_FILE;
use cfkit_schemas::{
    identity_hash, DatasetInfo, ImageRecord, Manifest, Resize, ShardKind, StoredImage,
    WriterOptions, SCHEMA_VERSION,
};
use serde::{Deserialize, Serialize};

pub use demo::{demo_data, DemoOptions};
use record::{DatasetRecord, PrepareIdentity};

use crate::error::{PipelineError, Result};
use crate::prepare::decode::{prepare_item, PixelSpec};
use crate::prepare::sources::{SourceItem, SourceListing};
use crate::prepare::split_writer::{write_split, Rejected, SplitOutput};

/// How the stored images are made (recorded in the shards' metadata).
pub(crate) fn preprocessing_description(size: u32, resize: &Resize) -> String {
    if resize.is_clip() {
        // The words of every dataset recorded before other resizes existed.
        return format!("torchvision Resize({size}, bicubic, Pillow 13) + CenterCrop({size}) + RGB; stored as uint8 PNG");
    }
    format!(
        "RGB, then {} (Pillow 13); stored as uint8 PNG",
        resize.describe(size)
    )
}

/// Knobs shared by `prepare` and `demo-data`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OutputOptions {
    pub rows_per_shard: usize,
    pub row_group_bytes: usize,
    /// Not part of the config (does not change the data).
    #[serde(skip)]
    pub quiet: bool,
}

impl OutputOptions {
    fn writer(&self) -> WriterOptions {
        WriterOptions {
            row_group_bytes: self.row_group_bytes,
            ..Default::default()
        }
    }
}

/// Options of `cfkit prepare`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrepareOptions {
    pub split: String,
    pub image_size: u32,
    pub max_pixels: u64,
    /// Pixels cut from every side before preprocessing (ObjectNet's border; 0: none, and then
    /// not written into the config, so hashes of earlier datasets stay valid).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub border_crop: u32,
    /// The run fails when more than this fraction of the inputs is quarantined.
    pub max_bad_fraction: f64,
    pub output: OutputOptions,
    /// Rows are stored in a random order drawn with this seed (`None`: the listing's order, as
    /// evaluation sets are stored, and as every dataset recorded without this field was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle_seed: Option<u64>,
    /// Rows held out of the split into a split of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<HoldoutSpec>,
    /// How images are fitted to the square (CLIP's by default: then not written into the
    /// config, so hashes of earlier datasets stay valid).
    #[serde(default, skip_serializing_if = "Resize::is_clip")]
    pub resize: Resize,
}

/// `cfkit prepare --holdout`: `rows` rows of the split, stratified by class and keyed by id with
/// `seed` (`cfkit_schemas::holdout`), written as split `split` instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HoldoutSpec {
    pub rows: usize,
    pub split: String,
    pub seed: u64,
}

/// `items` in a uniform random order drawn with `seed` (Fisher–Yates): a class-sorted listing
/// (an ImageFolder, a sorted manifest) becomes shards in which every run of rows — a builder's
/// donor pool, a loader's row group — is a random sample of the split.
fn shuffled<T>(mut items: Vec<T>, seed: u64) -> Vec<T> {
    use cfkit_counterfactual::rng::{fnv1a64, SplitMix64};
    let mut rng = SplitMix64::from_keys(&[seed, fnv1a64("cfkit.prepare.order")]);
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
    items
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Per-split outcome, for the summary and `run.json`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default, schemars::JsonSchema)]
pub struct SplitReport {
    pub split: String,
    pub inputs: usize,
    pub rows: u64,
    pub shards: usize,
    pub bytes: u64,
    pub quarantined: usize,
    /// Groups of ids whose source bytes are identical.
    pub duplicate_groups: Vec<Vec<String>>,
    pub seconds: f64,
    pub images_per_s: f64,
    /// blake3 over the (id, source blake3) pairs of the rows: the input fingerprint.
    pub input_fingerprint: String,
}

fn duplicate_groups(sources: &[(String, String)]) -> Vec<Vec<String>> {
    let mut by_hash: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (id, h) in sources {
        by_hash.entry(h.as_str()).or_default().push(id.clone());
    }
    by_hash.into_values().filter(|v| v.len() > 1).collect()
}

fn fingerprint(sources: &[(String, String)]) -> String {
    let mut h = blake3::Hasher::new();
    for (id, b) in sources {
        h.update(id.as_bytes());
        h.update(b"\0");
        h.update(b.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

fn report(split: &str, inputs: usize, o: &SplitOutput) -> SplitReport {
    SplitReport {
        split: split.to_string(),
        inputs,
        rows: o.rows,
        shards: o.shards.len(),
        bytes: o.shards.iter().map(|s| s.bytes).sum(),
        quarantined: o.rejected.len(),
        duplicate_groups: duplicate_groups(&o.sources),
        seconds: o.seconds,
        images_per_s: inputs as f64 / o.seconds.max(1e-9),
        input_fingerprint: fingerprint(&o.sources),
    }
}

/// Refuses an output directory that holds a dataset made with another config.
pub(crate) fn check_existing(out: &Path, hash: &str) -> Result<()> {
    if out.join(MANIFEST_FILE).exists() {
        let m = Manifest::read(out)?;
        if m.config_hash != hash {
            return Err(PipelineError::Input(format!(
                "'{}' already holds a dataset built with another config (config hash {} vs {}); choose another --out or remove it",
                out.display(),
                &m.config_hash[..12],
                &hash[..12]
            )));
        }
    }
    Ok(())
}

fn write_quarantine(path: &Path, entries: &[Rejected]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| PipelineError::io(path, e))?;
    for r in entries {
        let line = serde_json::to_string(r).expect("quarantine lines serialise");
        writeln!(f, "{line}").map_err(|e| PipelineError::io(path, e))?;
    }
    Ok(())
}

/// The identity `prepare` records (and hashes) for `listing` under `opts`.
fn prepare_identity(listing: &SourceListing, opts: &PrepareOptions) -> PrepareIdentity {
    PrepareIdentity {
        command: "prepare".into(),
        source: listing.description.clone(),
        classes: listing.classes.clone(),
        options: opts.clone(),
    }
}

/// The report of an earlier `prepare` of the same listing and options into `out`, if `out`
/// holds one (same config hash; a directory of another config is an error, as in [`prepare`]).
/// The config names the files, not their bytes: change the files, remove `out`.
pub(crate) fn prepared_already(
    listing: &SourceListing,
    out: &Path,
    opts: &PrepareOptions,
) -> Result<Option<SplitReport>> {
    if !out.join(MANIFEST_FILE).exists() {
        return Ok(None);
    }
    check_existing(out, &identity_hash(&prepare_identity(listing, opts)))?;
    let run = DatasetRecord::<PrepareIdentity>::read(out)?;
    Ok(run.splits.into_iter().next())
}

/// `cfkit prepare`: one source listing -> image shards of one split (and, with a hold-out, of
/// the hold-out split too). Returns the split's report, then the hold-out's.
pub fn prepare(
    listing: SourceListing,
    out: &Path,
    opts: &PrepareOptions,
) -> Result<Vec<SplitReport>> {
    for name in std::iter::once(&opts.split).chain(opts.holdout.as_ref().map(|h| &h.split)) {
        if !cfkit_schemas::layout::valid_split_name(name) {
            return Err(PipelineError::Input(format!(
                "split name '{name}' must be [A-Za-z0-9_.-]"
            )));
        }
    }
    if let Some(h) = &opts.holdout {
        if h.split == opts.split {
            return Err(PipelineError::Input(format!(
                "--holdout-split must differ from --split ('{}')",
                opts.split
            )));
        }
        if h.rows >= listing.items.len() {
            return Err(PipelineError::Input(format!(
                "--holdout {} leaves no rows of the {} listed for split '{}'",
                h.rows,
                listing.items.len(),
                opts.split
            )));
        }
    }
    let identity = prepare_identity(&listing, opts);
    let hash = identity_hash(&identity);
    // One writer per output directory, for the whole run (this also creates it).
    let _lock = DirLock::acquire(out, "")?;
    check_existing(out, &hash)?;
    let SourceListing {
        classes,
        mut items,
        problems,
        description,
    } = listing;
    // Images inside Parquet files are copied out once, in file order (removed when this ends).
    let spill = SpillDir(out.join(SPILL_DIR));
    let _ = std::fs::remove_dir_all(&spill.0);
    sources::spill::spill_parquet_rows(&mut items, &spill.0)?;
    let (items, held) = match &opts.holdout {
        None => (items, Vec::new()),
        Some(h) => {
            let rows: Vec<(&str, usize)> = items
                .iter()
                .map(|it| (it.id.as_str(), it.label as usize))
                .collect();
            let flags = cfkit_schemas::holdout::held_out(&rows, classes.len(), h.rows, h.seed);
            let (mut keep, mut held) = (Vec::new(), Vec::new());
            for (it, f) in items.into_iter().zip(flags) {
                if f {
                    held.push(it)
                } else {
                    keep.push(it)
                }
            }
            (keep, held)
        }
    };
    let order = |v: Vec<SourceItem>| match opts.shuffle_seed {
        Some(seed) => shuffled(v, seed),
        None => v,
    };
    let ctx = SplitContext {
        out,
        opts,
        classes: &classes,
        description: &description,
        hash: &hash,
    };
    let mut manifest = Manifest::new(
        ShardKind::Images,
        serde_json::to_value(&identity).expect("identities serialise"),
        &format!("cfkit {}", env!("CARGO_PKG_VERSION")),
    );
    let mut reports = vec![ctx.write(&opts.split, order(items), &problems, &mut manifest)?];
    if let Some(h) = &opts.holdout {
        reports.push(ctx.write(&h.split, order(held), &[], &mut manifest)?);
    }
    manifest.write(out)?;
    DatasetRecord::new(identity, reports.clone(), None).write(out)?;
    Ok(reports)
}

/// Where `prepare` spills images stored inside Parquet files, under its output directory.
const SPILL_DIR: &str = ".spill";

/// Removes the spill directory when `prepare` ends, whichever way.
struct SpillDir(PathBuf);

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What every split of one `prepare` run shares.
struct SplitContext<'a> {
    out: &'a Path,
    opts: &'a PrepareOptions,
    classes: &'a [String],
    description: &'a str,
    hash: &'a str,
}

impl SplitContext<'_> {
    /// Preprocesses `items` into shards of `split`, quarantines what cannot be used (with the
    /// listing's `problems`), adds the shards to `manifest`; fails when too many are bad.
    fn write(
        &self,
        split: &str,
        items: Vec<SourceItem>,
        problems: &[sources::ListingProblem],
        manifest: &mut Manifest,
    ) -> Result<SplitReport> {
        let (opts, classes) = (self.opts, self.classes);
        let info = DatasetInfo {
            schema_version: SCHEMA_VERSION,
            kind: ShardKind::Images,
            split: split.to_string(),
            classes: classes.to_vec(),
            image_size: opts.image_size,
            preprocessing: preprocessing_description(opts.image_size, &opts.resize),
            resize: opts.resize,
            source: self.description.to_string(),
            seed: opts.shuffle_seed,
            config_hash: Some(self.hash.to_string()),
            teacher: None,
            method: None,
            scene_truth: false,
        };
        let spec = PixelSpec {
            size: opts.image_size,
            max_pixels: opts.max_pixels,
            border_crop: opts.border_crop,
            resize: opts.resize,
        };
        let output = write_split(
            self.out,
            &info,
            items.len(),
            opts.output.rows_per_shard,
            opts.output.writer(),
            opts.output.quiet,
            |i| {
                let item = &items[i];
                let p = prepare_item(item, &spec).map_err(|r| Rejected {
                    path: item.origin(),
                    reason: r.to_string(),
                })?;
                Ok(ImageRecord {
                    id: item.id.clone(),
                    label: item.label,
                    class_name: classes[item.label as usize].clone(),
                    source_blake3: p.source_blake3,
                    orig_width: p.orig_width as i32,
                    orig_height: p.orig_height as i32,
                    image: StoredImage {
                        bytes: p.png,
                        path: format!("{}.png", item.id),
                    },
                    truth: None,
                })
            },
        )?;
        let mut quarantined: Vec<Rejected> = problems
            .iter()
            .map(|p| Rejected {
                path: p.path.display().to_string(),
                reason: p.reason.clone(),
            })
            .collect();
        quarantined.extend(output.rejected.iter().cloned());
        let qpath = self.out.join(format!("quarantine-{split}.jsonl"));
        write_quarantine(&qpath, &quarantined)?;
        let rep = report(split, items.len(), &output);
        let bad = output.rejected.len();
        let total = items.len().max(1);
        if bad as f64 / total as f64 > opts.max_bad_fraction {
            return Err(PipelineError::TooManyBad {
                bad,
                total,
                pct: 100.0 * bad as f64 / total as f64,
                limit_pct: 100.0 * opts.max_bad_fraction,
                quarantine: qpath,
            });
        }
        for sh in output.shards {
            manifest.add_shard(split, classes, sh);
        }
        Ok(rep)
    }
}

/// Image shards of one split in a temporary directory, removed on drop (`cfkit eval
/// --image-folder`: a folder evaluated without a `prepare` step of its own).
pub struct ScratchShards {
    pub dir: PathBuf,
    pub split: String,
    pub report: SplitReport,
}

impl Drop for ScratchShards {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Preprocesses the ImageFolder tree `folder` (classes from `class_list`) for a model of
/// `image_size` px and `resize` into temporary shards of one split named after the folder. Unreadable images
/// are quarantined (counted in the report), never fatal.
pub fn image_folder_to_scratch(
    folder: &Path,
    class_list: Option<&Path>,
    image_size: u32,
    resize: Resize,
) -> Result<ScratchShards> {
    let split = folder
        .file_name()
        .map(|n| {
            n.to_string_lossy().replace(
                |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_' && c != '.',
                "_",
            )
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "images".into());
    let dir = std::env::temp_dir().join(format!(
        "cfkit-eval-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let listing = crate::prepare::sources::list_image_folder(folder, class_list)?;
    let opts = PrepareOptions {
        split: split.clone(),
        image_size,
        max_pixels: crate::prepare::decode::DEFAULT_MAX_PIXELS,
        border_crop: 0,
        max_bad_fraction: 1.0,
        output: OutputOptions {
            rows_per_shard: 10_000,
            row_group_bytes: 100 * 1024 * 1024,
            quiet: true,
        },
        shuffle_seed: None,
        holdout: None,
        resize,
    };
    let mut scratch = ScratchShards {
        dir,
        split,
        report: SplitReport::default(),
    };
    scratch.report = prepare(listing, &scratch.dir, &opts)?.remove(0);
    Ok(scratch)
}
