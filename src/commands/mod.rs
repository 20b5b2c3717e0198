//! The commands: each takes its parsed arguments (and the environment, where the settings layer
//! needs it), resolves its settings, calls the libraries and prints what they report.

pub(crate) mod build;
pub(crate) mod data;
pub(crate) mod model;
mod suite;
pub(crate) mod train;
