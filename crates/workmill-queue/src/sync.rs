//! The synchronisation types the crate's own concurrent code uses: loom's under
//! `--cfg workmill_loom`, so that `cargo xtask loom` can model-check it, and std's otherwise.

#[cfg(workmill_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard, atomic};
#[cfg(not(workmill_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, atomic};
