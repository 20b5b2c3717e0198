//! The command line as clap parses it: one `Args` struct per command, with typed values (device
//! specs, precisions, suites, pipelining) so that a misspelt value fails at parse time with the
//! list of what is accepted. Nothing here reads a file or the environment; `settings` does.

pub(crate) mod build;
pub(crate) mod data;
pub(crate) mod model;
pub(crate) mod train;

use clap::{Parser, Subcommand};

/// Robust fine-tuning of pretrained vision models (CLIP ViTs) with masked images as
/// counterfactual samples (Xiao et al., CVPR 2023).
#[derive(Debug, Parser)]
#[command(name = "cfkit", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build a zero-shot classification head from a CLIP text tower: class names × prompt
    /// templates -> head weights (safetensors) with the class list and a hash in its metadata.
    ZeroshotHead(model::ZeroshotHeadArgs),
    /// Convert CLIP weights (safetensors in any naming, or an OpenAI TorchScript archive such as
    /// ViT-B-32.pt) to cfkit's layout; with --head, a complete zero-shot checkpoint.
    Convert(model::ConvertArgs),
    /// List the model presets and their shapes.
    Presets(model::PresetsArgs),
    /// Check the models against the PyTorch parity fixtures on a device (max-abs per quantity).
    Parity(model::ParityArgs),
    /// Preprocess images from an ImageFolder tree or a CSV/Parquet manifest into image shards
    /// (one split), quarantining files that cannot be used.
    Prepare(data::PrepareArgs),
    /// Generate the FashionShift demo benchmark (DESIGN §6) as image shards: pretrain, train,
    /// val, test-id and five OOD splits.
    DemoData(data::DemoDataArgs),
    /// Build counterfactual shards from image shards and a frozen teacher: CAMs, masks, donors,
    /// refilled images and the teacher's features of every counterfactual.
    BuildCounterfactuals(build::BuildArgs),
    /// Check a dataset directory against its manifest: every shard's size, blake3, schema
    /// version, split and row count. Exits non-zero naming every bad shard.
    Verify(build::VerifyArgs),
    /// Draw a contact sheet of counterfactual shards (original | CAM | mask | counterfactuals per
    /// row) and print mask-ratio and donor-class statistics.
    Inspect(build::InspectArgs),
    /// Join the manifest parts of `build-counterfactuals --num-workers N` workers into
    /// manifest.json, checking they belong to one config and cover the input.
    Merge(build::MergeArgs),
    /// Train or fine-tune a model from shards (FT, LP; from scratch or a checkpoint) with
    /// validation, resumable checkpoints, metrics and an evaluation report.
    Train(train::TrainArgs),
    /// Evaluate a checkpoint on named sets (shard splits or an ImageFolder): top-1 per set and
    /// the OOD mean.
    Eval(train::EvalArgs),
    /// WiSE-FT: interpolate all weights between a zero-shot and a fine-tuned checkpoint for each
    /// α, write the checkpoints and evaluate each on the configured sets.
    WiseFt(train::WiseFtArgs),
    /// Check the installation: libtorch, visible CUDA devices, and a forward, backward and MMCAM
    /// pass of a preset on the chosen device, with timings.
    Doctor(model::DoctorArgs),
}
