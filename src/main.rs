//! `cfkit`: the command-line entry point. Parses the arguments (`cli`), reads the environment once
//! (`settings::env`), dispatches to a command (`commands`) and maps its outcome to an exit
//! status; all work lives in the library crates.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod commands;
mod out;
mod settings;

use cli::{Cli, Command};
use commands::{build, data, model, train};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = settings::env::Env::from_process();
    if let Some(point) = env.get("CFKIT_CRASH_AT") {
        cfkit_outdir::crash::arm(&point);
    }
    let result = match cli.command {
        Command::ZeroshotHead(a) => model::zeroshot_head(a, &env),
        Command::Convert(a) => model::convert(a),
        Command::Presets(a) => model::presets(a),
        Command::Parity(a) => model::parity(a),
        Command::Doctor(a) => model::doctor(a, &env),
        Command::Prepare(a) => data::prepare(a),
        Command::DemoData(a) => data::demo_data(a),
        Command::BuildCounterfactuals(a) => build::build_counterfactuals(a, &env),
        Command::Verify(a) => build::verify(a),
        Command::Inspect(a) => build::inspect(a),
        Command::Merge(a) => build::merge(a),
        Command::Train(a) => train::train(a, &env),
        Command::WiseFt(a) => train::wise_ft(a),
        Command::Eval(a) => train::eval(a),
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
