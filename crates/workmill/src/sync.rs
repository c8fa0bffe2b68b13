//! The synchronization types of the facade's own primitives: std's normally, loom's under `--cfg workmill_loom`.

#[cfg(workmill_loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, Ordering};
#[cfg(workmill_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

#[cfg(not(workmill_loom))]
pub(crate) use std::sync::atomic::{AtomicU8, Ordering};
#[cfg(not(workmill_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// The flag a signal handler sets. Always std's: signal-hook writes it from
/// the handler, which loom does not model, and its API takes std's type.
#[cfg(unix)]
pub(crate) use std::sync::atomic::AtomicBool as SignalFlag;

/// Locks `mutex`, ignoring poisoning: every holder of the facade's locks
/// leaves the guarded state whole before it can panic (no user code runs
/// under them).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
