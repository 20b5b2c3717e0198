//! Every environment variable cfkit reads, declared once with its meaning. The binary reads the
//! run-time ones here, once, at start-up ([`Env::from_process`]), and hands typed values to the
//! libraries, which read none; the build-, test- and recipe-time ones are listed so that the
//! README's table (generated from [`markdown_table`], checked by a test) names them all.

use std::collections::BTreeMap;

/// When a variable is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// By the `cfkit` binary, at start-up (this module).
    Run,
    /// By a build script, when cfkit is compiled.
    Build,
    /// By the test suite or a `just` recipe.
    Tests,
}

/// A declared variable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EnvVar {
    pub name: &'static str,
    pub scope: Scope,
    /// Who reads it and what it means.
    pub meaning: &'static str,
}

const fn var(name: &'static str, scope: Scope, meaning: &'static str) -> EnvVar {
    EnvVar {
        name,
        scope,
        meaning,
    }
}

/// Every variable, in the order of the README's table.
pub(crate) const VARS: &[EnvVar] = &[
    var("WORLD_SIZE", Scope::Run, "`train`: number of data-parallel ranks (torchrun, srun); above 1 the run is data-parallel. `build-counterfactuals`: the worker count when `RANK` is set too"),
    var("RANK", Scope::Run, "`train`: this process's rank in 0..WORLD_SIZE. `build-counterfactuals`: the worker index (with `WORLD_SIZE`)"),
    var("LOCAL_RANK", Scope::Run, "`train` on CUDA with `device = \"auto\"` or `\"cuda\"`: rank r takes `cuda:LOCAL_RANK`"),
    var("MASTER_ADDR", Scope::Run, "`train`, data-parallel: the host of rank 0's rendezvous store (default 127.0.0.1)"),
    var("MASTER_PORT", Scope::Run, "`train`, data-parallel: its port (default 29500)"),
    var("CFKIT_DIST_BACKEND", Scope::Run, "`train`, data-parallel on CUDA: `gloo` reduces the gradients through host memory with Gloo even where this build has NCCL (`nccl`, or unset: NCCL when available)"),
    var("SLURM_ARRAY_TASK_ID", Scope::Run, "`build-counterfactuals` in a Slurm job array: the worker index (counted from `SLURM_ARRAY_TASK_MIN`)"),
    var("SLURM_ARRAY_TASK_COUNT", Scope::Run, "`build-counterfactuals` in a Slurm job array: the worker count"),
    var("SLURM_ARRAY_TASK_MIN", Scope::Run, "`build-counterfactuals` in a Slurm job array: the first task id (default 0)"),
    var("JOB_COMPLETION_INDEX", Scope::Run, "`build-counterfactuals` in a Kubernetes Indexed Job: the worker index (the count comes from `--num-workers`)"),
    var("CFKIT_BPE_VOCAB", Scope::Run, "`zeroshot-head`: the BPE merges file when `--vocab` is not given"),
    var("VIRTUAL_ENV", Scope::Run, "`zeroshot-head`: the active virtualenv, searched for open_clip's merges file (after `CFKIT_BPE_VOCAB`; this project's `.venv` is searched too)"),
    var("CFKIT_CRASH_AT", Scope::Run, "test hook: abort at the named crash point of a command's set-up, as `kill -9` would (tests/dir_safety.rs)"),
    var("LIBTORCH_USE_PYTORCH", Scope::Build, "tch's build: link the libtorch of the active Python's torch wheel (every `just` recipe sets it to 1)"),
    var("CFKIT_GLOO_INCLUDE", Scope::Build, "distributed/build.rs: the directory holding Gloo's headers (default: /usr/include, Debian's libgloo-dev)"),
    var("CFKIT_NVIDIA_DIR", Scope::Build, "distributed/build.rs: where NCCL's and CUDA's headers are (default: the venv's nvidia packages)"),
    var("CFKIT_NO_NCCL", Scope::Build, "distributed/build.rs: set, the build leaves NCCL out"),
    var("CFKIT_UPDATE_DOCS", Scope::Tests, "set to 1, the tests rewrite the generated documents they check (schemas/SCHEMA.md, schemas/RECORDS.md, this table and the `just train` table in README.md) instead of failing on a difference"),
    var("CFKIT_PARITY_DIR", Scope::Tests, "`just parity-b32`: the fixture directory of the ViT-B/32-shaped parity check"),
    var("CFKIT_DIST_CHILD", Scope::Tests, "distributed/tests/gloo.rs: marks the test's own child ranks"),
    var("CFKIT_DIST_HANG", Scope::Tests, "distributed/tests/gloo.rs: makes a child rank hang (the timeout test)"),
    var("CFKIT_DEMO_GRID", Scope::Tests, "`just demo`: another grid file than configs/fashionshift/benchmark.toml (tests/demo_runner.rs)"),
    var("CFKIT_MODEL_CONFIG", Scope::Tests, "`just imagenet`: a config.json to use instead of the MODEL preset"),
    var("CFKIT_TRAIN_SET", Scope::Tests, "`just imagenet`: space-separated `--set` overrides for every `cfkit train`"),
    var("CFKIT_BUILD_SET", Scope::Tests, "`just imagenet`: space-separated `--set` overrides for `cfkit build-counterfactuals`"),
    var("CFKIT_METHODS", Scope::Tests, "`just imagenet`: the methods to train (default `ft ft-fd masked-fd masked-fd-online lp-ft`)"),
    var("CFKIT_HOLDOUT", Scope::Tests, "`just imagenet`: the rows of train held out as split `train-holdout` (default 10240, the reference's `--val_size`)"),
    var("CFKIT_ALPHAS", Scope::Tests, "`just imagenet`: the WiSE-FT mixing weights (default 0:1:0.1)"),
    var("CFKIT_DEVICE", Scope::Tests, "`just imagenet`: the device of the zero-shot head and the evaluations (default auto)"),
    var("CFKIT_PRECISION", Scope::Tests, "`just imagenet`: the training precision, the recipes' `tf32` (the reference's) or `bf16` / `fp32`, whose runs go to `runs/imagenet/MODEL/METHOD-PRECISION` (default tf32)"),
];

