//! The one place that chooses between std and loom primitives, so that `cargo xtask loom` checks the real code.
//!
//! Every atomic, lock, cell, thread and raw allocation in this crate comes
//! from here. Under `--cfg workmill_loom` they are loom's instrumented types; otherwise std's.

#[cfg(not(workmill_loom))]
pub(crate) use std::alloc::{alloc, dealloc};
#[cfg(not(workmill_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering, fence};
#[cfg(not(workmill_loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(workmill_loom))]
pub(crate) use std::thread;

#[cfg(workmill_loom)]
pub(crate) use loom::alloc::{alloc, dealloc};
#[cfg(workmill_loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering, fence,
};
#[cfg(workmill_loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(workmill_loom)]
pub(crate) use loom::thread;

/// Locks a mutex, ignoring poisoning: every critical section in this crate
/// leaves its data consistent before anything in it can panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on a condition variable, ignoring poisoning (see [`lock`]).
pub(crate) fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on a condition variable for at most `timeout`, ignoring poisoning (see [`lock`]).
/// Under loom the wait never times out: only a notification ends it.
pub(crate) fn wait_timeout<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    match condvar.wait_timeout(guard, timeout) {
        Ok((guard, _)) => guard,
        Err(poisoned) => poisoned.into_inner().0,
    }
}

/// One step of a busy wait. Under loom it yields, so that the model checker
/// can schedule the thread being waited for.
#[inline]
pub(crate) fn spin() {
    #[cfg(not(workmill_loom))]
    std::hint::spin_loop();
    #[cfg(workmill_loom)]
    loom::thread::yield_now();
}

/// An `UnsafeCell` with loom's closure-based API, so that loom can track every access.
#[cfg(not(workmill_loom))]
#[derive(Debug, Default)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(workmill_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }

    /// Runs `f` with an exclusive pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(workmill_loom)]
pub(crate) use loom::cell::UnsafeCell;
