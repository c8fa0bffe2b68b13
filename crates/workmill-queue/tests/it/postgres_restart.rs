//! Connections the server terminates (`pg_terminate_backend`, as a restart or a failover would):
//! the call that finds one fails with a transient error, the next reconnects, and workers running
//! through repeated terminations finish every task with duplicates bounded by what was in flight.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use workmill_core::{Backoff, NewTask, Queue, QueueError, RetryPolicy, TaskId, WorkerId};
use workmill_queue::postgres::{PostgresConfig, PostgresQueue};

use crate::postgres_support::{PostgresHarness, postgres_or_skip};

/// Opens a queue whose connections carry `application_name = app`, so they can be found.
fn open_as(harness: &PostgresHarness, schema: &str, app: &str) -> PostgresQueue {
    let url = harness.url_with_schema(schema);
    PostgresConfig::new()
        .connections(2)
        .open(&format!("{url}&application_name={app}"))
        .expect("open the queue")
}

/// Terminates every connection named `app`; returns how many there were.
fn terminate(admin: &mut postgres::Client, app: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&app],
        )
        .expect("terminate the connections")
        .get(0)
}

/// Waits until the server has no connection named `app` left.
fn wait_until_gone(admin: &mut postgres::Client, app: &str) {
    let start = Instant::now();
    loop {
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .get(0);
        if left == 0 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{app} lingers");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn unique_app(prefix: &str) -> String {
    format!("{prefix}_{}", TaskId::generate().as_str().to_lowercase())
}

#[test]
fn the_call_after_a_terminated_connection_reconnects() {
    let harness = postgres_or_skip!();
    let schema = harness.fresh_schema();
    let app = unique_app("wm_reconnect");
    let queue = open_as(&harness, &schema, &app);
    queue.enqueue(NewTask::new("job", vec![1])).unwrap();
    let mut admin = harness.admin();
    assert_eq!(terminate(&mut admin, &app), 1, "one connection was open");
    wait_until_gone(&mut admin, &app);

    let first = queue.stats();
    let err = first.expect_err("the terminated connection fails the next call");
    assert!(
        matches!(err, QueueError::Backend { .. }) && err.is_transient(),
        "{err:?}"
    );
    let stats = queue.stats().expect("the call after reconnects");
    assert_eq!((stats.submitted, stats.pending), (1, 1));
    let worker = WorkerId::new("w").unwrap();
    let got = queue.reserve(&worker, 1, Duration::from_secs(60)).unwrap();
    queue.complete(&got[0].lease, Vec::new()).unwrap();
    assert_eq!(queue.stats().unwrap().completed, 1);
}

const TASKS: usize = 1_500;
const BATCH: usize = 10;
const WORKERS: usize = 2;
const LEASE: Duration = Duration::from_secs(1);

/// What the worker threads saw.
#[derive(Default)]
struct Ledger {
    /// How many times each task was run.
    runs: Mutex<HashMap<TaskId, u32>>,
    /// Calls that failed because a connection was lost.
    errors: AtomicU64,
    /// Completions refused because the lease had gone (a rescued lease, or a completion that
    /// was recorded although its answer was lost).
    lost_leases: AtomicU64,
}

/// One worker: reserve a batch, "run" it (record each task in the ledger), complete it,
/// retrying a completion that failed on a lost connection; sleep in `await_work` when idle.
fn work(queue: &PostgresQueue, me: &WorkerId, ledger: &Ledger, stop: &AtomicBool) {
    let transient = |err: QueueError| {
        assert!(
            err.is_transient(),
            "only connection failures are expected: {err:?}"
        );
        ledger.errors.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(2));
    };
    while !stop.load(Ordering::Relaxed) {
        let batch = match queue.reserve(me, BATCH, LEASE) {
            Ok(batch) => batch,
            Err(err) => {
                transient(err);
                continue;
            }
        };
        if batch.is_empty() {
            if let Err(err) = queue.await_work(Duration::from_millis(50)) {
                transient(err);
            }
            continue;
        }
        {
            let mut runs = ledger.runs.lock().unwrap();
            for reservation in &batch {
                *runs.entry(reservation.id().clone()).or_default() += 1;
            }
        }
        // A little work per batch, so that terminations land while tasks are in flight.
        std::thread::sleep(Duration::from_millis(2));
        let done: Vec<_> = batch
            .into_iter()
            .map(|r| (r.lease, r.payload.to_vec()))
            .collect();
        loop {
            match queue.complete_batch(done.clone()) {
                Ok(outcomes) => {
                    for outcome in outcomes {
                        match outcome {
                            Ok(()) => {}
                            Err(QueueError::LeaseLost { .. }) => {
                                ledger.lost_leases.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(err) => panic!("completing a held task: {err:?}"),
                        }
                    }
                    break;
                }
                Err(err) => transient(err),
            }
        }
    }
}

#[test]
fn workers_resume_by_themselves_when_their_connections_are_terminated_mid_run() {
    let harness = postgres_or_skip!();
    let schema = harness.fresh_schema();
    let app = unique_app("wm_restart");
    let producer = open_as(&harness, &schema, &unique_app("wm_producer"));
    let workers: Vec<PostgresQueue> = (0..WORKERS)
        .map(|_| open_as(&harness, &schema, &app))
        .collect();
    let ledger = Ledger::default();
    let stop = AtomicBool::new(false);
    let mut admin = harness.admin();
    // Many attempts, retried at once: a task whose lease lapses because of a termination
    // comes back at once and never runs out of attempts.
    let policy = RetryPolicy::new(1_000).backoff(Backoff::Immediate);

    let (submitted, terminations) = std::thread::scope(|scope| {
        for (n, queue) in workers.iter().enumerate() {
            let (ledger, stop) = (&ledger, &stop);
            scope.spawn(move || {
                let me = WorkerId::new(format!("restart-worker-{n}")).unwrap();
                work(queue, &me, ledger, stop);
            });
        }
        let feeding = scope.spawn(|| {
            let mut ids = Vec::with_capacity(TASKS);
            for chunk in 0..TASKS / 50 {
                let batch = (0..50)
                    .map(|n| {
                        NewTask::new("restart.job", vec![chunk as u8, n]).retry(policy.clone())
                    })
                    .collect();
                ids.extend(producer.enqueue_batch(batch).expect("enqueue"));
                std::thread::sleep(Duration::from_millis(3));
            }
            ids
        });
        // Terminate the workers' connections again and again while tasks are outstanding.
        let mut terminations = 0;
        let start = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(40));
            let completed = producer.stats().expect("stats").completed as usize;
            if completed >= TASKS {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the workers stalled at {completed} of {TASKS} tasks"
            );
            if terminations < 12 && terminate(&mut admin, &app) > 0 {
                terminations += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        (feeding.join().expect("producer"), terminations)
    });

    let runs = ledger.runs.into_inner().unwrap();
    assert_eq!(submitted.len(), TASKS);
    for id in &submitted {
        assert!(runs.get(id).is_some_and(|&n| n >= 1), "task {id} never ran");
    }
    let duplicates: u32 = runs.values().map(|&n| n - 1).sum();
    let stats = producer.stats().unwrap();
    println!(
        "{terminations} terminations, {} failed calls, {duplicates} duplicate runs, {} lost leases, {} expired leases",
        ledger.errors.load(Ordering::Relaxed),
        ledger.lost_leases.load(Ordering::Relaxed),
        stats.expired_leases
    );
    assert!(terminations >= 3, "terminations must land mid-run");
    assert!(
        ledger.errors.load(Ordering::Relaxed) >= 1,
        "the workers noticed their connections go"
    );
    // A termination can cost at most the batch each worker held at that moment.
    assert!(
        duplicates as usize <= terminations * WORKERS * BATCH,
        "{duplicates} duplicates after {terminations} terminations"
    );
    assert_eq!(
        (stats.submitted, stats.completed, stats.dead),
        (TASKS as u64, TASKS as u64, 0)
    );
    assert_eq!((stats.pending, stats.retrying, stats.running), (0, 0, 0));
    assert!(stats.is_consistent(), "{stats:?}");
}
