//! `cfkit zeroshot-head`, `convert`, `presets`, `parity` and `doctor`: the models' commands;
//! the work is in cfkit-models and cfkit-counterfactual.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::model::{ConvertArgs, DoctorArgs, ParityArgs, PresetsArgs, ZeroshotHeadArgs};
use crate::out::outln;
use crate::settings::{self, env::Env};
use cfkit_counterfactual::parity::{Difference, ParityCase};
use cfkit_models as models;

pub(crate) fn zeroshot_head(a: ZeroshotHeadArgs, env: &Env) -> Result<()> {
    let config = models::resolve_config(&a.model)?;
    let classes = models::load_class_names(&a.classes)?;
    let templates = match &a.templates {
        Some(path) => models::templates::load_templates(path)?,
        None => models::templates::openai_imagenet_templates(),
    };
    let vocab = settings::vocab(a.vocab.clone(), env)?;
    let spec = models::ZeroShotSpec {
        config,
        weights: a.weights,
        classes,
        prompt_names: a
            .names
            .as_deref()
            .map(models::load_prompt_names)
            .transpose()?,
        templates,
        vocab,
        device: a.device.resolve()?,
        batch_size: a.batch_size,
    };
    let info = models::build_zeroshot_head(&spec, &a.out)
        .with_context(|| format!("building the zero-shot head into '{}'", a.out.display()))?;
    outln!(
        "wrote {} ({} classes x {} templates, logit scale {:.4}, hash {})",
        a.out.display(),
        info.classes.len(),
        info.templates.len(),
        info.logit_scale.unwrap_or(f64::NAN),
        info.hash
    )?;
    Ok(())
}

pub(crate) fn convert(a: ConvertArgs) -> Result<()> {
    let config = models::resolve_config(&a.model)?;
    let r = cfkit_trainer::convert::convert(
        &a.model,
        &config.vision_config,
        &a.weights,
        a.head.as_deref(),
        &a.out,
    )
    .with_context(|| format!("converting '{}'", a.weights.display()))?;
    outln!(
        "wrote {} ({} vision tensors, Hugging Face names{}; source blake3 {})",
        r.out.display(),
        r.tensors,
        if r.checkpoint {
            ", with head: a complete checkpoint"
        } else {
            ""
        },
        &r.source_blake3[..16]
    )?;
    Ok(())
}

