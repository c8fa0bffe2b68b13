//! `HeldLeases`: the leases a worker process holds (tasks running, reserved but not started, or
//! finished with an outcome not yet recorded), shared by its loops and its heartbeat thread.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use workmill_core::{Lease, TaskId};

use crate::sync::{Mutex, lock};

/// One held lease: when it was last extended, whether the store said it is gone, the
/// reservation it came in, and how far its task got.
#[derive(Debug)]
struct Held {
    lease: Lease,
    extended: Instant,
    lost: bool,
    /// The reservation (one [`HeldLeases::hold`] call: a loop's batch) it came in.
    batch: u64,
    phase: Phase,
}

/// How far a held lease's task got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reserved and waiting for its loop.
    Waiting,
    /// Its loop started it at `since`; it has not finished.
    Running { since: Instant },
    /// Finished (its outcome not settled yet), or being handed back by its loop.
    Done,
    /// Taken from its loop by the heartbeat thread, because it waited behind a long task of
    /// its batch: the heartbeat thread hands it back to the store (`released` once the store
    /// took it, or refused it as gone), and the loop skips it and forgets it. Only the loop
    /// forgets it: a lease it finds no longer held would look like one it may start.
    HandedBack { released: bool },
}

/// Where a held lease stands when its loop comes to start its task; see [`HeldLeases::begin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    /// The store refused to extend it: the task may be someone else's now.
    Lost,
    /// The heartbeat thread handed it back while it waited behind a long task: another
    /// worker may run it now.
    HandedBack,
    /// Not extended for a while: the heartbeat has fallen behind.
    Stale,
    /// Extended recently, or not held at all.
    Current,
}

#[derive(Debug, Default)]
struct Leases {
    by_lease: HashMap<(TaskId, u64), Held>,
    batches: u64,
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
/// A loop runs its batch one task after another, so a long task keeps the rest
/// of its batch waiting while other workers may be idle. The heartbeat thread
/// therefore takes from a loop the tasks still waiting behind a batch-mate that
/// has run for a while ([`HeldLeases::hand_backs`]) and hands them back to the
/// store. The loop's check before it starts a task ([`HeldLeases::begin`]) and
/// the heartbeat's choice take the same lock, so each such task is either
/// started by its loop or handed back, never both.
///
/// Removal is final: an extension or a loss reported for a lease that is no
/// longer held changes nothing (`cargo xtask loom` checks this race).
#[derive(Debug, Default)]
pub(crate) struct HeldLeases {
    leases: Mutex<Leases>,
}

fn key(lease: &Lease) -> (TaskId, u64) {
    (lease.task.clone(), lease.token)
}

impl HeldLeases {
    pub(crate) fn new() -> HeldLeases {
        HeldLeases::default()
    }

    /// Adds leases just reserved at `now`, as one batch whose tasks wait for their loop.
    pub(crate) fn hold<'a>(&self, leases: impl IntoIterator<Item = &'a Lease>, now: Instant) {
        let mut held = lock(&self.leases);
        held.batches += 1;
        let batch = held.batches;
        for lease in leases {
            held.by_lease.insert(
                key(lease),
                Held {
                    lease: lease.clone(),
                    extended: now,
                    lost: false,
                    batch,
                    phase: Phase::Waiting,
                },
            );
        }
    }

    /// Removes a lease whose task's outcome is settled.
    pub(crate) fn forget(&self, lease: &Lease) {
        lock(&self.leases).by_lease.remove(&key(lease));
    }

    /// True if the store refused to extend this lease: its task may now be someone else's.
    pub(crate) fn is_lost(&self, lease: &Lease) -> bool {
        lock(&self.leases)
            .by_lease
            .get(&key(lease))
            .is_some_and(|held| held.lost)
    }

    /// The held leases to extend: not known lost, not handed back, and last extended at
    /// least `age` before `now`.
    pub(crate) fn due(&self, now: Instant, age: Duration) -> Vec<Lease> {
        lock(&self.leases)
            .by_lease
            .values()
            .filter(|held| {
                !held.lost
                    && !matches!(held.phase, Phase::HandedBack { .. })
                    && now.saturating_duration_since(held.extended) >= age
            })
            .map(|held| held.lease.clone())
            .collect()
    }

    /// Where `lease` stands as its loop comes to start its task at `now`, in one look: lost,
    /// handed back, stale (last extended at least `age` before `now`, so the heartbeat has
    /// fallen behind), or none of these. Unless it is lost or handed back, its task counts as
    /// started from now on, so the heartbeat thread no longer hands it back.
    pub(crate) fn begin(&self, lease: &Lease, now: Instant, age: Duration) -> Standing {
        let mut leases = lock(&self.leases);
        let Some(held) = leases.by_lease.get_mut(&key(lease)) else {
            return Standing::Current;
        };
        if held.lost {
            return Standing::Lost;
        }
        if matches!(held.phase, Phase::HandedBack { .. }) {
            return Standing::HandedBack;
        }
        held.phase = Phase::Running { since: now };
        if now.saturating_duration_since(held.extended) >= age {
            Standing::Stale
        } else {
            Standing::Current
        }
    }

    /// Records that the task of `lease` finished; its batch-mates no longer wait behind it.
    pub(crate) fn finished(&self, lease: &Lease) {
        if let Some(held) = lock(&self.leases).by_lease.get_mut(&key(lease)) {
            held.phase = Phase::Done;
        }
    }

