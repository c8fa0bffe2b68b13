//! The heartbeat thread of a worker process (and of a runtime on a durable backend): extends every
//! lease the loops hold before it can lapse, and tells the loops which leases the store says are
//! gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use workmill_core::{Lease, Queue, QueueError};

use super::control::{Control, Mode};
#[cfg(test)]
use super::held::TakeBack;
use super::held::{HeldLeases, Released};
use super::reconnect::Reconnect;
use crate::error::RuntimeError;

/// What the heartbeat thread did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeartbeatReport {
    /// Leases extended.
    pub(crate) beats: u64,
    /// Extensions and hand-backs that failed because the store did (tried again next round).
    pub(crate) errors: u64,
    /// Held leases the store refused to extend: lapsed and rescued, or the task gone.
    /// (A refusal for a lease its loop settled meanwhile is the race it looks like, not a loss.)
    pub(crate) refused: u64,
}

/// A running heartbeat thread and the leases it keeps alive.
pub(crate) struct Heartbeat {
    held: Arc<HeldLeases>,
    done: Arc<Control>,
    /// Set when a loop could not be joined (a runtime shut down from inside one of its own
    /// tasks): the thread keeps beating until that loop has settled what it holds.
    linger: Arc<AtomicBool>,
    thread: JoinHandle<HeartbeatReport>,
}

impl Heartbeat {
    /// Starts a thread named `name` that extends the leases in [`held`](Heartbeat::held) to
    /// `lease` every `every`.
    ///
    /// It sleeps on a control between rounds, so it wakes `every` (or at once when stopped)
    /// and never polls. A round extends, to `lease` from now, each lease not extended in the
    /// last `every / 2`: a short task's lease is settled before its first round and costs the
    /// store nothing, and a held lease is never older than about `1.5 * every` plus the time a
    /// round takes. With `every` at most a third of the lease (a quarter by default) a lease
    /// keeps at least half its length in hand. A store failure ends the round early (the next
    /// lease would most likely fail too), and the next round comes after a [`Reconnect`] wait
    /// of at most `every / 2` instead of a whole interval, so that the leases it left waiting
    /// are tried several times before they can lapse. A refusal marks the lease lost, so a
    /// loop does not start a task that another worker may now hold.
    ///
    /// A round also hands back to the store the unstarted tasks of every batch in which a
    /// task has run for at least `every / 2` ([`HeldLeases::hand_backs`]): a loop runs its
    /// batch in order, and without this they would wait out the long task while other
    /// workers may be idle. They are due again at once, their attempt uncounted, as on a stop;
    /// so a task waits at most about one and a half intervals behind a long batch-mate, and
    /// tasks shorter than half an interval never hand back their batch-mates.
    pub(crate) fn start(
        queue: Arc<dyn Queue>,
        name: String,
        lease: Duration,
        every: Duration,
    ) -> Result<Heartbeat, RuntimeError> {
        let held = Arc::new(HeldLeases::new());
        let done = Arc::new(Control::new(Mode::Run));
        let linger = Arc::new(AtomicBool::new(false));
        let thread = {
            let (held, done, linger) = (Arc::clone(&held), Arc::clone(&done), Arc::clone(&linger));
            thread::Builder::new()
                .name(name.clone())
                .spawn(move || beat(&*queue, &held, &done, &linger, lease, every))
                .map_err(|source| RuntimeError::Spawn { name, source })?
        };
        Ok(Heartbeat {
            held,
            done,
            linger,
            thread,
        })
    }

    /// The leases the loops hold, for [`run_until_refused`](super::run_until_refused).
    pub(crate) fn held(&self) -> Arc<HeldLeases> {
        Arc::clone(&self.held)
    }

    /// Stops the thread and waits for it; call once the loops have returned.
    pub(crate) fn stop(self) -> HeartbeatReport {
        self.done.set(Mode::Stop);
        self.thread.join().unwrap_or_else(|_| {
            tracing::error!("the heartbeat thread panicked");
            HeartbeatReport::default()
        })
    }

    /// Lets the thread go on until no lease is held, without waiting for it: for a shutdown
    /// that could not join one of its loops (called from inside that loop's task), whose task
    /// still runs under a lease.
    pub(crate) fn stop_when_settled(self) {
        self.linger.store(true, Ordering::SeqCst);
        self.done.set(Mode::Stop);
    }
}