/// The run-time variables as this process found them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    values: BTreeMap<&'static str, String>,
}

impl Env {
    /// Reads every run-time variable of [`VARS`].
    pub(crate) fn from_process() -> Self {
        Env {
            values: VARS
                .iter()
                .filter(|v| v.scope == Scope::Run)
                .filter_map(|v| std::env::var(v.name).ok().map(|value| (v.name, value)))
                .collect(),
        }
    }

    /// An environment given as pairs (tests).
    #[cfg(test)]
    pub(crate) fn of(pairs: &[(&'static str, &str)]) -> Self {
        Env {
            values: pairs.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        }
    }

    /// The declared run-time variables that are set, with their values (`cfkit doctor`).
    pub(crate) fn set_vars(&self) -> Vec<(&'static EnvVar, &str)> {
        VARS.iter()
            .filter_map(|v| self.values.get(v.name).map(|value| (v, value.as_str())))
            .collect()
    }

    /// The value of the declared run-time variable `name`.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        debug_assert!(
            VARS.iter().any(|v| v.name == name && v.scope == Scope::Run),
            "{name} is not a declared run-time variable"
        );
        self.values.get(name).cloned()
    }
}

/// The README's table of the variables.
#[cfg(test)]
fn markdown_table() -> String {
    let mut s = String::from("| variable | read | meaning |\n|---|---|---|\n");
    for v in VARS {
        let when = match v.scope {
            Scope::Run => "by `cfkit`",
            Scope::Build => "when building",
            Scope::Tests => "by tests and recipes",
        };
        s += &format!("| `{}` | {when} | {} |\n", v.name, v.meaning);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- environment variables: generated by src/settings/env.rs -->\n";
    const END: &str = "<!-- end of environment variables -->";

    /// README.md's table is this module's (`CFKIT_UPDATE_DOCS=1` rewrites it).
    #[test]
    fn the_readme_lists_every_variable() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let update = std::env::var_os("CFKIT_UPDATE_DOCS").is_some();
        let markers = Some((BEGIN, END));
        if let Err(e) =
            cfkit_schemas::describe::check_generated(&path, markers, &markdown_table(), update)
        {
            panic!("{e}");
        }
    }

    #[test]
    fn names_are_unique_and_only_declared_ones_are_read() {
        let mut names: Vec<&str> = VARS.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VARS.len());
        let e = Env::of(&[("RANK", "1")]);
        assert_eq!(e.get("RANK").as_deref(), Some("1"));
        assert_eq!(e.get("WORLD_SIZE"), None);
    }
}
