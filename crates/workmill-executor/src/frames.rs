//! Join frames: the lazy, heartbeat-style half of `join`. A join's second closure stays private to
//! its worker unless the worker has no unclaimed shared frame; thieves claim shared frames with one CAS.
//!
//! rayon pushes every join's second closure onto a crossbeam deque, which
//! costs a fence on every pop, and wakes sleeping threads for each push. Most
//! of those closures are popped back by their own worker a few nanoseconds
//! later. Here each worker keeps its pending joins in a stack indexed by
//! depth:
//!
//! - frames `[0, exposed)` are *shared*: their header pointer sits in an
//!   atomic slot that a thief claims with `compare_exchange(ptr, null)` and
//!   the owner claims back with `swap(null)`; exactly one wins;
//! - frames `[exposed, depth)` are *private*: plain memory, popped without any
//!   atomic read-modify-write.
//!
//! A new frame is pushed private. The first frame of a computation shares the
//! oldest (and therefore largest) piece of work; once a thief has taken every
//! shared frame, the next push shares all pending frames, oldest first. So a
//! busy worker nobody steals from offers one frame, and a tiny computation
//! pays for one shared frame per top-level join, everything below it running
//! on private frames; where thieves come, they find every pending frame on
//! offer, even while the owner is in a long stretch that pushes no frame.
//!
//! The first frame of a computation wakes nobody while the job it belongs to
//! is young: idle workers that are awake find it by scanning, and the
//! heartbeat thread wakes a sleeper when a shared frame waits for a whole
//! tick. A job that has run for a whole tick interval since it began or last
//! shared a first frame is long, and its first frame (a quicksort's halves
//! after a long partition, say) wakes a sleeper at once rather than a tick or
//! two later. A job that runs a stream of short computations shares first
//! frames more often than that and wakes nobody for them: woken once per tick,
//! the sleeper took halves of some and made them wait across cores (a loop of
//! 1023-node tree sums went from 1.81-1.86 to 1.72 µs each when that stopped).
//! A frame shared to replace a stolen one wakes a sleeper too: a thief
//! came for work, so more may be worth doing in parallel, and `join`
//! publishes it like any pushed job.
//!
//! A thief claims frames only from a victim whose current offer it has
//! watched for 2 µs (`FRAME_PATIENCE` in `worker.rs`): an owner takes a
//! small computation's frame back before then, and moving such work to
//! another core costs more than it saves.
//!
//! Sharing always takes the oldest private frame, so the shared frames are a
//! prefix of the stack and a slot above `exposed` is always null.

use std::cell::Cell;
use std::ptr;

use crate::job::{JobHeader, JobRef};
use crate::sync::{AtomicPtr, AtomicUsize, Ordering};

/// The deepest join nesting that can be shared; deeper joins run their two closures one after the other.
#[cfg(not(workmill_loom))]
pub(crate) const CAPACITY: usize = 128;
/// Tiny under loom, so that the model reaches the edge.
#[cfg(workmill_loom)]
pub(crate) const CAPACITY: usize = 4;

/// The half of a worker's frames that thieves can see.
pub(crate) struct SharedFrames {
    slots: [AtomicPtr<JobHeader>; CAPACITY],
    /// How many bottom slots may hold a frame; thieves scan no further.
    exposed_hint: AtomicUsize,
    /// How many frames the owner has shared, for the metrics; written by the owner only.
    pub(crate) shared_count: AtomicUsize,
}

impl SharedFrames {
    pub(crate) fn new() -> SharedFrames {
        SharedFrames {
            slots: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            exposed_hint: AtomicUsize::new(0),
            shared_count: AtomicUsize::new(0),
        }
    }

    /// Claims the oldest shared frame, if any.
    pub(crate) fn steal(&self) -> Option<JobRef> {
        let limit = self.exposed_hint.load(Ordering::Acquire).min(CAPACITY);
        for slot in &self.slots[..limit] {
            let header = slot.load(Ordering::Acquire);
            if header.is_null() {
                continue;
            }
            // A pointer equal to the one we read may belong to a newer frame
            // that reused the same stack address; winning the CAS still means
            // the slot held a shared, unclaimed frame, which is now ours.
            if slot
                .compare_exchange(
                    header,
                    ptr::null_mut(),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                // SAFETY: we won the claim, so the frame is live and ours: its
                // owner waits on the job's latch before leaving the frame.
                return Some(unsafe { JobRef::from_header(header) });
            }
        }
        None
    }

    /// The oldest shared frame not claimed yet: its slot and header.
    pub(crate) fn oldest_live(&self) -> Option<(usize, *mut JobHeader)> {
        let limit = self.exposed_hint.load(Ordering::Acquire).min(CAPACITY);
        self.slots[..limit]
            .iter()
            .enumerate()
            .map(|(index, slot)| (index, slot.load(Ordering::Acquire)))
            .find(|(_, header)| !header.is_null())
    }

    /// Whether `slot` still offers `header` (compared by address only).
    pub(crate) fn holds(&self, slot: usize, header: *mut JobHeader) -> bool {
        self.slots
            .get(slot)
            .is_some_and(|held| ptr::eq(held.load(Ordering::Acquire), header))
    }

