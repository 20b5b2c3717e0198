//! `cfkit`: the command-line entry point. Parses arguments, resolves configs and calls the library
//! crates; all work lives there.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod build_cmd;
mod data_cmd;
mod model_cmd;
mod out;
mod suite_cmd;
mod train_cmd;

use build_cmd::{BuildArgs, InspectArgs, MergeArgs, VerifyArgs};
use data_cmd::{DemoDataArgs, PrepareArgs};
use model_cmd::{ConvertArgs, DoctorArgs, ParityArgs, PresetsArgs, ZeroshotHeadArgs};

/// Robust fine-tuning of pretrained vision models (CLIP ViTs) with masked images as
/// counterfactual samples (Xiao et al., CVPR 2023).
#[derive(Debug, Parser)]
#[command(name = "cfkit", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a zero-shot classification head from a CLIP text tower: class names × prompt
    /// templates -> head weights (safetensors) with the class list and a hash in its metadata.
    ZeroshotHead(ZeroshotHeadArgs),
    /// Convert CLIP weights (safetensors in any naming, or an OpenAI TorchScript archive such as
    /// ViT-B-32.pt) to cfkit's layout; with --head, a complete zero-shot checkpoint.
    Convert(ConvertArgs),
    /// List the model presets and their shapes.
    Presets(PresetsArgs),
    /// Check the models against the PyTorch parity fixtures on a device (max-abs per quantity).
    Parity(ParityArgs),
    /// Preprocess images from an ImageFolder tree or a CSV/Parquet manifest into image shards
    /// (one split), quarantining files that cannot be used.
    Prepare(PrepareArgs),
    /// Generate the FashionShift demo benchmark (DESIGN §6) as image shards: pretrain, train,
    /// val, test-id and five OOD splits.
    DemoData(DemoDataArgs),
    /// Build counterfactual shards from image shards and a frozen teacher: CAMs, masks, donors,
    /// refilled images and the teacher's features of every counterfactual.
    BuildCounterfactuals(BuildArgs),
    /// Check a dataset directory against its manifest: every shard's size, blake3, schema
    /// version, split and row count. Exits non-zero naming every bad shard.
    Verify(VerifyArgs),
    /// Draw a contact sheet of counterfactual shards (original | CAM | mask | counterfactuals per
    /// row) and print mask-ratio and donor-class statistics.
    Inspect(InspectArgs),
    /// Join the manifest parts of `build-counterfactuals --num-workers N` workers into
    /// manifest.json, checking they belong to one config and cover the input.
    Merge(MergeArgs),
    /// Train or fine-tune a model from shards (FT, LP; from scratch or a checkpoint) with
    /// validation, resumable checkpoints, metrics and an evaluation report.
    Train(train_cmd::TrainArgs),
    /// Evaluate a checkpoint on named sets (shard splits or an ImageFolder): top-1 per set and
    /// the OOD mean.
    Eval(train_cmd::EvalArgs),
    /// WiSE-FT: interpolate all weights between a zero-shot and a fine-tuned checkpoint for each
    /// α, write the checkpoints and evaluate each on the configured sets.
    WiseFt(train_cmd::WiseFtArgs),
    /// Check the installation: libtorch, visible CUDA devices, and a forward, backward and MMCAM
    /// pass of a preset on the chosen device, with timings.
    Doctor(DoctorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::ZeroshotHead(a) => model_cmd::zeroshot_head(a),
        Command::Convert(a) => model_cmd::convert(a),
        Command::Presets(a) => model_cmd::presets(a),
        Command::Parity(a) => model_cmd::parity(a),
        Command::Doctor(a) => model_cmd::doctor(a),
        Command::Prepare(a) => data_cmd::prepare(a),
        Command::DemoData(a) => data_cmd::demo_data(a),
        Command::BuildCounterfactuals(a) => build_cmd::build_counterfactuals(a),
        Command::Verify(a) => build_cmd::verify(a),
        Command::Inspect(a) => build_cmd::inspect(a),
        Command::Merge(a) => build_cmd::merge(a),
        Command::Train(a) => train_cmd::train(a),
        Command::WiseFt(a) => train_cmd::wise_ft(a),
        Command::Eval(a) => train_cmd::eval(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.downcast_ref::<out::StdoutClosed>().is_some() => {
            ExitCode::from(out::CLOSED_STATUS)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
