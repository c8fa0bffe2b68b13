//! Checks under contention: threads reserving from one queue at once never share a task,
//! threads racing to complete a job's last maps enqueue its reduce once, and a worker waiting
//! without a deadline is woken by another thread's enqueue.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use workmill_core::{JobStatus, NewJob, NewTask, Queue, TaskId};

use crate::testkit::support::{LONG, id, worker};
use crate::testkit::{Harness, PATIENCE, QueueSettings};

const THREADS: usize = 4;
const TASKS: usize = 600;

/// Four threads reserve in small batches while a fifth keeps enqueueing: every task is
/// handed out exactly once, and every completion is recorded.
pub fn concurrent_reservers_never_share_a_task(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let half: Vec<NewTask> = (0..TASKS / 2)
        .map(|i| NewTask::new("conformance.count", i.to_le_bytes().to_vec()))
        .collect();
    let mut expected: HashSet<TaskId> = queue
        .enqueue_batch(half)
        .expect("enqueue")
        .into_iter()
        .collect();

    let (handed_out, late_ids) = std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            (TASKS / 2..TASKS)
                .map(|i| {
                    queue
                        .enqueue(NewTask::new("conformance.count", i.to_le_bytes().to_vec()))
                        .expect("enqueue while others reserve")
                })
                .collect::<Vec<TaskId>>()
        });
        let reservers: Vec<_> = (0..THREADS)
            .map(|n| {
                let queue = &queue;
                scope.spawn(move || {
                    let me = worker(&format!("racer-{n}"));
                    let start = Instant::now();
                    let mut mine = Vec::new();
                    let mut idle_rounds = 0;
                    // Stop after many empty rounds in a row once the producer must be done,
                    // or at the deadline; the totals below tell whether anything was missed.
                    while idle_rounds < 200 && start.elapsed() < PATIENCE {
                        let got = queue.reserve(&me, 1 + n * 2, LONG).expect("reserve");
                        if got.is_empty() {
                            idle_rounds += 1;
                            std::thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                        idle_rounds = 0;
                        let done: Vec<_> = got
                            .iter()
                            .map(|r| (r.lease.clone(), r.payload.to_vec()))
                            .collect();
                        for outcome in queue.complete_batch(done).expect("complete") {
                            outcome.expect("a lease just handed out is held");
                        }
                        mine.extend(got.into_iter().map(|r| r.lease.task));
                    }
                    mine
                })
            })
            .collect();
        let late = producer.join().expect("producer");
        let handed: Vec<TaskId> = reservers
            .into_iter()
            .flat_map(|r| r.join().expect("reserver"))
            .collect();
        (handed, late)
    });
    expected.extend(late_ids);
    assert_eq!(expected.len(), TASKS);

    let unique: HashSet<&TaskId> = handed_out.iter().collect();
    assert_eq!(
        unique.len(),
        handed_out.len(),
        "a task was handed to two reservers"
    );
    // Tasks enqueued after every reserver gave up are still waiting; none may be lost.
    let worker = worker("sweeper");
    let mut rest = Vec::new();
    loop {
        let got = queue.reserve(&worker, 100, LONG).expect("reserve");
        if got.is_empty() {
            break;
        }
        for r in got {
            queue.complete(&r.lease, Vec::new()).expect("complete");
            rest.push(r.lease.task);
        }
    }
    let all: HashSet<TaskId> = handed_out.into_iter().chain(rest).collect();
    assert_eq!(all, expected, "every task was handed out exactly once");
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (stats.completed, stats.running, stats.pending),
        (TASKS as u64, 0, 0)
    );
    assert!(stats.is_consistent(), "{stats:?}");
}

const JOBS: usize = 12;
const MAPS_PER_JOB: usize = 16;

