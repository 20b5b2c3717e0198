//! `cfkit train`, `eval` and `wise-ft`: training runs and their evaluation; the work is in
//! cfkit-trainer (and, for ImageFolder and suite sets, cfkit-pipeline's preprocessing).

use anyhow::Result;
use serde::Serialize;

use super::suite;
use crate::cli::train::{EvalArgs, TrainArgs, WiseFtArgs};
use crate::out::outln;
use crate::settings::{self, env::Env};
use cfkit_pipeline as pipeline;
use cfkit_trainer as trainer;

/// `train --print-config`: the resolved config and the identity hash `run.json` records.
#[derive(Serialize)]
struct PrintedConfig<'a> {
    config_hash: String,
    config: &'a trainer::TrainConfig,
}

pub(crate) fn train(a: TrainArgs, env: &Env) -> Result<()> {
    let mut cfg = trainer::TrainConfig::load_with(&a.config, &a.set)?;
    // `auto` precision as this machine resolves it (bf16 on CUDA, fp32 elsewhere), so that
    // run.json, the config hash and --print-config say what the run computes in.
    let device = cfg.train.device.resolve()?;
    cfg.train.precision = cfg.train.precision.resolve(device);
    if a.print_config {
        let printed = PrintedConfig {
            config_hash: cfg.hash(),
            config: &cfg,
        };
        outln!("{}", serde_json::to_string_pretty(&printed)?)?;
        return Ok(());
    }
    let opts = settings::train_options(&a, &cfg, env)?;
    let (out, dist) = (opts.out.clone(), opts.dist.clone());
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

pub(crate) fn eval(a: EvalArgs) -> Result<()> {
    let device = settings::scoring_device(&a.scoring)?;
    if a.suite.suite.is_some() {
        let report = suite::run(
            &a.suite,
            &a.checkpoint,
            None,
            a.scoring.batch_size,
            device,
            a.scoring.json,
        )?;
        if a.scoring.json {
            outln!("{}", serde_json::to_string(&report)?)?;
        } else {
            print!("{}", report.table);
        }
        return Ok(());
    }
    let (student, _) = trainer::checkpoint::load_student(&a.checkpoint, device)?;
    let mut _scratch = None;
    let (dir, splits) = match (&a.shards, &a.image_folder) {
        (Some(dir), _) if a.split.is_empty() => (dir.clone(), trainer::eval::default_splits(dir)?),
        (Some(dir), _) => (dir.clone(), a.split.clone()),
        (None, Some(folder)) => {
            let (size, resize) = (
                student.config().image_size as u32,
                student.config().image_resize,
            );
            let s = pipeline::prepare::image_folder_to_scratch(
                folder,
                a.classes.as_deref(),
                size,
                resize,
            )?;
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
        apart: a.apart.clone(),
        restrict: a.restrict,
        label_map: a.label_map.clone(),
    };
    let sets = trainer::eval::split_sets(&dir, &splits, &protocol);
    let report =
        trainer::eval::Evaluator::new(&student, a.scoring.batch_size, device).sets(&sets)?;
    if a.scoring.json {
        outln!("{}", serde_json::to_string(&report)?)?;
    } else {
        print!("{}", trainer::eval::markdown_table(&report));
        print!("{}", trainer::eval::background_table(&report));
    }
    Ok(())
}

pub(crate) fn wise_ft(a: WiseFtArgs) -> Result<()> {
    let device = settings::scoring_device(&a.scoring)?;
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
            let scored = suite::run(
                &a.suite,
                &dir,
                Some(&dir),
                a.scoring.batch_size,
                device,
                true,
            )?;
            p.eval = scored.report;
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