    /// Shared frames not claimed yet.
    pub(crate) fn live(&self) -> usize {
        let limit = self.exposed_hint.load(Ordering::Acquire).min(CAPACITY);
        self.slots[..limit]
            .iter()
            .filter(|slot| !slot.load(Ordering::Relaxed).is_null())
            .count()
    }
}

/// What a push did to the shared frames, which tells the caller whom to wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The frame stayed private; a shared frame is still on offer.
    Private,
    /// A fresh computation on this worker shared its oldest frame.
    Fresh,
    /// A frame was shared to replace one a thief took: there is demand for work.
    Replacement,
}

/// What became of a frame when its owner came back for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Popped {
    /// Nobody took it: run the closure inline.
    Inline,
    /// A thread claimed it: wait for its latch.
    Claimed,
}

/// The owner's view of its frames. Only the owning worker thread touches it.
pub(crate) struct LocalFrames {
    /// This worker's shared half, in the registry (which the worker keeps alive).
    shared: *const SharedFrames,
    private: [Cell<*const JobHeader>; CAPACITY],
    depth: Cell<usize>,
    exposed: Cell<usize>,
}

impl LocalFrames {
    /// The private half of the frames whose shared half is `shared`.
    ///
    /// # Safety
    ///
    /// `shared` must outlive the returned value.
    pub(crate) unsafe fn new(shared: *const SharedFrames) -> LocalFrames {
        LocalFrames {
            shared,
            private: std::array::from_fn(|_| Cell::new(ptr::null())),
            depth: Cell::new(0),
            exposed: Cell::new(0),
        }
    }

    /// Pushes a frame; `None` if the stack is full (the caller then runs both
    /// closures itself). [`Pushed::Replacement`] when the push shared a frame
    /// to replace one a thief took: there is demand for work, so the caller
    /// should wake a sleeper for it; [`Pushed::Fresh`] when it shared the
    /// first frame of a computation, which wakes a sleeper only if the
    /// computation is already long (see the module docs).
    ///
    /// # Safety
    ///
    /// `header` must stay live until `pop` returns for it, and, if `pop`
    /// reports it claimed, until its latch is set.
    #[inline]
    pub(crate) unsafe fn push(&self, header: *const JobHeader) -> Option<Pushed> {
        let depth = self.depth.get();
        if depth >= CAPACITY {
            return None;
        }
        self.private[depth].set(header);
        self.depth.set(depth + 1);
        let exposed = self.exposed.get();
        if exposed == 0 {
            // A fresh computation on this worker: share its oldest frame; the
            // caller decides whether it is worth a wake-up.
            self.share_oldest();
            return Some(Pushed::Fresh);
        }
        // `exposed <= depth < CAPACITY`, so the index is in bounds.
        if self.shared().slots[(exposed - 1) % CAPACITY]
            .load(Ordering::Relaxed)
            .is_null()
        {
            // A thief took our last shared frame: there is demand, so offer
            // every pending frame. Thieves that come back find work at once,
            // even while this worker is inside a long sequential stretch
            // that pushes no frame (when only the next frame was offered,
            // they waited for our next join: milliseconds in a quicksort).
            self.share_all();
            return Some(Pushed::Replacement);
        }
        Some(Pushed::Private)
    }

    #[inline(always)]
    fn shared(&self) -> &SharedFrames {
        // SAFETY: `new`'s contract keeps the shared half alive.
        unsafe { &*self.shared }
    }

    /// Moves the oldest private frame to the shared slots.
    #[cold]
    #[inline(never)]
    fn share_oldest(&self) {
        let shared = self.shared();
        let exposed = self.exposed.get();
        debug_assert!(exposed < self.depth.get());
        // Counted before the slot is filled: a thief that sees the frame
        // (an `Acquire` load of the slot) sees the new count too.
        crate::sleep::bump(&shared.shared_count);
        shared.slots[exposed].store(self.private[exposed].get().cast_mut(), Ordering::Release);
        self.exposed.set(exposed + 1);
        shared.exposed_hint.store(exposed + 1, Ordering::Release);
    }

    /// Shares every private frame, so that a waiting owner (or a thief) can take them.
    pub(crate) fn share_all(&self) {
        while self.exposed.get() < self.depth.get() {
            self.share_oldest();
        }
    }

    /// Pops the youngest frame, which must be the one this worker pushed last.
    #[inline]
    pub(crate) fn pop(&self) -> Popped {
        let index = self.depth.get() - 1;
        self.depth.set(index);
        if index >= self.exposed.get() {
            return Popped::Inline;
        }
        self.pop_shared(index)
    }

    /// Claims back a shared frame: one atomic swap decides between the owner and a thief.
    #[inline(never)]
    fn pop_shared(&self, index: usize) -> Popped {
        let shared = self.shared();
        self.exposed.set(index);
        let header = shared.slots[index].swap(ptr::null_mut(), Ordering::Acquire);
        shared.exposed_hint.store(index, Ordering::Relaxed);
        if header.is_null() {
            Popped::Claimed
        } else {
            Popped::Inline
        }
    }

    /// Pending frames on this worker's stack.
    pub(crate) fn depth(&self) -> usize {
        self.depth.get()
    }
}

#[cfg(test)]
mod tests;
