//! cfkit-pipeline: the offline builder. So far: sources (ImageFolder, CSV/Parquet manifests, the
//! FashionShift generator), CLIP-exact preprocessing, quarantine of bad inputs, and image shards
//! (`cfkit prepare`, `cfkit demo-data`). Counterfactual building comes next.

pub mod decode;
pub mod error;
pub mod fashionshift;
pub mod prepare;
pub mod preprocess;
pub mod resample;
pub mod sources;
pub mod split_writer;

pub use error::{PipelineError, Result};
