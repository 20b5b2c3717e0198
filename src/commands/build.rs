//! `cfkit build-counterfactuals`, `verify`, `merge` and `inspect`: the counterfactual datasets'
//! commands; the work is in cfkit-pipeline and cfkit-schemas.

use anyhow::Result;
use cfkit_outdir::DirLock;

use crate::cli::build::{BuildArgs, InspectArgs, MergeArgs, VerifyArgs};
use crate::out::outln;
use crate::settings::{self, env::Env};
use cfkit_pipeline as pipeline;

pub(crate) fn build_counterfactuals(a: BuildArgs, env: &Env) -> Result<()> {
    let settings::Build { cfg, out, opts } = settings::build(&a, env)?;
    let r = pipeline::builder::build_counterfactuals(&cfg, &out, opts)?;
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
    if r.warm_images_per_s > 0.0 {
        outln!(
            "after the first batch: {:.1} images/s, device busy {:.0}%",
            r.warm_images_per_s,
            100.0 * r.warm_device_busy_fraction
        )?;
    }
    if r.quarantined > 0 {
        outln!(
            "{} input rows could not be used and were left out: see {}",
            r.quarantined,
            out.join("quarantine").display()
        )?;
    }
    let random = r.random_donor_same_class_rate;
    for (s, m) in &r.mask_ratio {
        let donors = match r.donors.get(s).and_then(|d| d.rate()) {
            Some(rate) => format!(
                "same-class donors {rate:.3} (random donors: {random:.3}; own image {:.3})",
                r.donors[s].own_image as f64 / r.donors[s].draws.max(1) as f64
            ),
            None => "no donors".into(),
        };
        outln!(
            "  {s:<26} mask ratio mean {:.3} (min {:.3}, max {:.3}) over {} variants; {donors}",
            m.mean,
            m.min,
            m.max,
            m.variants
        )?;
    }
    for (s, d) in &r.donors {
        if let Some(rate) = d
            .rate()
            .filter(|&rate| rate > 2.0 * random && d.draws >= 100)
        {
            eprintln!(
                "WARNING: {s}: {:.1} % of donors (other images) share their recipient's class, {:.1}x the {:.2} % \
                 that donors drawn at random from these rows would: each batch (the donor pool) \
                 holds few classes, so refills keep the label's evidence. The source shards are \
                 stored close to class order: prepare them again (cfkit prepare stores rows in a \
                 seeded random order) and rebuild",
                100.0 * rate,
                rate / random.max(1e-12),
                100.0 * random
            );
        }
    }
    outln!("wrote {}", out.display())?;
    Ok(())
}

pub(crate) fn verify(a: VerifyArgs) -> Result<()> {
    // Said first: a directory being built may have no manifest yet.
    let writers: Vec<String> = DirLock::holders(&a.dir)
        .into_iter()
        .map(|(name, h)| format!("{name} held by {h}"))
        .collect();
    for w in &writers {
        eprintln!(
            "note: '{}' is being written now ({w}): what is checked may change",
            a.dir.display()
        );
    }
    let mut r = cfkit_schemas::verify::verify_dataset(&a.dir)?;
    r.writers = writers;
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

pub(crate) fn merge(a: MergeArgs) -> Result<()> {
    let r = pipeline::builder::merge::merge(&a.dir)?;
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

pub(crate) fn inspect(a: InspectArgs) -> Result<()> {
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
