//! `cfkit prepare` and `demo-data`: image shards from files or from the FashionShift generator;
//! the work is in cfkit-pipeline.

use anyhow::Result;

use crate::cli::data::{DemoDataArgs, PrepareArgs};
use crate::out::outln;
use crate::settings;
use cfkit_pipeline as pipeline;

fn print_reports(reports: &[pipeline::prepare::SplitReport]) -> Result<()> {
    outln!(
        "{:<14} {:>7} {:>7} {:>6} {:>10} {:>11} {:>10} {:>9}",
        "split",
        "inputs",
        "rows",
        "shards",
        "MB",
        "quarantine",
        "dup.groups",
        "images/s"
    )?;
    for r in reports {
        outln!(
            "{:<14} {:>7} {:>7} {:>6} {:>10.1} {:>11} {:>10} {:>9.0}",
            r.split,
            r.inputs,
            r.rows,
            r.shards,
            r.bytes as f64 / 1e6,
            r.quarantined,
            r.duplicate_groups.len(),
            r.images_per_s
        )?;
    }
    Ok(())
}

pub(crate) fn prepare(a: PrepareArgs) -> Result<()> {
    let opts = settings::prepare(&a)?;
    use pipeline::prepare::sources;
    let classes = a.classes.as_deref();
    let listing = if let Some(dir) = &a.image_folder {
        sources::list_image_folder(dir, classes)?
    } else if let Some(m) = &a.manifest {
        sources::list_manifest(m, a.root.as_deref(), classes)?
    } else if !a.hf_parquet.is_empty() {
        let columns = sources::hf_parquet::HfColumns {
            image: a.image_column.clone(),
            label: a.label_column.clone(),
        };
        sources::hf_parquet::list_hf_parquet(&a.hf_parquet, &columns, classes)?
    } else if !a.webdataset.is_empty() {
        use sources::webdataset::{list_webdataset, WdsClasses};
        let names = classes.map_or(WdsClasses::Found, WdsClasses::File);
        list_webdataset(&a.webdataset, &a.wds_label, names)?
    } else {
        unreachable!("clap requires a source")
    };
    let reports = pipeline::prepare::prepare(listing, &a.out, &opts)?;
    print_reports(&reports)?;
    for r in reports.iter().filter(|r| r.quarantined > 0) {
        outln!(
            "quarantined inputs are listed in {}",
            a.out
                .join(format!("quarantine-{}.jsonl", r.split))
                .display()
        )?;
    }
    for g in reports.iter().flat_map(|r| &r.duplicate_groups) {
        outln!("duplicate images (same bytes): {}", g.join(", "))?;
    }
    Ok(())
}

pub(crate) fn demo_data(a: DemoDataArgs) -> Result<()> {
    let opts = pipeline::prepare::DemoOptions {
        output: settings::shard_output(&a.shards)?,
        fashion_mnist: a.fashion_mnist,
        seed: a.seed,
        splits: a.splits,
        scale: a.scale,
        image_folder: a.image_folder,
    };
    let reports = pipeline::prepare::demo_data(&a.out, &opts)?;
    print_reports(&reports)?;
    outln!("wrote {}", a.out.display())?;
    Ok(())
}
