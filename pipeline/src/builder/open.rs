//! Opening a build: the source split, the teacher and its hashes, the resolved config and its
//! hash, the manifest to resume (same config only), and the output schema.

use std::path::Path;
use std::time::Instant;

use cfkit_counterfactual::draw::DRAW_VERSION;
use cfkit_models::weights::file_blake3;
use cfkit_models::{load_head, resolve_config, ClassificationHead, ClipModel, Towers};
use cfkit_outdir::{crash_point, DirLock};
use cfkit_schemas::layout::MANIFEST_FILE;
use cfkit_schemas::{
    identity_hash, shard_schema, CounterfactualDims, CounterfactualMethod, DatasetInfo, Manifest,
    ShardKind, ShardReader, TeacherInfo, WriterOptions, SCHEMA_VERSION,
};

use super::pieces::pieces;
use super::record::BuildIdentity;
use super::{done, Build, BuildConfig, Opened, RunOptions, Tally};
use crate::error::{PipelineError, Result};
use crate::prepare::check_existing;
use crate::prepare::split_writer::progress_bar;

impl<'a> Build<'a> {
    /// Loads the teacher and the source manifest and checks `out`: empty, or a build of this
    /// config (whose finished shards are then kept).
    pub fn open(cfg: &'a BuildConfig, out: &Path, opts: RunOptions) -> Result<Opened<'a>> {
        let start = Instant::now();
        let device = opts.device;
        let source = Manifest::read(&cfg.source.shards)?;
        let entry = source.splits.get(&cfg.source.split).ok_or_else(|| {
            PipelineError::Input(format!(
                "'{}' has no split '{}' (it has: {})",
                cfg.source.shards.join(MANIFEST_FILE).display(),
                cfg.source.split,
                source.splits.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let (model, head, teacher) = load_teacher(cfg, entry, device)?;
        let mut resolved = cfg.clone();
        resolved.output.out = None; // where the output goes does not change it
        let config = BuildIdentity {
            command: "build-counterfactuals".into(),
            // Part of the hash: a build of other draw semantics is not resumed into.
            draw_version: DRAW_VERSION,
            config: resolved,
            source_config_hash: source.config_hash.clone(),
            teacher: teacher.clone(),
        };
        let hash = identity_hash(&config);
        // One writer per (directory, worker), for the whole build.
        let lock = DirLock::acquire(out, &opts.workers.lock_suffix())?;
        check_existing(out, &hash)?;
        let manifest_path = out.join(opts.workers.manifest_name());
        let manifest = open_manifest(&manifest_path, &config, &hash, &teacher)?;
        let mine = pieces(entry, cfg.counterfactuals.batch_size, opts.workers);
        if let Some(r) = done::finished(
            out,
            opts.workers,
            &hash,
            &manifest,
            &mine,
            &cfg.source.split,
        ) {
            // A rerun of a finished worker: every piece of its part is skipped.
            let seconds = start.elapsed().as_secs_f64();
            return Ok(Opened::Finished(r.into_rerun(mine.len(), seconds)));
        }
        let vision = &model.vision()?.config;
        let (truth, resize) = source_pixels(&cfg.source.shards, entry)?;
        if resize != vision.image_resize {
            return Err(PipelineError::Input(format!(
                "'{}' split '{}' holds images made with {resize}; the teacher ({}) takes images made with {} (prepare the source with its --resize-mode, --interpolation and --fill)",
                cfg.source.shards.display(),
                cfg.source.split,
                cfg.teacher.model,
                vision.image_resize
            )));
        }
        let info = dataset_info(
            cfg,
            &entry.classes,
            (vision.image_size as u32, resize),
            &hash,
            teacher,
            truth,
        );
        let dims = CounterfactualDims {
            num_patches: vision.num_patches() as i32,
            feature_dim: vision.projection_dim as i32,
        };
        let writer_options = WriterOptions {
            row_group_bytes: cfg
                .output
                .row_group_bytes
                .unwrap_or(cfkit_schemas::writer::DEFAULT_ROW_GROUP_BYTES),
            ..Default::default()
        };
        let my_rows: u64 = mine.iter().map(|p| p.rows.len() as u64).sum();
        let pb = progress_bar(my_rows, &format!("cf {}", cfg.source.split), opts.quiet);
        crash_point("build:open");
        Ok(Opened::Ready(Build {
            _lock: lock,
            cfg,
            out: out.to_path_buf(),
            opts,
            device,
            model,
            head,
            entry: entry.clone(),
            config,
            hash,
            manifest,
            manifest_path,
            schema: shard_schema(&info, Some(dims)),
            writer_options,
            pb,
            start,
            tally: Tally::default(),
        }))
    }
}

/// The teacher of `cfg` on `device` (vision tower and head) and its identity; its head's classes
/// must be the source split's.
fn load_teacher(
    cfg: &BuildConfig,
    entry: &cfkit_schemas::SplitEntry,
    device: tch::Device,
) -> Result<(ClipModel, ClassificationHead, TeacherInfo)> {
    let model_cfg = resolve_config(&cfg.teacher.model)?;
    let model = ClipModel::load(&model_cfg, &cfg.teacher.weights, Towers::Vision, device)?;
    let (head, head_info) = load_head(&cfg.teacher.head, device)?;
    if head_info.classes != entry.classes {
        return Err(PipelineError::Input(format!(
            "the teacher head '{}' has classes {:?}…, the source split has {:?}…: they must be the same list",
            cfg.teacher.head.display(),
            &head_info.classes[..head_info.classes.len().min(3)],
            &entry.classes[..entry.classes.len().min(3)]
        )));
    }
    let teacher = TeacherInfo {
        model: cfg.teacher.model.clone(),
        weights_blake3: file_blake3(&cfg.teacher.weights)?,
        head_blake3: file_blake3(&cfg.teacher.head)?,
    };
    Ok((model, head, teacher))
}

/// The dataset metadata of the build's shards.
fn dataset_info(
    cfg: &BuildConfig,
    classes: &[String],
    (image_size, resize): (u32, cfkit_schemas::Resize),
    hash: &str,
    teacher: TeacherInfo,
    scene_truth: bool,
) -> DatasetInfo {
    let c = &cfg.counterfactuals;
    DatasetInfo {
        schema_version: SCHEMA_VERSION,
        kind: ShardKind::Counterfactuals,
        split: cfg.source.split.clone(),
        classes: classes.to_vec(),
        image_size,
        preprocessing: format!("as the source dataset ({})", cfg.source.shards.display()),
        resize,
        source: format!("shards:{}", cfg.source.shards.display()),
        seed: Some(c.seed),
        config_hash: Some(hash.to_string()),
        teacher: Some(teacher),
        method: Some(CounterfactualMethod {
            batch_size: c.batch_size,
            cam: c.cam.name().into(),
            donor_pool: "batch".into(),
            draw_version: DRAW_VERSION,
            strategies: c.strategies.iter().map(|s| s.to_string()).collect(),
            // Compact: variant images are recomposed by the reader (`refill::recompose`).
            variant_pixels: c.compact.then(|| "compact".to_string()),
            variants_per_strategy: c.variants,
        }),
        // The source rows' ground truth travels with them.
        scene_truth,
    }
}

/// This worker's manifest part: the one a previous run of this config wrote (resumed), or a new
/// one.
fn open_manifest(
    path: &Path,
    config: &BuildIdentity,
    hash: &str,
    teacher: &TeacherInfo,
) -> Result<Manifest> {
    if path.exists() {
        let m = Manifest::read_file(path)?;
        if m.config_hash != hash {
            return Err(PipelineError::Input(format!(
                "'{}' was written with another config: choose another --out or remove it",
                path.display()
            )));
        }
        return Ok(m);
    }
    let mut m = Manifest::new(
        ShardKind::Counterfactuals,
        serde_json::to_value(config).expect("identities serialise"),
        &format!("cfkit {}", env!("CARGO_PKG_VERSION")),
    );
    m.teacher_blake3 = Some(teacher.weights_blake3.clone());
    Ok(m)
}

/// Whether the source split's rows carry the generator's ground truth, and the resize that made
/// its pixels (its first shard says).
fn source_pixels(
    dir: &Path,
    entry: &cfkit_schemas::SplitEntry,
) -> Result<(bool, cfkit_schemas::Resize)> {
    Ok(match entry.shards.first() {
        Some(s) => {
            let r = ShardReader::open(&dir.join(&s.file))?;
            (r.info().scene_truth, r.info().resize)
        }
        None => (false, Default::default()),
    })
}
