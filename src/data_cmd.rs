//! `cfkit prepare` and `demo-data`: argument parsing and printing; the work is in cfkit-pipeline.

use crate::out::outln;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use cfkit_pipeline as pipeline;

#[derive(Debug, Args)]
pub struct ShardArgs {
    /// Rows per shard file.
    #[arg(long, default_value_t = 10_000)]
    rows_per_shard: usize,
    /// Uncompressed bytes per Parquet row group.
    #[arg(long, default_value_t = 100 * 1024 * 1024)]
    row_group_bytes: usize,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

impl ShardArgs {
    fn options(&self) -> Result<pipeline::prepare::OutputOptions> {
        if self.rows_per_shard == 0 || self.row_group_bytes == 0 {
            anyhow::bail!("--rows-per-shard and --row-group-bytes must be > 0");
        }
        Ok(pipeline::prepare::OutputOptions {
            rows_per_shard: self.rows_per_shard,
            row_group_bytes: self.row_group_bytes,
            quiet: self.quiet,
        })
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["image_folder", "manifest"])))]
pub struct PrepareArgs {
    /// ImageFolder root: one sub-folder per class (sorted names give the label order).
    #[arg(long)]
    image_folder: Option<PathBuf>,
    /// CSV (header `path,label`) or Parquet (`path`, `label` columns) manifest.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Base directory of relative manifest paths [default: the manifest's directory].
    #[arg(long)]
    root: Option<PathBuf>,
    /// Class-list file (one name per line) fixing class names and label order.
    #[arg(long)]
    classes: Option<PathBuf>,
    /// Split name used in the shard file names.
    #[arg(long, default_value = "train")]
    split: String,
    /// Output directory (data/ + manifest.json).
    #[arg(long)]
    out: PathBuf,
    /// Side of the stored images (resize shorter side + center crop).
    #[arg(long, default_value_t = 224)]
    image_size: u32,
    /// Largest accepted source image, in pixels (decompression-bomb limit).
    #[arg(long, default_value_t = pipeline::prepare::decode::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Pixels cut from every side before preprocessing (ObjectNet's protocol: 2).
    #[arg(long, default_value_t = 0)]
    border_crop: u32,
    /// Fail when more than this fraction of the inputs is quarantined.
    #[arg(long, default_value_t = 0.05)]
    max_bad_fraction: f64,
    #[command(flatten)]
    shards: ShardArgs,
}

#[derive(Debug, Args)]
pub struct DemoDataArgs {
    /// Output directory (data/ + manifest.json).
    #[arg(long)]
    out: PathBuf,
    /// Generator seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Comma-separated splits [default: all].
    #[arg(long, value_delimiter = ',')]
    splits: Vec<String>,
    /// Multiplies every split's default size (pretrain 20000, train 10000, others 2000).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Also write each split as a PNG ImageFolder tree: DIR/<split>/<class>/<index>.png, with
    /// DIR/<split>/classes.txt giving the label order.
    #[arg(long)]
    image_folder: Option<PathBuf>,
    /// Fashion-MNIST IDX files (Debian package dataset-fashion-mnist).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    fashion_mnist: PathBuf,
    #[command(flatten)]
    shards: ShardArgs,
}

pub fn print_reports(reports: &[pipeline::prepare::SplitReport]) -> Result<()> {
    outln!(
        "{:<14} {:>7} {:>7} {:>6} {:>10} {:>11} {:>10} {:>9}",
        "split",
        "inputs",
        "rows",
        "shards",
        "MB",
        "quarantine",
        "dup.groups",
        "images/s"
    )?;
    for r in reports {
        outln!(
            "{:<14} {:>7} {:>7} {:>6} {:>10.1} {:>11} {:>10} {:>9.0}",
            r.split,
            r.inputs,
            r.rows,
            r.shards,
            r.bytes as f64 / 1e6,
            r.quarantined,
            r.duplicate_groups.len(),
            r.images_per_s
        )?;
    }
    Ok(())
}

pub fn prepare(a: PrepareArgs) -> Result<()> {
    let listing = match (&a.image_folder, &a.manifest) {
        (Some(dir), _) => pipeline::prepare::sources::list_image_folder(dir, a.classes.as_deref())?,
        (None, Some(m)) => {
            pipeline::prepare::sources::list_manifest(m, a.root.as_deref(), a.classes.as_deref())?
        }
        (None, None) => unreachable!("clap requires a source"),
    };
    if !(0.0..=1.0).contains(&a.max_bad_fraction) {
        anyhow::bail!(
            "--max-bad-fraction must lie in [0, 1], got {}",
            a.max_bad_fraction
        );
    }
    if a.image_size == 0 {
        anyhow::bail!("--image-size must be > 0");
    }
    let opts = pipeline::prepare::PrepareOptions {
        split: a.split.clone(),
        image_size: a.image_size,
        max_pixels: a.max_pixels,
        border_crop: a.border_crop,
        max_bad_fraction: a.max_bad_fraction,
        output: a.shards.options()?,
    };
    let report = pipeline::prepare::prepare(listing, &a.out, &opts)?;
    print_reports(std::slice::from_ref(&report))?;
    if report.quarantined > 0 {
        outln!(
            "quarantined inputs are listed in {}",
            a.out
                .join(format!("quarantine-{}.jsonl", a.split))
                .display()
        )?;
    }
    for g in &report.duplicate_groups {
        outln!("duplicate images (same bytes): {}", g.join(", "))?;
    }
    Ok(())
}

pub fn demo_data(a: DemoDataArgs) -> Result<()> {
    let opts = pipeline::prepare::DemoOptions {
        fashion_mnist: a.fashion_mnist,
        seed: a.seed,
        splits: a.splits,
        scale: a.scale,
        image_folder: a.image_folder,
        output: a.shards.options()?,
    };
    let reports = pipeline::prepare::demo_data(&a.out, &opts)?;
    print_reports(&reports)?;
    outln!("wrote {}", a.out.display())?;
    Ok(())
}
