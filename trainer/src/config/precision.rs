//! Numeric precision of the training step: fp32 (the paper recipe), or bf16 autocast on CUDA
//! (matmuls and convolutions in bfloat16, weights, optimizer state and reductions in fp32, as
//! `torch.autocast("cuda", dtype=torch.bfloat16)`).
//!
//! tch enables CUDA autocast (`tch::autocast`) but always with libtorch's default dtype, float16.
//! libtorch 2.13 exports `at::autocast::set_autocast_dtype(c10::DeviceType, c10::ScalarType)`;
//! tch has no binding for it, so it is declared here by its Itanium-mangled name. Both enums are
//! `int8_t`-based (`c10/core/DeviceType.h`: CUDA = 1; `c10/core/ScalarType.h`: Half = 5,
//! BFloat16 = 15), which the C calling convention passes as `i8`. The libtorch version is pinned
//! (tools/requirements.txt), and a test checks the binding round-trips.

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::error::{Result, TrainError};

/// `c10::DeviceType::CUDA`.
const DEVICE_CUDA: i8 = 1;
/// `c10::ScalarType::Half`.
#[cfg(test)]
const SCALAR_HALF: i8 = 5;
/// `c10::ScalarType::BFloat16`.
pub(crate) const SCALAR_BFLOAT16: i8 = 15;

extern "C" {
    #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
    fn at_autocast_set_dtype(device: i8, dtype: i8);
    #[cfg(test)]
    #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
    fn at_autocast_get_dtype(device: i8) -> i8;
}

/// Sets the dtype CUDA autocast casts to (a `c10::ScalarType` code).
#[allow(unsafe_code)] // the workspace denies it; this FFI call is the one exception
pub(crate) fn set_cuda_autocast_dtype(dtype: i8) {
    // SAFETY: plain setter of a global in libtorch, valid for any ScalarType code we pass.
    unsafe { at_autocast_set_dtype(DEVICE_CUDA, dtype) }
}

/// The dtype CUDA autocast casts to (a `c10::ScalarType` code).
#[allow(unsafe_code)] // the workspace denies it; this FFI call is the one exception
#[cfg(test)]
pub(crate) fn cuda_autocast_dtype() -> i8 {
    // SAFETY: plain getter of a global in libtorch.
    unsafe { at_autocast_get_dtype(DEVICE_CUDA) }
}

/// The precision of a run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
}

impl Precision {
    /// Checks the precision against the device and sets autocast up; returns whether the step
    /// runs under autocast.
    pub fn prepare(self, device: Device) -> Result<bool> {
        match self {
            Precision::Fp32 => Ok(false),
            Precision::Bf16 if device.is_cuda() => {
                set_cuda_autocast_dtype(SCALAR_BFLOAT16);
                Ok(true)
            }
            Precision::Bf16 => Err(TrainError::Config(format!(
                "[train] precision = \"bf16\" is autocast on CUDA; the run's device is {device:?} (use fp32)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autocast_dtype_binding_round_trips() {
        let before = cuda_autocast_dtype();
        assert_eq!(
            before, SCALAR_HALF,
            "libtorch's default CUDA autocast dtype is float16"
        );
        set_cuda_autocast_dtype(SCALAR_BFLOAT16);
        assert_eq!(cuda_autocast_dtype(), SCALAR_BFLOAT16);
        set_cuda_autocast_dtype(before);
        assert_eq!(cuda_autocast_dtype(), before);
        assert!(Precision::Bf16.prepare(Device::Cpu).is_err());
        assert!(!Precision::Fp32.prepare(Device::Cpu).unwrap());
    }
}
