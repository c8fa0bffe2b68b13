//! The heartbeat thread of a worker process: extends every lease the process holds before it can
//! lapse, and tells the loops which leases the store says are gone.

use std::time::{Duration, Instant};

use workmill_core::Queue;

use super::control::Control;
use super::held::HeldLeases;

/// What the heartbeat thread did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeartbeatReport {
    /// Leases extended.
    pub(crate) beats: u64,
    /// Extensions that failed because the store did (tried again next round).
    pub(crate) errors: u64,
    /// Held leases the store refused to extend: lapsed and rescued, or the task gone.
    /// (A refusal for a lease its loop settled meanwhile is the race it looks like, not a loss.)
    pub(crate) refused: u64,
}

/// Extends the leases in `held` every `every` until `done` is stopped.
///
/// It sleeps on `done` between rounds, so it wakes `every` (or at once when
/// the loops have finished) and never polls. A round extends, to `lease` from
/// now, each lease not extended in the last `every / 2`: a short task's lease
/// is settled before its first round and costs the store nothing, and a held
/// lease is never older than about `1.5 * every` plus the time a round takes.
/// With `every` at a quarter of the lease (the default) a lease keeps at least
/// half its length in hand. A store failure ends the round early (the next
/// lease would most likely fail too); a refusal marks the lease lost, so a
/// loop does not start a task that another worker may now hold.
pub(crate) fn beat_until_done(
    queue: &dyn Queue,
    held: &HeldLeases,
    done: &Control,
    lease: Duration,
    every: Duration,
) -> HeartbeatReport {
    let mut report = HeartbeatReport::default();
    while !done.wait_for_stop(every) {
        beat_once(queue, held, lease, every / 2, &mut report);
    }
    report
}

/// How many leases one heartbeat call extends at most.
const ROUND_CHUNK: usize = 256;

/// One round: extends every held lease older than `age`, a chunk of leases per store call
/// (one write transaction on SQLite, where a write per lease would queue behind every other
/// process's writes and let the last leases of a long round lapse).
pub(crate) fn beat_once(
    queue: &dyn Queue,
    held: &HeldLeases,
    lease: Duration,
    age: Duration,
    report: &mut HeartbeatReport,
) {
    let due = held.due(Instant::now(), age);
    for chunk in due.chunks(ROUND_CHUNK) {
        // The store counts the extension from its own now, which is no earlier than this.
        let asked = Instant::now();
        let outcomes = match queue.heartbeat_batch(chunk, lease) {
            Ok(outcomes) => outcomes,
            Err(error) => {
                report.errors += 1;
                tracing::warn!(leases = chunk.len(), %error, "could not extend leases; trying again next round");
                return;
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
                    tracing::warn!(task = %due.task, %error, "could not extend a lease; trying again next round");
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
}

#[cfg(test)]
mod tests {
    use workmill_core::{NewTask, WorkerId};
    use workmill_queue::MemoryQueue;

    use super::*;

    #[test]
    fn a_round_extends_old_leases_and_marks_refused_ones_lost() {
        let queue = MemoryQueue::new();
        for i in 0..3 {
            queue
                .enqueue(NewTask::new(format!("t{i}"), vec![]))
                .unwrap();
        }
        let worker = WorkerId::new("w").unwrap();
        let reserved = queue.reserve(&worker, 3, Duration::from_secs(60)).unwrap();
        let held = HeldLeases::new();
        let long_ago = Instant::now() - Duration::from_secs(10);
        held.hold(reserved.iter().map(|r| &r.lease), long_ago);
        // The third task is finished elsewhere: its lease is gone.
        queue.complete(&reserved[2].lease, vec![]).unwrap();

        let mut report = HeartbeatReport::default();
        beat_once(
            &queue,
            &held,
            Duration::from_secs(120),
            Duration::from_secs(1),
            &mut report,
        );
        assert_eq!(
            report,
            HeartbeatReport {
                beats: 2,
                errors: 0,
                refused: 1
            }
        );
        assert!(held.is_lost(&reserved[2].lease));
        let record = queue.status(reserved[0].id()).unwrap();
        assert!(record.status == workmill_core::TaskStatus::Running);

        // Just extended: nothing is due in the next round.
        let mut again = HeartbeatReport::default();
        beat_once(
            &queue,
            &held,
            Duration::from_secs(120),
            Duration::from_secs(1),
            &mut again,
        );
        assert_eq!(again, HeartbeatReport::default());
    }
}
