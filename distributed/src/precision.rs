//! Numeric precision of training (`[train] precision`) and of the counterfactual builder's teacher
//! passes (`[counterfactuals] precision`):
//!
//! * `bf16`: bfloat16 autocast around forward and loss (`torch.autocast(device,
//!   dtype=torch.bfloat16)`: matmuls, linear layers and convolutions in bfloat16; weights,
//!   optimizer state, reductions, softmax, norms and the losses in float32), with TF32 for the
//!   float32 matmuls that remain. On the CPU it runs through libtorch's CPU autocast (slow without
//!   bf16 hardware; it is there to check the path, not to train). CAMs are reduced and compared
//!   with their thresholds in float32 either way.
//! * `tf32`: float32 with TF32 tensor-core matmuls and convolutions on NVIDIA GPUs (10-bit
//!   mantissa products, float32 accumulation): what PyTorch 1.7–1.11 did by default, so what the
//!   paper's reference (PyTorch 1.11) trained with. Plain float32 on the CPU.
//! * `fp32`: IEEE float32 throughout (TF32 off).
//! * `auto` (the default): `bf16` on CUDA, `fp32` elsewhere — what a GPU user expects; the run
//!   records (and hashes) the precision it resolved to, so a run begun on a GPU is not resumed in
//!   another precision.

use serde::{Deserialize, Serialize};
use tch::Device;

/// The precision of a run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// bf16 on CUDA, fp32 elsewhere.
    #[default]
    Auto,
    Fp32,
    Tf32,
    Bf16,
}

impl Precision {
    /// The precision a run on `device` uses (`auto` resolved).
    pub fn resolve(self, device: Device) -> Precision {
        match self {
            Precision::Auto if device.is_cuda() => Precision::Bf16,
            Precision::Auto => Precision::Fp32,
            p => p,
        }
    }

    /// Sets libtorch up for this precision on `device` (TF32 switches, process-wide) and returns
    /// the device to autocast the step for (`None`: no autocast).
    pub fn prepare(self, device: Device) -> Option<Device> {
        crate::aten::set_tf32(self.tf32(device));
        self.autocast(device)
    }

    /// Whether TF32 is allowed for float32 matmuls and convolutions (all but `fp32`).
    pub fn tf32(self, device: Device) -> bool {
        self.resolve(device) != Precision::Fp32
    }

    /// The device to autocast the step for in bfloat16 (`bf16` only).
    pub fn autocast(self, device: Device) -> Option<Device> {
        (self.resolve(device) == Precision::Bf16).then_some(device)
    }

    /// Whether this is `fp32` (what a config that does not name a precision meant before
    /// precisions existed: such configs keep their hashes).
    pub fn is_fp32(&self) -> bool {
        *self == Precision::Fp32
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_bf16_on_cuda_and_fp32_elsewhere() {
        assert_eq!(Precision::default(), Precision::Auto);
        assert_eq!(Precision::Auto.resolve(Device::Cuda(0)), Precision::Bf16);
        assert_eq!(Precision::Auto.resolve(Device::Cpu), Precision::Fp32);
        for p in [Precision::Fp32, Precision::Tf32, Precision::Bf16] {
            assert_eq!(p.resolve(Device::Cuda(0)), p);
            assert_eq!(p.resolve(Device::Cpu), p);
        }
        let toml: std::collections::BTreeMap<String, Precision> =
            toml::from_str("a = \"auto\"\nb = \"tf32\"").unwrap();
        assert_eq!(toml["b"], Precision::Tf32);
        assert!(
            toml::from_str::<std::collections::BTreeMap<String, Precision>>("a = \"fp16\"")
                .is_err()
        );
    }

    #[test]
    fn tf32_everywhere_but_fp32_and_autocast_for_bf16_only() {
        let gpu = Device::Cuda(0);
        assert!(!Precision::Fp32.tf32(gpu));
        assert!(
            Precision::Tf32.tf32(gpu) && Precision::Bf16.tf32(gpu) && Precision::Auto.tf32(gpu)
        );
        assert!(
            !Precision::Auto.tf32(Device::Cpu),
            "auto is fp32 on the CPU"
        );
        assert_eq!(Precision::Bf16.autocast(Device::Cpu), Some(Device::Cpu));
        assert_eq!(Precision::Auto.autocast(gpu), Some(gpu));
        assert_eq!(Precision::Auto.autocast(Device::Cpu), None);
        assert_eq!(Precision::Tf32.autocast(gpu), None);
    }
}