/// The thread: a round every `every` until stopped; once stopped while lingering, on until
/// the held leases are settled.
fn beat(
    queue: &dyn Queue,
    held: &HeldLeases,
    done: &Control,
    linger: &AtomicBool,
    lease: Duration,
    every: Duration,
) -> HeartbeatReport {
    let mut report = HeartbeatReport::default();
    // Rounds in a row the store failed: the leases such a round left waiting have already
    // waited up to 1.5 intervals, so they are tried again soon, not a whole interval later.
    let mut failed_rounds = 0;
    loop {
        let wait = match failed_rounds {
            0 => every,
            _ => retry_wait(every, failed_rounds),
        };
        if done.wait_for_stop(wait) {
            if !linger.load(Ordering::SeqCst) || held.len() == 0 {
                return report;
            }
            // Stopped, so the wait above no longer sleeps.
            thread::sleep(wait);
        }
        let extended = beat_once(queue, held, lease, every / 2, &mut report);
        // A round whose extensions failed asks the store nothing more: each call could wait
        // out a connect timeout, and the extensions are tried again sooner than a round.
        let whole = extended && hand_back_once(queue, held, every / 2, &mut report);
        failed_rounds = if whole { 0 } else { failed_rounds + 1 };
    }
}

/// The wait before trying again after `failed_rounds` rounds in a row the store failed: the
/// default [`Reconnect`] wait (50 ms, doubling), never more than half an interval. With the
/// interval at most a third of the lease, a lease left waiting by a failed round still has
/// half its length, so it is tried at least twice more before it lapses.
fn retry_wait(every: Duration, failed_rounds: u32) -> Duration {
    Reconnect::default()
        .delay(failed_rounds, fastrand::f64())
        .min(every / 2)
}

/// How many leases one heartbeat call extends at most.
const ROUND_CHUNK: usize = 256;

/// One round: extends every held lease older than `age`, a chunk of leases per store call
/// (one write transaction on SQLite, where a write per lease would queue behind every other
/// process's writes and let the last leases of a long round lapse). False if the store
/// failed to extend some of them, which are then tried again soon.
pub(super) fn beat_once(
    queue: &dyn Queue,
    held: &HeldLeases,
    lease: Duration,
    age: Duration,
    report: &mut HeartbeatReport,
) -> bool {
    let mut all_asked = true;
    let due = held.due(Instant::now(), age);
    for chunk in due.chunks(ROUND_CHUNK) {
        // The store counts the extension from its own now, which is no earlier than this.
        let asked = Instant::now();
        let outcomes = match queue.heartbeat_batch(chunk, lease) {
            Ok(outcomes) => outcomes,
            Err(error) => {
                // Every extension of the chunk failed, counted as the per-lease failures below
                // are; the later chunks were not asked, and wait for the retry.
                report.errors += chunk.len() as u64;
                tracing::warn!(leases = chunk.len(), %error, "could not extend leases; trying again soon");
                return false;
            }
        };
        for (due, outcome) in chunk.iter().zip(outcomes) {
            match outcome {
                Ok(_) => {
                    report.beats += 1;
                    held.extended(due, asked);
                }
                Err(error) if error.is_transient() => {
                    report.errors += 1;
                    all_asked = false;
                    tracing::warn!(task = %due.task, %error, "could not extend a lease; trying again soon");
                }
                Err(error) => {
                    if held.mark_lost(due) {
                        report.refused += 1;
                        tracing::warn!(task = %due.task, %error, "the store refused to extend a lease; the task may run elsewhere");
                    }
                }
            }
        }
    }
    all_asked
}

/// Hands back to the store the unstarted tasks waiting behind a task that has run for at least
/// `after` (and those whose hand-back failed before), one store call at a time, reporting each
/// outcome to `held`; false if the store failed, which leaves the rest for the next round
/// unless their loops take them over first (a loop that comes to such a task hands it back
/// itself, with its retries). A refusal means the lease is gone already (it lapsed, and the
/// store's rescue has the task).
pub(super) fn hand_back_once(
    queue: &dyn Queue,
    held: &HeldLeases,
    after: Duration,
    report: &mut HeartbeatReport,
) -> bool {
    // After a store failure the rest are not asked (each call could wait out a connect timeout
    // on a store that is down): they wait for the next round, or for their loops.
    for lease in held.hand_backs(Instant::now(), after) {
        if !held.start_hand_back(&lease) {
            continue;
        }
        // Should the store call panic, a lease left marked under way would keep its loop
        // waiting in `HeldLeases::take_back` for good: the guard marks it failed, and its
        // loop hands it back itself.
        let unsettled = Unsettled {
            held,
            lease: &lease,
        };
        let outcome = queue.release(&lease);
        std::mem::forget(unsettled);
        match outcome {
            Ok(()) => {
                held.hand_back_done(&lease, Released::Taken);
                tracing::debug!(task = %lease.task, "handed back a task that waited behind a long task of its batch");
            }
            Err(QueueError::LeaseLost { .. }) => {
                held.hand_back_done(&lease, Released::Refused);
                tracing::warn!(task = %lease.task, "the store would not take back a task waiting behind a long one: its lease is gone");
            }
            Err(error) => {
                // A failure, or a refusal that the loop's own hand-back reports as it reports
                // any other: the loop takes it over if it comes to the task first.
                report.errors += 1;
                held.hand_back_done(&lease, Released::Failed);
                tracing::warn!(task = %lease.task, %error, "could not hand back a task waiting behind a long one; trying again soon");
                return false;
            }
        }
    }
    true
}