/// Four threads reserve and complete the maps of a dozen jobs in batches of different
/// sizes, so they race on each job's last maps: every reduce is handed out exactly once,
/// and every job completes with its results in map order.
pub fn concurrent_map_completions_enqueue_each_reduce_once(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let mut jobs = Vec::with_capacity(JOBS);
    for j in 0..JOBS {
        let maps = (0..MAPS_PER_JOB)
            .map(|m| NewTask::new("conformance.map", vec![j as u8, m as u8]))
            .collect();
        let reduce = NewTask::new("conformance.reduce", vec![j as u8]);
        let job = NewJob::new(maps, reduce).with_id(id(&format!("race-{j}")));
        jobs.push(queue.submit_job(job).expect("submit a job"));
    }
    let total = (JOBS * (MAPS_PER_JOB + 1)) as u64;

    let reduces: Vec<TaskId> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..THREADS)
            .map(|n| {
                let queue = &queue;
                scope.spawn(move || {
                    let me = worker(&format!("job-racer-{n}"));
                    let start = Instant::now();
                    let mut reduces = Vec::new();
                    while start.elapsed() < PATIENCE {
                        let got = queue.reserve(&me, 1 + n * 2, LONG).expect("reserve");
                        if got.is_empty() {
                            if queue.stats().expect("stats").completed == total {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                        reduces.extend(
                            got.iter()
                                .filter(|r| r.name == "conformance.reduce")
                                .map(|r| r.lease.task.clone()),
                        );
                        let done: Vec<_> = got
                            .iter()
                            .map(|r| (r.lease.clone(), r.payload.to_vec()))
                            .collect();
                        for outcome in queue.complete_batch(done).expect("complete") {
                            outcome.expect("a lease just handed out is held");
                        }
                    }
                    reduces
                })
            })
            .collect();
        racers
            .into_iter()
            .flat_map(|racer| racer.join().expect("racer"))
            .collect()
    });

    let unique: HashSet<&TaskId> = reduces.iter().collect();
    assert_eq!(unique.len(), reduces.len(), "a reduce was handed out twice");
    let expected: HashSet<TaskId> = jobs
        .iter()
        .map(|job| queue.job(job).expect("job").reduce)
        .collect();
    assert_eq!(unique, expected.iter().collect(), "every reduce ran once");
    for (j, job) in jobs.iter().enumerate() {
        let record = queue.job(job).expect("job");
        assert_eq!(
            (record.status, record.maps_done),
            (JobStatus::Completed, MAPS_PER_JOB as u32),
            "{job}"
        );
        let results: Vec<Vec<u8>> = (0..MAPS_PER_JOB).map(|m| vec![j as u8, m as u8]).collect();
        assert_eq!(queue.job_results(job).expect("results"), results, "{job}");
    }
    let stats = queue.stats().expect("stats");
    assert_eq!((stats.submitted, stats.completed), (total, total));
    assert!(stats.is_consistent(), "{stats:?}");
}

/// `await_work` with a timeout of `Duration::MAX` ("until there is work") on an empty queue
/// neither fails nor panics, and returns once another thread enqueues a task (or earlier:
/// a spurious return is allowed).
pub fn await_work_without_a_deadline_returns_for_new_work(harness: &impl Harness) {
    let queue = Arc::new(harness.fresh(&QueueSettings::default()));
    let (sender, returned) = mpsc::channel();
    let waiter = {
        let queue = Arc::clone(&queue);
        std::thread::spawn(move || {
            let _ = sender.send(queue.await_work(Duration::MAX));
        })
    };
    // Not a condition of the check: it gives the waiter time to find the queue empty, which
    // is when it would have to block without a deadline.
    std::thread::sleep(Duration::from_millis(100));
    queue
        .enqueue(NewTask::new("conformance.wake", Vec::new()))
        .expect("enqueue");
    match returned.recv_timeout(PATIENCE) {
        Ok(outcome) => outcome.expect("await_work(Duration::MAX)"),
        Err(RecvTimeoutError::Disconnected) => {
            panic!("await_work(Duration::MAX) panicked on an empty queue")
        }
        Err(RecvTimeoutError::Timeout) => {
            panic!("await_work(Duration::MAX) did not return within {PATIENCE:?} of an enqueue")
        }
    }
    waiter.join().expect("the waiter thread");
}
