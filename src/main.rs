//! `cfkit`: the command-line entry point. Parses arguments, resolves configs and calls the library
//! crates; all work lives there.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use cfkit_models as models;
use cfkit_pipeline as pipeline;

mod train_cmd;

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
    /// List the model presets and their shapes.
    Presets(PresetsArgs),
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

#[derive(Debug, Args)]
struct DoctorArgs {
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Vision preset to run.
    #[arg(long, default_value = "tiny")]
    preset: String,
    /// Images in the test batch.
    #[arg(long, default_value_t = 16)]
    batch: i64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ZeroshotHeadArgs {
    /// Model preset (tiny, vit-b-32, vit-b-16, vit-l-14) or a config.json with `text_config`.
    #[arg(long)]
    model: String,
    /// CLIP weights (safetensors) with Hugging Face or open_clip/OpenAI tensor names.
    #[arg(long)]
    weights: PathBuf,
    /// Class names, one per line, in label order.
    #[arg(long)]
    classes: PathBuf,
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
struct ShardArgs {
    /// Rows per shard file.
    #[arg(long, default_value_t = 10_000)]
    rows_per_shard: usize,
    /// Uncompressed bytes per Parquet row group.
    #[arg(long, default_value_t = 100 * 1024 * 1024)]
    row_group_bytes: usize,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

impl ShardArgs {
    fn options(&self) -> Result<pipeline::prepare::OutputOptions> {
        if self.rows_per_shard == 0 || self.row_group_bytes == 0 {
            anyhow::bail!("--rows-per-shard and --row-group-bytes must be > 0");
        }
        Ok(pipeline::prepare::OutputOptions {
            rows_per_shard: self.rows_per_shard,
            row_group_bytes: self.row_group_bytes,
            quiet: self.quiet,
        })
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["image_folder", "manifest"])))]
struct PrepareArgs {
    /// ImageFolder root: one sub-folder per class (sorted names give the label order).
    #[arg(long)]
    image_folder: Option<PathBuf>,
    /// CSV (header `path,label`) or Parquet (`path`, `label` columns) manifest.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Base directory of relative manifest paths [default: the manifest's directory].
    #[arg(long)]
    root: Option<PathBuf>,
    /// Class-list file (one name per line) fixing class names and label order.
    #[arg(long)]
    classes: Option<PathBuf>,
    /// Split name used in the shard file names.
    #[arg(long, default_value = "train")]
    split: String,
    /// Output directory (data/ + manifest.json).
    #[arg(long)]
    out: PathBuf,
    /// Side of the stored images (resize shorter side + center crop).
    #[arg(long, default_value_t = 224)]
    image_size: u32,
    /// Largest accepted source image, in pixels (decompression-bomb limit).
    #[arg(long, default_value_t = pipeline::decode::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    /// Fail when more than this fraction of the inputs is quarantined.
    #[arg(long, default_value_t = 0.05)]
    max_bad_fraction: f64,
    #[command(flatten)]
    shards: ShardArgs,
}

#[derive(Debug, Args)]
struct DemoDataArgs {
    /// Output directory (data/ + manifest.json).
    #[arg(long)]
    out: PathBuf,
    /// Generator seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Comma-separated splits [default: all].
    #[arg(long, value_delimiter = ',')]
    splits: Vec<String>,
    /// Multiplies every split's default size (pretrain 20000, train 10000, others 2000).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Also write each split as a PNG ImageFolder tree: DIR/<split>/<class>/<index>.png, with
    /// DIR/<split>/classes.txt giving the label order.
    #[arg(long)]
    image_folder: Option<PathBuf>,
    /// Fashion-MNIST IDX files (Debian package dataset-fashion-mnist).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    fashion_mnist: PathBuf,
    #[command(flatten)]
    shards: ShardArgs,
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// TOML config (source, teacher, counterfactuals, output); see configs/.
    #[arg(long)]
    config: PathBuf,
    /// Output directory [default: the config's output.out].
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Split the input shards over N workers (shard k goes to worker k mod N); each writes its
    /// own manifest part into --out, `cfkit merge` joins them.
    #[arg(long, default_value_t = 1)]
    num_workers: usize,
    /// This process's worker index, in 0..N.
    #[arg(long, default_value_t = 0)]
    worker_index: usize,
    /// Overlap decode / device / encode stages: auto (on for CUDA, off on CPU where they share
    /// the cores), on, off. The output is the same either way.
    #[arg(long, default_value = "auto")]
    pipeline: String,
}

fn build_counterfactuals(a: BuildArgs) -> Result<()> {
    let cfg = pipeline::build_config::BuildConfig::load(&a.config)?;
    let out = a
        .out
        .or_else(|| cfg.output.out.clone())
        .context("no output directory: pass --out or set output.out in the config")?;
    let opts = pipeline::builder::RunOptions {
        quiet: a.quiet,
        workers: pipeline::builder::Workers::new(a.num_workers, a.worker_index)?,
        pipelining: a.pipeline.parse()?,
    };
    let r = pipeline::builder::build_counterfactuals(&cfg, &out, opts)?;
    println!(
        "{} rows in {} shard(s) written, {} skipped (already complete), {:.1} MB, {:.1} s, {:.1} images/s, device busy {:.0}% ({})",
        r.rows,
        r.shards_written,
        r.shards_skipped,
        r.bytes as f64 / 1e6,
        r.seconds,
        r.images_per_s,
        100.0 * r.device_busy_fraction,
        r.device
    );
    if r.quarantined > 0 {
        println!(
            "{} input rows could not be used and were left out: see {}",
            r.quarantined,
            out.join("quarantine").display()
        );
    }
    for (s, m) in &r.mask_ratio {
        println!(
            "  {s:<26} mask ratio mean {:.3} (min {:.3}, max {:.3}) over {} variants",
            m.mean, m.min, m.max, m.variants
        );
    }
    println!("wrote {}", out.display());
    Ok(())
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// Dataset directory (manifest.json + data/).
    dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn verify(a: VerifyArgs) -> Result<()> {
    let r = cfkit_schemas::verify::verify_dataset(&a.dir)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} shard(s), {} rows checked in {}",
            r.shards,
            r.rows,
            a.dir.display()
        );
        for t in &r.temporary_files {
            println!("note: {t} is a leftover of an interrupted write (a rerun replaces it)");
        }
        for p in &r.problems {
            eprintln!("bad: {}: {}", p.file, p.reason);
        }
    }
    if !r.problems.is_empty() {
        anyhow::bail!("{} problem(s) in {}", r.problems.len(), a.dir.display());
    }
    Ok(())
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// The output directory the workers wrote into.
    dir: PathBuf,
}

