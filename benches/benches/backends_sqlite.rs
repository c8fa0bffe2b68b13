//! Group `backends`: durable tasks per second on SQLite, end to end (enqueue, reserve, complete),
//! against a raw SQLite INSERT + UPDATE loop doing the same commits in WAL mode, the ceiling.
//!
//! Every case uses a database file in a temporary directory (not `:memory:`) with
//! `journal_mode = WAL`, `synchronous = NORMAL` and `wal_autocheckpoint = 8192`,
//! `SqliteQueue`'s defaults, on both sides: a
//! commit survives a process crash, and the last commits may be lost only if the
//! machine loses power (see `Synchronous` in workmill-queue). Throughput is per task.
//!
//! - `backends/sqlite-commit-per-task`: one task per transaction, three commits per task
//!   (enqueue, reserve, complete), against three single-statement autocommits per task.
//! - `backends/sqlite-batched-100`: a batch of 100 tasks per transaction, three commits
//!   per batch, against the same raw statements in three transactions of 100.
//! - `backends/sqlite-reserve-1m-finished`: the commit-per-task cycle on a queue that
//!   already keeps a million finished records, against the same cycle on an empty queue
//!   (`empty-queue`): a ratio near 1 means the indexes keep reserve independent of history.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, params};
use workmill_core::{NewTask, Queue, WorkerId};
use workmill_queue::sqlite::{SqliteConfig, SqliteQueue};

const PAYLOAD: usize = 64;
const BATCH: usize = 100;
const LEASE: Duration = Duration::from_secs(300);

fn open_queue(dir: &Path, name: &str, config: SqliteConfig) -> SqliteQueue {
    SqliteQueue::open_path(dir.join(name), config).expect("open the bench queue")
}

fn task() -> NewTask {
    NewTask::new("bench.echo", vec![7; PAYLOAD])
}

/// One task through its whole life, one transaction per step.
fn cycle_one(queue: &SqliteQueue, worker: &WorkerId) {
    queue.enqueue(task()).expect("enqueue");
    let got = queue.reserve(worker, 1, LEASE).expect("reserve");
    for reservation in got {
        queue
            .complete(&reservation.lease, vec![1; 16])
            .expect("complete");
    }
}

/// `BATCH` tasks through their lives, one transaction per step for the whole batch.
fn cycle_batch(queue: &SqliteQueue, worker: &WorkerId) {
    queue
        .enqueue_batch((0..BATCH).map(|_| task()).collect())
        .expect("enqueue");
    let got = queue.reserve(worker, BATCH, LEASE).expect("reserve");
    let done = got.into_iter().map(|r| (r.lease, vec![1; 16])).collect();
    for outcome in queue.complete_batch(done).expect("complete") {
        outcome.expect("a fresh lease is held");
    }
}

/// The ceiling: a bare table and the same commits, in WAL mode with `synchronous = NORMAL`.
struct RawSqlite {
    conn: Connection,
}

impl RawSqlite {
    fn open(path: &Path) -> RawSqlite {
        let conn = Connection::open(path).expect("open the raw database");
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .expect("WAL");
        conn.pragma_update(None, "synchronous", "NORMAL")
            .expect("synchronous");
        // The same checkpoint interval as `SqliteConfig`'s default, so the ceiling
        // flushes to disk as often per page written as the queue does.
        conn.pragma_update(None, "wal_autocheckpoint", 8_192)
            .expect("wal_autocheckpoint");
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS raw_tasks (
                 id INTEGER PRIMARY KEY, payload BLOB NOT NULL, status TEXT NOT NULL, result BLOB)",
        )
        .expect("create the raw table");
        RawSqlite { conn }
    }

    fn insert(&self) -> i64 {
        self.conn
            .prepare_cached("INSERT INTO raw_tasks (payload, status) VALUES (?1, 'pending')")
            .and_then(|mut s| s.execute([vec![7u8; PAYLOAD]]))
            .expect("insert");
        self.conn.last_insert_rowid()
    }

    fn set_running(&self, id: i64) {
        self.conn
            .prepare_cached("UPDATE raw_tasks SET status = 'running' WHERE id = ?1")
            .and_then(|mut s| s.execute([id]))
            .expect("update");
    }

    fn set_completed(&self, id: i64) {
        self.conn
            .prepare_cached("UPDATE raw_tasks SET status = 'completed', result = ?1 WHERE id = ?2")
            .and_then(|mut s| s.execute(params![vec![1u8; 16], id]))
            .expect("update");
    }

    fn cycle_one(&self) {
        let id = self.insert();
        self.set_running(id);
        self.set_completed(id);
    }

    fn cycle_batch(&mut self) {
        let tx = self.conn.transaction().expect("begin");
        let mut ids = Vec::with_capacity(BATCH);
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO raw_tasks (payload, status) VALUES (?1, 'pending')")
                .expect("prepare");
            for _ in 0..BATCH {
                insert.execute([vec![7u8; PAYLOAD]]).expect("insert");
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit().expect("commit");
        let tx = self.conn.transaction().expect("begin");
        for &id in &ids {
            tx.prepare_cached("UPDATE raw_tasks SET status = 'running' WHERE id = ?1")
                .and_then(|mut s| s.execute([id]))
                .expect("update");
        }
        tx.commit().expect("commit");
        let tx = self.conn.transaction().expect("begin");
        for &id in &ids {
            tx.prepare_cached(
                "UPDATE raw_tasks SET status = 'completed', result = ?1 WHERE id = ?2",
            )
            .and_then(|mut s| s.execute(params![vec![1u8; 16], id]))
            .expect("update");
        }
        tx.commit().expect("commit");
    }
}

