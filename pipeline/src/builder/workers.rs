//! How a counterfactual build runs — which worker's part, whether stages overlap, progress
//! output. Nothing here changes the data written (so none of it enters the config hash).

use cfkit_schemas::layout::MANIFEST_FILE;

use crate::error::{PipelineError, Result};

/// Where a worker's index and count came from (recorded in its run record).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerSource {
    /// `--worker-index` / `--num-workers`.
    Flags,
    /// A Slurm job array: `SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT`.
    SlurmArray,
    /// A Kubernetes Indexed Job: `JOB_COMPLETION_INDEX`, with the count from `--num-workers`.
    KubernetesIndexedJob,
    /// torchrun / `srun` ranks: `RANK` of `WORLD_SIZE`.
    Rank,
    /// None of the above: the only worker.
    Single,
}

impl Workers {
    /// The worker of this process: the flags when `--worker-index` is given, else the launcher's
    /// environment (read through `env`), else the only worker. `num_workers` (the flag) also
    /// gives the count of a Kubernetes Indexed Job, which does not export it.
    pub fn resolve(
        num_workers: Option<usize>,
        worker_index: Option<usize>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Self, WorkerSource)> {
        let num = |name: &str| -> Result<Option<usize>> {
            env(name)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| {
                        PipelineError::Input(format!(
                            "environment variable {name}='{v}' is not a non-negative integer"
                        ))
                    })
                })
                .transpose()
        };
        if let Some(index) = worker_index {
            return Ok((
                Self::new(num_workers.unwrap_or(1), index)?,
                WorkerSource::Flags,
            ));
        }
        if let (Some(id), Some(count)) =
            (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?)
        {
            // Arrays may start anywhere (`--array=1-4`): the index counts from the first task.
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let index = id.checked_sub(min).ok_or_else(|| {
                PipelineError::Input(format!(
                    "SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"
                ))
            })?;
            return Ok((Self::new(count, index)?, WorkerSource::SlurmArray));
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = num_workers.ok_or_else(|| {
                PipelineError::Input(
                    "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but not the number of \
                     workers: pass --num-workers (the Job's completions)"
                        .into(),
                )
            })?;
            return Ok((Self::new(count, index)?, WorkerSource::KubernetesIndexedJob));
        }
        if let (Some(rank), Some(world)) = (num("RANK")?, num("WORLD_SIZE")?) {
            return Ok((Self::new(world, rank)?, WorkerSource::Rank));
        }
        match num_workers {
            Some(n) if n > 1 => Err(PipelineError::Input(format!(
                "--num-workers {n} without --worker-index, and no launcher's index in the \
                 environment (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or RANK)"
            ))),
            _ => Ok((Self::default(), WorkerSource::Single)),
        }
    }

    /// The completion marker of this worker (written last, when every shard of the worker is
    /// in its manifest part): `done.json`, or `done.worker-I-of-N.json`.
    pub(crate) fn done_name(&self) -> String {
        if self.count == 1 {
            "done.json".into()
        } else {
            format!("done.worker-{:05}-of-{:05}.json", self.index, self.count)
        }
    }
}

/// Which part of the input this process builds: worker `index` of `count` takes the `index`-th
/// of `count` equal runs of the split's batches ([`crate::builder::pieces`]). Workers share the
/// output directory and the config hash; each writes its own manifest part
/// (`manifest.worker-I-of-N.json`), joined by [`crate::builder::merge::merge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workers {
    pub count: usize,
    pub index: usize,
}

impl Default for Workers {
    fn default() -> Self {
        Workers { count: 1, index: 0 }
    }
}

impl Workers {
    pub fn new(count: usize, index: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(PipelineError::Input(format!(
                "--worker-index {index} must lie in 0..--num-workers ({count})"
            )));
        }
        Ok(Workers { count, index })
    }

    /// `manifest.json` for a single worker, else the worker's part.
    pub(crate) fn manifest_name(&self) -> String {
        if self.count == 1 {
            MANIFEST_FILE.to_string()
        } else {
            cfkit_schemas::layout::worker_manifest_name(self.index, self.count)
        }
    }

    /// The suffix of this worker's lock file (workers share the output directory, each holds
    /// its own lock; a single worker holds the directory's).
    pub(crate) fn lock_suffix(&self) -> String {
        if self.count == 1 {
            String::new()
        } else {
            format!(".worker-{:05}-of-{:05}", self.index, self.count)
        }
    }

    pub(crate) fn run_name(&self) -> String {
        if self.count == 1 {
            "run.json".into()
        } else {
            format!("run.worker-{:05}-of-{:05}.json", self.index, self.count)
        }
    }
}

/// Whether the decode / device / encode stages overlap (threads + bounded channels) or run one
/// after the other per batch. Does not change the output, only the speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pipelining {
    /// Overlap on CUDA; sequential on CPU, where the "device" is the same cores that decode and
    /// encode: the device stage is ~96 % of the time there and overlapping gained nothing
    /// (FashionShift demo on 2 cores: 90.3 s sequential, 91.6 s overlapped, identical output).
    #[default]
    Auto,
    On,
    Off,
}

/// How to run a build (nothing here changes the output).
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// The device of the teacher passes, CAMs and draws (the config's `device`, resolved).
    pub device: tch::Device,
    pub quiet: bool,
    pub workers: Workers,
    /// Where `workers` came from (recorded in the run record).
    pub worker_source: WorkerSource,
    pub pipelining: Pipelining,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            device: tch::Device::Cpu,
            quiet: false,
            workers: Workers::default(),
            worker_source: WorkerSource::Single,
            pipelining: Pipelining::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        flags: (Option<usize>, Option<usize>),
        vars: &[(&str, &str)],
    ) -> Result<(Workers, WorkerSource)> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Workers::resolve(flags.0, flags.1, |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn launchers_give_the_worker_and_flags_override_them() {
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ];
        let (w, s) = resolve((None, None), &slurm).unwrap();
        assert_eq!((w.index, w.count, s), (2, 4, WorkerSource::SlurmArray));
        let (w, s) = resolve((Some(8), Some(5)), &slurm).unwrap();
        assert_eq!((w.index, w.count, s), (5, 8, WorkerSource::Flags));
        let k8s = [("JOB_COMPLETION_INDEX", "1")];
        let (w, s) = resolve((Some(3), None), &k8s).unwrap();
        assert_eq!(
            (w.index, w.count, s),
            (1, 3, WorkerSource::KubernetesIndexedJob)
        );
        let e = resolve((None, None), &k8s).unwrap_err().to_string();
        assert!(e.contains("--num-workers"), "{e}");
        let (w, s) = resolve((None, None), &[("RANK", "1"), ("WORLD_SIZE", "2")]).unwrap();
        assert_eq!((w.index, w.count, s), (1, 2, WorkerSource::Rank));
        let (w, s) = resolve((None, None), &[]).unwrap();
        assert_eq!((w.index, w.count, s), (0, 1, WorkerSource::Single));
        assert!(resolve((Some(4), None), &[]).is_err());
        let e = resolve((None, None), &[("RANK", "x"), ("WORLD_SIZE", "2")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("RANK='x'"), "{e}");
        assert!(resolve((None, None), &[("RANK", "2"), ("WORLD_SIZE", "2")]).is_err());
    }
}