fn merge(a: MergeArgs) -> Result<()> {
    let r = pipeline::merge::merge(&a.dir)?;
    println!(
        "merged {} worker manifests: {} shards, {} rows{}; wrote {}",
        r.workers,
        r.shards,
        r.rows,
        if r.coverage_checked {
            ", every source shard covered"
        } else {
            " (source dataset not readable here: coverage not checked)"
        },
        a.dir.join("manifest.json").display()
    );
    Ok(())
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// Counterfactual dataset directory (manifest.json + data/).
    dir: PathBuf,
    #[arg(long, default_value = "train")]
    split: String,
    /// Rows drawn (the first N of the split); statistics cover every row.
    #[arg(long, default_value_t = 16)]
    n: usize,
    /// Contact sheet (PNG).
    #[arg(long)]
    out: PathBuf,
    /// Print the statistics and legend as JSON.
    #[arg(long)]
    json: bool,
}

fn inspect(a: InspectArgs) -> Result<()> {
    if a.n == 0 {
        anyhow::bail!("--n must be >= 1");
    }
    let r = pipeline::inspect::inspect(&a.dir, &a.split, a.n, &a.out)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "{} rows in split '{}'; drew {} into {}",
        r.rows,
        r.split,
        r.shown,
        a.out.display()
    );
    println!("columns: original | CAM (blue low, red high) | mask of the first variant (white) | variants");
    for l in &r.legend {
        println!("  {l}");
    }
    for (name, s) in &r.strategies {
        let hist: Vec<String> = s
            .mask_ratio_histogram
            .iter()
            .map(|c| c.to_string())
            .collect();
        println!(
            "{name}: {} variants, mask ratio mean {:.3}, histogram (0.1 bins) [{}], self-donors {}",
            s.variants,
            s.mask_ratio_mean,
            hist.join(" "),
            s.self_donors
        );
        let donors: Vec<String> = s
            .donor_classes
            .iter()
            .map(|(c, k)| format!("{c}: {k}"))
            .collect();
        if !donors.is_empty() {
            println!("  donor classes: {}", donors.join(", "));
        }
    }
    Ok(())
}

fn print_reports(reports: &[pipeline::prepare::SplitReport]) {
    println!(
        "{:<14} {:>7} {:>7} {:>6} {:>10} {:>11} {:>10} {:>9}",
        "split", "inputs", "rows", "shards", "MB", "quarantine", "dup.groups", "images/s"
    );
    for r in reports {
        println!(
            "{:<14} {:>7} {:>7} {:>6} {:>10.1} {:>11} {:>10} {:>9.0}",
            r.split,
            r.inputs,
            r.rows,
            r.shards,
            r.bytes as f64 / 1e6,
            r.quarantined,
            r.duplicate_groups.len(),
            r.images_per_s
        );
    }
}

