//! `backend::open` and `worker::run` on every durable backend's URL: a producer opens the store, a
//! worker runs on the same URL, and every task ends as its handler says (a result, a retry, a
//! dead letter), counted alike by the store and the worker's report.

use std::thread;

use serde::{Deserialize, Serialize};
use workmill::worker::{self, RunOptions, StopCause};
use workmill::{
    Backoff, Codec, FailureKind, NamedTask, NewTask, Postcard, Registry, RetryPolicy, TaskContext,
    TaskError, TaskStatus, WorkerId,
};

use crate::flaky::result_of;
use crate::stores::TestStore;
use crate::support::wait_until;

const SQUARES: u64 = 300;
const FAIL_FIRST: u64 = 20;
const REFUSED: u64 = 5;

#[test]
fn a_worker_on_a_sqlite_url_runs_every_task() {
    let dir = tempfile::tempdir().unwrap();
    a_worker_on_the_url_runs_every_task(&TestStore::sqlite(&dir.path().join("tasks.db")));
}

#[test]
fn a_worker_on_a_redis_url_runs_every_task() {
    if let Some(store) = TestStore::redis("a_worker_on_a_redis_url_runs_every_task") {
        a_worker_on_the_url_runs_every_task(&store);
    }
}

#[test]
fn a_worker_on_a_postgres_url_runs_every_task() {
    if let Some(store) = TestStore::postgres("a_worker_on_a_postgres_url_runs_every_task") {
        a_worker_on_the_url_runs_every_task(&store);
    }
}

/// Fails its first attempt (retryably), then returns its input.
#[derive(Serialize, Deserialize)]
struct FailFirst(u64);

impl NamedTask for FailFirst {
    const NAME: &'static str = "fail-first";
    type Output = u64;
    fn run(self, ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
        match ctx.attempt() {
            1 => Err(TaskError::retryable("first attempts fail")),
            _ => Ok(self.0),
        }
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register_fn("square", |x: u64| Ok::<_, TaskError>(x * x))
        .unwrap();
    registry.register::<FailFirst>().unwrap();
    registry
        .register_fn("refuse", |x: u64| {
            Err::<u64, _>(TaskError::permanent(format!("input {x} is refused")))
        })
        .unwrap();
    registry
}

fn call(name: &str, input: u64) -> NewTask {
    NewTask::new(name, Postcard.encode(&input).unwrap())
        .retry(RetryPolicy::new(3).backoff(Backoff::Immediate))
}

/// The producer's store and the worker's are one: the same URL opened twice.
fn a_worker_on_the_url_runs_every_task(store: &TestStore) {
    let producer = workmill::backend::open(store.url()).unwrap();
    assert_eq!(producer.backend_name(), store.kind());
    let mut tasks: Vec<NewTask> = (0..SQUARES).map(|i| call("square", i)).collect();
    tasks.extend((0..FAIL_FIRST).map(|i| call(FailFirst::NAME, i)));
    tasks.extend((0..REFUSED).map(|i| call("refuse", i)));
    let ids = producer.enqueue_batch(tasks).unwrap();

    let options = RunOptions::new()
        .worker_id(WorkerId::new("url-worker").unwrap())
        .concurrency(2)
        .max_batch(16)
        .handle_signals(false);
    let stop = options.stop_handle();
    let url = store.url().to_owned();
    let worker = thread::spawn(move || worker::run(registry(), &url, options));
    let total = SQUARES + FAIL_FIRST + REFUSED;
    wait_until(|| {
        let stats = producer.stats().unwrap();
        stats.completed + stats.dead == total
    });
    stop.stop();
    let report = worker.join().unwrap().unwrap();

    let stats = producer.stats().unwrap();
    assert!(stats.is_consistent(), "{stats:?}");
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.dead,
            stats.failed_attempts,
            stats.retried,
            stats.pending + stats.retrying + stats.running
        ),
        (
            total,
            SQUARES + FAIL_FIRST,
            REFUSED,
            FAIL_FIRST + REFUSED,
            FAIL_FIRST,
            0
        ),
        "{stats:?}"
    );
    assert_eq!((report.loops, report.unreported_loops), (2, 0));
    let tasks = &report.tasks;
    assert_eq!(
        (
            tasks.attempts,
            tasks.completed,
            tasks.failed,
            tasks.released,
            tasks.lost_leases,
            tasks.unrecorded,
            tasks.backend_errors
        ),
        (
            total + FAIL_FIRST,
            SQUARES + FAIL_FIRST,
            FAIL_FIRST + REFUSED,
            0,
            0,
            0,
            0
        ),
        "{report}"
    );
    assert_eq!(report.reconnects, 0, "{report}");
    assert_eq!(report.stopped_by, Some(StopCause::Handle));

    for (i, id) in ids.iter().enumerate() {
        let record = producer.status(id).unwrap();
        let worker = record.worker.as_ref().expect("a worker ran it");
        assert!(worker.as_str().starts_with("url-worker-"), "{worker}");
        let i = i as u64;
        if i < SQUARES {
            assert_eq!((record.status, record.attempts), (TaskStatus::Completed, 1));
            assert_eq!(result_of::<u64>(&record), i * i);
        } else if i < SQUARES + FAIL_FIRST {
            assert_eq!((record.status, record.attempts), (TaskStatus::Completed, 2));
            assert_eq!(result_of::<u64>(&record), i - SQUARES);
        } else {
            assert_eq!((record.status, record.attempts), (TaskStatus::Dead, 1));
            let failure = record.last_error.expect("a dead task keeps its failure");
            assert_eq!(failure.kind, FailureKind::Permanent);
            let input = i - SQUARES - FAIL_FIRST;
            assert!(
                failure
                    .message
                    .contains(&format!("input {input} is refused")),
                "{failure:?}"
            );
        }
    }
}
