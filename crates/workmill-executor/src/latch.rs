//! Latches: one-shot signals that a job finished, for a worker that waits by working (`SpinLatch`,
//! `CountLatch`) or a foreign thread that blocks (`LockLatch`).
//!
//! A worker waiting on a latch keeps executing other jobs, and may fall asleep
//! when there are none (see `sleep/README.md`). Its latch therefore has four
//! states: the setter must know whether the waiter is asleep and has to be
//! woken. The setter's last access to the latch is the store that sets it:
//! once set, the waiter may return and free the memory, so anything the setter
//! still needs (the registry, the waiter's index) is read before that store.

use crate::registry::Registry;
use crate::sync::{Arc, AtomicUsize, Condvar, Mutex, Ordering, lock, wait};

/// Something a job sets when it completes.
pub(crate) trait Latch {
    /// Sets the latch, waking its waiter if needed.
    ///
    /// # Safety
    ///
    /// `this` must be live on entry; it may be freed by the waiter as soon as
    /// the latch is set, so implementations touch nothing of it afterwards.
    unsafe fn set(this: *const Self);
}

const UNSET: usize = 0;
const SLEEPY: usize = 1;
const SLEEPING: usize = 2;
const SET: usize = 3;

/// The state shared by the latches a worker waits on: unset, sleepy, sleeping, set.
#[derive(Debug)]
pub(crate) struct CoreLatch {
    state: AtomicUsize,
}

impl CoreLatch {
    pub(crate) fn new() -> CoreLatch {
        CoreLatch {
            state: AtomicUsize::new(UNSET),
        }
    }

