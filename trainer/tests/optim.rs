//! The optimiser against torch: AdamW (wd 0.1) + OneCycleLR (β1 cycled) + clip_grad_norm_(1.0),
//! six steps on two parameters with fixed gradients (fixture from tests/optim/make_fixtures.py).
//! Tolerance: max-abs 1e-6 per step (libtorch C++ vs Python AdamW kernels, float32).

use std::path::Path;

use anyhow::Result;
use cfkit_models::weights::read_safetensors;
use cfkit_trainer::optim::schedule::{OneCycleConfig, Schedule};
use cfkit_trainer::optim::{OptimConfig, Optimizer};
use tch::{nn, Device, Kind, Tensor};

#[test]
fn adamw_with_one_cycle_and_clipping_matches_torch() -> Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/optim.safetensors");
    let fx = read_safetensors(&path)?;
    let t = &fx.tensors;
    let steps: usize = fx.metadata["steps"].parse()?;
    let lrs: Vec<f64> = serde_json::from_str(&fx.metadata["lrs"])?;
    let betas: Vec<f64> = serde_json::from_str(&fx.metadata["betas"])?;
    let sched = OneCycleConfig {
        max_lr: fx.metadata["max_lr"].parse()?,
        pct_start: fx.metadata["pct_start"].parse()?,
        ..OneCycleConfig::torch_defaults(1.0)
    }
    .build(steps)?;
    let vs = nn::VarStore::new(Device::Cpu);
    let w = vs.root().var_copy("w", &t["w0"]);
    let b = vs.root().var_copy("b", &t["b0"]);
    let mut opt = Optimizer::new(Optimizer::trainable(&vs), OptimConfig::default());
    for step in 0..steps {
        assert!((sched.lr(step).unwrap() - lrs[step]).abs() <= 1e-15 * lrs[step].abs().max(1.0));
        assert!((sched.beta1(step).unwrap() - betas[step]).abs() <= 1e-15);
        // d/dp sum(p * g) = g: the fixture's gradient, exactly.
        let loss = (&w * t["grads_w"].get(step as i64)).sum(Kind::Float)
            + (&b * t["grads_b"].get(step as i64)).sum(Kind::Float);
        loss.backward();
        opt.step(step, &sched)?;
        opt.zero_grad();
        for (name, p) in [("w", &w), ("b", &b)] {
            let want = t[name].get(step as i64);
            let err = (p - &want).abs().max().double_value(&[]);
            assert!(
                err <= 1e-6,
                "step {step}: {name} differs from torch by {err:e}"
            );
        }
    }
    // Something real happened: the parameters moved.
    assert!((&w - &t["w0"]).abs().max().double_value(&[]) > 1e-3);
    Ok(())
}

/// The fused step against `torch.optim.AdamW(fused=True)` with `clip_grad_norm_(foreach=True)`:
/// 100 OneCycle steps on three parameters, one of them without a gradient for the first 10 steps
/// (skipped: not updated, its count not advanced), and the reported gradient norm
/// (tests/fixtures/optim-fused.safetensors, tests/optim/make_fixtures.py). Both run libtorch's
/// fused kernel: tolerance 1e-6 (float32).
#[test]
fn fused_adamw_matches_torch_fused_over_100_steps() -> Result<()> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/optim-fused.safetensors");
    let fx = read_safetensors(&path)?;
    let t = &fx.tensors;
    let steps: usize = fx.metadata["steps"].parse()?;
    let c_from: usize = fx.metadata["c_from"].parse()?;
    let sched = OneCycleConfig {
        max_lr: fx.metadata["max_lr"].parse()?,
        pct_start: fx.metadata["pct_start"].parse()?,
        ..OneCycleConfig::torch_defaults(1.0)
    }
    .build(steps)?;
    let vs = nn::VarStore::new(Device::Cpu);
    let names = ["b", "c", "w"];
    let vars: Vec<_> = names
        .iter()
        .map(|n| vs.root().var_copy(n, &t[&format!("{n}0")]))
        .collect();
    let mut opt = Optimizer::new(Optimizer::trainable(&vs), OptimConfig::default());
    let mut worst = 0f64;
    for step in 0..steps {
        let mut loss = Tensor::zeros([], (Kind::Float, Device::Cpu));
        for (n, v) in names.iter().zip(&vars) {
            if *n == "c" && step < c_from {
                continue; // no gradient yet
            }
            loss += (v * t[&format!("grads_{n}")].get(step as i64)).sum(Kind::Float);
        }
        loss.backward();
        let info = opt.step(step, &sched)?;
        let want_norm = t["norms"].get(step as i64).double_value(&[]);
        assert!(
            (info.grad_norm_value() - want_norm).abs() <= 1e-6,
            "step {step}: grad norm {} vs torch's {want_norm}",
            info.grad_norm_value()
        );
        opt.zero_grad();
        for (n, v) in names.iter().zip(&vars) {
            let err = (v - t[*n].get(step as i64)).abs().max().double_value(&[]);
            worst = worst.max(err);
            assert!(
                err <= 1e-6,
                "step {step}: {n} differs from torch by {err:e}"
            );
        }
    }
    println!("max |param - torch fused| over {steps} steps: {worst:e}");
    Ok(())
}
