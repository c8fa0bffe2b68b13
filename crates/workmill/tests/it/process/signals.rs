//! Stopping worker processes with signals: SIGTERM finishes the running tasks and hands back the
//! unstarted reservations at once; a second signal exits without waiting.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use workmill::{
    Codec, ListFilter, NamedTask, NewTask, Postcard, Queue, RetryPolicy, SqliteQueue, TaskStatus,
};

use super::child::{Hang, Ledger, RunUntilStopped};
use super::parent::{Settings, WorkerProcess, count};
use crate::support::wait_until;

fn settings(dir: &tempfile::TempDir) -> (SqliteQueue, Settings) {
    let url = format!("sqlite://{}", dir.path().join("tasks.db").display());
    let queue = SqliteQueue::open(&url).unwrap();
    let settings = Settings {
        url,
        ledger: dir.path().join("ledger.txt"),
        concurrency: 2,
        // Each loop reserves exactly four tasks: it runs one and holds three unstarted.
        min_batch: 4,
        max_batch: 4,
        // Far longer than the test: a task back in the queue was handed back, not lapsed.
        lease: Duration::from_secs(600),
        sigterm_after: false,
    };
    (queue, settings)
}

fn enqueue(queue: &SqliteQueue, name: &str, count: usize) {
    let payload = Postcard.encode(&()).unwrap();
    queue
        .enqueue_batch(
            (0..count)
                .map(|_| NewTask::new(name, payload.clone()).retry(RetryPolicy::never()))
                .collect(),
        )
        .unwrap();
}

#[test]
fn sigterm_finishes_running_tasks_and_hands_back_the_rest_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, mut settings) = settings(&dir);
    settings.sigterm_after = true;
    enqueue(&queue, RunUntilStopped::NAME, 20);
    let worker = WorkerProcess::start("graceful", &settings);
    wait_until(|| {
        let stats = queue.stats().unwrap();
        let started = Ledger::read(&settings.ledger).len();
        stats.running == 8 && started == 2
    });

    worker.signal(libc::SIGTERM);
    worker.expect_line("STOPPING Some(Signal(15))");
    let (report, status) = worker.finish();
    // After `worker::run` returned, the worker sent itself SIGTERM: the signal's default
    // action is back, so it ended the process instead of being ignored.
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}");
    assert_eq!(
        ["attempts", "completed", "released", "lost", "unrecorded"].map(|f| count(&report, f)),
        [2, 2, 6, 0, 0],
        "{report:?}"
    );

    // Right after the exit, with every lease minutes from lapsing: the running tasks are
    // completed, the unstarted ones pending again with no attempt counted.
    let stats = queue.stats().unwrap();
    assert_eq!(
        (
            stats.completed,
            stats.running,
            stats.pending,
            stats.expired_leases,
            stats.failed_attempts
        ),
        (2, 0, 18, 0, 0),
        "{stats:?}"
    );
    let pending = queue
        .list(&ListFilter {
            status: Some(TaskStatus::Pending),
            limit: 100,
        })
        .unwrap();
    assert!(pending.iter().all(|record| record.attempts == 0));

    // Each task that started also ended, and those are the completed ones.
    let mut started = BTreeSet::new();
    let mut ended = BTreeSet::new();
    for line in Ledger::read(&settings.ledger) {
        match line.as_slice() {
            [event, task] if event == "start" => assert!(started.insert(task.clone())),
            [event, task] if event == "end" => assert!(ended.insert(task.clone())),
            other => panic!("unexpected ledger line {other:?}"),
        }
    }
    let completed: BTreeSet<String> = queue
        .list(&ListFilter {
            status: Some(TaskStatus::Completed),
            limit: 100,
        })
        .unwrap()
        .into_iter()
        .map(|record| record.id.to_string())
        .collect();
    assert_eq!(started.len(), 2);
    assert_eq!(started, ended);
    assert_eq!(started, completed);
}

#[test]
fn a_second_signal_exits_at_once_and_the_leases_are_left_to_lapse() {
    let dir = tempfile::tempdir().unwrap();
    let (queue, settings) = settings(&dir);
    enqueue(&queue, Hang::NAME, 8);
    let worker = WorkerProcess::start("stuck", &settings);
    wait_until(|| Ledger::read(&settings.ledger).len() == 2);

    worker.signal(libc::SIGINT);
    // The first signal is taken in; the hanging tasks keep the worker from stopping.
    worker.expect_line("STOPPING Some(Signal(2))");
    worker.signal(libc::SIGINT);
    let status = worker.exit_status();
    assert_eq!(status.code(), Some(128 + libc::SIGINT), "{status}");

    // Nothing was recorded or handed back: the tasks wait for their leases to lapse.
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.running, stats.completed, stats.pending),
        (8, 0, 0),
        "{stats:?}"
    );
}
