//! The settings layer: what a command runs with, resolved once from its arguments, its config
//! file and the environment ([`env`]), with every rule that combines them in one place — `--out`
//! over the config's `output.out`, the device of a data-parallel rank, the launcher's worker
//! index, the backend of CUDA gradients, the BPE vocabulary. The libraries get typed values
//! (`tch::Device`, `DistConfig`, `Workers`, …) and read no environment variable.

pub(crate) mod env;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::build::{BuildArgs, PipelineArg};
use crate::cli::data::{PrepareArgs, RowOrder, ShardArgs};
use crate::cli::train::{ScoringArgs, TrainArgs};
use cfkit_distributed::DistConfig;
use cfkit_models::DeviceSpec;
use cfkit_pipeline::builder::{BuildConfig, Pipelining, RunOptions, Workers};
use cfkit_pipeline::prepare::{HoldoutSpec, OutputOptions, PrepareOptions};
use cfkit_trainer::{TrainConfig, TrainOptions};
use env::Env;

/// The output directory of a command: `--out` when given, else the config's `[output] out`.
pub(crate) fn output_dir(
    flag: Option<&Path>,
    config: Option<&Path>,
    what: &str,
) -> Result<PathBuf> {
    flag.or(config)
        .map(Path::to_path_buf)
        .with_context(|| format!("no {what}: pass --out or set output.out in the config"))
}

/// How CUDA gradients of a data-parallel run are reduced (`CFKIT_DIST_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DistBackend {
    /// NCCL where this build has it, else Gloo through host memory.
    Nccl,
    /// Gloo through host memory even where NCCL is available.
    Gloo,
}

impl DistBackend {
    fn from_env(env: &Env) -> Result<Self> {
        match env.get("CFKIT_DIST_BACKEND").as_deref() {
            None | Some("nccl") => Ok(DistBackend::Nccl),
            Some("gloo") => Ok(DistBackend::Gloo),
            Some(other) => {
                anyhow::bail!("CFKIT_DIST_BACKEND='{other}': expected nccl or gloo")
            }
        }
    }
}

/// The device of a training process: the config's, except that a rank of a data-parallel run
/// whose config leaves the CUDA index open (`auto`, `cuda`) takes its own GPU,
/// `cuda:LOCAL_RANK`.
fn train_device(spec: DeviceSpec, data_parallel: bool, env: &Env) -> Result<tch::Device> {
    let device = spec.resolve()?;
    if !data_parallel {
        return Ok(device);
    }
    let local_rank = match env.get("LOCAL_RANK") {
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|_| anyhow::anyhow!("LOCAL_RANK='{v}' is not a non-negative integer"))?,
        ),
        None => None,
    };
    Ok(match (device, local_rank) {
        (tch::Device::Cuda(_), Some(l)) if spec.cuda_index_open() => {
            DeviceSpec::Cuda(Some(l)).resolve()?
        }
        _ => device,
    })
}

/// How `cfkit train` runs `cfg`: the run directory, this process's device and place in a
/// data-parallel run (from the launcher's environment), and the output switches.
pub(crate) fn train_options(a: &TrainArgs, cfg: &TrainConfig, env: &Env) -> Result<TrainOptions> {
    let out = output_dir(a.out.as_deref(), cfg.output.out.as_deref(), "run directory")?;
    if !(a.dist_timeout.is_finite() && a.dist_timeout > 0.0) {
        anyhow::bail!("--dist-timeout must be a positive number of seconds");
    }
    let timeout = Duration::from_secs_f64(a.dist_timeout);
    let dist = DistConfig::from_launcher(|k| env.get(k), timeout)?;
    let device = train_device(cfg.train.device, dist.is_some(), env)?;
    let dist = match dist {
        Some(d) => Some(DistConfig {
            nccl: device.is_cuda()
                && cfkit_distributed::nccl_available()
                && DistBackend::from_env(env)? == DistBackend::Nccl,
            ..d
        }),
        None => None,
    };
    Ok(TrainOptions {
        out,
        resume: a.resume,
        quiet: a.quiet,
        profile: a.profile,
        device,
        dist,
    })
}

/// A counterfactual build as `cfkit build-counterfactuals` runs it.
pub(crate) struct Build {
    pub cfg: BuildConfig,
    pub out: PathBuf,
    pub opts: RunOptions,
}

/// The build of `a`: its config (with `--set`), output directory, device, this process's worker
/// (flags, else the launcher's environment) and pipelining.
pub(crate) fn build(a: &BuildArgs, env: &Env) -> Result<Build> {
    let cfg = BuildConfig::load_with(&a.config, &a.set)?;
    let out = output_dir(
        a.out.as_deref(),
        cfg.output.out.as_deref(),
        "output directory",
    )?;
    let (workers, worker_source) =
        Workers::resolve(a.num_workers, a.worker_index, |name| env.get(name))?;
    let device = cfg.counterfactuals.device.resolve()?;
    // `auto` precision as this machine resolves it, so the build's record and hash say what its
    // teacher computed in.
    let mut cfg = cfg;
    cfg.counterfactuals.precision = cfg.counterfactuals.precision.resolve(device);
    let pipelining = match a.pipeline {
        PipelineArg::Auto => Pipelining::Auto,
        PipelineArg::On => Pipelining::On,
        PipelineArg::Off => Pipelining::Off,
    };
    Ok(Build {
        opts: RunOptions {
            quiet: a.quiet,
            workers,
            worker_source,
            pipelining,
            device,
        },
        cfg,
        out,
    })
}

