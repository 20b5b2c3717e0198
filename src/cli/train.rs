//! The arguments of `train`, `eval` and `wise-ft`, and the evaluation-suite options they share.

use std::path::PathBuf;

use cfkit_models::DeviceSpec;
use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// TOML config ([model], [data], [train], [optim], [schedule], [eval]); see configs/.
    #[arg(long)]
    pub config: PathBuf,
    /// Run directory [default: the config's output.out].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Override a config key, e.g. `--set distill.weight=10 --set train.seed=1` (repeatable;
    /// recorded in run.json like the rest of the config).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub set: Vec<String>,
    /// No progress bar or per-epoch lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Time the phases of every step (loader wait, forward and loss, CAM, teacher, backward,
    /// optimizer) and write profile.json into the run directory.
    #[arg(long)]
    pub profile: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the resolved config and its hash (as run.json records them) as JSON, and exit
    /// without training.
    #[arg(long)]
    pub print_config: bool,
    /// Data-parallel runs (WORLD_SIZE > 1, as torchrun or srun set it): the longest wait, in
    /// seconds, for the other ranks at start and at every collective; a rank that died or hangs
    /// ends the job after it.
    #[arg(long, default_value_t = 1800.0, value_name = "SECONDS")]
    pub dist_timeout: f64,
}

/// Where and how `eval` and `wise-ft` score a model.
#[derive(Debug, Args)]
pub(crate) struct ScoringArgs {
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("data").required(true).args(["shards", "image_folder", "suite"])))]
pub(crate) struct EvalArgs {
    /// Checkpoint directory (model.safetensors, head.safetensors, checkpoint.json).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset directory of image or counterfactual shards.
    #[arg(long)]
    pub shards: Option<PathBuf>,
    /// Splits of --shards to evaluate, each a named set [default: every split named test* or
    /// ood*, else every split].
    #[arg(long, value_delimiter = ',')]
    pub split: Vec<String>,
    /// ImageFolder root to evaluate (preprocessed into temporary shards first).
    #[arg(long, requires = "classes")]
    pub image_folder: Option<PathBuf>,
    /// Class-list file of --image-folder (one name per line; they must be model classes).
    #[arg(long)]
    pub classes: Option<PathBuf>,
    /// Sets that count as OOD [default: names starting with "ood"].
    #[arg(long, value_delimiter = ',')]
    pub ood: Vec<String>,
    /// Sets shown but counted in neither mean [default: names ending with "-near", such as
    /// FashionShift's ood-near, which keeps the training shortcut].
    #[arg(long, value_delimiter = ',')]
    pub apart: Vec<String>,
    /// Restrict logits to each set's classes before argmax (ImageNet-R/-A protocol).
    #[arg(long)]
    pub restrict: bool,
    /// JSON {set class: [model classes]}: correct if the argmax is any mapped class (ObjectNet).
    #[arg(long)]
    pub label_map: Option<PathBuf>,
    #[command(flatten)]
    pub suite: SuiteArgs,
    #[command(flatten)]
    pub scoring: ScoringArgs,
}

#[derive(Debug, Args)]
pub(crate) struct WiseFtArgs {
    /// The zero-shot checkpoint (e.g. assets/teacher).
    #[arg(long)]
    pub zeroshot: PathBuf,
    /// The fine-tuned checkpoint (e.g. runs/ft-demo/checkpoints/best).
    #[arg(long)]
    pub finetuned: PathBuf,
    /// Mixing weights of the fine-tuned model: start:stop:step or a comma list.
    #[arg(long, default_value = "0:1:0.1")]
    pub alpha: String,
    /// Output directory (one checkpoint per α, wise-ft.json, wise-ft.md).
    #[arg(long)]
    pub out: PathBuf,
    /// Train config whose [eval] sets to evaluate [default: the config in the run.json of the
    /// fine-tuned run, two directories above --finetuned].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Score every α on an evaluation suite instead of the config's sets (`--suite imagenet
    /// --root DIR`, as in `cfkit eval`); each α directory gets its suite-<name>.{md,json}.
    #[command(flatten)]
    pub suite: SuiteArgs,
    #[command(flatten)]
    pub scoring: ScoringArgs,
}

/// The suite options of `cfkit eval`.
#[derive(Debug, Args)]
pub(crate) struct SuiteArgs {
    /// Evaluation suite: `imagenet` = ImageNet val (ID) and -V2, -R, -Sketch, ObjectNet, -A
    /// (assets/imagenet/protocol.json), each with its protocol.
    #[arg(long, value_enum)]
    pub suite: Option<SuiteArg>,
    /// Directory holding the suite's sets under their usual names (imagenet/val or
    /// ILSVRC2012/val, imagenetv2-matched-frequency-format-val, imagenet-r, sketch, objectnet-1.0,
    /// imagenet-a).
    #[arg(long, requires = "suite")]
    pub root: Option<PathBuf>,
    /// A set's directory given explicitly, e.g. `--set-dir imagenet-r=/data/imagenet-r`
    /// (repeatable).
    #[arg(long, value_parser = parse_set_dir, requires = "suite")]
    pub set_dir: Vec<(String, PathBuf)>,
    /// Sets to run [default: all six].
    #[arg(long, value_delimiter = ',', requires = "suite")]
    pub sets: Vec<String>,
    /// Where each set's preprocessed shards are kept and reused [default:
    /// .cfkit-cache/suite-<image size>px].
    #[arg(long, requires = "suite")]
    pub cache: Option<PathBuf>,
    /// Directory for suite-<name>.json and .md [default: the checkpoint directory].
    #[arg(long, requires = "suite")]
    pub suite_out: Option<PathBuf>,
}

/// `--suite`: an evaluation suite with its sets' protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SuiteArg {
    /// ImageNet val (ID) and -V2, -R, -Sketch, ObjectNet, -A (assets/imagenet/protocol.json).
    Imagenet,
}

impl SuiteArg {
    pub(crate) fn name(self) -> &'static str {
        match self {
            SuiteArg::Imagenet => "imagenet",
        }
    }
}

fn parse_set_dir(s: &str) -> std::result::Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected NAME=PATH, e.g. imagenet-r=/data/imagenet-r"))?;
    Ok((name.to_string(), PathBuf::from(path)))
}