    /// Claims an unstarted lease for its loop to hand back itself; false if the heartbeat
    /// thread took it already (and hands it back itself).
    pub(crate) fn take_back(&self, lease: &Lease) -> bool {
        match lock(&self.leases).by_lease.get_mut(&key(lease)) {
            Some(held) if matches!(held.phase, Phase::HandedBack { .. }) => false,
            Some(held) => {
                held.phase = Phase::Done;
                true
            }
            None => true,
        }
    }

    /// The leases for the heartbeat thread to hand back to the store at `now`: every
    /// unstarted lease (not lost) of a batch in which a task has been running for at least
    /// `after`, marked handed back here so that its loop skips it, and those marked in an
    /// earlier round whose hand-back failed. The caller reports each the store took back (or
    /// refused) with [`HeldLeases::handed_back`].
    pub(crate) fn hand_backs(&self, now: Instant, after: Duration) -> Vec<Lease> {
        let mut leases = lock(&self.leases);
        let blocked: HashSet<u64> = leases
            .by_lease
            .values()
            .filter_map(|held| match held.phase {
                Phase::Running { since } if now.saturating_duration_since(since) >= after => {
                    Some(held.batch)
                }
                _ => None,
            })
            .collect();
        let mut handed = Vec::new();
        for held in leases.by_lease.values_mut() {
            if held.phase == Phase::Waiting && !held.lost && blocked.contains(&held.batch) {
                held.phase = Phase::HandedBack { released: false };
            }
            if held.phase == (Phase::HandedBack { released: false }) {
                handed.push(held.lease.clone());
            }
        }
        handed
    }

    /// Records that the store took back `lease` (or refused it as gone), so that no later
    /// round hands it back again; its loop forgets it.
    pub(crate) fn handed_back(&self, lease: &Lease) {
        if let Some(held) = lock(&self.leases).by_lease.get_mut(&key(lease))
            && matches!(held.phase, Phase::HandedBack { .. })
        {
            held.phase = Phase::HandedBack { released: true };
        }
    }

    /// Records that `lease` was extended at `at`, if it is still held.
    pub(crate) fn extended(&self, lease: &Lease, at: Instant) {
        if let Some(held) = lock(&self.leases).by_lease.get_mut(&key(lease)) {
            held.extended = held.extended.max(at);
        }
    }

    /// Records that the store refused to extend `lease`, if it is still held; true if it was.
    pub(crate) fn mark_lost(&self, lease: &Lease) -> bool {
        match lock(&self.leases).by_lease.get_mut(&key(lease)) {
            Some(held) => {
                held.lost = true;
                true
            }
            None => false,
        }
    }

    /// How many leases are held.
    pub(crate) fn len(&self) -> usize {
        lock(&self.leases).by_lease.len()
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
    fn only_tasks_waiting_behind_a_long_running_batch_mate_are_handed_back() {
        let held = HeldLeases::new();
        let start = Instant::now();
        let after = Duration::from_millis(100);
        let (slow, waiting, lost) = (lease("slow", 1), lease("waiting", 2), lease("lost", 3));
        held.hold([&slow, &waiting, &lost], start);
        let (short, behind_short) = (lease("short", 4), lease("behind-short", 5));
        held.hold([&short, &behind_short], start);
        assert!(held.mark_lost(&lost));
        assert_eq!(
            held.begin(&slow, start, Duration::from_secs(60)),
            Standing::Current
        );
        assert_eq!(
            held.begin(&short, start + after, Duration::from_secs(60)),
            Standing::Current
        );

        let later = start + after;
        assert_eq!(
            held.hand_backs(later, after),
            std::slice::from_ref(&waiting),
            "only the long batch's waiting, not-lost task"
        );
        assert_eq!(
            held.begin(&waiting, later, Duration::from_secs(60)),
            Standing::HandedBack
        );
        assert!(
            !held.take_back(&waiting),
            "its loop leaves it to the heartbeat"
        );
        assert!(
            held.due(later, Duration::ZERO)
                .iter()
                .all(|due| *due != waiting),
            "a handed-back lease is not extended"
        );
        assert_eq!(
            held.hand_backs(later, after),
            std::slice::from_ref(&waiting),
            "until the store took it, asked for again"
        );
        held.handed_back(&waiting);
        assert!(held.hand_backs(later, after).is_empty());
        assert_eq!(
            held.begin(&waiting, later, Duration::from_secs(60)),
            Standing::HandedBack,
            "its loop still learns it was handed back"
        );
        held.forget(&waiting);

        // The short task finished before it ran long: its batch-mate stays with its loop.
        held.finished(&short);
        assert!(
            held.hand_backs(later + 10 * after, after).is_empty(),
            "nothing waits in the long batch now, and the other's task finished"
        );
        assert_eq!(
            held.begin(&behind_short, later, Duration::from_secs(60)),
            Standing::Current
        );
    }

    #[test]
    fn a_task_its_loop_started_or_took_back_is_never_handed_back() {
        let held = HeldLeases::new();
        let start = Instant::now();
        let (slow, started, taken) = (lease("slow", 1), lease("started", 2), lease("taken", 3));
        held.hold([&slow, &started, &taken], start);
        held.begin(&slow, start, Duration::from_secs(60));
        assert_eq!(
            held.begin(&started, start, Duration::ZERO),
            Standing::Stale,
            "a started task is stale when not extended for `age`"
        );
        assert!(held.take_back(&taken), "its loop hands it back itself");
        assert!(
            held.hand_backs(start + Duration::from_secs(1), Duration::ZERO)
                .is_empty()
        );
        assert!(
            held.take_back(&lease("unknown", 9)),
            "a lease not held is its loop's"
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
