//! `--suite imagenet` of `cfkit eval` and `cfkit wise-ft`: the glue between the suite's sets
//! (cfkit-pipeline finds, checks and preprocesses them once) and their scoring (cfkit-trainer);
//! the report is written as `suite-<name>.{md,json}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use tch::Device;

use crate::cli::train::{SuiteArg, SuiteArgs};
use cfkit_pipeline::suite::{prepare_suite, ImagenetProtocol, SuiteOptions};
use cfkit_trainer::eval::suite::{
    score_suite, write_suite_report, SuiteReport, SuiteSet, SuiteSetRecord,
};
use cfkit_trainer::eval::Scoring;

/// Scores the checkpoint in `checkpoint` on the suite of `a` and writes
/// `suite-<name>.{md,json}` into `out` (default: `--suite-out`, else the checkpoint directory).
pub(super) fn run(
    a: &SuiteArgs,
    checkpoint: &Path,
    out: Option<&Path>,
    batch_size: usize,
    device: Device,
    quiet: bool,
) -> Result<SuiteReport> {
    let suite = a.suite.unwrap_or(SuiteArg::Imagenet).name();
    if a.root.is_none() && a.set_dir.is_empty() {
        anyhow::bail!("--suite {suite} needs --root DIR (or a --set-dir per set)");
    }
    let (student, _) = cfkit_trainer::checkpoint::load_student(checkpoint, device)?;
    ImagenetProtocol::load()?.check_model_classes(checkpoint, &student.classes)?;
    let size = student.config().image_size as u32;
    let opts = SuiteOptions {
        root: a.root.clone(),
        set_dirs: a.set_dir.iter().cloned().collect::<BTreeMap<_, _>>(),
        sets: a.sets.clone(),
        cache: a
            .cache
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!(".cfkit-cache/suite-{size}px"))),
        image_size: size,
        // The model's resize: each set is prepared as the model's images are.
        resize: student.config().image_resize,
        quiet,
    };
    let sets = prepare_suite(&opts)?
        .into_iter()
        .map(|p| SuiteSet {
            scoring: Scoring {
                correct: p.set.correct.clone(),
                allowed: p.set.allowed.clone(),
            },
            record: SuiteSetRecord {
                set: p.set.name.clone(),
                dir: p.set.dir.clone(),
                shards: p.shards.clone(),
                id: p.set.id,
                images: 0,
                expected_images: p.set.expected_images,
                quarantined: p.report.quarantined,
                missing_classes: p.set.missing_classes,
                unscored_folders: p.set.unscored_folders,
                restricted_to_classes: p.set.allowed.as_ref().map(Vec::len),
                border_crop_px: p.set.border_crop,
            },
            shards: p.shards,
            split: p.split,
        })
        .collect();
    let report = score_suite(&student, suite, checkpoint, sets, batch_size, device, quiet)?;
    let out = out
        .map(Path::to_path_buf)
        .or_else(|| a.suite_out.clone())
        .unwrap_or_else(|| checkpoint.to_path_buf());
    write_suite_report(&out, &report)?;
    Ok(report)
}
