//! `HeldLeases`: the leases a worker process holds (tasks running, reserved but not started, or
//! finished with an outcome not yet recorded), shared by its loops and its heartbeat thread.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use workmill_core::{Lease, TaskId};

use crate::sync::{Mutex, lock};

/// One held lease: when it was last extended, and whether the store said it is gone.
#[derive(Debug)]
struct Held {
    lease: Lease,
    extended: Instant,
    lost: bool,
}

/// Where a held lease stands before its task starts; see [`HeldLeases::standing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    /// The store refused to extend it: the task may be someone else's now.
    Lost,
    /// Not extended for a while: the heartbeat has fallen behind.
    Stale,
    /// Extended recently, or not held at all.
    Current,
}

/// The leases of one worker process, by task and token.
///
/// A loop adds its batch right after it reserved it and removes each lease
/// once the task's outcome is settled (recorded, refused, or given up), so the
/// set is exactly what the process would leave behind if it died now. The
/// heartbeat thread extends what has not been extended for a while and marks
/// what the store refuses to extend as lost, which a loop checks before it
/// starts a task: a lost lease means the task may be running elsewhere.
///
/// Removal is final: an extension or a loss reported for a lease that is no
/// longer held changes nothing (`cargo xtask loom` checks this race).
#[derive(Debug, Default)]
pub(crate) struct HeldLeases {
    leases: Mutex<HashMap<(TaskId, u64), Held>>,
}

fn key(lease: &Lease) -> (TaskId, u64) {
    (lease.task.clone(), lease.token)
}

impl HeldLeases {
    pub(crate) fn new() -> HeldLeases {
        HeldLeases::default()
    }

    /// Adds leases just reserved (or extended) at `now`.
    pub(crate) fn hold<'a>(&self, leases: impl IntoIterator<Item = &'a Lease>, now: Instant) {
        let mut held = lock(&self.leases);
        for lease in leases {
            held.insert(
                key(lease),
                Held {
                    lease: lease.clone(),
                    extended: now,
                    lost: false,
                },
            );
        }
    }

    /// Removes a lease whose task's outcome is settled.
    pub(crate) fn forget(&self, lease: &Lease) {
        lock(&self.leases).remove(&key(lease));
    }

    /// True if the store refused to extend this lease: its task may now be someone else's.
    pub(crate) fn is_lost(&self, lease: &Lease) -> bool {
        lock(&self.leases)
            .get(&key(lease))
            .is_some_and(|held| held.lost)
    }

    /// The held leases, not known lost, last extended at least `age` before `now`.
    pub(crate) fn due(&self, now: Instant, age: Duration) -> Vec<Lease> {
        lock(&self.leases)
            .values()
            .filter(|held| !held.lost && now.saturating_duration_since(held.extended) >= age)
            .map(|held| held.lease.clone())
            .collect()
    }

    /// Where `lease` stands at `now`, in one look: lost, stale (held and last extended at least
    /// `age` before `now`, so the heartbeat has fallen behind), or neither.
    pub(crate) fn standing(&self, lease: &Lease, now: Instant, age: Duration) -> Standing {
        match lock(&self.leases).get(&key(lease)) {
            Some(held) if held.lost => Standing::Lost,
            Some(held) if now.saturating_duration_since(held.extended) >= age => Standing::Stale,
            _ => Standing::Current,
        }
    }

    /// Records that `lease` was extended at `at`, if it is still held.
    pub(crate) fn extended(&self, lease: &Lease, at: Instant) {
        if let Some(held) = lock(&self.leases).get_mut(&key(lease)) {
            held.extended = held.extended.max(at);
        }
    }

    /// Records that the store refused to extend `lease`, if it is still held; true if it was.
    pub(crate) fn mark_lost(&self, lease: &Lease) -> bool {
        match lock(&self.leases).get_mut(&key(lease)) {
            Some(held) => {
                held.lost = true;
                true
            }
            None => false,
        }
    }

    /// How many leases are held.
    pub(crate) fn len(&self) -> usize {
        lock(&self.leases).len()
    }
}

#[cfg(test)]
mod tests {
    use workmill_core::Timestamp;

    use super::*;

    fn lease(task: &str, token: u64) -> Lease {
        Lease {
            task: TaskId::new(task).unwrap(),
            token,
            expires_at: Timestamp::from_micros(0),
        }
    }

    #[test]
    fn due_leases_are_the_old_ones_not_lost() {
        let held = HeldLeases::new();
        let start = Instant::now();
        let (a, b, c) = (lease("a", 1), lease("b", 2), lease("c", 3));
        held.hold([&a, &b], start);
        held.hold([&c], start + Duration::from_millis(300));
        let later = start + Duration::from_millis(500);
        let mut due = held.due(later, Duration::from_millis(400));
        due.sort_by(|x, y| x.task.cmp(&y.task));
        assert_eq!(due, [a.clone(), b.clone()]);

        held.extended(&a, later);
        assert!(held.mark_lost(&b));
        assert!(held.is_lost(&b) && !held.is_lost(&a));
        assert!(held.due(later, Duration::from_millis(400)).is_empty());
        assert_eq!(
            held.due(later, Duration::ZERO).len(),
            2,
            "a and c; b is lost"
        );
    }

    #[test]
    fn a_forgotten_lease_stays_forgotten() {
        let held = HeldLeases::new();
        let a = lease("a", 1);
        held.hold([&a], Instant::now());
        held.forget(&a);
        held.extended(&a, Instant::now());
        assert!(!held.mark_lost(&a), "a forgotten lease cannot be lost");
        assert_eq!(held.len(), 0);
        assert!(
            !held.is_lost(&a),
            "unknown leases are not lost, just not held"
        );
    }

    #[test]
    fn a_new_reservation_of_the_same_task_is_a_separate_lease() {
        let held = HeldLeases::new();
        let (old, new) = (lease("a", 1), lease("a", 2));
        held.hold([&old, &new], Instant::now());
        assert!(held.mark_lost(&old));
        assert!(held.is_lost(&old) && !held.is_lost(&new));
        held.forget(&old);
        assert_eq!(held.len(), 1);
    }
}
