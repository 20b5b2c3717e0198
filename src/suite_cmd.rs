//! `cfkit eval --suite imagenet`: the glue between the suite's sets (cfkit-pipeline: find, check,
//! preprocess once) and their scoring (cfkit-trainer); prints and writes the paper's table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use cfkit_pipeline as pipeline;
use cfkit_trainer as trainer;

/// The suite options of `cfkit eval`.
#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Evaluation suite: `imagenet` = ImageNet val (ID) and -V2, -R, -Sketch, ObjectNet, -A
    /// (assets/imagenet/protocol.json), each with its protocol.
    #[arg(long, value_parser = ["imagenet"])]
    pub suite: Option<String>,
    /// Directory holding the suite's sets under their usual names (imagenet/val or
    /// ILSVRC2012/val, imagenetv2-matched-frequency-format-val, imagenet-r, sketch, objectnet-1.0,
    /// imagenet-a).
    #[arg(long, requires = "suite")]
    pub root: Option<PathBuf>,
    /// A set's directory given explicitly, e.g. `--set-dir imagenet-r=/data/imagenet-r`
    /// (repeatable).
    #[arg(long, value_parser = parse_set_dir, requires = "suite")]
    pub set_dir: Vec<(String, PathBuf)>,
    /// Sets to run [default: all six].
    #[arg(long, value_delimiter = ',', requires = "suite")]
    pub sets: Vec<String>,
    /// Where each set's preprocessed shards are kept and reused [default:
    /// .cfkit-cache/suite-<image size>px].
    #[arg(long, requires = "suite")]
    pub cache: Option<PathBuf>,
    /// Directory for suite-<name>.json and .md [default: the checkpoint directory].
    #[arg(long, requires = "suite")]
    pub suite_out: Option<PathBuf>,
}

fn parse_set_dir(s: &str) -> std::result::Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected NAME=PATH, e.g. imagenet-r=/data/imagenet-r"))?;
    Ok((name.to_string(), PathBuf::from(path)))
}

/// Runs the suite on `checkpoint`, writing `suite-<name>.{md,json}` into `out` (default: the
/// checkpoint directory); returns the report and the JSON written.
pub fn run(
    a: &SuiteArgs,
    checkpoint: &Path,
    out: Option<&Path>,
    batch_size: usize,
    device: tch::Device,
    quiet: bool,
) -> Result<(trainer::eval::EvalReport, serde_json::Value)> {
    let suite = a.suite.clone().unwrap_or_else(|| "imagenet".into());
    if a.root.is_none() && a.set_dir.is_empty() {
        anyhow::bail!("--suite {suite} needs --root DIR (or a --set-dir per set)");
    }
    let (student, _) = trainer::checkpoint::load_student(checkpoint, device)?;
    if student.classes.len() != 1000 {
        anyhow::bail!(
            "checkpoint '{}' has a {}-class head; the {suite} suite scores the 1000 ImageNet classes in the standard (sorted wnid) order (build one with `cfkit zeroshot-head --classes assets/imagenet/wnids.txt --names assets/imagenet/classnames.txt`)",
            checkpoint.display(),
            student.classes.len()
        );
    }
    let looks_like_wnids = student
        .classes
        .iter()
        .all(|c| c.len() == 9 && c.starts_with('n') && c[1..].bytes().all(|b| b.is_ascii_digit()));
    let standard = pipeline::suite::ImagenetProtocol::load()?.wnids;
    if looks_like_wnids && student.classes != standard {
        anyhow::bail!(
            "checkpoint '{}' names its classes by wnid but not in the standard (sorted) order; the suite scores class i as the i-th wnid of assets/imagenet/wnids.txt",
            checkpoint.display()
        );
    }
    let size = student.config().image_size as u32;
    let opts = pipeline::suite::SuiteOptions {
        root: a.root.clone(),
        set_dirs: a.set_dir.iter().cloned().collect::<BTreeMap<_, _>>(),
        sets: a.sets.clone(),
        cache: a
            .cache
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!(".cfkit-cache/suite-{size}px"))),
        image_size: size,
        quiet,
    };
    let prepared = pipeline::suite::prepare_suite(&opts)?;
    let mut results = Vec::new();
    let mut details = Vec::new();
    for p in &prepared {
        let source = Arc::new(trainer::data::SplitSource::open(&p.shards, &p.split)?);
        let scoring = trainer::eval::Scoring {
            correct: p.set.correct.clone(),
            allowed: p.set.allowed.clone(),
        };
        let r = trainer::eval::evaluate_scored(
            &student,
            &p.set.name,
            !p.set.id,
            source,
            &scoring,
            batch_size,
            device,
        )?;
        let partial = r.images != p.set.expected_images;
        if partial && !quiet {
            eprintln!(
                "note: {}: {} images scored, the standard release has {} ({} quarantined, {} class folders absent)",
                p.set.name,
                r.images,
                p.set.expected_images,
                p.report.quarantined,
                p.set.missing_classes
            );
        }
        details.push(serde_json::json!({
            "set": p.set.name,
            "dir": p.set.dir,
            "shards": p.shards,
            "id": p.set.id,
            "images": r.images,
            "expected_images": p.set.expected_images,
            "quarantined": p.report.quarantined,
            "missing_classes": p.set.missing_classes,
            "unscored_folders": p.set.unscored_folders,
            "restricted_to_classes": p.set.allowed.as_ref().map(Vec::len),
            "border_crop_px": p.set.border_crop,
        }));
        results.push(r);
    }
    let report = trainer::eval::EvalReport::new(results);
    let label = checkpoint.display().to_string();
    let table = trainer::eval::paper_table(&label, &report);
    let json = serde_json::json!({
        "suite": suite,
        "checkpoint": checkpoint,
        "report": report,
        "sets": details,
        "table": table,
    });
    let out = out
        .map(Path::to_path_buf)
        .or_else(|| a.suite_out.clone())
        .unwrap_or_else(|| checkpoint.to_path_buf());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let md = out.join(format!("suite-{suite}.md"));
    let js = out.join(format!("suite-{suite}.json"));
    std::fs::write(&md, &table).with_context(|| format!("writing {}", md.display()))?;
    std::fs::write(&js, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("writing {}", js.display()))?;
    Ok((report, json))
}
