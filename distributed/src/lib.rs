//! Data-parallel building blocks over libtorch's own distributed layer (c10d): a process group
//! from the launcher's environment (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`, as set by
//! `torchrun` or an `srun` wrapper), bucketed gradient all-reduce (mean), broadcast, barrier,
//! an all-gather of messages and a config agreement check, through the C++ shim `src/shim.cpp`:
//! Gloo for CPU tensors and control messages, NCCL for CUDA tensors when built with it (and,
//! in [`aten`], the ATen operations tch does not bind that the optimizer uses). Every
//! collective waits at most the group's timeout, so a rank that dies makes the others fail with
//! an error instead of hanging.

pub mod aten;
mod ffi;
pub mod precision;

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
    #[error("c10d {op} on rank {rank} of {world}: {message} ({})", hint(.op))]
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
    /// An ATen operation of `src/aten_ops.cpp` failed.
    #[error("libtorch: {0}")]
    Aten(String),
}

pub type Result<T> = std::result::Result<T, DistError>;

/// What to look at after a failed collective.
fn hint(op: &str) -> &'static str {
    match op {
        "rendezvous" => {
            "every rank must start, with the same MASTER_ADDR and MASTER_PORT, within the timeout"
        }
        _ => "when another rank failed or died, its own output says why",
    }
}

/// Where and how to meet the other ranks.
#[derive(Debug, Clone, PartialEq)]
pub struct DistConfig {
    pub rank: usize,
    pub world: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// Longest wait of any collective (and of the rendezvous).
    pub timeout: Duration,
    /// Also set up NCCL, for CUDA tensors (see [`nccl_available`]); Gloo carries the rest.
    pub nccl: bool,
}

/// Whether this build has the distributed layer at all (Gloo's headers were found at build time).
pub fn gloo_available() -> bool {
    !cfg!(cfkit_no_gloo)
}

/// Whether this build can reduce CUDA tensors with NCCL (the shim was compiled against NCCL's
/// and CUDA's headers and a CUDA libtorch). Without it CUDA tensors go through host memory.
pub fn nccl_available() -> bool {
    ffi::has_nccl()
}

impl DistConfig {
    /// From the launcher's variables, looked up through `var` (the binary reads them once from
    /// the environment): `RANK`, `WORLD_SIZE`, `MASTER_ADDR` (default 127.0.0.1), `MASTER_PORT`
    /// (default 29500); `None` when `WORLD_SIZE` is unset or 1 (a single process). Whether to
    /// set up NCCL is the caller's choice (`nccl` is false here).
    pub fn from_launcher(
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
            nccl: false,
        }))
    }
}

/// A c10d process group (Gloo).
pub struct ProcessGroup {
    group: ffi::Group,
    pub rank: usize,
    pub world: usize,
    /// CUDA tensors are reduced on the device (NCCL).
    nccl: bool,
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
            nccl: cfg.nccl,
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

    /// The backend that reduces tensors on `device`.
    pub fn backend(&self, device: tch::Device) -> &'static str {
        match device {
            tch::Device::Cuda(_) if self.nccl => "nccl",
            _ => "gloo",
        }
    }

    /// Sums `t` (a contiguous tensor: CPU, or CUDA with NCCL) over the ranks, in place.
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
    /// each bucket is flattened into one f32 buffer (on the device with NCCL, else in host
    /// memory for Gloo), summed by one all-reduce, divided by the world size and copied back.
    /// Every rank must pass the same shapes in the same order.
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
            let device = parts[0].device();
            let via = match self.backend(device) {
                "nccl" => device,
                _ => tch::Device::Cpu,
            };
            let mut flat = Tensor::cat(&parts, 0).to_device(via).contiguous();
            self.all_reduce_sum(&mut flat)?;
            let flat = (flat / self.world as f64).to_device(device);
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
    /// broadcast and compared, and the verdict is shared, so that every rank fails (naming the
    /// values) when any differs, and none waits on a rank that has already given up.
    pub fn agree(&self, what: &str, value: &str) -> Result<()> {
        let mut len = Tensor::from_slice(&[value.len() as i64]);
        self.broadcast(&mut len, 0)?;
        let n = len.int64_value(&[0]) as usize;
        let mut t = if n == value.len() {
            Tensor::from_slice(value.as_bytes())
        } else {
            Tensor::zeros([n as i64], (Kind::Uint8, tch::Device::Cpu))
        };
        self.broadcast(&mut t, 0)?;
        let theirs = String::from_utf8_lossy(&Vec::<u8>::try_from(&t)?).into_owned();
        let differs = theirs != value;
        let mut votes = Tensor::from_slice(&[i64::from(differs)]);
        self.all_reduce_sum(&mut votes)?;
        let dissent = votes.int64_value(&[0]);
        match (differs, dissent) {
            (_, 0) => Ok(()),
            (true, _) => Err(DistError::Disagree(format!(
                "{what}: rank 0 has '{theirs}', rank {} has '{value}'",
                self.rank
            ))),
            (false, k) => Err(DistError::Disagree(format!(
                "{what}: {k} rank(s) differ from rank 0's '{theirs}' (their output names their \
                 values)"
            ))),
        }
    }

    /// Every rank's `bytes`, indexed by rank (an all-gather of variable-length messages: the
    /// lengths, then one buffer with a slot per rank, each summed over the ranks).
    pub fn all_gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut lens = Tensor::zeros([self.world as i64], (Kind::Int64, tch::Device::Cpu));
        let _ = lens.get(self.rank as i64).fill_(bytes.len() as i64);
        self.all_reduce_sum(&mut lens)?;
        let lens: Vec<i64> = Vec::<i64>::try_from(&lens)?;
        let slot = lens.iter().copied().max().unwrap_or(0);
        if slot == 0 {
            return Ok(vec![Vec::new(); self.world]);
        }
        let mut buf = Tensor::zeros([self.world as i64 * slot], (Kind::Uint8, tch::Device::Cpu));
        if !bytes.is_empty() {
            buf.narrow(0, self.rank as i64 * slot, bytes.len() as i64)
                .copy_(&Tensor::from_slice(bytes));
        }
        self.all_reduce_sum(&mut buf)?;
        let all: Vec<u8> = Vec::<u8>::try_from(&buf)?;
        Ok(lens
            .iter()
            .enumerate()
            .map(|(r, &n)| {
                let start = r * slot as usize;
                all[start..start + n as usize].to_vec()
            })
            .collect())
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
        assert_eq!(DistConfig::from_launcher(vars(&[]), t).unwrap(), None);
        assert_eq!(
            DistConfig::from_launcher(vars(&[("WORLD_SIZE", "1")]), t).unwrap(),
            None
        );
        let c = DistConfig::from_launcher(
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
        let e = DistConfig::from_launcher(vars(&[("WORLD_SIZE", "2")]), t).unwrap_err();
        assert!(e.to_string().contains("RANK is not set"), "{e}");
        let e =
            DistConfig::from_launcher(vars(&[("WORLD_SIZE", "2"), ("RANK", "2")]), t).unwrap_err();
        assert!(e.to_string().contains("not below"), "{e}");
        let e = DistConfig::from_launcher(vars(&[("WORLD_SIZE", "x")]), t).unwrap_err();
        assert!(e.to_string().contains("WORLD_SIZE='x'"), "{e}");
    }
}
