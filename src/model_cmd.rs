//! `cfkit zeroshot-head`, `presets` and `doctor`: argument parsing and printing; the work is in
//! cfkit-models.

use crate::out::outln;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use cfkit_models as models;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Vision preset to run.
    #[arg(long, default_value = "tiny")]
    preset: String,
    /// Images in the test batch.
    #[arg(long, default_value_t = 16)]
    batch: i64,
    /// Timed repetitions of each measured call, after one untimed warm-up.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ZeroshotHeadArgs {
    /// Model preset (tiny, vit-b-32, vit-b-16, vit-l-14) or a config.json with `text_config`.
    #[arg(long)]
    model: String,
    /// CLIP weights (safetensors) with Hugging Face or open_clip/OpenAI tensor names.
    #[arg(long)]
    weights: PathBuf,
    /// Class names, one per line, in label order (unique: what evaluation sets match, e.g.
    /// assets/imagenet/wnids.txt).
    #[arg(long)]
    classes: PathBuf,
    /// Names put into the prompts, one per line in the order of --classes (repeats allowed:
    /// CLIP's ImageNet names, assets/imagenet/classnames.txt, have two) [default: --classes].
    #[arg(long)]
    names: Option<PathBuf>,
    /// Prompt templates, one per line with `{}` for the class name [default: the 80 OpenAI
    /// ImageNet templates].
    #[arg(long)]
    templates: Option<PathBuf>,
    /// BPE merges: OpenAI's bpe_simple_vocab_16e6.txt.gz or a Hugging Face merges.txt
    /// [default: $CFKIT_BPE_VOCAB, else open_clip's copy in the project venv].
    #[arg(long)]
    vocab: Option<PathBuf>,
    /// Output file (safetensors).
    #[arg(long)]
    out: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Texts encoded per forward pass.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Model preset (tiny, vit-b-32, vit-b-16, vit-l-14) or a config.json with `vision_config`.
    #[arg(long)]
    model: String,
    /// CLIP weights: safetensors (Hugging Face or open_clip/OpenAI names) or a TorchScript
    /// archive such as OpenAI's ViT-B-32.pt (read by libtorch; no pickled code runs).
    #[arg(long)]
    weights: PathBuf,
    /// A head file (`cfkit zeroshot-head`): then --out is a complete checkpoint (the zero-shot
    /// model for eval, wise-ft and train); without it, only model.safetensors + config.json.
    #[arg(long)]
    head: Option<PathBuf>,
    /// Output directory (must not exist or be empty).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ParityArgs {
    /// Fixture directory: `<case>/config.json`, `<case>/{hf,open_clip}.safetensors` and their
    /// `expected_*.safetensors` (tests/fixtures/parity, or what tests/parity/make_fixtures.py
    /// writes).
    #[arg(long, default_value = "tests/fixtures/parity")]
    fixtures: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Weights and inputs in fp32, or cast to bf16 (outputs compared in f32).
    #[arg(long, default_value = "fp32", value_parser = ["fp32", "bf16"])]
    dtype: String,
    /// fp32: largest max-abs difference that passes.
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    /// bf16: largest max-abs difference that passes, as a fraction of the quantity's largest
    /// magnitude (bf16 keeps 8 significant bits, 2^-8 = 0.4 % per rounding; through the layers
    /// errors add up: 4 % on the tiny fixture's CAMs on CPU, hence 10 %).
    #[arg(long, default_value_t = 0.1)]
    rel_tol: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn zeroshot_head(a: ZeroshotHeadArgs) -> Result<()> {
    let config = models::resolve_config(&a.model)?;
    let classes = models::load_class_names(&a.classes)?;
    let templates = match &a.templates {
        Some(path) => models::templates::load_templates(path)?,
        None => models::templates::openai_imagenet_templates(),
    };
    let vocab = match a.vocab {
        Some(v) => v,
        None => models::Tokenizer::discover()?,
    };
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
        device: models::parse_device(&a.device)?,
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

pub fn convert(a: ConvertArgs) -> Result<()> {
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
pub fn parity(a: ParityArgs) -> Result<()> {
    let device = models::parse_device(&a.device)?;
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
            let kind = if a.dtype == "bf16" {
                tch::Kind::BFloat16
            } else {
                tch::Kind::Float
            };
            let load =
                |towers| models::parity::ParityCase::load_as(case, flavour, towers, device, kind);
            let c = load(models::Towers::Both)
                .or_else(|_| load(models::Towers::Vision))
                .with_context(|| format!("loading the {flavour} case of '{}'", case.display()))?;
            diffs.extend(c.run(&format!("{name} {flavour}"))?);
        }
    }
    let bf16 = a.dtype == "bf16";
    // fp32: absolute; bf16: relative to the quantity's largest magnitude.
    let err = |d: &models::parity::Difference| {
        if bf16 {
            d.max_abs / d.scale.max(f64::MIN_POSITIVE)
        } else {
            d.max_abs
        }
    };
    let tol = if bf16 { a.rel_tol } else { a.tol };
    let worst = diffs.iter().map(err).fold(0.0, f64::max);
    let failed: Vec<&models::parity::Difference> = diffs
        .iter()
        .filter(|d| err(d).is_nan() || err(d) > tol)
        .collect();
    let measure = if bf16 {
        "max-abs / max |expected|"
    } else {
        "max-abs"
    };
    if a.json {
        let j = serde_json::json!({"device": format!("{device:?}"), "dtype": a.dtype,
            "measure": measure, "tol": tol, "worst": worst, "passed": failed.is_empty(),
            "differences": diffs});
        outln!("{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        for d in &diffs {
            outln!("{:<48} {:.2e}", d.what, err(d))?;
        }
        outln!(
            "worst {measure} {worst:.2e} (tolerance {tol:.0e}, {}) on {device:?}",
            a.dtype
        )?;
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} quantities over {tol:e} ({measure}, {}): {}",
            failed.len(),
            diffs.len(),
            a.dtype,
            failed
                .iter()
                .map(|d| d.what.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

pub fn presets(a: PresetsArgs) -> Result<()> {
    let all: Vec<(String, models::ClipConfig)> = models::PRESETS
        .iter()
        .map(|n| Ok((n.to_string(), models::preset(n)?)))
        .collect::<Result<_>>()?;
    if a.json {
        let map: serde_json::Map<String, serde_json::Value> = all
            .into_iter()
            .map(|(n, c)| (n, serde_json::to_value(c).expect("config serialises")))
            .collect();
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

pub fn doctor(a: DoctorArgs) -> Result<()> {
    if a.batch <= 0 {
        anyhow::bail!("--batch must be > 0, got {}", a.batch);
    }
    if a.reps == 0 {
        anyhow::bail!("--reps must be > 0, got 0");
    }
    let device = models::parse_device(&a.device)?;
    let r = models::doctor::run_doctor(device, &a.preset, a.batch, a.reps)?;
    // What data-parallel training can use in this build.
    let (gloo, nccl) = (
        cfkit_trainer::run::gloo_available(),
        cfkit_trainer::run::nccl_available(),
    );
    if a.json {
        let mut v = serde_json::to_value(&r)?;
        v["distributed"] = serde_json::json!({"gloo": gloo, "nccl": nccl});
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        let yes = |b: bool| if b { "yes" } else { "no" };
        outln!("data-parallel:    Gloo {}, NCCL {}", yes(gloo), yes(nccl))?;
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
