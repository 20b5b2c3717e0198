//! `cfkit train` and `cfkit eval`: argument parsing and printing; the work is in cfkit-trainer.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use cfkit_pipeline as pipeline;
use cfkit_trainer as trainer;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// TOML config ([model], [data], [train], [optim], [schedule], [eval]); see configs/.
    #[arg(long)]
    config: PathBuf,
    /// Run directory [default: the config's output.out].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Override a config key, e.g. `--set distill.weight=10 --set train.seed=1` (repeatable;
    /// recorded in run.json like the rest of the config).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// No progress bar or per-epoch lines.
    #[arg(long, short)]
    quiet: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Print the resolved config and its hash (as run.json records them) as JSON, and exit
    /// without training.
    #[arg(long)]
    print_config: bool,
}

pub fn train(a: TrainArgs) -> Result<()> {
    let cfg = trainer::TrainConfig::load_with(&a.config, &a.set)?;
    if a.print_config {
        let v = serde_json::json!({"config_hash": cfg.hash(), "config": cfg.to_json()});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let out = a
        .out
        .or_else(|| cfg.output.out.clone())
        .context("no run directory: pass --out or set output.out in the config")?;
    let opts = trainer::TrainOptions {
        out: out.clone(),
        resume: a.resume,
        quiet: a.quiet,
    };
    let report = trainer::train(&cfg, &opts)?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "{}: {} steps, {} epochs, {:.1} s",
        report.method, report.steps, report.epochs, report.train_seconds
    );
    if let Some(b) = report.best {
        println!(
            "best validation top-1 {:.2}% at step {}",
            100.0 * b.top1,
            b.step
        );
    }
    print!("{}", trainer::eval::markdown_table(&report.eval));
    println!("wrote {}", out.display());
    Ok(())
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("data").required(true).args(["shards", "image_folder"])))]
pub struct EvalArgs {
    /// Checkpoint directory (model.safetensors, head.safetensors, checkpoint.json).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset directory of image or counterfactual shards.
    #[arg(long)]
    shards: Option<PathBuf>,
    /// Splits of --shards to evaluate, each a named set [default: every split named test* or
    /// ood*, else every split].
    #[arg(long, value_delimiter = ',')]
    split: Vec<String>,
    /// ImageFolder root to evaluate (preprocessed into temporary shards first).
    #[arg(long, requires = "classes")]
    image_folder: Option<PathBuf>,
    /// Class-list file of --image-folder (one name per line; they must be model classes).
    #[arg(long)]
    classes: Option<PathBuf>,
    /// Sets that count as OOD [default: names starting with "ood"].
    #[arg(long, value_delimiter = ',')]
    ood: Vec<String>,
    /// Restrict logits to each set's classes before argmax (ImageNet-R/-A protocol).
    #[arg(long)]
    restrict: bool,
    /// JSON {set class: [model classes]}: correct if the argmax is any mapped class (ObjectNet).
    #[arg(long)]
    label_map: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let device = cfkit_models::parse_device(&a.device)?;
    if a.batch_size == 0 {
        anyhow::bail!("--batch-size must be > 0");
    }
    let (student, _) = trainer::checkpoint::load_student(&a.checkpoint, device)?;
    let mut _tmp = None;
    let (dir, splits) = match (&a.shards, &a.image_folder) {
        (Some(dir), _) => {
            let manifest = cfkit_schemas::Manifest::read(dir)?;
            let splits = if a.split.is_empty() {
                let named: Vec<String> = manifest
                    .splits
                    .keys()
                    .filter(|s| s.starts_with("test") || s.starts_with("ood"))
                    .cloned()
                    .collect();
                if named.is_empty() {
                    manifest.splits.keys().cloned().collect()
                } else {
                    named
                }
            } else {
                a.split.clone()
            };
            (dir.clone(), splits)
        }
        (None, Some(folder)) => {
            let name = folder
                .file_name()
                .map(|n| {
                    n.to_string_lossy().replace(
                        |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_' && c != '.',
                        "_",
                    )
                })
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "images".into());
            let tmp = TempDir::new()?;
            let listing = pipeline::sources::list_image_folder(folder, a.classes.as_deref())?;
            let opts = pipeline::prepare::PrepareOptions {
                split: name.clone(),
                image_size: student.config().image_size as u32,
                max_pixels: pipeline::decode::DEFAULT_MAX_PIXELS,
                max_bad_fraction: 1.0,
                output: pipeline::prepare::OutputOptions {
                    rows_per_shard: 10_000,
                    row_group_bytes: 100 * 1024 * 1024,
                    quiet: true,
                },
            };
            let r = pipeline::prepare::prepare(listing, &tmp.0, &opts)?;
            if r.quarantined > 0 {
                eprintln!(
                    "note: {} of {} images could not be used and are not counted",
                    r.quarantined, r.inputs
                );
            }
            let dir = tmp.0.clone();
            _tmp = Some(tmp);
            (dir, vec![name])
        }
        (None, None) => unreachable!("clap requires a data source"),
    };
    let results = splits
        .iter()
        .map(|split| {
            let set = trainer::config::ResolvedEvalSet {
                name: split.clone(),
                shards: dir.clone(),
                split: split.clone(),
                ood: if a.ood.is_empty() {
                    split.starts_with("ood")
                } else {
                    a.ood.contains(split)
                },
                restrict: a.restrict,
                label_map: a.label_map.clone(),
            };
            trainer::eval::evaluate_set(&student, &set, a.batch_size, device)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let report = trainer::eval::EvalReport::new(results);
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", trainer::eval::markdown_table(&report));
    }
    Ok(())
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let base = std::env::temp_dir().join(format!(
            "cfkit-eval-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
        Ok(TempDir(base))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, Args)]
pub struct WiseFtArgs {
    /// The zero-shot checkpoint (e.g. assets/teacher).
    #[arg(long)]
    zeroshot: PathBuf,
    /// The fine-tuned checkpoint (e.g. runs/ft-demo/checkpoints/best).
    #[arg(long)]
    finetuned: PathBuf,
    /// Mixing weights of the fine-tuned model: start:stop:step or a comma list.
    #[arg(long, default_value = "0:1:0.1")]
    alpha: String,
    /// Output directory (one checkpoint per α, wise-ft.json, wise-ft.md).
    #[arg(long)]
    out: PathBuf,
    /// Train config whose [eval] sets to evaluate [default: the config in the run.json of the
    /// fine-tuned run, two directories above --finetuned].
    #[arg(long)]
    config: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The evaluation sets of a WiSE-FT sweep: from --config, else from the fine-tuned run's record.
fn wise_ft_sets(a: &WiseFtArgs) -> Result<Vec<trainer::config::ResolvedEvalSet>> {
    if let Some(path) = &a.config {
        return Ok(trainer::TrainConfig::load(path)?.eval_sets());
    }
    let run = a
        .finetuned
        .parent()
        .and_then(|p| p.parent())
        .map(|d| d.join("run.json"))
        .filter(|p| p.is_file())
        .with_context(|| {
            format!(
                "no --config and no run.json two directories above '{}' to take the evaluation sets from",
                a.finetuned.display()
            )
        })?;
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&run).with_context(|| format!("reading '{}'", run.display()))?,
    )
    .with_context(|| format!("'{}' is not JSON", run.display()))?;
    let cfg: trainer::TrainConfig = serde_json::from_value(record["config"].clone())
        .with_context(|| format!("'{}': field 'config' is not a train config", run.display()))?;
    Ok(cfg.eval_sets())
}

pub fn wise_ft(a: WiseFtArgs) -> Result<()> {
    let device = cfkit_models::parse_device(&a.device)?;
    if a.batch_size == 0 {
        anyhow::bail!("--batch-size must be > 0");
    }
    let alphas = trainer::wise_ft::parse_alphas(&a.alpha)?;
    let sets = wise_ft_sets(&a)?;
    let report = trainer::wise_ft::wise_ft(
        &a.zeroshot,
        &a.finetuned,
        &alphas,
        &a.out,
        &sets,
        a.batch_size,
        device,
    )?;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    print!("{}", trainer::wise_ft::markdown(&report));
    println!("wrote {}", a.out.display());
    Ok(())
}
