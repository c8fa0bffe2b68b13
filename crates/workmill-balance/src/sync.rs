//! The synchronisation types this crate uses, from std normally and from loom under `--cfg workmill_loom`.
//!
//! Every file takes its atomics, mutexes and condition variables from here, so
//! that the loom model checks see each one.

#[cfg(workmill_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(workmill_loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(not(workmill_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(workmill_loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Locks `mutex`, recovering the data if a thread panicked while holding it.
///
/// The pool's locked state stays consistent across a panic (every update is a
/// single assignment or push), so a poisoned lock carries no broken invariant.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
