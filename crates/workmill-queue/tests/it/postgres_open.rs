//! Opening a PostgreSQL queue for real: URL forms and their errors, schemas as separate queues,
//! many processes opening one new schema at once, and a schema a person can read in `psql`.

use std::time::Duration;

use workmill_core::{
    Failure, FailureKind, Lease, ListFilter, NewTask, Queue, QueueError, TaskId, TaskStatus,
    Timestamp, WorkerId,
};
use workmill_queue::postgres::{PostgresConfig, PostgresQueue};

use crate::postgres_support::postgres_or_skip;

fn id(text: &str) -> TaskId {
    TaskId::new(text).unwrap()
}

#[test]
fn a_schema_in_the_url_or_the_config_is_a_queue_of_its_own() {
    let harness = postgres_or_skip!();
    let (a, b) = (harness.fresh_schema(), harness.fresh_schema());
    let first = PostgresQueue::open(&harness.url_with_schema(&a)).unwrap();
    let postgresql_scheme = harness
        .url_with_schema(&b)
        .replacen("postgres://", "postgresql://", 1);
    let second = PostgresQueue::open(&postgresql_scheme).unwrap();
    assert_eq!((first.schema(), second.schema()), (a.as_str(), b.as_str()));
    first
        .enqueue(NewTask::new("job", b"in a".to_vec()).with_id(id("same-id")))
        .unwrap();
    second
        .enqueue(NewTask::new("job", b"in b".to_vec()).with_id(id("same-id")))
        .expect("the same id in another schema is another task");
    assert_eq!(first.status(&id("same-id")).unwrap().payload, b"in a");
    assert_eq!(second.status(&id("same-id")).unwrap().payload, b"in b");

    // The config names the schema as well; it must agree with the URL.
    let again = PostgresConfig::new()
        .schema(a.clone())
        .open(&harness.url_with_schema(&a))
        .unwrap();
    assert_eq!(again.stats().unwrap().submitted, 1);
    let err = PostgresConfig::new()
        .schema(b.clone())
        .open(&harness.url_with_schema(&a))
        .unwrap_err();
    assert!(matches!(err, QueueError::InvalidUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("give it once"), "{err}");
    let err = PostgresConfig::new()
        .schema("Not Valid")
        .open(harness.url())
        .unwrap_err();
    assert!(err.to_string().contains("lowercase"), "{err}");
}

#[test]
fn an_unreachable_server_is_a_transient_error_that_names_it_without_the_password() {
    let _harness = postgres_or_skip!();
    // Port 1 on the loopback interface refuses connections at once.
    let err = PostgresConfig::new()
        .connect_timeout(Duration::from_secs(2))
        .open("postgres://someone:hunter2@127.0.0.1:1/nowhere")
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("127.0.0.1:1") && message.contains("pg_hba.conf"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn many_processes_opening_one_new_schema_migrate_it_once() {
    let harness = postgres_or_skip!();
    let schema = harness.fresh_schema();
    let url = harness.url_with_schema(&schema);
    let opened: Vec<Result<PostgresQueue, QueueError>> = std::thread::scope(|scope| {
        let openers: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| PostgresQueue::open(&url)))
            .collect();
        openers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut versions = Vec::new();
    for queue in &opened {
        let queue = queue.as_ref().unwrap_or_else(|err| panic!("{err}"));
        versions.push(queue.schema_version().unwrap());
    }
    let latest = versions[0];
    assert!(latest >= 3, "jobs came with version 3");
    assert!(versions.iter().all(|&v| v == latest), "{versions:?}");
    let mut admin = harness.admin();
    let applied: i64 = admin
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".schema_migrations"),
            &[],
        )
        .unwrap()
        .get(0);
    // Versions run 1, 2, 3, ... so each applied once is as many rows as the latest version.
    assert_eq!(
        applied,
        i64::from(latest),
        "each migration was applied once"
    );
}

/// A task as an operator reads it: id, name, status, attempts, worker, last error message.
type TaskRow = (String, String, String, i64, Option<String>, Option<String>);

#[test]
fn the_schema_reads_in_plain_sql() {
    let harness = postgres_or_skip!();
    let queue = harness.open(PostgresConfig::new());
    let schema = queue.schema().to_owned();
    queue
        .enqueue(NewTask::new("email.send", b"hi".to_vec()).with_id(id("mail-1")))
        .unwrap();
    queue
        .enqueue(NewTask::new("email.send", b"yo".to_vec()).with_id(id("mail-2")))
        .unwrap();
    let worker = WorkerId::new("host-1-0").unwrap();
    let got = queue.reserve(&worker, 1, Duration::from_secs(60)).unwrap();
    queue
        .fail(
            &got[0].lease,
            Failure::new(FailureKind::Permanent, "bad address"),
        )
        .unwrap();

    let mut admin = harness.admin();
    let rows: Vec<TaskRow> = admin
        .query(
            &format!(
                "SELECT id, name, status, attempts, worker, last_error_message
                 FROM \"{schema}\".tasks ORDER BY id"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    assert_eq!(
        rows,
        [
            (
                "mail-1".into(),
                "email.send".into(),
                "dead".into(),
                1,
                Some("host-1-0".into()),
                Some("bad address".into())
            ),
            (
                "mail-2".into(),
                "email.send".into(),
                "pending".into(),
                0,
                None,
                None
            ),
        ]
    );
    let stats = admin
        .query_one(
            &format!("SELECT submitted, dead, pending FROM \"{schema}\".queue_stats"),
            &[],
        )
        .unwrap();
    let (submitted, dead, pending): (i64, i64, i64) = (stats.get(0), stats.get(1), stats.get(2));
    assert_eq!((submitted, dead, pending), (2, 1, 1));
    let finished: String = admin
        .query_one(
            &format!(
                "SELECT to_char(finished AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')
                 FROM \"{schema}\".task_overview WHERE id = 'mail-1'"
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(finished.starts_with("20"), "readable time: {finished}");
    let comment: Option<String> = admin
        .query_one(
            &format!("SELECT col_description('\"{schema}\".tasks'::regclass, 7)"),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        comment.is_some_and(|c| c.contains("FIFO")),
        "column seq explains itself"
    );
}

#[test]
fn a_batch_with_a_duplicate_stores_nothing() {
    let harness = postgres_or_skip!();
    let queue = harness.open(PostgresConfig::new());
    queue
        .enqueue(NewTask::new("job", vec![]).with_id(id("taken")))
        .unwrap();
    let batch = vec![
        NewTask::new("job", vec![]).with_id(id("new-1")),
        NewTask::new("job", vec![]).with_id(id("taken")),
    ];
    assert!(
        matches!(queue.enqueue_batch(batch), Err(QueueError::DuplicateTask { id: t }) if t == id("taken"))
    );
    assert!(matches!(
        queue.status(&id("new-1")),
        Err(QueueError::NotFound { .. })
    ));
    let stats = queue.stats().unwrap();
    assert_eq!((stats.submitted, stats.pending), (1, 1));
}

#[test]
fn complete_batch_reports_each_task() {
    let harness = postgres_or_skip!();
    let queue = harness.open(PostgresConfig::new());
    queue
        .enqueue_batch((0..3).map(|n| NewTask::new("job", vec![n])).collect())
        .unwrap();
    let worker = WorkerId::new("w").unwrap();
    let got = queue.reserve(&worker, 3, Duration::from_secs(60)).unwrap();
    let stale = Lease {
        token: got[1].lease.token + 100,
        ..got[1].lease.clone()
    };
    let unknown = Lease {
        task: id("nobody"),
        token: 1,
        expires_at: Timestamp::now(),
    };
    let outcomes = queue
        .complete_batch(vec![
            (got[0].lease.clone(), b"0".to_vec()),
            (stale, b"1".to_vec()),
            (got[2].lease.clone(), b"2".to_vec()),
            (unknown, Vec::new()),
            (got[0].lease.clone(), b"again".to_vec()),
        ])
        .unwrap();
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
    assert!(matches!(outcomes[1], Err(QueueError::LeaseLost { .. })));
    assert!(matches!(outcomes[3], Err(QueueError::NotFound { .. })));
    assert!(
        matches!(outcomes[4], Err(QueueError::LeaseLost { .. })),
        "a lease completes once"
    );
    assert_eq!(
        queue.status(got[0].id()).unwrap().result.as_deref(),
        Some(&b"0"[..])
    );
    let stats = queue.stats().unwrap();
    assert_eq!((stats.completed, stats.running), (2, 1));
}

#[test]
fn oversized_payloads_are_refused_and_any_batch_size_is_taken() {
    let harness = postgres_or_skip!();
    let queue = harness.open(PostgresConfig::new().payload_limit(1_000));
    queue
        .enqueue(NewTask::new("job", vec![0; 1_000]))
        .expect("at the limit is fine");
    assert!(matches!(
        queue.enqueue(NewTask::new("job", vec![0; 1_001]).with_id(id("too-big"))),
        Err(QueueError::PayloadTooLarge {
            size: 1_001,
            limit: 1_000,
            ..
        })
    ));
    queue
        .enqueue_batch((0..2).map(|n| NewTask::new("job", vec![n])).collect())
        .unwrap();
    let worker = WorkerId::new("w").unwrap();
    assert!(
        queue
            .reserve(&worker, 0, Duration::from_secs(1))
            .unwrap()
            .is_empty()
    );
    let all = queue
        .reserve(&worker, usize::MAX, Duration::from_secs(1))
        .unwrap();
    assert_eq!(all.len(), 3);
    let listed = queue
        .list(&ListFilter {
            status: Some(TaskStatus::Running),
            limit: 10,
        })
        .unwrap();
    assert_eq!(listed.len(), 3);
}

#[test]
fn retention_evicts_in_chunks_and_never_exceeds_its_bound() {
    let harness = postgres_or_skip!();
    // A bound of 128 evicts the excess plus 128 / 64 = 2 more, so every third finish evicts 3.
    let queue = harness.open(PostgresConfig::new().retain_finished(Some(128)));
    let policy = workmill_core::RetryPolicy::never();
    queue
        .enqueue_batch(
            (0..140u32)
                .map(|n| NewTask::new("job", n.to_le_bytes().to_vec()).retry(policy.clone()))
                .collect(),
        )
        .unwrap();
    let worker = WorkerId::new("w").unwrap();
    let mut evictions = Vec::new();
    for n in 0..140 {
        let got = queue.reserve(&worker, 1, Duration::from_secs(60)).unwrap();
        let lease = &got[0].lease;
        // Completions go through the one-statement path, failures through a transaction.
        if n % 2 == 0 {
            queue.complete(lease, Vec::new()).unwrap();
        } else {
            queue
                .fail(lease, Failure::new(FailureKind::Error, "dead on arrival"))
                .unwrap();
        }
        let stats = queue.stats().unwrap();
        let stored = queue
            .list(&ListFilter {
                status: None,
                limit: 1_000,
            })
            .unwrap()
            .into_iter()
            .filter(|r| r.status.is_final())
            .count() as u64;
        assert_eq!(stored, stats.finished() - stats.evicted, "after {}", n + 1);
        assert!(
            stored <= 128,
            "{stored} finished records kept after {}",
            n + 1
        );
        if evictions.last() != Some(&stats.evicted) {
            evictions.push(stats.evicted);
        }
    }
    assert_eq!(evictions, [0, 3, 6, 9, 12]);
    let stats = queue.stats().unwrap();
    assert_eq!((stats.completed, stats.dead, stats.evicted), (70, 70, 12));
    assert!(stats.is_consistent(), "{stats:?}");
}
