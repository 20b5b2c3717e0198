//! cfkit-trainer: shard loader, methods and losses, schedule, checkpoints, evaluation, WiSE-FT.
//! So far: the learning-rate / β1 schedules (PyTorch's OneCycleLR and a cosine warm-up),
//! checked against torch.

pub mod schedule;
