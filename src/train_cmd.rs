//! `cfkit train` and `cfkit eval`: argument parsing and printing; the work is in cfkit-trainer.

use crate::out::outln;
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
    /// Time the phases of every step (loader wait, forward and loss, CAM, teacher, backward,
    /// optimizer) and write profile.json into the run directory.
    #[arg(long)]
    profile: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Print the resolved config and its hash (as run.json records them) as JSON, and exit
    /// without training.
    #[arg(long)]
    print_config: bool,
    /// Data-parallel runs (WORLD_SIZE > 1, as torchrun or srun set it): the longest wait, in
    /// seconds, for the other ranks at start and at every collective; a rank that died or hangs
    /// ends the job after it.
    #[arg(long, default_value_t = 1800.0, value_name = "SECONDS")]
    dist_timeout: f64,
}

pub fn train(a: TrainArgs) -> Result<()> {
    let cfg = trainer::TrainConfig::load_with(&a.config, &a.set)?;
    if a.print_config {
        let v = serde_json::json!({"config_hash": cfg.hash(), "config": cfg.to_json()});
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let out = a
        .out
        .or_else(|| cfg.output.out.clone())
        .context("no run directory: pass --out or set output.out in the config")?;
    if !(a.dist_timeout.is_finite() && a.dist_timeout > 0.0) {
        anyhow::bail!("--dist-timeout must be a positive number of seconds");
    }
    let dist =
        trainer::run::DistConfig::from_env(std::time::Duration::from_secs_f64(a.dist_timeout))?;
    let opts = trainer::TrainOptions {
        out: out.clone(),
        resume: a.resume,
        quiet: a.quiet,
        profile: a.profile,
        dist: dist.clone(),
    };
    let report = trainer::train(&cfg, &opts)?;
    if let Some(d) = dist.filter(|d| d.rank != 0) {
        outln!(
            "rank {} of {}: {} steps done; rank 0 wrote the run to {}",
            d.rank,
            d.world,
            report.steps,
            out.display()
        )?;
        return Ok(());
    }
    if a.json {
        outln!("{}", serde_json::to_string(&report)?)?;
        return Ok(());
    }
    outln!(
        "{}: {} steps, {} epochs, {:.1} s",
        report.method,
        report.steps,
        report.epochs,
        report.train_seconds
    )?;
    if let Some(b) = report.best {
        outln!(
            "best validation top-1 {:.2}% at step {}",
            100.0 * b.top1,
            b.step
        )?;
    }
    print!("{}", trainer::eval::markdown_table(&report.eval));
    print!("{}", trainer::eval::background_table(&report.eval));
    outln!("wrote {}", out.display())?;
    Ok(())
}

/// Where and how `eval` and `wise-ft` score a model.
#[derive(Debug, Args)]
struct ScoringArgs {
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

impl ScoringArgs {
    fn device(&self) -> Result<tch::Device> {
        if self.batch_size == 0 {
            anyhow::bail!("--batch-size must be > 0");
        }
        Ok(cfkit_models::parse_device(&self.device)?)
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("data").required(true).args(["shards", "image_folder", "suite"])))]
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
    #[command(flatten)]
    suite: crate::suite_cmd::SuiteArgs,
    #[command(flatten)]
    scoring: ScoringArgs,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let device = a.scoring.device()?;
    if a.suite.suite.is_some() {
        let (_, json) = crate::suite_cmd::run(
            &a.suite,
            &a.checkpoint,
            None,
            a.scoring.batch_size,
            device,
            a.scoring.json,
        )?;
        if a.scoring.json {
            outln!("{}", serde_json::to_string(&json)?)?;
        } else {
            print!("{}", json["table"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    let (student, _) = trainer::checkpoint::load_student(&a.checkpoint, device)?;
    let mut _scratch = None;
    let (dir, splits) = match (&a.shards, &a.image_folder) {
        (Some(dir), _) if a.split.is_empty() => (dir.clone(), trainer::eval::default_splits(dir)?),
        (Some(dir), _) => (dir.clone(), a.split.clone()),
        (None, Some(folder)) => {
            let size = student.config().image_size as u32;
            let s = pipeline::prepare::image_folder_to_scratch(folder, a.classes.as_deref(), size)?;
            if s.report.quarantined > 0 {
                eprintln!(
                    "note: {} of {} images could not be used and are not counted",
                    s.report.quarantined, s.report.inputs
                );
            }
            let found = (s.dir.clone(), vec![s.split.clone()]);
            _scratch = Some(s);
            found
        }
        (None, None) => unreachable!("clap requires a data source"),
    };
    let protocol = trainer::eval::SplitProtocol {
        ood: a.ood.clone(),
        restrict: a.restrict,
        label_map: a.label_map.clone(),
    };
    let sets = trainer::eval::split_sets(&dir, &splits, &protocol);
    let report = trainer::eval::evaluate_sets(&student, &sets, a.scoring.batch_size, device)?;
    if a.scoring.json {
        outln!("{}", serde_json::to_string(&report)?)?;
    } else {
        print!("{}", trainer::eval::markdown_table(&report));
        print!("{}", trainer::eval::background_table(&report));
    }
    Ok(())
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
    /// Score every α on an evaluation suite instead of the config's sets (`--suite imagenet
    /// --root DIR`, as in `cfkit eval`); each α directory gets its suite-<name>.{md,json}.
    #[command(flatten)]
    suite: crate::suite_cmd::SuiteArgs,
    #[command(flatten)]
    scoring: ScoringArgs,
}

pub fn wise_ft(a: WiseFtArgs) -> Result<()> {
    let device = a.scoring.device()?;
    let alphas = trainer::wise_ft::parse_alphas(&a.alpha)?;
    let on_suite = a.suite.suite.is_some();
    let sets = if on_suite {
        Vec::new()
    } else {
        trainer::wise_ft::eval_sets_for(&a.finetuned, a.config.as_deref())?
    };
    let mut report = trainer::wise_ft::wise_ft(
        &a.zeroshot,
        &a.finetuned,
        &alphas,
        &a.out,
        &sets,
        a.scoring.batch_size,
        device,
    )?;
    if on_suite {
        for p in &mut report.points {
            let dir = p.checkpoint.clone();
            let (eval, _) = crate::suite_cmd::run(
                &a.suite,
                &dir,
                Some(&dir),
                a.scoring.batch_size,
                device,
                true,
            )?;
            p.eval = eval;
        }
        trainer::wise_ft::write_report(&a.out, &report)?;
    }
    if a.scoring.json {
        outln!("{}", serde_json::to_string(&report)?)?;
        return Ok(());
    }
    print!("{}", trainer::wise_ft::markdown(&report));
    outln!("wrote {}", a.out.display())?;
    Ok(())
}
