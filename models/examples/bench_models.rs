//! Forward+backward throughput of a vision preset, for `just bench-models`.
//!
//! Prints one JSON line: {"preset", "batch", "iters", "images_per_s", "seconds"}. The PyTorch side
//! of the comparison is cfkit_tools.bench.models (tools/cfkit_tools/bench/models.py), which runs
//! this binary between its own timings.

use std::time::Instant;

use anyhow::{bail, Result};
use cfkit_models::{preset, ClipModel, DeviceSpec, Towers};
use tch::{Kind, Tensor};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let name = arg(&args, "--preset", "tiny");
    let batch: i64 = arg(&args, "--batch", "64").parse()?;
    let iters: usize = arg(&args, "--iters", "10").parse()?;
    let warmup: usize = arg(&args, "--warmup", "2").parse()?;
    let threads: i32 = arg(&args, "--threads", "0").parse()?;
    let device = arg(&args, "--device", "cpu")
        .parse::<DeviceSpec>()?
        .resolve()?;
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    if iters == 0 {
        bail!("--iters must be > 0");
    }
    let config = preset(&name)?;
    let model = ClipModel::new(&config, Towers::Vision, device)?;
    let vision = model.vision()?;
    let s = config.vision_config.image_size;
    let pixels = Tensor::randn([batch, 3, s, s], (Kind::Float, device));
    let vars = model.vs.trainable_variables();
    let step = || -> Result<()> {
        let feats = vision.features(&pixels)?;
        let loss = feats.square().mean(Kind::Float);
        loss.backward();
        for v in &vars {
            let mut g = v.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        Ok(())
    };
    for _ in 0..warmup {
        step()?;
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(0);
    }
    let t0 = Instant::now();
    for _ in 0..iters {
        step()?;
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(0);
    }
    let secs = t0.elapsed().as_secs_f64();
    let out = serde_json::json!({
        "impl": "cfkit",
        "preset": name,
        "batch": batch,
        "iters": iters,
        "seconds": secs,
        "images_per_s": (batch as f64 * iters as f64) / secs,
    });
    println!("{out}");
    Ok(())
}
