//! ATen operations tch does not bind (they take lists of tensors), through `src/aten_ops.cpp`.

use tch::{Device, Kind, Tensor};

use crate::{DistError, Result};

/// One optimizer step over `params` with their gradients and AdamW state (all lists in the same
/// order, state tensors on each parameter's device; `steps` are 0-dim float32 counts, advanced by
/// the step): the gradients are clipped to a global L2 norm of `max_norm` (`None`: not clipped) as
/// `torch.nn.utils.clip_grad_norm_(foreach=True)` does, then every parameter is updated by
/// libtorch's fused AdamW kernel (`torch.optim.AdamW(fused=True)`). Nothing is read back to the
/// host.
pub struct AdamwStep<'a> {
    pub params: &'a [Tensor],
    pub grads: &'a [Tensor],
    pub exp_avgs: &'a [Tensor],
    pub exp_avg_sqs: &'a [Tensor],
    pub steps: &'a [Tensor],
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub eps: f64,
    pub max_norm: Option<f64>,
}

impl AdamwStep<'_> {
    /// Runs the step; returns the global gradient norm before clipping (0-dim float32 on the
    /// first parameter's device; read it when it is needed, not every step).
    pub fn run(&self) -> Result<Tensor> {
        let device = self.params.first().map_or(Device::Cpu, Tensor::device);
        let mut norm = Tensor::zeros([], (Kind::Float, device));
        crate::ffi::adamw_step(
            [
                self.params,
                self.grads,
                self.exp_avgs,
                self.exp_avg_sqs,
                self.steps,
            ],
            [
                self.lr,
                self.beta1,
                self.beta2,
                self.weight_decay,
                self.eps,
                self.max_norm.unwrap_or(0.0),
            ],
            &mut norm,
        )
        .map_err(DistError::Aten)?;
        Ok(norm)
    }
}

/// TF32 for the float32 matmuls (cuBLAS) and convolutions (cuDNN) that remain on an NVIDIA GPU:
/// libtorch's switches (`torch.backends.cuda.matmul.allow_tf32`, `torch.backends.cudnn.allow_tf32`;
/// PyTorch 1.7–1.11 had both on by default, later versions only cuDNN's). Process-wide; a CPU run
/// is unaffected. Returns the previous (matmul, cuDNN) state.
pub fn set_tf32(on: bool) -> (bool, bool) {
    let before = crate::ffi::set_tf32(None, None);
    crate::ffi::set_tf32(Some(on), Some(on));
    before
}

/// libtorch's TF32 switches now: (cuBLAS matmuls, cuDNN convolutions).
pub fn tf32() -> (bool, bool) {
    crate::ffi::set_tf32(None, None)
}

/// `c10::ScalarType::BFloat16` (c10/core/ScalarType.h).
const SCALAR_BFLOAT16: i32 = 15;

/// Runs `f` under bfloat16 autocast for `device` (`torch.autocast(device.type,
/// dtype=torch.bfloat16)`): matmuls, linear layers and convolutions in bfloat16, reductions,
/// softmax, norms and losses in float32, weights kept in float32. On the CPU this needs a libtorch
/// with CPU autocast (2.x has it); slow without bf16 hardware, but the same arithmetic. `None`:
/// `f` as is. The region ends (and its cast cache is dropped) when `f` returns or unwinds.
pub fn autocast_bf16<T>(device: Option<Device>, f: impl FnOnce() -> T) -> T {
    let Some(device) = device else {
        return f();
    };
    struct Region {
        cuda: bool,
        prev: i32,
    }
    impl Drop for Region {
        fn drop(&mut self) {
            crate::ffi::autocast_exit(self.cuda, self.prev);
        }
    }
    let cuda = device.is_cuda();
    let _region = Region {
        cuda,
        prev: crate::ffi::autocast_enter(cuda, SCALAR_BFLOAT16),
    };
    f()
}

/// Runs `f` with autocast off for `device`'s type on this thread (inside an autocast region: the
/// float32 parts of a computation, as `torch.autocast(..., enabled=False)` nested in one), then
/// restores it.
pub fn without_autocast<T>(device: Device, f: impl FnOnce() -> T) -> T {
    struct Restore {
        cuda: bool,
        was: bool,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            crate::ffi::autocast_set_enabled(self.cuda, self.was);
        }
    }
    let cuda = device.is_cuda();
    let _restore = Restore {
        cuda,
        was: crate::ffi::autocast_set_enabled(cuda, false),
    };
    f()
}

/// Whether bfloat16 autocast is on for `device` on this thread.
pub fn autocast_bf16_enabled(device: Device) -> bool {
    let (dtype, on) = crate::ffi::autocast_state(device.is_cuda());
    on && dtype == SCALAR_BFLOAT16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_autocast_casts_cpu_matmuls_and_ends_with_its_region() {
        let a = Tensor::ones([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::ones([8, 2], (Kind::Float, Device::Cpu));
        assert!(!autocast_bf16_enabled(Device::Cpu));
        let (inside, nested) = autocast_bf16(Some(Device::Cpu), || {
            let nested = autocast_bf16(Some(Device::Cpu), || a.matmul(&b).kind());
            (a.matmul(&b), nested)
        });
        assert_eq!(inside.kind(), Kind::BFloat16);
        assert_eq!(nested, Kind::BFloat16);
        // Reductions stay float32 under autocast (torch's fp32 list).
        let sum = autocast_bf16(Some(Device::Cpu), || {
            inside.to_kind(Kind::Float).softmax(-1, None)
        });
        assert_eq!(sum.kind(), Kind::Float);
        assert!(!autocast_bf16_enabled(Device::Cpu), "the region closed");
        assert_eq!(a.matmul(&b).kind(), Kind::Float);
        assert_eq!(autocast_bf16(None, || a.matmul(&b).kind()), Kind::Float);
        // A float32 island inside a region, and the region goes on after it.
        let (island, after) = autocast_bf16(Some(Device::Cpu), || {
            let island = without_autocast(Device::Cpu, || a.matmul(&b).kind());
            (island, a.matmul(&b).kind())
        });
        assert_eq!((island, after), (Kind::Float, Kind::BFloat16));
        assert!(!autocast_bf16_enabled(Device::Cpu));
    }

    #[test]
    fn tf32_switches_are_libtorchs_and_round_trip() {
        let before = tf32();
        // libtorch's defaults since 1.12: matmul off, cuDNN on.
        assert_eq!(before, (false, true));
        assert_eq!(set_tf32(true), before);
        assert_eq!(tf32(), (true, true));
        set_tf32(false);
        assert_eq!(tf32(), (false, false));
        crate::ffi::set_tf32(Some(before.0), Some(before.1));
        assert_eq!(tf32(), before);
    }
}
