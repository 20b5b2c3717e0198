//! What a counterfactual build records: its identity (the manifest's `config` and `config_hash`:
//! everything that changes the rows), each worker's `run.json`, and the quarantine lines of
//! undecodable input rows.

use serde::{Deserialize, Serialize};

use cfkit_schemas::TeacherInfo;

use super::workers::WorkerSource;
use super::{BuildConfig, BuildReport};

/// The identity of a build. The config's `[output] out` is left out (where a build is written
/// does not change it); its row-group size is kept.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BuildIdentity {
    /// Always `build-counterfactuals`.
    pub command: String,
    /// The semantics of the mask and donor draws: a build of other semantics is not resumed into.
    pub draw_version: u32,
    /// The resolved config.
    pub config: BuildConfig,
    /// The source dataset's `config_hash`.
    pub source_config_hash: String,
    /// The teacher, by the hashes of its files.
    pub teacher: TeacherInfo,
}

/// `run.json` (or `run.worker-I-of-N.json`) of a build worker.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BuildRecord {
    /// `cfkit` version.
    pub cfkit: String,
    pub config: BuildIdentity,
    /// Its identity hash.
    pub config_hash: String,
    /// What the worker built.
    pub report: BuildReport,
    /// Which worker, of how many.
    pub workers: WorkerRecord,
}

/// Which worker wrote a record, and where its index came from.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkerRecord {
    pub index: usize,
    pub count: usize,
    pub source: WorkerSource,
}

/// One line of `quarantine/<shard>.jsonl`: an input row left out of the build, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BuildQuarantineLine {
    pub id: String,
    pub shard: String,
    pub reason: String,
}