/// Marks a hand-back whose store call did not return (it panicked) as failed.
struct Unsettled<'a> {
    held: &'a HeldLeases,
    lease: &'a Lease,
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        self.held.hand_back_done(self.lease, Released::Failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::tests::held_batch;

    /// A round hands back the tasks waiting behind a long task of their batch: due again at
    /// once with their attempt uncounted. A store that fails leaves them for the next round.
    #[test]
    fn a_round_hands_back_tasks_waiting_behind_a_long_one() {
        let (queue, worker, reserved, held) = held_batch(3);
        let start = Instant::now() - Duration::from_secs(10);
        held.begin(&reserved[0].lease, start, Duration::from_secs(60));
        let after = Duration::from_secs(1);

        let mut report = HeartbeatReport::default();
        let down = crate::worker::tests::Down::default();
        assert!(!hand_back_once(&down, &held, after, &mut report));
        assert_eq!(report.errors, 1, "the first failure ends the round's calls");
        let mut again: Vec<_> = held.hand_backs(Instant::now(), after);
        again.sort_by(|a, b| a.task.cmp(&b.task));
        assert_eq!(
            again,
            [reserved[1].lease.clone(), reserved[2].lease.clone()],
            "the failed one and the one not asked wait for the next round (or their loops)"
        );
        assert_eq!(
            held.due(Instant::now(), Duration::ZERO),
            [reserved[0].lease.clone()],
            "only the running task's lease is extended"
        );

        assert!(hand_back_once(&queue, &held, after, &mut report));
        assert!(
            held.hand_backs(Instant::now(), after).is_empty(),
            "each is handed back once"
        );
        for waiting in &reserved[1..] {
            let record = queue.status(waiting.id()).unwrap();
            assert_eq!(
                (record.status, record.attempts),
                (workmill_core::TaskStatus::Pending, 0)
            );
        }
        let again = queue.reserve(&worker, 3, Duration::from_secs(60)).unwrap();
        assert_eq!(again.len(), 2, "both are due again at once");
    }

    /// A store call that panics leaves no lease marked under way: its loop would wait for it
    /// for good. The guard marks it failed, and the loop hands it back itself.
    #[test]
    fn a_hand_back_whose_store_call_panicked_is_left_to_its_loop() {
        let (_queue, _worker, reserved, held) = held_batch(2);
        let start = Instant::now() - Duration::from_secs(10);
        held.begin(&reserved[0].lease, start, Duration::from_secs(60));
        let panics = crate::worker::tests::Down::panicking();
        let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            hand_back_once(
                &panics,
                &held,
                Duration::ZERO,
                &mut HeartbeatReport::default(),
            )
        }));
        assert!(round.is_err(), "the store call panicked");
        assert_eq!(
            held.hand_backs(Instant::now(), Duration::ZERO),
            std::slice::from_ref(&reserved[1].lease),
            "no longer marked under way: the next round may try it again"
        );
        assert_eq!(held.take_back(&reserved[1].lease), TakeBack::ByLoop);
    }

    #[test]
    fn a_round_extends_old_leases_and_marks_refused_ones_lost() {
        let (queue, _worker, reserved, held) = held_batch(3);
        // The third task is finished elsewhere: its lease is gone.
        queue.complete(&reserved[2].lease, vec![]).unwrap();

        let mut report = HeartbeatReport::default();
        assert!(beat_once(
            &queue,
            &held,
            Duration::from_secs(120),
            Duration::from_secs(1),
            &mut report,
        ));
        assert_eq!(
            report,
            HeartbeatReport {
                beats: 2,
                refused: 1,
                ..HeartbeatReport::default()
            }
        );
        assert!(held.is_lost(&reserved[2].lease));
        let record = queue.status(reserved[0].id()).unwrap();
        assert!(record.status == workmill_core::TaskStatus::Running);

        // Just extended: nothing is due in the next round.
        let mut again = HeartbeatReport::default();
        assert!(beat_once(
            &queue,
            &held,
            Duration::from_secs(120),
            Duration::from_secs(1),
            &mut again,
        ));
        assert_eq!(again, HeartbeatReport::default());
    }
}
