//! Several `SqliteQueue` values on one file, each with its own connection, as separate worker
//! processes would have: no task is handed out twice, and a dead holder's tasks come back.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use workmill_core::{Backoff, NewTask, Queue, RetryPolicy, TaskId, WorkerId};
use workmill_queue::sqlite::{SqliteConfig, SqliteQueue};

const HANDLES: usize = 4;
const TASKS: usize = 1_200;

fn open(path: &std::path::Path) -> SqliteQueue {
    SqliteQueue::open_path(
        path,
        SqliteConfig::new()
            .connections(1)
            .busy_timeout(Duration::from_secs(30)),
    )
    .expect("open the shared file")
}

#[test]
fn handles_on_one_file_never_share_a_task() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // Every handle opens (and would migrate) the file at the same moment.
    let handles: Vec<SqliteQueue> = std::thread::scope(|scope| {
        let opening: Vec<_> = (0..HANDLES + 1)
            .map(|_| scope.spawn(|| open(&path)))
            .collect();
        opening.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (producer, workers) = handles.split_first().unwrap();

    let (submitted, handed_out) = std::thread::scope(|scope| {
        let feeding = scope.spawn(|| {
            let mut ids = Vec::new();
            for chunk in 0..TASKS / 100 {
                let batch = (0..100)
                    .map(|n| NewTask::new("shared.job", vec![chunk as u8, n]))
                    .collect();
                ids.extend(producer.enqueue_batch(batch).expect("enqueue"));
            }
            ids
        });
        let reserving: Vec<_> = workers
            .iter()
            .enumerate()
            .map(|(n, queue)| {
                scope.spawn(move || {
                    let me = WorkerId::new(format!("process-{n}")).unwrap();
                    let mut mine = Vec::new();
                    let start = Instant::now();
                    let mut idle = 0;
                    while idle < 300 && start.elapsed() < Duration::from_secs(60) {
                        let got = queue
                            .reserve(&me, 8, Duration::from_secs(60))
                            .expect("reserve");
                        if got.is_empty() {
                            idle += 1;
                            std::thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                        idle = 0;
                        let done = got.iter().map(|r| (r.lease.clone(), Vec::new())).collect();
                        for outcome in queue.complete_batch(done).expect("complete") {
                            outcome.expect("a fresh lease is held");
                        }
                        mine.extend(got.into_iter().map(|r| r.lease.task));
                    }
                    mine
                })
            })
            .collect();
        let submitted: Vec<TaskId> = feeding.join().unwrap();
        let handed: Vec<TaskId> = reserving
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        (submitted, handed)
    });
    let unique: HashSet<&TaskId> = handed_out.iter().collect();
    assert_eq!(
        unique.len(),
        handed_out.len(),
        "two handles were given the same task"
    );
    let stats = producer.stats().unwrap();
    assert_eq!(stats.submitted, TASKS as u64);
    assert_eq!(stats.completed as usize, handed_out.len());
    assert_eq!(
        stats.completed + stats.pending,
        TASKS as u64,
        "nothing lost, nothing running"
    );
    assert_eq!(submitted.len(), TASKS);
    assert!(stats.is_consistent());
}

#[test]
fn a_dead_handles_leases_come_back_through_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rescue.db");
    let survivor = open(&path);
    let retry_at_once = RetryPolicy::new(3).backoff(Backoff::Immediate);
    let tasks = (0..10).map(|n| NewTask::new("job", vec![n]).retry(retry_at_once.clone()));
    survivor.enqueue_batch(tasks.collect()).unwrap();
    let lease = Duration::from_millis(20);
    let held: HashSet<TaskId> = {
        let doomed = open(&path);
        let me = WorkerId::new("doomed").unwrap();
        doomed
            .reserve(&me, 4, lease)
            .unwrap()
            .into_iter()
            .map(|r| r.lease.task)
            .collect()
        // `doomed` is dropped here holding four leases, as a killed process would be.
    };
    assert_eq!(held.len(), 4);
    let me = WorkerId::new("survivor").unwrap();
    let start = Instant::now();
    let mut rescued = HashSet::new();
    let mut others = 0;
    while rescued.len() < held.len() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the dead handle's tasks never came back"
        );
        for r in survivor.reserve(&me, 10, Duration::from_secs(60)).unwrap() {
            if held.contains(&r.lease.task) {
                assert_eq!(r.attempt, 2, "the lapsed attempt counts");
                rescued.insert(r.lease.task.clone());
            } else {
                others += 1;
            }
            survivor.complete(&r.lease, Vec::new()).unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(others, 6);
    let stats = survivor.stats().unwrap();
    assert_eq!(
        (stats.completed, stats.expired_leases, stats.running),
        (10, 4, 0)
    );
}

#[test]
fn many_handles_open_a_new_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..20 {
        let path = dir.path().join(format!("race-{round}.db"));
        let opened: Vec<Result<SqliteQueue, workmill_core::QueueError>> =
            std::thread::scope(|scope| {
                let openers: Vec<_> = (0..6)
                    .map(|_| {
                        scope.spawn(|| {
                            SqliteQueue::open_path(&path, SqliteConfig::new().connections(2))
                        })
                    })
                    .collect();
                openers.into_iter().map(|h| h.join().unwrap()).collect()
            });
        for queue in opened {
            let queue = queue.unwrap_or_else(|err| panic!("round {round}: {err}"));
            assert_eq!(queue.schema_version().unwrap(), 3);
        }
    }
}
