//! Evaluation suites: named sets on disk in their published layouts (or as clip_benchmark's
//! WebDataset copies and Hugging Face Parquet: [`containers`]), each with its scoring
//! protocol. The one suite is `imagenet` (the paper's table): ImageNet val (ID) and -V2, -R,
//! -Sketch, ObjectNet, -A (OOD). Each set is found under a root, checked against its folder
//! convention, and preprocessed once into image shards under a cache directory (reused while
//! the listing and options are unchanged); scoring is the trainer's, from [`SetListing::correct`]
//! and [`SetListing::allowed`].

mod containers;
pub mod layout;
pub mod protocol;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use layout::{list_set, locate, SetListing};
pub use protocol::{Folders, ImagenetProtocol, SetProtocol, SET_ORDER};

use crate::error::{PipelineError, Result};
use crate::prepare::{prepare, prepared_already, OutputOptions, PrepareOptions, SplitReport};

/// Where the suite's sets are and which to run.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Directory holding the sets (each found by its usual name, see `protocol.json`).
    pub root: Option<PathBuf>,
    /// Explicit directories per set, overriding the lookup under `root`.
    pub set_dirs: BTreeMap<String, PathBuf>,
    /// Sets to run, in any order (empty: all six).
    pub sets: Vec<String>,
    /// Where the preprocessed shards of each set are kept (`<cache>/<set>/`).
    pub cache: PathBuf,
    /// The model's input size.
    pub image_size: u32,
    /// The model's resize (its preprocessing: CLIP's for every OpenAI-style model).
    pub resize: cfkit_schemas::Resize,
    pub quiet: bool,
}

/// One set ready to score: its listing (labels, scoring) and its shards.
#[derive(Debug, Clone)]
pub struct PreparedSet {
    pub set: SetListing,
    pub shards: PathBuf,
    pub split: String,
    pub report: SplitReport,
}

/// The sets `opts` asks for, in the paper's order; an unknown name is an error naming the
/// known ones.
pub(crate) fn selected_sets(opts: &SuiteOptions) -> Result<Vec<String>> {
    for s in opts.sets.iter().chain(opts.set_dirs.keys()) {
        if !SET_ORDER.contains(&s.as_str()) {
            return Err(PipelineError::Input(format!(
                "unknown set '{s}' (the imagenet suite has {})",
                SET_ORDER.join(", ")
            )));
        }
    }
    Ok(SET_ORDER
        .iter()
        .filter(|s| opts.sets.is_empty() || opts.sets.iter().any(|x| x == *s))
        .map(|s| s.to_string())
        .collect())
}

/// Lists every selected set first (so a layout error stops the run before any slow work),
/// then preprocesses each into `<cache>/<set>/` or reuses what an earlier run left there.
pub fn prepare_suite(opts: &SuiteOptions) -> Result<Vec<PreparedSet>> {
    let protocol = ImagenetProtocol::load()?;
    let mut listed = Vec::new();
    for name in selected_sets(opts)? {
        let set = protocol.set(&name)?;
        let explicit = opts.set_dirs.get(&name).map(PathBuf::as_path);
        let root = opts.root.as_deref().unwrap_or(Path::new("."));
        let dir = locate(root, &name, set, explicit)?;
        listed.push(list_set(&protocol, &name, &dir)?);
    }
    let mut out = Vec::new();
    for set in listed {
        let shards = opts.cache.join(&set.name);
        let popts = PrepareOptions {
            split: set.name.clone(),
            image_size: opts.image_size,
            max_pixels: crate::prepare::decode::DEFAULT_MAX_PIXELS,
            border_crop: set.border_crop,
            max_bad_fraction: 1.0,
            output: OutputOptions {
                rows_per_shard: 10_000,
                row_group_bytes: 100 * 1024 * 1024,
                quiet: opts.quiet,
            },
            // Evaluation sets: the listing's order (it does not matter to a score).
            shuffle_seed: None,
            holdout: None,
            resize: opts.resize,
        };
        let report = match prepared_already(&set.listing, &shards, &popts)? {
            Some(r) => r,
            None => prepare(set.listing.clone(), &shards, &popts)?.remove(0),
        };
        out.push(PreparedSet {
            split: set.name.clone(),
            set,
            shards,
            report,
        });
    }
    Ok(out)
}
