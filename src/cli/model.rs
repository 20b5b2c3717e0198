//! The arguments of `zeroshot-head`, `convert`, `presets`, `parity` and `doctor`.

use std::path::PathBuf;

use cfkit_models::DeviceSpec;
use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Vision preset to run.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Images in the test batch.
    #[arg(long, default_value_t = 16)]
    pub batch: i64,
    /// Timed repetitions of each measured call, after one untimed warm-up.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ZeroshotHeadArgs {
    /// Model preset (`cfkit presets`), a config.json with `text_config`, or an open_clip model
    /// folder (open_clip_config.json).
    #[arg(long)]
    pub model: String,
    /// CLIP weights (safetensors) with Hugging Face or open_clip/OpenAI tensor names.
    #[arg(long)]
    pub weights: PathBuf,
    /// Class names, one per line, in label order (unique: what evaluation sets match, e.g.
    /// assets/imagenet/wnids.txt).
    #[arg(long)]
    pub classes: PathBuf,
    /// Names put into the prompts, one per line in the order of --classes (repeats allowed:
    /// CLIP's ImageNet names, assets/imagenet/classnames.txt, have two) [default: --classes].
    #[arg(long)]
    pub names: Option<PathBuf>,
    /// Prompt templates, one per line with `{}` for the class name [default: the 80 OpenAI
    /// ImageNet templates].
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// BPE merges: OpenAI's bpe_simple_vocab_16e6.txt.gz or a Hugging Face merges.txt
    /// [default: $CFKIT_BPE_VOCAB, else open_clip's copy in the project venv].
    #[arg(long)]
    pub vocab: Option<PathBuf>,
    /// Output file (safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Texts encoded per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
}

#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// Model preset (`cfkit presets`), a config.json with `vision_config`, or an open_clip
    /// model folder (open_clip_config.json).
    #[arg(long)]
    pub model: String,
    /// CLIP weights: safetensors (Hugging Face or open_clip/OpenAI names) or a TorchScript
    /// archive such as OpenAI's ViT-B-32.pt (read by libtorch; no pickled code runs).
    #[arg(long)]
    pub weights: PathBuf,
    /// A head file (`cfkit zeroshot-head`): then --out is a complete checkpoint (the zero-shot
    /// model for eval, wise-ft and train); without it, only model.safetensors + config.json.
    #[arg(long)]
    pub head: Option<PathBuf>,
    /// Output directory (must not exist or be empty).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ParityArgs {
    /// Fixture directory: `<case>/config.json`, `<case>/{hf,open_clip}.safetensors` and their
    /// `expected_*.safetensors` (tests/fixtures/parity, or what tests/parity/make_fixtures.py
    /// writes).
    #[arg(long, default_value = "tests/fixtures/parity")]
    pub fixtures: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// Weights and inputs in fp32, or cast to bf16 (outputs compared in f32).
    #[arg(long, value_enum, default_value_t = DtypeArg::Fp32)]
    pub dtype: DtypeArg,
    /// fp32: largest max-abs difference that passes.
    #[arg(long, default_value_t = 1e-4)]
    pub tol: f64,
    /// bf16: largest max-abs difference that passes, as a fraction of the quantity's largest
    /// magnitude (bf16 keeps 8 significant bits, 2^-8 = 0.4 % per rounding; through the layers
    /// errors add up: 4 % on the tiny fixture's CAMs on CPU, hence 10 %).
    #[arg(long, default_value_t = 0.1)]
    pub rel_tol: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PresetsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `parity --dtype`: the precision the models run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DtypeArg {
    Fp32,
    Bf16,
}

impl DtypeArg {
    pub(crate) fn kind(self) -> tch::Kind {
        match self {
            DtypeArg::Fp32 => tch::Kind::Float,
            DtypeArg::Bf16 => tch::Kind::BFloat16,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            DtypeArg::Fp32 => "fp32",
            DtypeArg::Bf16 => "bf16",
        }
    }
}
