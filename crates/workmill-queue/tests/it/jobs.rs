//! Jobs on each backend beyond the conformance suite: the memory backend's capacity and payload
//! bounds, and SQLite's payload limit, its readable job tables, and separate handles on one file
//! (the race that `postgres_jobs.rs` and `redis_jobs.rs` run against their servers too).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use workmill_core::{JobStatus, NewJob, NewTask, Queue, QueueError, TaskStatus, WorkerId};
use workmill_queue::sqlite::{SqliteConfig, SqliteQueue};
use workmill_queue::{MemoryConfig, OnFull};

use crate::support::{LEASE, consistent, id, manual_queue, task, worker};

pub(crate) fn job(name: &str, maps: &[&str], reduce: &str) -> NewJob {
    let maps = maps.iter().map(|map| task(map, 5, 1)).collect();
    NewJob::new(maps, task(reduce, 5, 1)).with_id(id(name))
}

#[test]
fn the_maps_count_against_the_capacity_and_the_reduce_does_not() {
    let (queue, _) = manual_queue(
        MemoryConfig::default()
            .capacity(3)
            .on_full(OnFull::Wait(Duration::from_millis(5))),
    );
    queue.enqueue(task("plain", 5, 1)).unwrap();
    match queue.submit_job(job("big", &["b-0", "b-1", "b-2"], "b-reduce")) {
        Err(QueueError::QueueFull { capacity }) => assert_eq!(capacity, 3),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        queue.job(&id("big")),
        Err(QueueError::JobNotFound { .. })
    ));
    assert_eq!(
        consistent(&queue).submitted,
        1,
        "nothing of the refused job is stored"
    );

    queue
        .submit_job(job("fits", &["f-0", "f-1"], "f-reduce"))
        .unwrap();
    let held = queue.reserve(&worker(), 3, LEASE).unwrap();
    let names: Vec<&str> = held.iter().map(|r| r.id().as_str()).collect();
    assert_eq!(names, ["plain", "f-0", "f-1"]);
    for name in ["p-0", "p-1", "p-2"] {
        queue.enqueue(task(name, 5, 1)).unwrap();
    }
    assert!(matches!(
        queue.enqueue(task("p-3", 5, 1)),
        Err(QueueError::QueueFull { .. })
    ));
    // The queue is full, yet the last map's completion enqueues the reduce: it was accepted
    // with its job, as a retry is accepted with its task.
    queue.complete(&held[1].lease, Vec::new()).unwrap();
    queue.complete(&held[2].lease, Vec::new()).unwrap();
    assert_eq!(queue.job(&id("fits")).unwrap().status, JobStatus::Reducing);
    assert_eq!(
        queue.status(&id("f-reduce")).unwrap().status,
        TaskStatus::Pending
    );
    let stats = consistent(&queue);
    assert_eq!((stats.pending, stats.submitted), (4, 7));
}

#[test]
fn an_oversized_reduce_refuses_its_job_on_both_backends() {
    let (memory, _) = manual_queue(MemoryConfig::default().max_payload(Some(16)));
    let sqlite = SqliteConfig::new()
        .payload_limit(16)
        .open("sqlite::memory:")
        .unwrap();
    for queue in [&memory as &dyn Queue, &sqlite] {
        let mut new = job("huge", &["h-0"], "h-reduce");
        new.reduce.payload = vec![7; 17].into();
        match queue.submit_job(new) {
            Err(QueueError::PayloadTooLarge {
                id: refused,
                size,
                limit,
            }) => {
                assert_eq!((refused, size, limit), (id("h-reduce"), 17, 16));
            }
            other => panic!("{}: {other:?}", queue.backend_name()),
        }
        assert!(matches!(
            queue.status(&id("h-0")),
            Err(QueueError::NotFound { .. })
        ));
        assert_eq!(consistent(queue).submitted, 0);
    }
}

fn open_shared(path: &std::path::Path) -> SqliteQueue {
    SqliteQueue::open_path(
        path,
        SqliteConfig::new()
            .connections(1)
            .busy_timeout(Duration::from_secs(30)),
    )
    .expect("open the shared file")
}

const JOBS: usize = 6;
const MAPS: usize = 30;

#[test]
fn handles_on_one_file_racing_on_last_maps_enqueue_each_reduce_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let handles: Vec<SqliteQueue> = (0..4).map(|_| open_shared(&path)).collect();
    let handles: Vec<&dyn Queue> = handles.iter().map(|h| h as &dyn Queue).collect();
    race_on_last_maps(&handles);
}

