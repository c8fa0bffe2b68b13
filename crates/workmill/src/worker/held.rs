//! `HeldLeases`: the leases a worker process holds (tasks running, reserved but not started, or
//! finished with an outcome not yet recorded), shared by its loops and its heartbeat thread.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use workmill_core::{Lease, TaskId};

use crate::sync::{Condvar, Mutex, MutexGuard, lock};

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
    /// its batch: the heartbeat thread hands it back to the store, and the loop skips it.
    HandedBack(Handing),
}

/// How far the heartbeat thread got with handing back a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handing {
    /// To be tried (again) at the next round.
    Pending,
    /// The store call is under way.
    InFlight,
    /// The store took it back.
    Released,
    /// The store refused it: the lease was gone already (lapsed, and rescued).
    Refused,
}

/// What became of a lease its loop hands back ([`HeldLeases::take_back`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TakeBack {
    /// The loop hands it back to the store itself: it was its loop's, or the heartbeat
    /// thread's hand-back failed and is the loop's to finish (with its retries).
    ByLoop,
    /// The heartbeat thread handed it back.
    ByHeartbeat,
    /// The store refused the heartbeat thread's hand-back: the lease was gone already.
    Gone,
}

/// The outcome of the heartbeat thread's store call for a lease it hands back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Released {
    /// The store took it back.
    Taken,
    /// The store refused it: the lease was gone already.
    Refused,
    /// The store failed; the next round tries again, unless the loop takes it over first.
    Failed,
}

