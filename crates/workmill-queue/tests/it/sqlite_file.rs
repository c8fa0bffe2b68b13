//! SQLite's own guarantees on a file: persistence across reopening, atomic batches, limits, clear
//! open errors, and a schema a person can read with plain SQL.

use std::time::Duration;

use rusqlite::Connection;
use workmill_core::{
    Backoff, FailureKind, Lease, NewTask, Queue, QueueError, RetryPolicy, TaskId, TaskStatus,
    Timestamp, WorkerId,
};
use workmill_queue::sqlite::{SqliteConfig, SqliteQueue};

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("tasks.db");
    (dir, path)
}

fn id(text: &str) -> TaskId {
    TaskId::new(text).unwrap()
}

#[test]
fn tasks_and_leases_survive_closing_the_file() {
    let (_dir, path) = temp_db();
    let url = format!("sqlite://{}", path.display());
    let worker = WorkerId::new("crashing-worker").unwrap();
    {
        let queue = SqliteQueue::open(&url).unwrap();
        for n in 0..5 {
            let retry_at_once = RetryPolicy::new(3).backoff(Backoff::Immediate);
            let task = NewTask::new("job", vec![n]).with_id(id(&format!("t{n}")));
            queue.enqueue(task.retry(retry_at_once)).unwrap();
        }
        let held = queue.reserve(&worker, 2, Duration::from_millis(1)).unwrap();
        assert_eq!(held.len(), 2);
        // The process "dies" holding two leases: the queue is dropped without completing them.
    }
    let queue = SqliteQueue::open(&url).unwrap();
    let stats = queue.stats().unwrap();
    assert_eq!((stats.submitted, stats.pending, stats.running), (5, 3, 2));
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(
        queue.rescue_expired().unwrap(),
        2,
        "the dead worker's leases are rescued"
    );
    let survivor = WorkerId::new("survivor").unwrap();
    let mut seen = Vec::new();
    loop {
        let got = queue
            .reserve(&survivor, 10, Duration::from_secs(60))
            .unwrap();
        if got.is_empty() {
            break;
        }
        for r in got {
            queue.complete(&r.lease, Vec::new()).unwrap();
            seen.push(r.lease.task);
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        ["t0", "t1", "t2", "t3", "t4"].map(id),
        "nothing was lost"
    );
    let stats = queue.stats().unwrap();
    assert_eq!((stats.completed, stats.expired_leases), (5, 2));
}

#[test]
fn a_batch_with_a_duplicate_stores_nothing() {
    let queue = SqliteQueue::open("sqlite::memory:").unwrap();
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
    assert!(
        matches!(queue.status(&id("new-1")), Err(QueueError::NotFound { .. })),
        "the batch is atomic"
    );
    assert_eq!(queue.stats().unwrap().submitted, 1);
}

#[test]
fn oversized_payloads_are_refused_at_submit() {
    let queue = SqliteConfig::new()
        .payload_limit(1_000)
        .open("sqlite::memory:")
        .unwrap();
    queue
        .enqueue(NewTask::new("job", vec![0; 1_000]))
        .expect("at the limit is fine");
    match queue.enqueue(NewTask::new("job", vec![0; 1_001]).with_id(id("too-big"))) {
        Err(QueueError::PayloadTooLarge {
            id: refused,
            size,
            limit,
        }) => {
            assert_eq!((refused, size, limit), (id("too-big"), 1_001, 1_000));
        }
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    assert_eq!(queue.stats().unwrap().submitted, 1);
}

#[test]
fn complete_batch_reports_each_task_in_one_transaction() {
    let queue = SqliteQueue::open("sqlite::memory:").unwrap();
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
        ])
        .unwrap();
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
    assert!(matches!(outcomes[1], Err(QueueError::LeaseLost { .. })));
    assert!(matches!(outcomes[3], Err(QueueError::NotFound { .. })));
    let stats = queue.stats().unwrap();
    assert_eq!((stats.completed, stats.running), (2, 1));
}

#[test]
fn open_failures_say_what_to_fix() {
    let err = SqliteQueue::open("postgres://localhost/db").unwrap_err();
    assert!(matches!(err, QueueError::InvalidUrl { .. }), "{err:?}");
    assert!(
        err.to_string().contains("sqlite://path/to/file.db"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir/tasks.db");
    let err = SqliteQueue::open(&format!("sqlite://{}", missing.display())).unwrap_err();
    assert!(
        err.is_transient() || matches!(err, QueueError::Backend { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("no-such-dir") && message.contains("directory exists"),
        "{message}"
    );
}

/// A task as an operator reads it: id, name, status, attempts, worker, last error message.
type TaskRow = (String, String, String, i64, Option<String>, Option<String>);

#[test]
fn the_schema_reads_in_plain_sql() {
    let (_dir, path) = temp_db();
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
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
            workmill_core::Failure::new(FailureKind::Permanent, "bad address"),
        )
        .unwrap();

    // What an operator at the sqlite3 prompt sees, asked in plain SQL on a second connection.
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let rows: Vec<TaskRow> = conn
        .prepare(
            "SELECT id, name, status, attempts, worker, last_error_message FROM tasks ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
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
    let (dead, pending): (i64, i64) = conn
        .query_row("SELECT dead, pending FROM queue_counters", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((dead, pending), (1, 1));
    let finished: String = conn
        .query_row(
            "SELECT finished FROM task_overview WHERE id = 'mail-1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        finished.starts_with("20") && finished.ends_with('Z'),
        "readable time: {finished}"
    );
    let status = queue.status(&id("mail-1")).unwrap();
    assert_eq!(status.status, TaskStatus::Dead);
}

#[test]
fn reserve_takes_any_batch_size() {
    let queue = SqliteQueue::open("sqlite::memory:").unwrap();
    queue
        .enqueue_batch((0..3).map(|n| NewTask::new("job", vec![n])).collect())
        .unwrap();
    let worker = WorkerId::new("w").unwrap();
    assert!(
        queue
            .reserve(&worker, 0, Duration::from_secs(1))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        queue
            .reserve(&worker, usize::MAX, Duration::from_secs(1))
            .unwrap()
            .len(),
        3
    );
}
