//! cfkit-pipeline: the offline builder. So far: sources (ImageFolder, CSV/Parquet manifests, the
//! FashionShift generator), CLIP-exact preprocessing, quarantine of bad inputs, and image shards
//! (`cfkit prepare`, `cfkit demo-data`), and the counterfactual strategies (masks, donors,
//! refill). The counterfactual builder itself comes next.

pub mod build_config;
pub mod builder;
pub mod cf_batch;
pub mod decode;
pub mod error;
pub mod fashionshift;
pub mod inspect;
pub mod merge;
pub mod prepare;
pub mod preprocess;
pub mod resample;
pub mod run_options;
pub mod sources;
pub mod split_writer;

/// Masks, donors and refill live in the models crate (shared with the trainer's online mode).
pub use cfkit_models::counterfactual::{refill, rng, strategy};
pub use error::{PipelineError, Result};
