//! cfkit-trainer: shard loader, methods and losses, schedule, checkpoints, evaluation, WiSE-FT.
//! Filled in by the trainer issues.