/// Times `iters` runs of `step`.
fn timed(iters: u64, mut step: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        step();
    }
    start.elapsed()
}

fn commit_per_task(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let queue = open_queue(dir.path(), "per-task.db", SqliteConfig::new());
    let raw = RawSqlite::open(&dir.path().join("raw-per-task.db"));
    let worker = WorkerId::new("bench-worker").expect("a valid id");
    let mut group = c.benchmark_group("backends/sqlite-commit-per-task");
    group.throughput(Throughput::Elements(1));
    group.bench_function("workmill", |b| {
        b.iter_custom(|iters| timed(iters, || cycle_one(&queue, &worker)))
    });
    group.bench_function("raw-sqlite", |b| {
        b.iter_custom(|iters| timed(iters, || raw.cycle_one()))
    });
    group.finish();
}

fn batched(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let queue = open_queue(dir.path(), "batched.db", SqliteConfig::new());
    let mut raw = RawSqlite::open(&dir.path().join("raw-batched.db"));
    let worker = WorkerId::new("bench-worker").expect("a valid id");
    let mut group = c.benchmark_group("backends/sqlite-batched-100");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("workmill", |b| {
        b.iter_custom(|iters| timed(iters, || cycle_batch(&queue, &worker)))
    });
    group.bench_function("raw-sqlite", |b| {
        b.iter_custom(|iters| timed(iters, || raw.cycle_batch()))
    });
    group.finish();
}

/// Fills a queue with `count` completed records straight through SQL, as years of use would.
fn with_finished_history(dir: &Path, count: u64) -> SqliteQueue {
    let config = SqliteConfig::new().retain_finished(None);
    let queue = open_queue(dir, "history.db", config.clone());
    queue.enqueue(task()).expect("enqueue");
    drop(queue);
    let conn = Connection::open(dir.join("history.db")).expect("open");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .expect("pragmas");
    // Copy the one real row's columns, so the history is in the backend's exact format.
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO tasks (id, name, payload, payload_checksum, status, priority, seq, attempts,
             max_attempts, backoff, backoff_initial_us, backoff_factor, backoff_max_us, jitter,
             demote_by, created_at, run_at, started_at, finished_at, worker, result)
         SELECT 'history-' || i, t.name, t.payload, t.payload_checksum, 'completed', t.priority,
             -i, 1, t.max_attempts, t.backoff, t.backoff_initial_us, t.backoff_factor,
             t.backoff_max_us, t.jitter, t.demote_by, t.created_at, t.run_at, t.created_at,
             t.created_at + i, 'old-worker', x'01'
         FROM n, (SELECT * FROM tasks LIMIT 1) AS t",
        [count as i64],
    )
    .expect("insert the history");
    conn.execute(
        "UPDATE queue_counters SET submitted = submitted + ?1, completed = completed + ?1,
             retained_finished = retained_finished + ?1",
        [count as i64],
    )
    .expect("count the history");
    drop(conn);
    open_queue(dir, "history.db", config)
}

fn reserve_with_history(c: &mut Criterion) {
    let rows = 1_000_000;
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Built on first use, so that running another case alone skips the long set-up.
    let full = std::cell::OnceCell::new();
    let empty = open_queue(
        dir.path(),
        "empty.db",
        SqliteConfig::new().retain_finished(None),
    );
    let worker = WorkerId::new("bench-worker").expect("a valid id");
    let mut group = c.benchmark_group("backends/sqlite-reserve-1m-finished");
    group.throughput(Throughput::Elements(1));
    group.bench_function("workmill", |b| {
        let full = full.get_or_init(|| with_finished_history(dir.path(), rows));
        b.iter_custom(|iters| timed(iters, || cycle_one(full, &worker)))
    });
    group.bench_function("empty-queue", |b| {
        b.iter_custom(|iters| timed(iters, || cycle_one(&empty, &worker)))
    });
    group.finish();
    if let Some(full) = full.get() {
        let stats = full.stats().expect("stats");
        assert!(
            stats.completed >= rows && stats.is_consistent(),
            "{stats:?}"
        );
    }
}

criterion_group!(benches, commit_per_task, batched, reserve_with_history);
criterion_main!(benches);
