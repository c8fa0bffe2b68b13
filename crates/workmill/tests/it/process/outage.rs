//! What the outage tests share: worker processes running ledger tasks while their store goes away
//! and comes back, stopping them, and the checks that nothing was lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use workmill::{
    Backoff, Codec, ListFilter, NamedTask, NewTask, Postcard, Queue, QueueError, RetryPolicy,
    TaskId, TaskStatus,
};

use super::child::{AppendId, Ledger};
use super::parent::{Report, Settings, WorkerProcess, count};
use crate::support::wait_until;

pub(crate) const CONCURRENCY: usize = 4;
pub(crate) const MAX_BATCH: usize = 8;
/// Short, so that a reservation whose answer was lost in the outage comes back soon.
const LEASE: Duration = Duration::from_secs(2);

/// Worker processes on `url`, with their ledger in `dir`.
pub(crate) fn settings(url: &str, dir: &Path) -> Settings {
    Settings {
        url: url.to_owned(),
        ledger: dir.join("ledger.txt"),
        concurrency: CONCURRENCY,
        min_batch: 1,
        max_batch: MAX_BATCH,
        lease: LEASE,
        sigterm_after: false,
    }
}

/// The ids `{prefix}-00000`, `{prefix}-00001`, ...
pub(crate) fn ids(prefix: &str, count: usize) -> Vec<TaskId> {
    (0..count)
        .map(|i| TaskId::new(format!("{prefix}-{i:05}")).unwrap())
        .collect()
}

/// Enqueues a ledger task under each id, with attempts to spare for leases lost in an outage.
pub(crate) fn enqueue(queue: &dyn Queue, ids: &[TaskId]) {
    let policy = RetryPolicy::new(10).backoff(Backoff::Immediate);
    let payload = Postcard.encode(&AppendId).unwrap();
    let tasks = ids
        .iter()
        .map(|id| {
            NewTask::new(AppendId::NAME, payload.clone())
                .with_id(id.clone())
                .retry(policy.clone())
        })
        .collect();
    queue.enqueue_batch(tasks).unwrap();
}

/// The answer of `call`, asked again while the store is away (a transient error).
pub(crate) fn answer<T>(mut call: impl FnMut() -> Result<T, QueueError>) -> T {
    let mut answer = None;
    wait_until(|| match call() {
        Ok(value) => {
            answer = Some(value);
            true
        }
        Err(error) if error.is_transient() => false,
        Err(error) => panic!("the store refused: {error}"),
    });
    answer.expect("answered")
}

/// Waits until `queue` counts `total` completed tasks.
pub(crate) fn wait_for_completed(queue: &dyn Queue, total: usize) {
    wait_until(|| {
        queue
            .stats()
            .is_ok_and(|stats| stats.completed == total as u64)
    });
}

/// Stops every worker with SIGTERM and checks that each one noticed the outage, reconnected
/// by itself and recorded every outcome; their reports.
pub(crate) fn stop(workers: Vec<WorkerProcess>) -> BTreeMap<String, Report> {
    for worker in &workers {
        worker.signal(libc::SIGTERM);
    }
    let mut reports = BTreeMap::new();
    for worker in workers {
        let id = worker.id.clone();
        let (report, status) = worker.finish();
        assert!(status.success(), "worker {id} exited {status}");
        assert_eq!(
            report["stopped_by"],
            format!("Some(Signal({}))", libc::SIGTERM)
        );
        assert_eq!(count(&report, "unrecorded"), 0, "{id}: {report:?}");
        assert!(
            count(&report, "errors") >= 1,
            "{id} never saw the store fail: {report:?}"
        );
        assert!(
            count(&report, "reconnects") >= 1,
            "{id} never reconnected: {report:?}"
        );
        reports.insert(id, report);
    }
    reports
}

/// Checks that each of `ids` completed, once in the books, and ran at least once by the
/// ledger, with at most `bound` extra runs, each allowed by a lapsed attempt; the number of
/// extra runs.
pub(crate) fn check_nothing_lost(
    queue: &dyn Queue,
    ids: &[TaskId],
    ledger: &Path,
    bound: usize,
) -> usize {
    let stats = queue.stats().unwrap();
    assert!(stats.is_consistent(), "{stats:?}");
    let total = ids.len() as u64;
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.dead,
            stats.cancelled
        ),
        (total, total, 0, 0),
        "{stats:?}"
    );
    assert_eq!((stats.pending, stats.retrying, stats.running), (0, 0, 0));
    // The only failures are leases that lapsed (reservations whose answer the outage lost),
    // each retried.
    assert_eq!(stats.failed_attempts, stats.expired_leases, "{stats:?}");
    assert_eq!(stats.retried, stats.expired_leases, "{stats:?}");
    let attempts: HashMap<TaskId, u32> = queue
        .list(&ListFilter {
            status: Some(TaskStatus::Completed),
            limit: 2 * ids.len(),
        })
        .unwrap()
        .into_iter()
        .map(|record| (record.id, record.attempts))
        .collect();
    assert_eq!(attempts.len(), ids.len());

    let mut runs: HashMap<TaskId, usize> = HashMap::new();
    for line in Ledger::read(ledger) {
        let [task, _worker] = <[String; 2]>::try_from(line).expect("`task worker` lines");
        *runs.entry(TaskId::new(task).unwrap()).or_default() += 1;
    }
    assert_eq!(
        runs.keys().collect::<BTreeSet<_>>(),
        ids.iter().collect::<BTreeSet<_>>(),
        "the ledger has every task and nothing else"
    );
    let mut duplicates = 0;
    for (id, &ran) in &runs {
        assert!(
            ran <= attempts[id] as usize,
            "{id} ran {ran} times in {} attempts",
            attempts[id]
        );
        duplicates += ran - 1;
    }
    assert!(
        duplicates <= bound,
        "{duplicates} runs beyond the first; at most {bound} tasks were held"
    );
    duplicates
}
