//! A Redis server killed (SIGKILL) and restarted in the middle of a run: a producer and two
//! worker threads keep their queue values, resume by themselves, and no task is lost.
//!
//! The test starts its own `redis-server` with `appendonly yes` and `appendfsync always`, so
//! that every acknowledged write survives the kill; the shared CI server keeps nothing on disk.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use workmill_core::{NewTask, Queue, TaskId, WorkerId};
use workmill_queue::redis::{RedisConfig, RedisQueue};

use crate::redis_server::{PrivateRedis, redis_server_available};

const TASKS: usize = 3_000;
const PRODUCER_BATCH: usize = 25;
const WORKERS: usize = 2;
const RESERVE_BATCH: usize = 8;
const LEASE: Duration = Duration::from_secs(2);
const DEADLINE: Duration = Duration::from_secs(120);

fn open(url: &str) -> RedisQueue {
    RedisConfig::new()
        .prefix("restart")
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_secs(2))
        .open(url)
        .expect("open the queue")
}

/// Enqueues one batch until the server has it. A retry after a lost reply finds the batch's
/// first id taken, which (batches going in whole or not at all) means the batch is in.
fn enqueue_surely(queue: &RedisQueue, batch: &[NewTask], errors: &Mutex<usize>) {
    loop {
        match queue.enqueue_batch(batch.to_vec()) {
            Ok(_) => return,
            Err(workmill_core::QueueError::DuplicateTask { id }) if id == batch[0].id => return,
            Err(err) => {
                assert!(
                    err.is_transient(),
                    "only the server's absence may fail: {err}"
                );
                *errors.lock().unwrap() += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn workers_ride_out_a_server_restart_and_lose_nothing() {
    if !redis_server_available("workers_ride_out_a_server_restart_and_lose_nothing") {
        return;
    }
    let mut server = PrivateRedis::start(&[]);
    let url = server.url("");
    let ids: Vec<TaskId> = (0..TASKS)
        .map(|i| TaskId::new(format!("restart-{i:05}")).unwrap())
        .collect();
    // Every run of a task appends its id here, as a task with side effects would.
    let ledger = Mutex::new(Vec::<TaskId>::new());
    let errors = Mutex::new(0usize);
    let producer_queue = open(&url);
    let worker_queues: Vec<RedisQueue> = (0..WORKERS).map(|_| open(&url)).collect();
    let start = Instant::now();

    std::thread::scope(|scope| {
        let (ledger, errors, ids) = (&ledger, &errors, &ids);
        let producer_queue = &producer_queue;
        scope.spawn(move || {
            for chunk in ids.chunks(PRODUCER_BATCH) {
                let batch: Vec<NewTask> = chunk
                    .iter()
                    .map(|id| {
                        NewTask::new("restart.append", id.as_str().as_bytes()).with_id(id.clone())
                    })
                    .collect();
                enqueue_surely(producer_queue, &batch, errors);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        for (n, queue) in worker_queues.iter().enumerate() {
            scope.spawn(move || {
                let me = WorkerId::new(format!("restart-worker-{n}")).unwrap();
                while start.elapsed() < DEADLINE {
                    let got = match queue.reserve(&me, RESERVE_BATCH, LEASE) {
                        Ok(got) => got,
                        Err(err) => {
                            assert!(err.is_transient(), "{err}");
                            *errors.lock().unwrap() += 1;
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                    };
                    if got.is_empty() {
                        match queue.stats() {
                            Ok(stats) if stats.completed as usize >= TASKS => return,
                            Ok(_) => {}
                            Err(_) => *errors.lock().unwrap() += 1,
                        }
                        if queue.await_work(Duration::from_millis(100)).is_err() {
                            *errors.lock().unwrap() += 1;
                        }
                        continue;
                    }
                    let done: Vec<_> = got
                        .into_iter()
                        .map(|r| {
                            ledger.lock().unwrap().push(r.lease.task.clone());
                            (r.lease, Vec::new())
                        })
                        .collect();
                    // A completion lost to the restart leaves its leases to lapse; they are
                    // rescued and run again, which is the bounded duplication at-least-once allows.
                    if queue.complete_batch(done).is_err() {
                        *errors.lock().unwrap() += 1;
                    }
                }
            });
        }

        // Kill the server once a third of the work is done, and bring it back.
        while ledger.lock().unwrap().len() < TASKS / 3 {
            assert!(start.elapsed() < DEADLINE, "the workers never got going");
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill();
        std::thread::sleep(Duration::from_millis(300));
        server.restart();
    });

    let ledger = ledger.into_inner().unwrap();
    let ran: HashSet<&TaskId> = ledger.iter().collect();
    let missing: Vec<&TaskId> = ids.iter().filter(|id| !ran.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} tasks never ran, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let duplicates = ledger.len() - ran.len();
    // In flight at the kill: what each worker had reserved and not yet recorded as done.
    assert!(
        duplicates <= WORKERS * RESERVE_BATCH,
        "{duplicates} tasks ran twice; at most {} were in flight",
        WORKERS * RESERVE_BATCH
    );
    assert!(
        *errors.lock().unwrap() > 0,
        "the restart was never noticed, so it proved nothing"
    );
    let stats = open(&url).stats().expect("stats after the restart");
    assert_eq!(
        (stats.completed as usize, stats.running, stats.pending),
        (TASKS, 0, 0),
        "{stats:?}"
    );
    assert!(stats.is_consistent(), "{stats:?}");
    println!(
        "restart: {} runs of {TASKS} tasks ({duplicates} duplicates), {} transient errors, {} expired leases, in {:?}; server dir {}",
        ledger.len(),
        errors.into_inner().unwrap(),
        stats.expired_leases,
        start.elapsed(),
        server.dir().display()
    );
}
