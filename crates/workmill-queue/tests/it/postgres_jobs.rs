//! Jobs on PostgreSQL beyond the conformance suite: separate queue values (as separate
//! processes hold them) racing on the last maps of shared jobs, an oversized reduce, and the
//! job tables as a person reads them in `psql`. Skipped, saying why, without a server.

use workmill_core::{Failure, FailureKind, Queue, QueueError, WorkerId};
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
    new.reduce.payload = vec![7; 17];
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
