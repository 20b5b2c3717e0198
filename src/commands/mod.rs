//! The commands: each takes its parsed arguments (and the environment, where the settings layer
//! needs it), resolves its settings, calls the libraries and prints what they report.

pub mod build;
pub mod data;
pub mod model;
mod suite;
pub mod train;