fn prepare(a: PrepareArgs) -> Result<()> {
    let listing = match (&a.image_folder, &a.manifest) {
        (Some(dir), _) => pipeline::sources::list_image_folder(dir, a.classes.as_deref())?,
        (None, Some(m)) => {
            pipeline::sources::list_manifest(m, a.root.as_deref(), a.classes.as_deref())?
        }
        (None, None) => unreachable!("clap requires a source"),
    };
    if !(0.0..=1.0).contains(&a.max_bad_fraction) {
        anyhow::bail!(
            "--max-bad-fraction must lie in [0, 1], got {}",
            a.max_bad_fraction
        );
    }
    if a.image_size == 0 {
        anyhow::bail!("--image-size must be > 0");
    }
    let opts = pipeline::prepare::PrepareOptions {
        split: a.split.clone(),
        image_size: a.image_size,
        max_pixels: a.max_pixels,
        max_bad_fraction: a.max_bad_fraction,
        output: a.shards.options()?,
    };
    let report = pipeline::prepare::prepare(listing, &a.out, &opts)?;
    print_reports(std::slice::from_ref(&report));
    if report.quarantined > 0 {
        println!(
            "quarantined inputs are listed in {}",
            a.out
                .join(format!("quarantine-{}.jsonl", a.split))
                .display()
        );
    }
    for g in &report.duplicate_groups {
        println!("duplicate images (same bytes): {}", g.join(", "));
    }
    Ok(())
}

fn demo_data(a: DemoDataArgs) -> Result<()> {
    let opts = pipeline::prepare::DemoOptions {
        fashion_mnist: a.fashion_mnist,
        seed: a.seed,
        splits: a.splits,
        scale: a.scale,
        image_folder: a.image_folder,
        output: a.shards.options()?,
    };
    let reports = pipeline::prepare::demo_data(&a.out, &opts)?;
    print_reports(&reports);
    println!("wrote {}", a.out.display());
    Ok(())
}

#[derive(Debug, Args)]
struct PresetsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn zeroshot_head(a: ZeroshotHeadArgs) -> Result<()> {
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
        templates,
        vocab,
        device: models::parse_device(&a.device)?,
        batch_size: a.batch_size,
    };
    let info = models::build_zeroshot_head(&spec, &a.out)
        .with_context(|| format!("building the zero-shot head into '{}'", a.out.display()))?;
    println!(
        "wrote {} ({} classes x {} templates, logit scale {:.4}, hash {})",
        a.out.display(),
        info.classes.len(),
        info.templates.len(),
        info.logit_scale.unwrap_or(f64::NAN),
        info.hash
    );
    Ok(())
}

fn presets(a: PresetsArgs) -> Result<()> {
    let all: Vec<(String, models::ClipConfig)> = models::PRESETS
        .iter()
        .map(|n| Ok((n.to_string(), models::preset(n)?)))
        .collect::<Result<_>>()?;
    if a.json {
        let map: serde_json::Map<String, serde_json::Value> = all
            .into_iter()
            .map(|(n, c)| (n, serde_json::to_value(c).expect("config serialises")))
            .collect();
        println!("{}", serde_json::to_string_pretty(&map)?);
        return Ok(());
    }
    println!(
        "{:<10} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5} {:>6}",
        "preset", "image", "patch", "grid", "width", "layers", "heads", "embed"
    );
    for (n, c) in all {
        let v = c.vision_config;
        println!(
            "{:<10} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5} {:>6}",
            n,
            v.image_size,
            v.patch_size,
            format!("{0}x{0}", v.grid_size()),
            v.hidden_size,
            v.num_hidden_layers,
            v.num_attention_heads,
            v.projection_dim
        );
    }
    Ok(())
}

fn doctor(a: DoctorArgs) -> Result<()> {
    if a.batch <= 0 {
        anyhow::bail!("--batch must be > 0, got {}", a.batch);
    }
    let device = models::parse_device(&a.device)?;
    let r = models::doctor::run_doctor(device, &a.preset, a.batch)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "CUDA available:   {} ({} device(s), cuDNN {})",
            r.cuda_available, r.cuda_devices, r.cudnn_available
        );
        println!("torch threads:    {}", r.torch_threads);
        println!("device:           {}", r.device);
        println!(
            "{} train step:  {:.1} images/s (batch {})",
            r.preset, r.train_step_images_per_s, r.batch
        );
        println!(
            "{} MMCAM:       {:.1} images/s",
            r.preset, r.mmcam_images_per_s
        );
        println!(
            "CAM check:        {}",
            if r.cam_ok { "ok" } else { "FAILED" }
        );
    }
    if !r.cam_ok {
        anyhow::bail!("the CAM check failed on {}", r.device);
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::ZeroshotHead(a) => zeroshot_head(a),
        Command::Presets(a) => presets(a),
        Command::Doctor(a) => doctor(a),
        Command::Prepare(a) => prepare(a),
        Command::DemoData(a) => demo_data(a),
        Command::BuildCounterfactuals(a) => build_counterfactuals(a),
        Command::Verify(a) => verify(a),
        Command::Inspect(a) => inspect(a),
        Command::Merge(a) => merge(a),
        Command::Train(a) => train_cmd::train(a),
        Command::WiseFt(a) => train_cmd::wise_ft(a),
        Command::Eval(a) => train_cmd::eval(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
