//! cfkit-pipeline: the offline counterfactual builder (sources, preprocessing, masks and refill,
//! shard output, resume, inspect). Filled in by the data and pipeline issues.
