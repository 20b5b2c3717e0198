//! cfkit-outdir: how cfkit's commands write their output directories, whatever they write into
//! them (image shards, counterfactual shards, training runs):
//!
//! * [`lock`]: one writer per directory — an OS advisory lock held for the whole command, with a
//!   record of its holder, released by the kernel however the process ends;
//! * [`atomic`]: files written under a temporary name and renamed into place, so a crash never
//!   leaves a half-written file under its real name;
//! * [`jsonl`]: append-only JSON-lines logs that a resumed run truncates to the length its
//!   checkpoint recorded;
//! * [`crash`]: the crash points of the crash-safety tests (armed once, by the binary).

pub mod atomic;
pub mod crash;
pub mod error;
pub mod jsonl;
pub mod lock;

pub use atomic::{write_atomic, write_json};
pub use crash::crash_point;
pub use error::{OutdirError, Result};
pub use jsonl::JsonLines;
pub use lock::{is_lock_file, DirLock, Holder, LOCK_FILE};
