//! `Timers`: the memory backend's two time-ordered sets, tasks not yet due and leases that may lapse.
//!
//! Both are min-heaps with lazy deletion: an entry whose task moved on (was
//! cancelled, completed, re-leased or extended) stays in the heap and is
//! dropped when it reaches the top, because the backend checks every entry
//! against the task before acting on it. Each heap would otherwise keep its
//! stale entries until their time (the lease heap one per completed task, the
//! delayed heap one per cancelled delayed task, however far off its time), so
//! each is compacted as it grows past twice the entries that can be live.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use workmill_core::Timestamp;

/// A task that becomes due at `at`; valid while the task still has arrival number `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    pub(crate) at: Timestamp,
    pub(crate) seq: u64,
    pub(crate) slot: u32,
}

/// A lease that lapses at `at`; valid while the task is still running under `token`
/// with that expiry (a heartbeat adds a later entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Expiry {
    pub(crate) at: Timestamp,
    pub(crate) token: u64,
}

/// Below this many entries a heap is never compacted.
const COMPACT_FLOOR: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct Timers {
    delayed: BinaryHeap<Reverse<Due>>,
    leases: BinaryHeap<Reverse<Expiry>>,
}

impl Timers {
    /// Remembers a task that is not due before `due.at`. `waiting` is the number of tasks
    /// waiting to start, a bound on the live entries (a waiting task has at most one); when
    /// stale entries dominate (those of delayed tasks cancelled since), entries for which
    /// `is_live` is false are dropped.
    pub(crate) fn delay(&mut self, due: Due, waiting: u64, is_live: impl FnMut(&Due) -> bool) {
        self.delayed.push(Reverse(due));
        if self.delayed.len() > compaction_limit(waiting) {
            self.retain_delayed(is_live);
        }
    }

    /// When the earliest delayed task becomes due.
    pub(crate) fn next_due(&self) -> Option<Timestamp> {
        self.delayed.peek().map(|Reverse(due)| due.at)
    }

    /// Takes the earliest delayed task if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Timestamp) -> Option<Due> {
        match self.delayed.peek() {
            Some(Reverse(due)) if due.at <= now => self.delayed.pop().map(|Reverse(due)| due),
            _ => None,
        }
    }

    /// Remembers a lease. `live` is the number of leases now held; when stale
    /// entries dominate, entries for which `is_live` is false are dropped.
    pub(crate) fn lease(
        &mut self,
        expiry: Expiry,
        live: u64,
        is_live: impl FnMut(&Expiry) -> bool,
    ) {
        self.leases.push(Reverse(expiry));
        if self.leases.len() > compaction_limit(live) {
            self.compact_leases(is_live);
        }
    }

    /// When the earliest remembered lease lapses (possibly a stale entry).
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        self.leases.peek().map(|Reverse(expiry)| expiry.at)
    }

    /// Takes the earliest lease entry if it lapsed before `now`.
    pub(crate) fn pop_expired(&mut self, now: Timestamp) -> Option<Expiry> {
        match self.leases.peek() {
            Some(Reverse(expiry)) if expiry.at <= now => {
                self.leases.pop().map(|Reverse(expiry)| expiry)
            }
            _ => None,
        }
    }

    /// Drops stale lease entries. Each compaction at least halves the heap,
    /// so its cost spreads to `O(1)` per lease.
    fn compact_leases(&mut self, mut is_live: impl FnMut(&Expiry) -> bool) {
        let mut entries = std::mem::take(&mut self.leases).into_vec();
        entries.retain(|Reverse(expiry)| is_live(expiry));
        self.leases = BinaryHeap::from(entries);
    }

    /// Drops delayed entries for which `is_live` is false (after a purge, or when stale
    /// entries dominate: each such compaction at least halves the heap, as for leases).
    pub(crate) fn retain_delayed(&mut self, mut is_live: impl FnMut(&Due) -> bool) {
        self.delayed.retain(|Reverse(due)| is_live(due));
    }

    /// How many lease entries are remembered, stale ones included.
    #[cfg(test)]
    pub(crate) fn lease_entries(&self) -> usize {
        self.leases.len()
    }

    /// How many delayed entries are remembered, stale ones included.
    #[cfg(test)]
    pub(crate) fn delayed_entries(&self) -> usize {
        self.delayed.len()
    }
}

/// The size past which a heap with at most `live` live entries is compacted: twice that,
/// so that a compaction drops at least half of it, and at least [`COMPACT_FLOOR`].
fn compaction_limit(live: u64) -> usize {
    usize::try_from(live.saturating_mul(2))
        .unwrap_or(usize::MAX)
        .max(COMPACT_FLOOR)
}
