//! cfkit-pipeline: the offline counterfactual builder (sources, preprocessing, masks and refill,
//! shard output, resume, inspect). So far: CLIP-exact preprocessing.

pub mod preprocess;
pub mod resample;