/// Four handles on one store (as four processes would hold) reserve and complete the maps of
/// several jobs in small batches, racing on each job's last maps: each reduce runs once, and
/// every job completes with its results in map order.
pub(crate) fn race_on_last_maps(handles: &[&dyn Queue]) {
    let mut jobs = Vec::new();
    for j in 0..JOBS {
        let maps = (0..MAPS)
            .map(|m| NewTask::new("shared.map", vec![j as u8, m as u8]))
            .collect();
        let reduce = NewTask::new("shared.reduce", vec![j as u8]);
        jobs.push(handles[0].submit_job(NewJob::new(maps, reduce)).unwrap());
    }
    let total = (JOBS * (MAPS + 1)) as u64;
    let reduces: Vec<workmill_core::TaskId> = std::thread::scope(|scope| {
        let racing: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(n, queue)| {
                scope.spawn(move || {
                    let me = WorkerId::new(format!("process-{n}")).unwrap();
                    let start = Instant::now();
                    let mut reduces = Vec::new();
                    while start.elapsed() < Duration::from_secs(60) {
                        let got = queue.reserve(&me, 3, LEASE).expect("reserve");
                        if got.is_empty() {
                            if queue.stats().unwrap().completed == total {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                            continue;
                        }
                        reduces.extend(
                            got.iter()
                                .filter(|r| r.name == "shared.reduce")
                                .map(|r| r.lease.task.clone()),
                        );
                        let done = got.iter().map(|r| (r.lease.clone(), r.payload.to_vec()));
                        for outcome in queue.complete_batch(done.collect()).expect("complete") {
                            outcome.expect("a lease just handed out is held");
                        }
                    }
                    reduces
                })
            })
            .collect();
        racing.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let unique: HashSet<_> = reduces.iter().collect();
    assert_eq!(
        (unique.len(), reduces.len()),
        (JOBS, JOBS),
        "each reduce ran once"
    );
    let last = handles.len() - 1;
    for (j, job) in jobs.iter().enumerate() {
        let record = handles[last].job(job).unwrap();
        assert_eq!(
            (record.status, record.maps_done),
            (JobStatus::Completed, MAPS as u32)
        );
        let expected: Vec<Vec<u8>> = (0..MAPS).map(|m| vec![j as u8, m as u8]).collect();
        assert_eq!(handles[last / 2].job_results(job).unwrap(), expected);
    }
    let stats = consistent(handles[1 % handles.len()]);
    assert_eq!((stats.submitted, stats.completed), (total, total));
}

/// A row of `job_overview`: id, status, maps done, failed task, failure message.
type OverviewRow = (String, String, String, Option<String>, Option<String>);

#[test]
fn the_job_tables_explain_themselves_to_a_person_at_the_sqlite3_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readable.db");
    let queue = open_shared(&path);
    queue
        .submit_job(job("good", &["g-0", "g-1"], "g-reduce"))
        .unwrap();
    queue.submit_job(job("bad", &["x-0"], "x-reduce")).unwrap();
    let me = WorkerId::new("reader").unwrap();
    for reservation in queue.reserve(&me, 10, LEASE).unwrap() {
        if reservation.id() == &id("x-0") {
            let failure = workmill_core::Failure::new(
                workmill_core::FailureKind::Permanent,
                "unreadable input",
            );
            queue.fail(&reservation.lease, failure).unwrap();
        } else {
            let result = format!("words in {}", reservation.id()).into_bytes();
            queue.complete(&reservation.lease, result).unwrap();
        }
    }
    drop(queue);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let overview: Vec<OverviewRow> = conn
        .prepare(
            "SELECT id, status, maps_done, failed_task_id, failure_message
             FROM job_overview ORDER BY id",
        )
        .unwrap()
        .query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        overview,
        [
            (
                "bad".into(),
                "failed".into(),
                "0/1".into(),
                Some("x-0".into()),
                Some("unreadable input".into())
            ),
            ("good".into(), "reducing".into(), "2/2".into(), None, None),
        ]
    );
    let maps: Vec<(String, i64, String, Option<Vec<u8>>)> = conn
        .prepare("SELECT job_id, position, task_id, result FROM job_maps ORDER BY job_id, position")
        .unwrap()
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        maps,
        [
            ("bad".into(), 0, "x-0".into(), None),
            (
                "good".into(),
                0,
                "g-0".into(),
                Some(b"words in g-0".to_vec())
            ),
            (
                "good".into(),
                1,
                "g-1".into(),
                Some(b"words in g-1".to_vec())
            ),
        ]
    );
    let linked: Vec<(String, Option<String>)> = conn
        .prepare("SELECT id, job_id FROM tasks ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expect = |task: &str, job: &str| (task.to_owned(), Some(job.to_owned()));
    assert_eq!(
        linked,
        [
            expect("g-0", "good"),
            expect("g-1", "good"),
            expect("g-reduce", "good"),
            expect("x-0", "bad")
        ]
    );
    let held: i64 = conn
        .query_row("SELECT count(*) FROM held_reduces", [], |row| row.get(0))
        .unwrap();
    assert_eq!(held, 0, "the good reduce was enqueued, the bad one dropped");
}