    /// The waiter is about to sleep; false if the latch is already set.
    pub(crate) fn get_sleepy(&self) -> bool {
        self.state
            .compare_exchange(UNSET, SLEEPY, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    /// The waiter is asleep, so a setter must wake it; false if the latch was set meanwhile.
    pub(crate) fn fall_asleep(&self) -> bool {
        self.state
            .compare_exchange(SLEEPY, SLEEPING, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    /// The waiter is awake again (unless the latch was set).
    pub(crate) fn wake_up(&self) {
        if !self.probe() {
            let _ =
                self.state
                    .compare_exchange(SLEEPING, UNSET, Ordering::SeqCst, Ordering::Relaxed);
        }
    }

    /// Sets the latch; true if the waiter was asleep and must be woken.
    ///
    /// # Safety
    ///
    /// `this` must be live; it may be freed right after the swap.
    #[inline]
    pub(crate) unsafe fn set(this: *const CoreLatch) -> bool {
        // SAFETY: the caller guarantees `this` is live; this swap is the last access.
        let old = unsafe { (*this).state.swap(SET, Ordering::AcqRel) };
        old == SLEEPING
    }

    /// True once the latch is set; the job's writes are then visible.
    #[inline]
    pub(crate) fn probe(&self) -> bool {
        self.state.load(Ordering::Acquire) == SET
    }
}

/// The latch of a job whose creator is a worker: setting it wakes that worker if it sleeps.
pub(crate) struct SpinLatch<'r> {
    pub(crate) core: CoreLatch,
    registry: &'r Arc<Registry>,
    target_worker: usize,
    /// True when the setter belongs to another pool, which then must keep the
    /// creator's registry alive itself while it wakes the creator.
    cross: bool,
}

impl<'r> SpinLatch<'r> {
    /// A latch for a job that the worker `index` of `registry` waits on.
    #[inline]
    pub(crate) fn new(registry: &'r Arc<Registry>, index: usize) -> SpinLatch<'r> {
        SpinLatch {
            core: CoreLatch::new(),
            registry,
            target_worker: index,
            cross: false,
        }
    }

    /// The same, for a job that another pool's worker will set.
    pub(crate) fn cross(registry: &'r Arc<Registry>, index: usize) -> SpinLatch<'r> {
        SpinLatch {
            cross: true,
            ..SpinLatch::new(registry, index)
        }
    }
}

impl Latch for SpinLatch<'_> {
    #[inline]
    unsafe fn set(this: *const Self) {
        // SAFETY: `this` is live until the core latch is set below.
        let this_ref = unsafe { &*this };
        let target = this_ref.target_worker;
        // A setter from another pool holds no reference to this registry, and
        // the waiter may drop its own as soon as the latch is set.
        let kept_alive = this_ref.cross.then(|| Arc::clone(this_ref.registry));
        let registry: *const Registry = &**this_ref.registry;
        // SAFETY: `this` is live; nothing of it is touched after this call.
        if unsafe { CoreLatch::set(&this_ref.core) } {
            // SAFETY: the registry outlives this call: either the setter is one
            // of its workers (which hold it) or `kept_alive` holds it.
            unsafe { (*registry).sleep.wake_specific(target) };
        }
        drop(kept_alive);
    }
}

/// Counts outstanding jobs (a scope's spawns, a broadcast's copies) and wakes the waiting worker when the last one ends.
pub(crate) struct CountLatch {
    pub(crate) core: CoreLatch,
    count: AtomicUsize,
    registry: *const Registry,
    owner: usize,
}

// SAFETY: the raw registry pointer is only dereferenced while the registry is
// alive (see `decrement`); everything else is atomic.
unsafe impl Send for CountLatch {}
// SAFETY: as above.
unsafe impl Sync for CountLatch {}

impl CountLatch {
    /// A latch that opens after `count` decrements; worker `owner` of `registry` waits on it.
    pub(crate) fn new(count: usize, registry: &Registry, owner: usize) -> CountLatch {
        CountLatch {
            core: CoreLatch::new(),
            count: AtomicUsize::new(count),
            registry,
            owner,
        }
    }

    /// One more job to wait for.
    #[inline]
    pub(crate) fn increment(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// One job finished; the last one sets the latch and wakes the owner.
    ///
    /// # Safety
    ///
    /// `this` must be live, and the caller must keep the registry alive for
    /// the duration of the call (every caller runs on one of its workers).
    pub(crate) unsafe fn decrement(this: *const CountLatch) {
        // SAFETY: live on entry, per the contract.
        let this_ref = unsafe { &*this };
        let registry = this_ref.registry;
        let owner = this_ref.owner;
        if this_ref.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            // SAFETY: the owner frees the latch only after the core is set.
            if unsafe { CoreLatch::set(&this_ref.core) } {
                // SAFETY: the caller keeps the registry alive.
                unsafe { (*registry).sleep.wake_specific(owner) };
            }
        }
    }
}

/// A reference to a [`CountLatch`] as the latch of one job among several.
pub(crate) struct CountLatchRef<'a>(pub(crate) &'a CountLatch);

impl Latch for CountLatchRef<'_> {
    unsafe fn set(this: *const Self) {
        // SAFETY: `this` is live on entry; the count latch outlives every job that refers to it.
        unsafe { CountLatch::decrement((*this).0) }
    }
}

/// A latch a thread outside the pool blocks on.
#[derive(Debug)]
pub(crate) struct LockLatch {
    is_set: Mutex<bool>,
    condvar: Condvar,
}

impl LockLatch {
    pub(crate) fn new() -> LockLatch {
        LockLatch {
            is_set: Mutex::new(false),
            condvar: Condvar::new(),
        }
    }

    /// Blocks until the latch is set.
    pub(crate) fn wait(&self) {
        let mut is_set = lock(&self.is_set);
        while !*is_set {
            is_set = wait(&self.condvar, is_set);
        }
    }
}

impl Latch for LockLatch {
    unsafe fn set(this: *const Self) {
        // SAFETY: live on entry; the waiter cannot return before it re-acquires
        // the mutex, which this guard releases as its last access.
        let this = unsafe { &*this };
        let mut is_set = lock(&this.is_set);
        *is_set = true;
        this.condvar.notify_all();
    }
}

#[cfg(test)]
mod tests;