/// `cfkit parity`: every case of the fixture directory on the chosen device; fails naming the
/// quantities over the tolerance.
pub(crate) fn parity(a: ParityArgs) -> Result<()> {
    let device = a.device.resolve()?;
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&a.fixtures)
        .with_context(|| format!("reading the fixture directory '{}'", a.fixtures.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("config.json").is_file())
        .collect();
    cases.sort();
    if cases.is_empty() {
        anyhow::bail!(
            "'{}' holds no fixture case (<case>/config.json)",
            a.fixtures.display()
        );
    }
    let mut diffs = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap_or_default().to_string_lossy();
        for flavour in ["hf", "open_clip"] {
            if !case.join(format!("{flavour}.safetensors")).is_file() {
                continue;
            }
            let kind = a.dtype.kind();
            let load = |towers| ParityCase::load_as(case, flavour, towers, device, kind);
            let c = load(models::Towers::Both)
                .or_else(|_| load(models::Towers::Vision))
                .with_context(|| format!("loading the {flavour} case of '{}'", case.display()))?;
            diffs.extend(c.run(&format!("{name} {flavour}"))?);
        }
    }
    let bf16 = a.dtype == crate::cli::model::DtypeArg::Bf16;
    // fp32: absolute; bf16: relative to the quantity's largest magnitude.
    let err = |d: &Difference| {
        if bf16 {
            d.max_abs / d.scale.max(f64::MIN_POSITIVE)
        } else {
            d.max_abs
        }
    };
    let tol = if bf16 { a.rel_tol } else { a.tol };
    let worst = diffs.iter().map(err).fold(0.0, f64::max);
    let failed: Vec<&Difference> = diffs
        .iter()
        .filter(|d| err(d).is_nan() || err(d) > tol)
        .collect();
    let measure = if bf16 {
        "max-abs / max |expected|"
    } else {
        "max-abs"
    };
    if a.json {
        let j = ParityReport {
            device: format!("{device:?}"),
            dtype: a.dtype.name(),
            measure,
            tol,
            worst,
            passed: failed.is_empty(),
            differences: &diffs,
        };
        outln!("{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        for d in &diffs {
            outln!("{:<48} {:.2e}", d.what, err(d))?;
        }
        outln!(
            "worst {measure} {worst:.2e} (tolerance {tol:.0e}, {}) on {device:?}",
            a.dtype.name()
        )?;
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} quantities over {tol:e} ({measure}, {}): {}",
            failed.len(),
            diffs.len(),
            a.dtype.name(),
            failed
                .iter()
                .map(|d| d.what.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

pub(crate) fn presets(a: PresetsArgs) -> Result<()> {
    let all: Vec<(String, models::ClipConfig)> = models::PRESETS
        .iter()
        .map(|n| Ok((n.to_string(), models::preset(n)?)))
        .collect::<Result<_>>()?;
    if a.json {
        let map: std::collections::BTreeMap<&str, &models::ClipConfig> =
            all.iter().map(|(n, c)| (n.as_str(), c)).collect();
        outln!("{}", serde_json::to_string_pretty(&map)?)?;
        return Ok(());
    }
    outln!(
        "{:<10} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5} {:>6}",
        "preset",
        "image",
        "patch",
        "grid",
        "width",
        "layers",
        "heads",
        "embed"
    )?;
    for (n, c) in all {
        let v = c.vision_config;
        outln!(
            "{:<10} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5} {:>6}",
            n,
            v.image_size,
            v.patch_size,
            format!("{0}x{0}", v.grid_size()),
            v.hidden_size,
            v.num_hidden_layers,
            v.num_attention_heads,
            v.projection_dim
        )?;
    }
    Ok(())
}

pub(crate) fn doctor(a: DoctorArgs, env: &Env) -> Result<()> {
    if a.batch <= 0 {
        anyhow::bail!("--batch must be > 0, got {}", a.batch);
    }
    if a.reps == 0 {
        anyhow::bail!("--reps must be > 0, got 0");
    }
    let device = a.device.resolve()?;
    let r = cfkit_counterfactual::doctor::run_doctor(device, &a.preset, a.batch, a.reps)?;
    // What data-parallel training can use in this build.
    let (gloo, nccl) = (
        cfkit_trainer::run::gloo_available(),
        cfkit_trainer::run::nccl_available(),
    );
    if a.json {
        let out = DoctorOutput {
            report: &r,
            distributed: DistLayers { gloo, nccl },
            environment: env
                .set_vars()
                .into_iter()
                .map(|(v, value)| (v.name, value))
                .collect(),
        };
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        let yes = |b: bool| if b { "yes" } else { "no" };
        outln!("data-parallel:    Gloo {}, NCCL {}", yes(gloo), yes(nccl))?;
        for (v, value) in env.set_vars() {
            outln!("environment:      {}={value} ({})", v.name, v.meaning)?;
        }
        outln!(
            "CUDA available:   {} ({} device(s), cuDNN {})",
            r.cuda_available,
            r.cuda_devices,
            r.cudnn_available
        )?;
        outln!("torch threads:    {}", r.torch_threads)?;
        outln!("device:           {}", r.device)?;
        outln!(
            "{} train step:  {:.1} images/s (batch {}, mean of {} warm steps)",
            r.preset,
            r.train_step_images_per_s,
            r.batch,
            r.reps
        )?;
        outln!(
            "{} MMCAM:       {:.1} images/s",
            r.preset,
            r.mmcam_images_per_s
        )?;
        outln!(
            "CAM check:        {}",
            if r.cam_ok { "ok" } else { "FAILED" }
        )?;
    }
    if !r.cam_ok {
        anyhow::bail!("the CAM check failed on {}", r.device);
    }
    Ok(())
}

/// `parity --json`.
#[derive(Serialize)]
struct ParityReport<'a> {
    device: String,
    dtype: &'static str,
    measure: &'static str,
    tol: f64,
    worst: f64,
    passed: bool,
    differences: &'a [Difference],
}

/// `doctor --json`: the checks, and what data-parallel training can use in this build.
#[derive(Serialize)]
struct DoctorOutput<'a> {
    #[serde(flatten)]
    report: &'a cfkit_counterfactual::doctor::DoctorReport,
    distributed: DistLayers,
    /// cfkit's run-time environment variables that are set (README: "Environment variables").
    environment: std::collections::BTreeMap<&'static str, &'a str>,
}

#[derive(Serialize)]
struct DistLayers {
    gloo: bool,
    nccl: bool,
}
