//! cfkit-counterfactual: the paper's method on top of the models (DESIGN §3) — class-activation
//! maps ([`cam`]: MMCAM, GradCAM, attention rollout), mask strategies ([`strategy`]), seeded draws
//! of masks and donors ([`draw`], [`rng`]), refill and recomposition on uint8 pixels
//! ([`refill`]), token drop for no-fill strategies ([`token_drop`]) and the counterfactual step
//! ([`step`]) that the offline builder (cfkit-pipeline) and the trainer's online mode
//! (cfkit-trainer) both run, so that the two draw the same samples for the same model, batch and
//! seed.
//!
//! Also here, because they exercise the models and the CAMs together: the installation check of
//! `cfkit doctor` ([`doctor`]) and the check against the PyTorch parity fixtures ([`parity`]).

pub mod batch_draw;
pub mod cam;
pub mod doctor;
pub mod draw;
pub mod error;
pub mod parity;
pub mod refill;
pub mod rng;
pub mod rows;
pub mod step;
pub mod strategy;
pub mod teacher_batch;
pub mod token_drop;

pub use cam::{compute_cam, CamMethod};
pub use error::{CounterfactualError, Result};
pub use rows::rows_f32;
pub use strategy::Strategy;
