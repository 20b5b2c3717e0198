//! Which device a command runs on: a [`DeviceSpec`] as users write it (`auto`, `cpu`, `cuda`,
//! `cuda:N`; in configs and on the command line), resolved once, at the edge, into the
//! `tch::Device` the libraries take.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// A device as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// CUDA device 0 when one is visible, else the CPU.
    #[default]
    Auto,
    Cpu,
    /// `cuda` (`None`: device 0) or `cuda:N`.
    Cuda(Option<usize>),
}

impl DeviceSpec {
    /// The device to run on; a CUDA device that is not visible is an error naming the count.
    pub fn resolve(self) -> Result<tch::Device> {
        match self {
            DeviceSpec::Auto => Ok(tch::Device::cuda_if_available()),
            DeviceSpec::Cpu => Ok(tch::Device::Cpu),
            DeviceSpec::Cuda(i) => {
                let i = i.unwrap_or(0);
                let n = tch::Cuda::device_count() as usize;
                if i >= n {
                    return Err(ModelError::Input(format!(
                        "device cuda:{i} requested but {n} CUDA device(s) are visible"
                    )));
                }
                Ok(tch::Device::Cuda(i))
            }
        }
    }

    /// Whether the spec leaves the CUDA device to the run (`auto` or plain `cuda`): a rank of a
    /// data-parallel run then takes its own, `cuda:LOCAL_RANK`.
    pub fn cuda_index_open(self) -> bool {
        matches!(self, DeviceSpec::Auto | DeviceSpec::Cuda(None))
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => f.write_str("auto"),
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(None) => f.write_str("cuda"),
            DeviceSpec::Cuda(Some(i)) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(None)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|i| i.parse::<usize>().ok())
                .map(|i| DeviceSpec::Cuda(Some(i)))
                .ok_or_else(|| {
                    ModelError::Input(format!(
                        "unknown device '{other}' (expected auto, cpu, cuda or cuda:N)"
                    ))
                }),
        }
    }
}

impl schemars::JsonSchema for DeviceSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DeviceSpec".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "auto (CUDA when available, else the CPU), cpu, cuda or cuda:N",
        })
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_as_users_write_them() {
        for s in ["auto", "cpu", "cuda", "cuda:3"] {
            assert_eq!(s.parse::<DeviceSpec>().unwrap().to_string(), s);
        }
        let e = "gpu".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(e.contains("unknown device 'gpu'"), "{e}");
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert_eq!(DeviceSpec::Cpu.resolve().unwrap(), tch::Device::Cpu);
        assert!(DeviceSpec::Cuda(Some(99)).resolve().is_err());
    }
}
