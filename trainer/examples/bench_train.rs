//! Throughput of one full fine-tuning step, and of the shard loader alone, for `just bench-train`.
//!
//! Two modes, each printing one JSON line on stdout:
//!
//! * `--preset NAME --batch N [--steps S] [--warmup W] [--threads T]`: one FT step (forward, CE
//!   loss, backward, gradient clipping, scheduled AdamW, zero_grad) of a scratch [`Student`] on
//!   random images and labels, timed over S steps after W warm-up steps:
//!   `{"mode":"step","preset","batch","steps","images_per_s","seconds_per_step",
//!   "optimizer_seconds_per_step"}` (the last: clip + AdamW + zero_grad).
//! * `--loader DIR --split NAME --batch N [--batches B] [--passes P] [--threads T] [--strategy S]
//!   [--normalized]`: the streaming loader ([`BatchStream`], prefetch 4) over a split in the
//!   training order, B batches (default: all) in each of P passes (epochs 0..P, default 1); with
//!   `--strategy`, counterfactual shards are read with that strategy's variant as offline masked
//!   FD reads them (compact shards: recomposed). The batches are taken as the loader thread makes
//!   them (uint8 pixels, [`BatchStream::next_raw`]); `--normalized` also turns them into float
//!   model input on this thread, as a CPU run does (on a GPU that is the device's work):
//!   `{"mode":"loader","images_per_s","images","batches","seconds","normalized"}`.
//!
//! The PyTorch side of the step comparison is cfkit_tools.bench.train
//! (tools/cfkit_tools/bench/train.py), which runs this binary between its own timings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use cfkit_trainer::config::VariantChoice;
use cfkit_trainer::data::{
    epoch_order, BatchExtras, BatchStream, SplitSource, StoredStrategy, TargetSpec,
};
use cfkit_trainer::eval::all_rows;
use cfkit_trainer::optim::schedule::OneCycleConfig;
use cfkit_trainer::optim::{OptimConfig, Optimizer};
use cfkit_trainer::student::Student;
use tch::{Device, Kind, Tensor};

/// Classes of the benchmark head (the FashionShift demo has 10).
const NUM_CLASSES: i64 = 10;
/// Nominal run length of the schedule (the benchmark's steps are its first ones); the same on the
/// PyTorch side.
const SCHEDULE_STEPS: usize = 1000;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn arg_or(args: &[String], name: &str, default: &str) -> String {
    arg(args, name).unwrap_or_else(|| default.to_string())
}

fn parse<T: std::str::FromStr>(args: &[String], name: &str, default: &str) -> Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    arg_or(args, name, default)
        .parse()
        .with_context(|| format!("bad value for {name}"))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let threads: i32 = parse(&args, "--threads", "0")?;
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    match arg(&args, "--loader") {
        Some(dir) => loader(&args, PathBuf::from(dir)),
        None => step(&args),
    }
}

fn step(args: &[String]) -> Result<()> {
    let name = arg(args, "--preset").context("--preset NAME (or --loader DIR) is required")?;
    let batch: i64 = parse(args, "--batch", "64")?;
    let steps: usize = parse(args, "--steps", "10")?;
    let warmup: usize = parse(args, "--warmup", "2")?;
    if steps == 0 || batch <= 0 {
        bail!("--steps and --batch must be > 0");
    }
    let config = cfkit_models::preset(&name)?.vision_config;
    let classes: Vec<String> = (0..NUM_CLASSES).map(|i| format!("c{i}")).collect();
    let student = Student::scratch(&name, &config, &classes, Device::Cpu, 0, 10.0)?;
    let mut opt = Optimizer::new(Optimizer::trainable(&student.vs), OptimConfig::default());
    let sched = OneCycleConfig::paper_recipe().build(SCHEDULE_STEPS.max(warmup + steps))?;
    let s = config.image_size;
    let x = Tensor::randn([batch, 3, s, s], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(NUM_CLASSES, [batch], (Kind::Int64, Device::Cpu));
    // One step -> (loss, seconds in the optimizer part: clip, AdamW, zero_grad). CPU ops are
    // synchronous, so the split needs no extra sync.
    let mut one = |i: usize| -> Result<(f64, f64)> {
        let logits = student.logits(&x)?;
        let loss = logits.cross_entropy_for_logits(&y);
        loss.backward();
        let t = Instant::now();
        opt.step(i, &sched)?;
        opt.zero_grad();
        let opt_secs = t.elapsed().as_secs_f64();
        Ok((loss.double_value(&[]), opt_secs))
    };
    for i in 0..warmup {
        one(i)?;
    }
    let mut opt_secs = 0.0;
    let t0 = Instant::now();
    for i in warmup..warmup + steps {
        let (loss, o) = one(i)?;
        if !loss.is_finite() {
            bail!("step {i}: loss {loss}");
        }
        opt_secs += o;
    }
    let secs = t0.elapsed().as_secs_f64();
    let out = serde_json::json!({
        "mode": "step",
        "impl": "cfkit",
        "preset": name,
        "batch": batch,
        "steps": steps,
        "warmup": warmup,
        "threads": tch::get_num_threads(),
        "images_per_s": (batch as f64 * steps as f64) / secs,
        "seconds_per_step": secs / steps as f64,
        "optimizer_seconds_per_step": opt_secs / steps as f64,
    });
    println!("{out}");
    Ok(())
}

fn loader(args: &[String], dir: PathBuf) -> Result<()> {
    let split = arg_or(args, "--split", "train");
    let batch: usize = parse(args, "--batch", "64")?;
    let batches: usize = parse(args, "--batches", "0")?;
    let passes: u64 = parse(args, "--passes", "1")?;
    let normalized = args.iter().any(|a| a == "--normalized");
    if batch == 0 {
        bail!("--batch must be > 0");
    }
    let source = Arc::new(SplitSource::open(&dir, &split)?);
    let rows = all_rows(&source);
    let strategy = arg(args, "--strategy");
    let input = cfkit_trainer::data::ModelInput {
        device: Device::Cpu,
        normalize: cfkit_models::Normalize::CLIP,
    };
    let limit = if batches == 0 { usize::MAX } else { batches };
    let (mut images, mut n_batches) = (0usize, 0usize);
    let t0 = Instant::now();
    for epoch in 0..passes.max(1) {
        let order = epoch_order(&rows, 0, epoch, 16384);
        let extras = BatchExtras {
            pixels: false,
            targets: strategy.clone().map(|name| TargetSpec {
                strategy: Some(StoredStrategy {
                    no_fill: name.contains("NoFill"),
                    name,
                }),
                choice: VariantChoice::Epoch,
                seed: 0,
                epoch,
            }),
        };
        let mut stream =
            BatchStream::start(source.clone(), Arc::new(order), batch, 0, 4, input, extras);
        for _ in 0..limit {
            let b = if normalized {
                stream.next()
            } else {
                stream.next_raw()
            };
            let Some(b) = b else { break };
            images += b?.len();
            n_batches += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let out = serde_json::json!({
        "mode": "loader",
        "split": split,
        "batch": batch,
        "batches": n_batches,
        "images": images,
        "seconds": secs,
        "images_per_s": images as f64 / secs,
        "normalized": normalized,
    });
    println!("{out}");
    Ok(())
}
