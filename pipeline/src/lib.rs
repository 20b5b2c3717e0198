//! cfkit-pipeline: the offline stage, one folder per command.
//!
//! * [`prepare`] (`cfkit prepare`, `cfkit demo-data`): sources (ImageFolder, CSV/Parquet
//!   manifests), CLIP-exact preprocessing, quarantine of bad inputs, image shards.
//! * [`fashionshift`]: the embedded FashionShift benchmark's generator (DESIGN §6).
//! * [`builder`] (`cfkit build-counterfactuals`, `cfkit merge`): teacher, CAM, masks, donors and
//!   refill per batch (the method itself is cfkit-counterfactual), counterfactual shards, workers
//!   and their merge.
//! * [`inspect`] (`cfkit inspect`): pictures of original | CAM | mask | counterfactual.

pub mod builder;
pub mod error;
pub mod fashionshift;
pub mod inspect;
pub mod prepare;
pub mod suite;

pub use error::{PipelineError, Result};
