//! Jobs on PostgreSQL beyond the conformance suite: separate queue values (as separate
//! processes hold them) racing on the last maps of shared jobs, and completing, failing and
//! cancelling them at once without a deadlock; an oversized reduce; and the job tables as a
//! person reads them in `psql`. Skipped, saying why, without a server.

use workmill_core::{Failure, FailureKind, JobStatus, Queue, QueueError, TaskStatus, WorkerId};
use workmill_queue::postgres::{PostgresConfig, PostgresQueue};

use crate::jobs::{job, race_on_last_maps};
use crate::postgres_support::postgres_or_skip;
use crate::support::{LEASE, consistent, id};

#[test]
fn queue_values_on_one_schema_racing_on_last_maps_enqueue_each_reduce_once() {
    let harness = postgres_or_skip!();
    let schema = harness.fresh_schema();
    let url = harness.url_with_schema(&schema);
    // One connection each, so the four race as four processes would.
    let handles: Vec<PostgresQueue> = (0..4)
        .map(|_| PostgresConfig::new().connections(1).open(&url).unwrap())
        .collect();
    let handles: Vec<&dyn Queue> = handles.iter().map(|h| h as &dyn Queue).collect();
    race_on_last_maps(&handles);
}

#[test]
fn an_oversized_reduce_refuses_its_job() {
    let harness = postgres_or_skip!();
    let queue = harness.open(PostgresConfig::new().payload_limit(16));
    let mut new = job("huge", &["h-0"], "h-reduce");
    new.reduce.payload = vec![7; 17].into();
    match queue.submit_job(new) {
        Err(QueueError::PayloadTooLarge { id: refused, .. }) => {
            assert_eq!(refused, id("h-reduce"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        queue.job(&id("huge")),
        Err(QueueError::JobNotFound { .. })
    ));
    assert_eq!(consistent(&queue).submitted, 0);
}

/// A row of `job_overview`: id, status, maps done, failed task, failure message.
type OverviewRow = (String, String, String, Option<String>, Option<String>);

#[test]
fn the_job_tables_explain_themselves_to_a_person_at_the_psql_prompt() {
    let harness = postgres_or_skip!();
    let schema = harness.fresh_schema();
    let queue = PostgresConfig::new()
        .open(&harness.url_with_schema(&schema))
        .unwrap();
    queue
        .submit_job(job("good", &["g-0", "g-1"], "g-reduce"))
        .unwrap();
    queue.submit_job(job("bad", &["x-0"], "x-reduce")).unwrap();
    let me = WorkerId::new("reader").unwrap();
    for reservation in queue.reserve(&me, 10, LEASE).unwrap() {
        if reservation.id() == &id("x-0") {
            let failure = Failure::new(FailureKind::Permanent, "unreadable input");
            queue.fail(&reservation.lease, failure).unwrap();
        } else {
            let result = format!("words in {}", reservation.id()).into_bytes();
            queue.complete(&reservation.lease, result).unwrap();
        }
    }

    let mut admin = harness.admin();
    let sql = |template: &str| template.replace("{s}", &format!("\"{schema}\""));
    let overview: Vec<OverviewRow> = admin
        .query(
            &sql(
                "SELECT id, status, maps_done, failed_task_id, failure_message
                  FROM {s}.job_overview ORDER BY id",
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
        .collect();
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
    let maps: Vec<(String, i64, String, Option<Vec<u8>>)> = admin
        .query(
            &sql("SELECT job_id, position, task_id, result FROM {s}.job_maps
                  ORDER BY job_id, position"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();
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
    let linked: Vec<(String, Option<String>)> = admin
        .query(&sql("SELECT id, job_id FROM {s}.tasks ORDER BY id"), &[])
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
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
    let held: i64 = admin
        .query_one(&sql("SELECT count(*) FROM {s}.held_reduces"), &[])
        .unwrap()
        .get(0);
    assert_eq!(held, 0, "the good reduce was enqueued, the bad one dropped");
    let comment: Option<String> = admin
        .query_one(
            "SELECT obj_description(($1 || '.jobs')::regclass, 'pg_class')",
            &[&format!("\"{schema}\"")],
        )
        .unwrap()
        .get(0);
    assert!(
        comment.is_some_and(|c| c.contains("maps done out of total")),
        "the jobs table says what it holds"
    );
}

/// Workers completing and failing maps, and an operator cancelling maps, all at once on shared
/// jobs: the job row locks and the order in which each operation takes them never deadlock (a
/// deadlock would be a store error here), and every job ends one way, its books in order.
#[test]
fn endings_completions_and_cancels_racing_on_shared_jobs_never_deadlock() {
    const JOBS: usize = 12;
    const MAPS: usize = 24;
    /// Successful cancels, each of which cancels a job; later cancels aim at running maps,
    /// which are refused, but only after the cancel has locked the map, racing its worker.
    const CANCELS: usize = 3;
    let harness = postgres_or_skip!();
    let schema = harness.fresh_schema();
    let url = harness.url_with_schema(&schema);
    let open = || PostgresConfig::new().connections(1).open(&url).unwrap();
    let (worker_a, worker_b, operator) = (open(), open(), open());
    let mut jobs = Vec::new();
    let mut maps = Vec::new();
    for j in 0..JOBS {
        let mut new = job(&format!("race-{j}"), &[], &format!("race-{j}-reduce"));
        for m in 0..MAPS {
            let mut map = crate::support::task(&format!("race-{j}-map-{m}"), 5, 1);
            map.payload = vec![j as u8, m as u8].into();
            new.maps.push(map);
        }
        maps.extend(new.maps.iter().map(|map| map.id.clone()));
        jobs.push(operator.submit_job(new).unwrap());
    }
    let settled = |queue: &PostgresQueue| {
        jobs.iter()
            .all(|job| queue.job(job).unwrap().status.is_final())
            && {
                let stats = queue.stats().unwrap();
                stats.pending + stats.retrying + stats.running == 0
            }
    };
    std::thread::scope(|scope| {
        for (n, queue) in [&worker_a, &worker_b].into_iter().enumerate() {
            let settled = &settled;
            scope.spawn(move || {
                let me = WorkerId::new(format!("racer-{n}")).unwrap();
                let mut rng = fastrand::Rng::with_seed(n as u64);
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                while !settled(queue) {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the jobs did not settle"
                    );
                    let got = queue.reserve(&me, 5, LEASE).expect("reserve");
                    let mut done = Vec::new();
                    for reservation in got {
                        if rng.u8(..48) == 0 {
                            let failure = Failure::new(FailureKind::Permanent, "unlucky map");
                            queue.fail(&reservation.lease, failure).expect("fail");
                        } else {
                            done.push((reservation.lease, reservation.payload.to_vec()));
                        }
                    }
                    if !done.is_empty() {
                        for outcome in queue.complete_batch(done).expect("complete") {
                            outcome.expect("a lease just handed out is held");
                        }
                    }
                }
            });
        }
        let maps = &maps;
        let operator = &operator;
        let settled = &settled;
        scope.spawn(move || {
            let mut rng = fastrand::Rng::with_seed(99);
            let mut cancelled = 0;
            while !settled(operator) {
                let map = &maps[rng.usize(..maps.len())];
                let running = operator.status(map).unwrap().status == TaskStatus::Running;
                if cancelled == CANCELS && !running {
                    continue;
                }
                match operator.cancel(map) {
                    Ok(()) => cancelled += 1,
                    Err(QueueError::IllegalTransition { .. }) => {}
                    Err(other) => panic!("a cancel failed: {other:?}"),
                }
            }
        });
    });

    for job_id in &jobs {
        let record = operator.job(job_id).unwrap();
        let status = |id| operator.status(id).unwrap().status;
        match record.status {
            JobStatus::Completed => {
                let results = operator.job_results(job_id).unwrap();
                assert_eq!(results.len(), MAPS);
                assert_eq!(status(&record.reduce), TaskStatus::Completed);
            }
            JobStatus::Failed => {
                let (by, why) = record.failure.clone().expect("a failed job says why");
                assert_eq!(
                    (status(&by), why.message.as_str()),
                    (TaskStatus::Dead, "unlucky map")
                );
            }
            JobStatus::Cancelled => {
                assert!(
                    record
                        .maps
                        .iter()
                        .any(|map| status(map) == TaskStatus::Cancelled)
                );
            }
            other => panic!("job {job_id} ended {other}"),
        }
        let failed_by_reduce = record
            .failure
            .as_ref()
            .is_some_and(|(by, _)| *by == record.reduce);
        if record.status != JobStatus::Completed && !failed_by_reduce {
            assert!(
                matches!(
                    operator.status(&record.reduce),
                    Err(QueueError::NotFound { .. })
                ),
                "a job that ended before its maps did never enqueued its reduce"
            );
        }
    }
    let stats = consistent(&operator);
    assert_eq!(
        stats.pending + stats.retrying + stats.running,
        0,
        "{stats:?}"
    );
}
