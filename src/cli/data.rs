//! The arguments of `prepare` and `demo-data`.

use std::path::PathBuf;

use clap::Args;

use cfkit_pipeline as pipeline;

#[derive(Debug, Args)]
pub(crate) struct ShardArgs {
    /// Rows per shard file.
    #[arg(long, default_value_t = 10_000)]
    pub rows_per_shard: usize,
    /// Uncompressed bytes per Parquet row group.
    #[arg(long, default_value_t = 100 * 1024 * 1024)]
    pub row_group_bytes: usize,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["image_folder", "manifest", "hf_parquet", "webdataset"])))]
pub(crate) struct PrepareArgs {
    /// ImageFolder root: one sub-folder per class (sorted names give the label order).
    #[arg(long)]
    pub image_folder: Option<PathBuf>,
    /// CSV (header `path,label`) or Parquet (`path`, `label` columns) manifest.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Hugging Face datasets Parquet files (images inside): files, directories of `.parquet`
    /// files, or brace patterns (`data/train-{00000..00146}-of-00147.parquet`). Labels map
    /// through the dataset's ClassLabel names unless --classes is given.
    #[arg(long, num_args = 1.., value_name = "PARQUET")]
    pub hf_parquet: Vec<PathBuf>,
    /// The image column of --hf-parquet [default: the dataset's Image feature].
    #[arg(long, requires = "hf_parquet")]
    pub image_column: Option<String>,
    /// The label column of --hf-parquet [default: the ClassLabel feature, else `label`].
    #[arg(long, requires = "hf_parquet")]
    pub label_column: Option<String>,
    /// WebDataset tar shards: files, directories of `.tar` files, or brace patterns
    /// (`train-{0000..0146}.tar`); class names from --classes or a classnames.txt next to the
    /// shards (or one level up), else the labels themselves.
    #[arg(long, num_args = 1.., value_name = "TAR")]
    pub webdataset: Vec<PathBuf>,
    /// Where a WebDataset sample's label is: a member's extension (`cls`: its text) or
    /// `<extension>:<field>` (`json:label`: a field of a JSON member).
    #[arg(long, default_value = "cls", requires = "webdataset")]
    pub wds_label: pipeline::prepare::sources::webdataset::WdsLabel,
    /// Base directory of relative manifest paths [default: the manifest's directory].
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Class-list file (one name per line) fixing class names and label order.
    #[arg(long)]
    pub classes: Option<PathBuf>,
    /// Split name used in the shard file names.
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Output directory (data/ + manifest.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Side of the stored images (resize shorter side + center crop).
    #[arg(long, default_value_t = 224)]
    pub image_size: u32,
    /// Largest accepted source image, in pixels (decompression-bomb limit).
    #[arg(long, default_value_t = pipeline::prepare::decode::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Pixels cut from every side before preprocessing (ObjectNet's protocol: 2).
    #[arg(long, default_value_t = 0)]
    pub border_crop: u32,
    /// Fail when more than this fraction of the inputs is quarantined.
    #[arg(long, default_value_t = 0.05)]
    pub max_bad_fraction: f64,
    /// Row order of the shards: `shuffled` (a seeded random order, so that a class-sorted source
    /// such as ImageNet's class folders gives batches and donor pools that mix classes) or
    /// `input` (the listing's order).
    #[arg(long, value_enum, default_value_t = RowOrder::Shuffled)]
    pub order: RowOrder,
    /// Seed of the row order and of the hold-out.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rows held out of the split, stratified by class and keyed by file id, written as a split
    /// of their own (--holdout-split): the validation set of every run on these images, never a
    /// donor of their counterfactuals.
    #[arg(long, default_value_t = 0)]
    pub holdout: usize,
    /// Name of the hold-out split [default: <split>-holdout].
    #[arg(long)]
    pub holdout_split: Option<String>,
    /// How images are fitted to the square, as the model's preprocessing does (open_clip's
    /// `resize_mode`): `shortest` (CLIP: shorter side, center crop), `longest` (longer side,
    /// padded with --fill), `squash` (both sides).
    #[arg(long, value_enum, default_value_t = ResizeModeArg::Shortest)]
    pub resize_mode: ResizeModeArg,
    /// The resampling filter (open_clip's `interpolation`; CLIP: bicubic).
    #[arg(long, value_enum, default_value_t = InterpolationArg::Bicubic)]
    pub interpolation: InterpolationArg,
    /// Padding value of every channel for --resize-mode longest (open_clip's `fill_color`).
    #[arg(long, default_value_t = 0)]
    pub fill: u8,
    #[command(flatten)]
    pub shards: ShardArgs,
}

/// `prepare --resize-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ResizeModeArg {
    Shortest,
    Longest,
    Squash,
}

/// `prepare --interpolation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum InterpolationArg {
    Bicubic,
    Bilinear,
}

/// `prepare --order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RowOrder {
    Shuffled,
    Input,
}

#[derive(Debug, Args)]
pub(crate) struct DemoDataArgs {
    /// Output directory (data/ + manifest.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Generator seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Comma-separated splits [default: all].
    #[arg(long, value_delimiter = ',')]
    pub splits: Vec<String>,
    /// Multiplies every split's default size (pretrain 20000, train 10000, others 2000).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Also write each split as a PNG ImageFolder tree: DIR/<split>/<class>/<index>.png, with
    /// DIR/<split>/classes.txt giving the label order.
    #[arg(long)]
    pub image_folder: Option<PathBuf>,
    /// Fashion-MNIST IDX files (Debian package dataset-fashion-mnist).
    #[arg(long, default_value = pipeline::fashionshift::DEBIAN_DIR)]
    pub fashion_mnist: PathBuf,
    #[command(flatten)]
    pub shards: ShardArgs,
}