/// Resolves the lock's poisoning as [`lock`] does.
fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
/// once the task's outcome is settled (recorded, refused, given up, or handed
/// back), so the set is what the process would leave behind if it died now
/// (and, until their loops come to them, the tasks the heartbeat thread has
/// handed back already). The
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
    /// Notified when the heartbeat thread's store call for a handed-back lease returns, for a
    /// loop that came to the lease meanwhile.
    hand_back_settled: Condvar,
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
                    && !matches!(held.phase, Phase::HandedBack(_))
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
        if matches!(held.phase, Phase::HandedBack(_)) {
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

    /// Settles an unstarted lease that its loop hands back (on a stop, or because
    /// [`HeldLeases::begin`] said the heartbeat thread took it): whether the loop hands it back
    /// to the store itself, or the heartbeat thread did. A hand-back the heartbeat thread has
    /// not started, or whose store call failed, becomes the loop's, with its retries, so that
    /// it is not lost when the process stops before the next round; if the call is under way,
    /// this waits for its answer (one store call). A lease the heartbeat settled is forgotten.
    pub(crate) fn take_back(&self, lease: &Lease) -> TakeBack {
        let key = key(lease);
        let mut leases = lock(&self.leases);
        loop {
            let Some(held) = leases.by_lease.get_mut(&key) else {
                return TakeBack::ByLoop;
            };
            let settled = match held.phase {
                Phase::HandedBack(Handing::InFlight) => {
                    leases = wait(&self.hand_back_settled, leases);
                    continue;
                }
                Phase::HandedBack(Handing::Released) => TakeBack::ByHeartbeat,
                Phase::HandedBack(Handing::Refused) => TakeBack::Gone,
                // Not taken, or a hand-back the store failed: the loop's own hand-back
                // retries until the store takes it, as on a stop.
                _ => {
                    held.phase = Phase::Done;
                    return TakeBack::ByLoop;
                }
            };
            leases.by_lease.remove(&key);
            return settled;
        }
    }

    /// The leases for the heartbeat thread to hand back to the store at `now`: every
    /// unstarted lease (not lost) of a batch in which a task has been running for at least
    /// `after`, marked handed back here so that its loop skips it, and those whose hand-back
    /// failed in an earlier round. The caller claims each with [`HeldLeases::start_hand_back`]
    /// right before its store call (its loop may have taken it over meanwhile) and reports the
    /// outcome with [`HeldLeases::hand_back_done`].
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
            let take = match held.phase {
                Phase::Waiting => !held.lost && blocked.contains(&held.batch),
                Phase::HandedBack(Handing::Pending) => true,
                _ => false,
            };
            if take {
                held.phase = Phase::HandedBack(Handing::Pending);
                handed.push(held.lease.clone());
            }
        }
        handed
    }

    /// Marks the store call handing back `lease` as under way; false if its loop took the
    /// hand-back over (it came to the task first) or the lease is gone. One call at a time is
    /// under way, so a loop waits in [`HeldLeases::take_back`] for one store call at most.
    pub(crate) fn start_hand_back(&self, lease: &Lease) -> bool {
        match lock(&self.leases).by_lease.get_mut(&key(lease)) {
            Some(held) if held.phase == Phase::HandedBack(Handing::Pending) => {
                held.phase = Phase::HandedBack(Handing::InFlight);
                true
            }
            _ => false,
        }
    }

    /// Records the outcome of the heartbeat thread's store call handing back `lease`, for its
    /// loop to find (a loop waiting for it in [`HeldLeases::take_back`] is woken). Its loop
    /// forgets it: a lease it found no longer held would look like one it may start.
    pub(crate) fn hand_back_done(&self, lease: &Lease, outcome: Released) {
        let mut leases = lock(&self.leases);
        if let Some(held) = leases.by_lease.get_mut(&key(lease))
            && held.phase == Phase::HandedBack(Handing::InFlight)
        {
            held.phase = Phase::HandedBack(match outcome {
                Released::Taken => Handing::Released,
                Released::Refused => Handing::Refused,
                Released::Failed => Handing::Pending,
            });
        }
        drop(leases);
        self.hand_back_settled.notify_all();
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

    /// `slow` (token 1) and `rest` (tokens 2, 3, ...) held as one batch, with `slow`'s task
    /// started as they were held: the others wait behind it. The held leases, when, `slow`
    /// and the others.
    fn behind_a_running_task(rest: &[&str]) -> (HeldLeases, Instant, Lease, Vec<Lease>) {
        let held = HeldLeases::new();
        let start = Instant::now();
        let slow = lease("slow", 1);
        let rest: Vec<Lease> = rest
            .iter()
            .zip(2..)
            .map(|(task, token)| lease(task, token))
            .collect();
        held.hold(std::iter::once(&slow).chain(&rest), start);
        held.begin(&slow, start, Duration::from_secs(60));
        (held, start, slow, rest)
    }

    #[test]
    fn only_tasks_waiting_behind_a_long_running_batch_mate_are_handed_back() {
        let held = HeldLeases::new();
        let start = Instant::now();
        let after = Duration::from_millis(100);
        let hour = Duration::from_secs(3_600);
        let (slow, waiting, lost) = (lease("slow", 1), lease("waiting", 2), lease("lost", 3));
        held.hold([&slow, &waiting, &lost], start);
        let (short, behind_short) = (lease("short", 4), lease("behind-short", 5));
        held.hold([&short, &behind_short], start);
        assert!(held.mark_lost(&lost));
        assert_eq!(held.begin(&slow, start, hour), Standing::Current);
        assert_eq!(held.begin(&short, start + after, hour), Standing::Current);

        let later = start + after;
        assert_eq!(
            held.hand_backs(later, after),
            std::slice::from_ref(&waiting),
            "only the long batch's waiting, not-lost task"
        );
        assert!(held.start_hand_back(&waiting), "its store call starts");
        assert!(
            held.hand_backs(later, after).is_empty(),
            "not asked for again while its store call is under way"
        );
        assert!(
            held.due(later, Duration::ZERO)
                .iter()
                .all(|due| *due != waiting),
            "a handed-back lease is not extended"
        );
        held.hand_back_done(&waiting, Released::Failed);
        assert_eq!(
            held.hand_backs(later, after),
            std::slice::from_ref(&waiting),
            "a failed hand-back is tried again"
        );
        assert!(held.start_hand_back(&waiting));
        held.hand_back_done(&waiting, Released::Taken);
        assert!(held.hand_backs(later, after).is_empty());
        assert_eq!(
            held.begin(&waiting, later, hour),
            Standing::HandedBack,
            "its loop still learns it was handed back"
        );
        assert_eq!(held.take_back(&waiting), TakeBack::ByHeartbeat);
        assert_eq!(held.len(), 4, "and forgets it then");

        // The short task finished before it ran long: its batch-mate stays with its loop.
        held.finished(&short);
        assert!(
            held.hand_backs(later + 10 * after, after).is_empty(),
            "nothing waits in the long batch now, and the other's task finished"
        );
        assert_eq!(held.begin(&behind_short, later, hour), Standing::Current);
    }

    #[test]
    fn a_failed_hand_back_is_the_loops_to_finish_once_it_comes_to_the_task() {
        let (held, start, slow, rest) = behind_a_running_task(&["a", "b"]);
        let [a, b] = &rest[..] else { unreachable!() };
        assert_eq!(held.hand_backs(start, Duration::ZERO).len(), 2);
        assert!(held.start_hand_back(a) && held.start_hand_back(b));
        held.hand_back_done(a, Released::Failed);
        held.hand_back_done(b, Released::Refused);

        // `a`: the store failed the heartbeat's call; its loop hands it back itself now.
        assert_eq!(held.take_back(a), TakeBack::ByLoop);
        assert!(
            held.hand_backs(start, Duration::ZERO).is_empty(),
            "`a` is the loop's now"
        );
        // `b`: the store said the lease was gone.
        assert_eq!(held.take_back(b), TakeBack::Gone);
        held.forget(a);
        held.forget(&slow);
        assert_eq!(held.len(), 0);
    }

    #[test]
    fn a_loop_that_comes_to_a_hand_back_under_way_waits_for_the_store_s_answer() {
        for (outcome, expected) in [
            (Released::Taken, TakeBack::ByHeartbeat),
            (Released::Failed, TakeBack::ByLoop),
        ] {
            let (held, start, _slow, mut rest) = behind_a_running_task(&["waiting"]);
            let (held, waiting) = (std::sync::Arc::new(held), rest.remove(0));
            assert_eq!(
                held.hand_backs(start, Duration::ZERO),
                std::slice::from_ref(&waiting)
            );
            assert!(held.start_hand_back(&waiting));
            let answer = {
                let (held, waiting) = (std::sync::Arc::clone(&held), waiting.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    held.hand_back_done(&waiting, outcome);
                })
            };
            // The store call is under way: the loop waits for it rather than guess.
            assert_eq!(held.take_back(&waiting), expected, "{outcome:?}");
            answer.join().unwrap();
        }
    }

    #[test]
    fn a_loop_that_comes_first_takes_over_a_hand_back_not_started() {
        let (held, start, _slow, rest) = behind_a_running_task(&["waiting"]);
        let waiting = &rest[0];
        assert_eq!(held.hand_backs(start, Duration::ZERO).len(), 1);
        assert_eq!(
            held.begin(waiting, start, Duration::from_secs(60)),
            Standing::HandedBack
        );
        assert_eq!(held.take_back(waiting), TakeBack::ByLoop);
        assert!(
            !held.start_hand_back(waiting),
            "the heartbeat no longer calls the store for it"
        );
    }

    #[test]
    fn a_task_its_loop_started_or_took_back_is_never_handed_back() {
        let (held, start, _slow, rest) = behind_a_running_task(&["started", "taken"]);
        let [started, taken] = &rest[..] else {
            unreachable!()
        };
        assert_eq!(
            held.begin(started, start, Duration::ZERO),
            Standing::Stale,
            "a started task is stale when not extended for `age`"
        );
        assert_eq!(
            held.take_back(taken),
            TakeBack::ByLoop,
            "a stop hands it back"
        );
        assert!(
            held.hand_backs(start + Duration::from_secs(1), Duration::ZERO)
                .is_empty()
        );
        assert_eq!(
            held.take_back(&lease("unknown", 9)),
            TakeBack::ByLoop,
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
