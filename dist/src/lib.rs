//! Data-parallel building blocks over libtorch's own distributed layer (c10d): a process group
//! from the launcher's environment (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`, as set by
//! `torchrun` or an `srun` wrapper), bucketed gradient all-reduce (mean), broadcast, barrier and
//! a config agreement check. Gloo on CPU, through the C++ shim `src/shim.cpp`. Every collective
//! waits at most the group's timeout, so a rank that dies makes the others fail with an error
//! instead of hanging.

mod ffi;

use std::time::Duration;

use tch::{Kind, Tensor};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// This build has no distributed layer (Gloo headers were missing at build time).
    #[error("the distributed layer is not available in this build: {0}")]
    Unavailable(String),
    /// A launcher variable is missing or malformed.
    #[error("distributed launch: {0}")]
    Env(String),
    /// A collective or the rendezvous failed (a dead rank shows up here, after the timeout).
    #[error("c10d {op} on rank {rank} of {world}: {message}")]
    Collective {
        op: &'static str,
        rank: usize,
        world: usize,
        message: String,
    },
    /// Ranks disagree on something they must share.
    #[error("ranks disagree: {0}")]
    Disagree(String),
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T> = std::result::Result<T, DistError>;

/// Where and how to meet the other ranks.
#[derive(Debug, Clone, PartialEq)]
pub struct DistConfig {
    pub rank: usize,
    pub world: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// Longest wait of any collective (and of the rendezvous).
    pub timeout: Duration,
}

impl DistConfig {
    /// From `RANK`, `WORLD_SIZE`, `MASTER_ADDR` (default 127.0.0.1), `MASTER_PORT` (default
    /// 29500); `None` when `WORLD_SIZE` is unset or 1 (a single process).
    pub fn from_env(timeout: Duration) -> Result<Option<Self>> {
        Self::from_vars(|k| std::env::var(k).ok(), timeout)
    }

    /// [`DistConfig::from_env`] over any variable lookup (tests).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        timeout: Duration,
    ) -> Result<Option<Self>> {
        let parse = |k: &str| -> Result<Option<usize>> {
            var(k)
                .map(|v| {
                    v.trim().parse().map_err(|_| {
                        DistError::Env(format!("{k}='{v}' is not a non-negative integer"))
                    })
                })
                .transpose()
        };
        let world = match parse("WORLD_SIZE")? {
            None | Some(1) => return Ok(None),
            Some(0) => return Err(DistError::Env("WORLD_SIZE=0".into())),
            Some(w) => w,
        };
        let rank = parse("RANK")?
            .ok_or_else(|| DistError::Env(format!("WORLD_SIZE={world} but RANK is not set")))?;
        if rank >= world {
            return Err(DistError::Env(format!(
                "RANK={rank} is not below WORLD_SIZE={world}"
            )));
        }
        let master_port = match var("MASTER_PORT") {
            None => 29500,
            Some(p) => p
                .trim()
                .parse()
                .map_err(|_| DistError::Env(format!("MASTER_PORT='{p}' is not a port number")))?,
        };
        Ok(Some(DistConfig {
            rank,
            world,
            master_addr: var("MASTER_ADDR").unwrap_or_else(|| "127.0.0.1".into()),
            master_port,
            timeout,
        }))
    }
}

/// A c10d process group (Gloo).
pub struct ProcessGroup {
    group: ffi::Group,
    pub rank: usize,
    pub world: usize,
}

impl ProcessGroup {
    /// Meets the other ranks (rank 0 hosts the TCP store) and sets up Gloo.
    pub fn init(cfg: &DistConfig) -> Result<Self> {
        let group = ffi::Group::init(cfg).map_err(|message| match message {
            ffi::InitError::Unavailable(m) => DistError::Unavailable(m),
            ffi::InitError::Failed(message) => DistError::Collective {
                op: "rendezvous",
                rank: cfg.rank,
                world: cfg.world,
                message,
            },
        })?;
        Ok(ProcessGroup {
            group,
            rank: cfg.rank,
            world: cfg.world,
        })
    }

    fn failed(&self, op: &'static str, message: String) -> DistError {
        DistError::Collective {
            op,
            rank: self.rank,
            world: self.world,
            message,
        }
    }

