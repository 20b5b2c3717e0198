//! `cfkit demo-data`: the FashionShift splits (DESIGN §6) as image shards, the same format
//! `prepare` writes, with the generator's ground truth per row and, optionally, a PNG
//! ImageFolder tree of every split.

use std::path::{Path, PathBuf};

use cfkit_outdir::DirLock;
use cfkit_schemas::{
    encode_png, identity_hash, DatasetInfo, ImageRecord, Manifest, RgbPixels, SceneTruth,
    ShardKind, StoredImage, SCHEMA_VERSION,
};
use serde::Serialize;

use super::record::{DatasetRecord, DemoDataIdentity, DemoDataInputs};
use super::split_writer::{write_split, Rejected};
use super::{check_existing, report, OutputOptions, SplitReport};
use crate::error::{PipelineError, Result};
use crate::fashionshift::{self, FashionMnist, FashionShiftConfig, Split};

/// Options of `cfkit demo-data`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DemoOptions {
    pub fashion_mnist: PathBuf,
    pub seed: u64,
    /// Splits to write (default: all).
    pub splits: Vec<String>,
    /// Multiplies every default split size.
    pub scale: f64,
    /// Also write every split as a PNG ImageFolder tree here (`<dir>/<split>/<class>/<index>.png`).
    pub image_folder: Option<PathBuf>,
    pub output: OutputOptions,
}

fn demo_config(opts: &DemoOptions) -> Result<FashionShiftConfig> {
    let mut cfg = FashionShiftConfig {
        seed: opts.seed,
        ..Default::default()
    };
    if !opts.scale.is_finite() || opts.scale <= 0.0 {
        return Err(PipelineError::Input(format!(
            "--scale must be > 0, got {}",
            opts.scale
        )));
    }
    for split in Split::ALL {
        let n = cfg.sizes.get_mut(split);
        *n = ((*n as f64) * opts.scale).round().max(1.0) as usize;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// The ImageFolder names of `classes`: folder names cannot hold '/' ("T-shirt/top").
fn class_folders(classes: &[String]) -> Vec<String> {
    classes
        .iter()
        .map(|c| c.replace(['/', '\\'], "_"))
        .collect()
}

/// The empty class folders of each split's PNG tree under `dir`, with `classes.txt` keeping their
/// label order.
fn make_image_folders(dir: &Path, splits: &[Split], folders: &[String]) -> Result<()> {
    for split in splits {
        for f in folders {
            let d = dir.join(split.name()).join(f);
            std::fs::create_dir_all(&d).map_err(|e| PipelineError::io(&d, e))?;
        }
        let list = dir.join(split.name()).join("classes.txt");
        std::fs::write(&list, folders.join("\n") + "\n")
            .map_err(|e| PipelineError::io(&list, e))?;
    }
    Ok(())
}

/// The dataset metadata of a generated split's shards.
fn split_info(
    cfg: &FashionShiftConfig,
    split: Split,
    classes: &[String],
    hash: &str,
) -> DatasetInfo {
    DatasetInfo {
        schema_version: SCHEMA_VERSION,
        kind: ShardKind::Images,
        split: split.name().to_string(),
        classes: classes.to_vec(),
        image_size: cfg.image_size,
        preprocessing: "generated at the stored size (no resize)".into(),
        resize: Default::default(),
        source: format!("fashionshift:{}", split.name()),
        seed: Some(cfg.seed),
        config_hash: Some(hash.to_string()),
        teacher: None,
        method: None,
        // The generator's background family and garment mask, per row.
        scene_truth: true,
    }
}

/// What makes the rows of the generated splits.
struct DemoRows<'a> {
    fm: &'a FashionMnist,
    cfg: &'a FashionShiftConfig,
    classes: &'a [String],
    folders: &'a [String],
    /// Where the PNG ImageFolder tree goes, if one is written.
    image_folder: Option<&'a Path>,
}

impl DemoRows<'_> {
    /// Row `i` of `split`: the generated image as PNG with its label and ground truth (and its
    /// file in the ImageFolder tree).
    fn row(&self, split: Split, i: usize) -> std::result::Result<ImageRecord, Rejected> {
        let id = format!("fashionshift/{}/{i:06}", split.name());
        let rejected = |path: &str, e: &dyn std::fmt::Display| Rejected {
            path: path.to_string(),
            reason: e.to_string(),
        };
        let s =
            fashionshift::generate(self.fm, self.cfg, split, i).map_err(|e| rejected(&id, &e))?;
        let png = encode_png(&RgbPixels {
            width: s.size,
            height: s.size,
            pixels: s.pixels.clone(),
        })
        .map_err(|e| rejected(&id, &e))?;
        if let Some(dir) = self.image_folder {
            let f = dir
                .join(split.name())
                .join(&self.folders[s.info.label as usize])
                .join(format!("{i:06}.png"));
            std::fs::write(&f, &png).map_err(|e| rejected(&f.display().to_string(), &e))?;
        }
        Ok(ImageRecord {
            label: s.info.label as i64,
            class_name: self.classes[s.info.label as usize].clone(),
            source_blake3: blake3::hash(&s.pixels).to_hex().to_string(),
            orig_width: s.size as i32,
            orig_height: s.size as i32,
            image: StoredImage {
                bytes: png,
                path: format!("{i:06}.png"),
            },
            truth: Some(SceneTruth {
                bg_family: i32::from(s.info.background),
                object_mask: s.object_mask,
            }),
            id,
        })
    }
}

