//! cfkit-trainer: shard loader, methods and losses, schedule, checkpoints, evaluation, WiSE-FT.
//! So far: the learning-rate / β1 schedules (PyTorch's OneCycleLR and a cosine warm-up) and the
//! AdamW optimiser with clipping, checked against torch.

pub mod optim;
pub mod schedule;
