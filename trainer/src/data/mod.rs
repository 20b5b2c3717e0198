//! Streaming data for training and evaluation: a split of a shard dataset ([`SplitSource`]), the
//! deterministic row order of an epoch and the stratified validation hold-out ([`plan`]), how well
//! an order mixes classes ([`mixing`]), and the
//! background loader that decodes batches ahead of the training step ([`stream`]).

mod compact;
pub mod mixing;
pub mod plan;
pub mod source;
pub mod stream;
pub mod targets;
pub mod upload;

pub use plan::{epoch_order, stratified_holdout, RowRef};
pub use source::SplitSource;
pub use stream::{Batch, BatchStream, ModelInput, Skipped};
pub use targets::{BatchExtras, StoredStrategy, TargetSpec, Targets};
