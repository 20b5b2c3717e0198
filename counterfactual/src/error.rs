//! Typed errors of the counterfactual crate.

use cfkit_models::ModelError;

/// Everything that can go wrong computing CAMs, drawing counterfactuals or checking the models.
#[derive(Debug, thiserror::Error)]
pub enum CounterfactualError {
    /// A batch, CAM, mask or strategy that does not fit (the message says what was expected).
    #[error("invalid input: {0}")]
    Input(String),

    /// Loading or running a model.
    #[error(transparent)]
    Model(#[from] ModelError),

    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T> = std::result::Result<T, CounterfactualError>;
