//! `cfkit build-counterfactuals`, `verify`, `merge` and `inspect`: argument parsing and printing;
//! the work is in cfkit-pipeline and cfkit-schemas.

use crate::out::outln;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use cfkit_pipeline as pipeline;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// TOML config (source, teacher, counterfactuals, output); see configs/.
    #[arg(long)]
    config: PathBuf,
    /// Output directory [default: the config's output.out].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override a config key, e.g. `--set source.shards=/data/train --set teacher.model=vit-b-16`
    /// (repeatable; the value is TOML, else a string).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Split the input shards over N workers (shard k goes to worker k mod N); each writes its
    /// own manifest part into --out, `cfkit merge` joins them [default: the launcher's count —
    /// SLURM_ARRAY_TASK_COUNT or WORLD_SIZE — else 1; a Kubernetes Indexed Job needs it].
    #[arg(long)]
    num_workers: Option<usize>,
    /// This process's worker index, in 0..N [default: the launcher's — SLURM_ARRAY_TASK_ID
    /// (from SLURM_ARRAY_TASK_MIN), JOB_COMPLETION_INDEX or RANK — else 0]. Given, it overrides
    /// the environment.
    #[arg(long)]
    worker_index: Option<usize>,
    /// Overlap decode / device / encode stages: auto (on for CUDA, off on CPU where they share
    /// the cores), on, off. The output is the same either way.
    #[arg(long, default_value = "auto")]
    pipeline: String,
}

pub fn build_counterfactuals(a: BuildArgs) -> Result<()> {
    let cfg = pipeline::build::BuildConfig::load_with(&a.config, &a.set)?;
    let out = a
        .out
        .or_else(|| cfg.output.out.clone())
        .context("no output directory: pass --out or set output.out in the config")?;
    let (workers, worker_source) =
        pipeline::build::Workers::resolve(a.num_workers, a.worker_index, |name| {
            std::env::var(name).ok()
        })?;
    let opts = pipeline::build::RunOptions {
        quiet: a.quiet,
        workers,
        worker_source,
        pipelining: a.pipeline.parse()?,
    };
    let r = pipeline::build::build_counterfactuals(&cfg, &out, opts)?;
    outln!(
        "{} rows in {} shard(s) written, {} skipped (already complete), {:.1} MB, {:.1} s, {:.1} images/s, device busy {:.0}% ({})",
        r.rows,
        r.shards_written,
        r.shards_skipped,
        r.bytes as f64 / 1e6,
        r.seconds,
        r.images_per_s,
        100.0 * r.device_busy_fraction,
        r.device
    )?;
    if r.quarantined > 0 {
        outln!(
            "{} input rows could not be used and were left out: see {}",
            r.quarantined,
            out.join("quarantine").display()
        )?;
    }
    for (s, m) in &r.mask_ratio {
        outln!(
            "  {s:<26} mask ratio mean {:.3} (min {:.3}, max {:.3}) over {} variants",
            m.mean,
            m.min,
            m.max,
            m.variants
        )?;
    }
    outln!("wrote {}", out.display())?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Dataset directory (manifest.json + data/).
    dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn verify(a: VerifyArgs) -> Result<()> {
    // Said first: a directory being built may have no manifest yet.
    for w in cfkit_schemas::verify::writers(&a.dir) {
        eprintln!(
            "note: '{}' is being written now ({w}): what is checked may change",
            a.dir.display()
        );
    }
    let r = cfkit_schemas::verify::verify_dataset(&a.dir)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?)?;
    } else {
        outln!(
            "{} shard(s), {} rows checked in {}",
            r.shards,
            r.rows,
            a.dir.display()
        )?;
        for t in &r.temporary_files {
            outln!("note: {t} is a leftover of an interrupted write (a rerun replaces it)")?;
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
pub struct MergeArgs {
    /// The output directory the workers wrote into.
    dir: PathBuf,
}

pub fn merge(a: MergeArgs) -> Result<()> {
    let r = pipeline::build::merge::merge(&a.dir)?;
    outln!(
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
    )?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct InspectArgs {
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

pub fn inspect(a: InspectArgs) -> Result<()> {
    if a.n == 0 {
        anyhow::bail!("--n must be >= 1");
    }
    let r = pipeline::inspect::inspect(&a.dir, &a.split, a.n, &a.out)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r)?)?;
        return Ok(());
    }
    outln!(
        "{} rows in split '{}'; drew {} into {}",
        r.rows,
        r.split,
        r.shown,
        a.out.display()
    )?;
    outln!("columns: original | CAM (blue low, red high) | mask of the first variant (white) | variants")?;
    for l in &r.legend {
        outln!("  {l}")?;
    }
    for (name, s) in &r.strategies {
        let hist: Vec<String> = s
            .mask_ratio_histogram
            .iter()
            .map(|c| c.to_string())
            .collect();
        outln!(
            "{name}: {} variants, mask ratio mean {:.3}, histogram (0.1 bins) [{}], self-donors {}",
            s.variants,
            s.mask_ratio_mean,
            hist.join(" "),
            s.self_donors
        )?;
        let donors: Vec<String> = s
            .donor_classes
            .iter()
            .map(|(c, k)| format!("{c}: {k}"))
            .collect();
        if !donors.is_empty() {
            outln!("  donor classes: {}", donors.join(", "))?;
        }
    }
    Ok(())
}