/// The device `eval` and `wise-ft` score on (and a check of their batch size).
pub(crate) fn scoring_device(a: &ScoringArgs) -> Result<tch::Device> {
    if a.batch_size == 0 {
        anyhow::bail!("--batch-size must be > 0");
    }
    Ok(a.device.resolve()?)
}

/// Shard sizes of `prepare` and `demo-data`.
pub(crate) fn shard_output(a: &ShardArgs) -> Result<OutputOptions> {
    if a.rows_per_shard == 0 || a.row_group_bytes == 0 {
        anyhow::bail!("--rows-per-shard and --row-group-bytes must be > 0");
    }
    Ok(OutputOptions {
        rows_per_shard: a.rows_per_shard,
        row_group_bytes: a.row_group_bytes,
        quiet: a.quiet,
    })
}

/// The options of `cfkit prepare`.
pub(crate) fn prepare(a: &PrepareArgs) -> Result<PrepareOptions> {
    if !(0.0..=1.0).contains(&a.max_bad_fraction) {
        anyhow::bail!(
            "--max-bad-fraction must lie in [0, 1], got {}",
            a.max_bad_fraction
        );
    }
    if a.image_size == 0 {
        anyhow::bail!("--image-size must be > 0");
    }
    if a.holdout_split.is_some() && a.holdout == 0 {
        anyhow::bail!("--holdout-split names the split of --holdout N: give --holdout too");
    }
    Ok(PrepareOptions {
        split: a.split.clone(),
        image_size: a.image_size,
        max_pixels: a.max_pixels,
        border_crop: a.border_crop,
        max_bad_fraction: a.max_bad_fraction,
        output: shard_output(&a.shards)?,
        shuffle_seed: (a.order == RowOrder::Shuffled).then_some(a.seed),
        holdout: (a.holdout > 0).then(|| HoldoutSpec {
            rows: a.holdout,
            split: a
                .holdout_split
                .clone()
                .unwrap_or_else(|| format!("{}-holdout", a.split)),
            seed: a.seed,
        }),
        resize: prepare_resize(a),
    })
}

/// `prepare`'s --resize-mode, --interpolation and --fill as the datasets record them.
fn prepare_resize(a: &PrepareArgs) -> cfkit_schemas::Resize {
    use crate::cli::data::{InterpolationArg, ResizeModeArg};
    use cfkit_schemas::{Interpolation, Resize, ResizeMode};
    Resize {
        mode: match a.resize_mode {
            ResizeModeArg::Shortest => ResizeMode::Shortest,
            ResizeModeArg::Longest => ResizeMode::Longest,
            ResizeModeArg::Squash => ResizeMode::Squash,
        },
        interpolation: match a.interpolation {
            InterpolationArg::Bicubic => Interpolation::Bicubic,
            InterpolationArg::Bilinear => Interpolation::Bilinear,
        },
        fill: a.fill,
    }
}

/// The BPE merges file of `zeroshot-head`: `--vocab`, else `CFKIT_BPE_VOCAB`, else open_clip's
/// copy in the active virtualenv or this project's `.venv`.
pub(crate) fn vocab(flag: Option<PathBuf>, env: &Env) -> Result<PathBuf> {
    if let Some(v) = flag.or_else(|| env.get("CFKIT_BPE_VOCAB").map(PathBuf::from)) {
        return Ok(v);
    }
    let active = env.get("VIRTUAL_ENV").map(PathBuf::from);
    Ok(cfkit_models::Tokenizer::discover(active.as_deref())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_out_flag_wins_over_the_config() {
        let (flag, cfg) = (Path::new("flag"), Path::new("cfg"));
        assert_eq!(output_dir(Some(flag), Some(cfg), "x").unwrap(), flag);
        assert_eq!(output_dir(None, Some(cfg), "x").unwrap(), cfg);
        let e = output_dir(None, None, "run directory")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no run directory: pass --out"), "{e}");
    }

    #[test]
    fn ranks_take_their_local_gpu_only_when_the_config_leaves_it_open() {
        // On CPU the rank's device is the CPU whatever LOCAL_RANK says.
        let env = Env::of(&[("LOCAL_RANK", "1")]);
        assert_eq!(
            train_device(DeviceSpec::Cpu, true, &env).unwrap(),
            tch::Device::Cpu
        );
        let bad = Env::of(&[("LOCAL_RANK", "x")]);
        let e = train_device(DeviceSpec::Cpu, true, &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("LOCAL_RANK='x'"), "{e}");
        assert_eq!(
            DistBackend::from_env(&Env::of(&[("CFKIT_DIST_BACKEND", "gloo")])).unwrap(),
            DistBackend::Gloo
        );
        assert!(DistBackend::from_env(&Env::of(&[("CFKIT_DIST_BACKEND", "mpi")])).is_err());
    }
}
