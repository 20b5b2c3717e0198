//! Counterfactual samples (DESIGN §3): deterministic randomness, mask strategies, donors and
//! refill. Shared by the offline builder (pipeline) and the trainer's online mode, so both draw
//! the same masks and donors for the same model, batch and seed.

pub mod draw;
pub mod refill;
pub mod rng;
pub mod step;
pub mod strategy;
pub mod token_drop;
