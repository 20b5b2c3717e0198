//! cfkit-config: how a run's config file becomes a typed, validated value.
//!
//! * [`load`]: the one loader of every TOML config (`cfkit build-counterfactuals`, `cfkit
//!   train`): `--set section.key=value` overrides ([`overrides`]), then typed deserialisation
//!   (unknown keys refused), relative paths resolved against the file's directory and normalised
//!   ([`paths`]), then the config's own checks — each failure a [`ConfigError`] that names the
//!   file, the key or the `--set` item.
//!
//! A config's identity hash is `cfkit_schemas::identity_hash` of it (the one definition every
//! recorded hash uses).

pub mod error;
pub mod load;
pub mod overrides;
pub mod paths;

pub use error::{ConfigError, Result};
pub use load::{load, ConfigFile};