    /// Sums `t` (a contiguous CPU tensor) over the ranks, in place.
    pub fn all_reduce_sum(&self, t: &mut Tensor) -> Result<()> {
        self.group
            .all_reduce_sum(t)
            .map_err(|m| self.failed("allreduce", m))
    }

    /// Replaces `t` with rank `root`'s, in place.
    pub fn broadcast(&self, t: &mut Tensor, root: usize) -> Result<()> {
        self.group
            .broadcast(t, root)
            .map_err(|m| self.failed("broadcast", m))
    }

    /// Waits for every rank.
    pub fn barrier(&self) -> Result<()> {
        self.group.barrier().map_err(|m| self.failed("barrier", m))
    }

    /// Averages `tensors` over the ranks (e.g. gradients), in buckets of about `bucket_bytes`:
    /// each bucket is flattened into one f32 buffer, summed by one all-reduce, divided by the
    /// world size and copied back. Every rank must pass the same shapes in the same order.
    pub fn all_reduce_mean(&self, tensors: &[Tensor], bucket_bytes: usize) -> Result<()> {
        let _g = tch::no_grad_guard();
        let mut start = 0;
        while start < tensors.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < tensors.len()
                && (end == start || bytes + 4 * tensors[end].numel() <= bucket_bytes)
            {
                bytes += 4 * tensors[end].numel();
                end += 1;
            }
            let parts: Vec<Tensor> = tensors[start..end]
                .iter()
                .map(|t| t.to_kind(Kind::Float).reshape([-1]))
                .collect();
            let mut flat = Tensor::cat(&parts, 0).contiguous();
            self.all_reduce_sum(&mut flat)?;
            let flat = flat / self.world as f64;
            let mut offset = 0i64;
            for t in &tensors[start..end] {
                let n = t.numel() as i64;
                let part = flat
                    .narrow(0, offset, n)
                    .reshape(t.size())
                    .to_kind(t.kind());
                t.shallow_clone().f_copy_(&part)?;
                offset += n;
            }
            start = end;
        }
        Ok(())
    }

    /// Checks that every rank holds the same `value` (e.g. the config hash): rank 0's bytes are
    /// broadcast and compared; a rank that differs fails naming both values.
    pub fn agree(&self, what: &str, value: &str) -> Result<()> {
        let bytes: Vec<f32> = value.bytes().map(f32::from).collect();
        let mut len = Tensor::from_slice(&[bytes.len() as f32]);
        self.broadcast(&mut len, 0)?;
        let n = len.double_value(&[0]) as usize;
        let mut t = if n == bytes.len() {
            Tensor::from_slice(&bytes)
        } else {
            Tensor::zeros([n as i64], (Kind::Float, tch::Device::Cpu))
        };
        self.broadcast(&mut t, 0)?;
        let theirs: Vec<f32> = Vec::<f32>::try_from(&t)?;
        let theirs: String = theirs.iter().map(|&b| b as u8 as char).collect();
        if theirs != value {
            return Err(DistError::Disagree(format!(
                "{what}: rank 0 has '{theirs}', rank {} has '{value}'",
                self.rank
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn config_comes_from_the_launchers_variables() {
        let t = Duration::from_secs(5);
        assert_eq!(DistConfig::from_vars(vars(&[]), t).unwrap(), None);
        assert_eq!(
            DistConfig::from_vars(vars(&[("WORLD_SIZE", "1")]), t).unwrap(),
            None
        );
        let c = DistConfig::from_vars(
            vars(&[
                ("WORLD_SIZE", "4"),
                ("RANK", "2"),
                ("MASTER_ADDR", "node1"),
                ("MASTER_PORT", "1234"),
            ]),
            t,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.rank, c.world, c.master_addr.as_str(), c.master_port),
            (2, 4, "node1", 1234)
        );
        let e = DistConfig::from_vars(vars(&[("WORLD_SIZE", "2")]), t).unwrap_err();
        assert!(e.to_string().contains("RANK is not set"), "{e}");
        let e = DistConfig::from_vars(vars(&[("WORLD_SIZE", "2"), ("RANK", "2")]), t).unwrap_err();
        assert!(e.to_string().contains("not below"), "{e}");
        let e = DistConfig::from_vars(vars(&[("WORLD_SIZE", "x")]), t).unwrap_err();
        assert!(e.to_string().contains("WORLD_SIZE='x'"), "{e}");
    }
}