/// `cfkit demo-data`: the FashionShift splits as image shards.
pub fn demo_data(out: &Path, opts: &DemoOptions) -> Result<Vec<SplitReport>> {
    let cfg = demo_config(opts)?;
    let splits: Vec<Split> = if opts.splits.is_empty() {
        Split::ALL.to_vec()
    } else {
        opts.splits
            .iter()
            .map(|s| s.parse::<Split>())
            .collect::<std::result::Result<_, _>>()?
    };
    let fm = FashionMnist::load(&opts.fashion_mnist)?;
    let identity = DemoDataIdentity {
        command: "demo-data".into(),
        fashionshift: cfg,
        fashion_mnist_blake3: fm.fingerprint(),
        splits: splits.iter().map(|s| s.name().to_string()).collect(),
        output: opts.output.clone(),
    };
    let hash = identity_hash(&identity);
    // One writer per output directory, for the whole run (this also creates it).
    let _lock = DirLock::acquire(out, "")?;
    check_existing(out, &hash)?;
    let classes: Vec<String> = fashionshift::CLASS_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let folders = class_folders(&classes);
    if let Some(dir) = &opts.image_folder {
        make_image_folders(dir, &splits, &folders)?;
    }
    let mut manifest = Manifest::new(
        ShardKind::Images,
        serde_json::to_value(&identity).expect("identities serialise"),
        &format!("cfkit {}", env!("CARGO_PKG_VERSION")),
    );
    let mut reports = Vec::new();
    let rows = DemoRows {
        fm: &fm,
        cfg: &cfg,
        classes: &classes,
        folders: &folders,
        image_folder: opts.image_folder.as_deref(),
    };
    for split in splits {
        let n = fashionshift::split_len(&cfg, split.name())?;
        let info = split_info(&cfg, split, &classes, &hash);
        let output = write_split(
            out,
            &info,
            n,
            opts.output.rows_per_shard,
            opts.output.writer(),
            opts.output.quiet,
            |i| rows.row(split, i),
        )?;
        if let Some(r) = output.rejected.first() {
            return Err(PipelineError::Input(format!(
                "generating {}: {}",
                r.path, r.reason
            )));
        }
        reports.push(report(split.name(), n, &output));
        for s in output.shards {
            manifest.add_shard(split.name(), &classes, s);
        }
    }
    manifest.write(out)?;
    let inputs = DemoDataInputs {
        fashion_mnist: opts.fashion_mnist.clone(),
        image_folder: opts.image_folder.clone(),
    };
    DatasetRecord::new(identity, reports.clone(), Some(inputs)).write(out)?;
    Ok(reports)
}
