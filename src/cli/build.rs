//! The arguments of `build-counterfactuals`, `verify`, `merge` and `inspect`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// TOML config (source, teacher, counterfactuals, output); see configs/.
    #[arg(long)]
    pub config: PathBuf,
    /// Output directory [default: the config's output.out].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a config key, e.g. `--set source.shards=/data/train --set teacher.model=vit-b-16`
    /// (repeatable; the value is TOML, else a string).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Split the input shards over N workers (shard k goes to worker k mod N); each writes its
    /// own manifest part into --out, `cfkit merge` joins them [default: the launcher's count —
    /// SLURM_ARRAY_TASK_COUNT or WORLD_SIZE — else 1; a Kubernetes Indexed Job needs it].
    #[arg(long)]
    pub num_workers: Option<usize>,
    /// This process's worker index, in 0..N [default: the launcher's — SLURM_ARRAY_TASK_ID
    /// (from SLURM_ARRAY_TASK_MIN), JOB_COMPLETION_INDEX or RANK — else 0]. Given, it overrides
    /// the environment.
    #[arg(long)]
    pub worker_index: Option<usize>,
    /// Overlap decode / device / encode stages: auto (on for CUDA, off on CPU where they share
    /// the cores), on, off. The output is the same either way.
    #[arg(long, value_enum, default_value_t = PipelineArg::Auto)]
    pub pipeline: PipelineArg,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Dataset directory (manifest.json + data/).
    pub dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The output directory the workers wrote into.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Counterfactual dataset directory (manifest.json + data/).
    pub dir: PathBuf,
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Rows drawn (the first N of the split); statistics cover every row.
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// Contact sheet (PNG).
    #[arg(long)]
    pub out: PathBuf,
    /// Print the statistics and legend as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--pipeline`: whether the build's decode / device / encode stages overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PipelineArg {
    /// On for CUDA, off on CPU (where the stages share the cores).
    Auto,
    On,
    Off,
}
