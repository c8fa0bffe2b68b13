//! The synchronization types the queue uses: std's normally, loom's under `--cfg workmill_loom`.
//!
//! Every lock, condition variable and atomic in this crate comes from here, so
//! that `cargo xtask loom` model-checks the wake-up protocols with the very code
//! that runs in production.

#[cfg(workmill_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard, atomic};
#[cfg(not(workmill_loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, atomic};

/// Locks `mutex`, ignoring poisoning.
///
/// The queue never runs user code while it holds its lock, and every update
/// of its state completes before the guard drops, so a poisoned lock (a panic
/// elsewhere on the thread that held it) still guards consistent state.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
