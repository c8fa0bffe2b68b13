//! Unit tests of the SQLite backend's internals: migrations from older schemas, and the query plans
//! that keep `reserve` fast however many finished records the table holds.

use std::time::Duration;

use rusqlite::{Connection, StatementStatus, params};
use workmill_core::{
    Backoff, FailureKind, JobStatus, ListFilter, NewJob, NewTask, Queue, QueueError, RetryPolicy,
    TaskId, TaskStatus, WorkerId,
};

use super::schema::{LATEST_VERSION, MIGRATIONS, migrate};
use super::{SqliteConfig, SqliteQueue};

fn temp_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("queue.db");
    (dir, path)
}

#[test]
fn migrations_are_numbered_in_order() {
    let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
    let expected: Vec<i64> = (1..=LATEST_VERSION).collect();
    assert_eq!(versions, expected);
}

#[test]
fn a_version_1_file_is_migrated_and_its_tasks_survive() {
    let (_dir, path) = temp_db();
    {
        // A file as the first release left it: schema version 1, one waiting task.
        let mut conn = Connection::open(&path).unwrap();
        assert_eq!(migrate(&mut conn, 1).unwrap(), 0);
        conn.execute(
            "INSERT INTO tasks (id, name, payload, status, priority, seq, max_attempts, backoff,
                 backoff_initial_us, backoff_factor, backoff_max_us, jitter, demote_by,
                 created_at, run_at)
             VALUES ('old-task', 'legacy.job', x'DEADBEEF', 'pending', 5, 1, 3, 'exponential',
                 1000000, 2.0, 300000000, 0.1, 0, 1700000000000000, 1700000000000000)",
            [],
        )
        .unwrap();
        conn.execute(
            "UPDATE queue_counters SET submitted = 1, pending = 1, last_seq = 1",
            [],
        )
        .unwrap();
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('tasks')")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!columns.iter().any(|c| c == "payload_checksum"));
    }

    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
    assert_eq!(queue.schema_version().unwrap(), LATEST_VERSION);
    let old = TaskId::new("old-task").unwrap();
    let record = queue.status(&old).expect("the migrated task reads back");
    assert_eq!(record.payload, [0xDE, 0xAD, 0xBE, 0xEF]);
    assert_eq!(
        (record.status, record.name.as_str()),
        (TaskStatus::Pending, "legacy.job")
    );
    let worker = WorkerId::new("w").unwrap();
    let got = queue.reserve(&worker, 10, Duration::from_secs(60)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].payload,
        [0xDE, 0xAD, 0xBE, 0xEF],
        "the backfilled checksum matches"
    );
    queue.complete(&got[0].lease, Vec::new()).unwrap();
    let stats = queue.stats().unwrap();
    assert_eq!((stats.submitted, stats.completed), (1, 1));
    // The migrated file keeps jobs, and the old task is a plain task.
    let job = NewJob::new(
        vec![NewTask::new("legacy.map", vec![1])],
        NewTask::new("legacy.reduce", Vec::new()),
    );
    let job = queue.submit_job(job).unwrap();
    let map = queue.reserve(&worker, 10, Duration::from_secs(60)).unwrap();
    assert_eq!(map.len(), 1);
    queue.complete(&map[0].lease, b"m".to_vec()).unwrap();
    assert_eq!(queue.job(&job).unwrap().status, JobStatus::Reducing);
    assert_eq!(queue.job_results(&job).unwrap(), [b"m".to_vec()]);
    drop(queue);

    let conn = Connection::open(&path).unwrap();
    let history: Vec<(i64, String)> = conn
        .prepare("SELECT version, description FROM schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(history.len() as i64, LATEST_VERSION);
    assert!(history[1].1.contains("payload_checksum"));
    assert!(history[2].1.contains("jobs"));
    // Opening again migrates nothing.
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
    assert_eq!(queue.schema_version().unwrap(), LATEST_VERSION);
}

#[test]
fn a_file_from_a_newer_workmill_is_refused() {
    let (_dir, path) = temp_db();
    drop(SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, 'future', 0)",
            params![LATEST_VERSION + 7],
        )
        .unwrap();
    let err = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap_err();
    // Not transient: a worker must refuse it, not wait it out.
    assert!(matches!(err, QueueError::Incompatible { .. }), "{err:?}");
    assert!(!err.is_transient());
    let message = err.to_string();
    assert!(
        message.contains("newer") && message.contains("upgrade workmill"),
        "{message}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let (_dir, path) = temp_db();
    std::fs::write(&path, vec![b'x'; 8_192]).unwrap();
    let err = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap_err();
    // Not transient: a worker must report it, not wait for the file to become a database.
    assert!(matches!(err, QueueError::Incompatible { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert!(err.to_string().contains("not a SQLite database"), "{err}");
    // Nothing was written over the user's file.
    assert_eq!(std::fs::read(&path).unwrap(), vec![b'x'; 8_192]);
}

#[test]
fn a_read_only_store_is_refused_and_a_busy_one_waited_out() {
    // The process runs as root in CI, which may write any file, so the read-only case is
    // checked where the error is classified.
    let path = std::path::Path::new("/srv/queue.db");
    let read_only = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
        None,
    );
    let err = super::connection::open_failed(path, read_only);
    assert!(matches!(err, QueueError::Incompatible { .. }), "{err:?}");
    assert!(err.to_string().contains("read-only"), "{err}");
    let busy =
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
    assert!(super::connection::open_failed(path, busy).is_transient());
}

#[test]
fn a_heartbeat_counts_its_extension_from_when_it_can_write() {
    let (_dir, path) = temp_db();
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
    queue
        .enqueue(NewTask::new("t", vec![]).with_id(TaskId::new("held").unwrap()))
        .unwrap();
    let worker = WorkerId::new("w").unwrap();
    let lease = queue
        .reserve(&worker, 1, Duration::from_secs(60))
        .unwrap()
        .remove(0)
        .lease;
    // Another process holds the write lock for a while; the heartbeat waits for it.
    let (locked_tx, locked) = std::sync::mpsc::channel();
    let holder = {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut conn = Connection::open(&path).unwrap();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            locked_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let released_at = workmill_core::Timestamp::now();
            tx.commit().unwrap();
            released_at
        })
    };
    locked.recv().unwrap();
    let extend = Duration::from_secs(10);
    let extended = queue.heartbeat(&lease, extend).unwrap();
    let released_at = holder.join().unwrap();
    // Counted from after the lock was free, not from before the wait: the wait did not come
    // off the extension.
    assert!(
        extended.expires_at >= released_at.saturating_add(extend),
        "{:?} < {:?} + {extend:?}",
        extended.expires_at,
        released_at
    );
}

/// The query plan of `sql` as one line per step.
fn plan(conn: &Connection, sql: &str) -> String {
    plan_bound(conn, sql, [])
}

/// The query plan of `sql` with `params` bound, as one line per step.
fn plan_bound(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> String {
    conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap()
        .query_map(params, |row| row.get::<_, String>(3))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .join("\n")
}

#[test]
fn reserve_rescue_and_retention_read_their_partial_indexes() {
    let (_dir, path) = temp_db();
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new().retain_finished(None)).unwrap();
    // The shape of a long-lived queue: mostly finished records, a backlog, a few running.
    let tasks: Vec<NewTask> = (0..3_000u32)
        .map(|i| NewTask::new("plan.check", i.to_le_bytes().to_vec()))
        .collect();
    queue.enqueue_batch(tasks).unwrap();
    let worker = WorkerId::new("planner").unwrap();
    let done: Vec<_> = queue
        .reserve(&worker, 2_800, Duration::from_secs(600))
        .unwrap()
        .into_iter()
        .map(|r| (r.lease, Vec::new()))
        .collect();
    queue.complete_batch(done).unwrap();
    queue
        .reserve(&worker, 20, Duration::from_secs(600))
        .unwrap();
    drop(queue);

    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("ANALYZE").unwrap();
    let reserve = plan(
        &conn,
        "SELECT rowid FROM tasks WHERE status IN ('pending', 'retrying') AND run_at <= 1 \
         ORDER BY priority, seq LIMIT 10",
    );
    assert!(
        reserve.contains("SCAN tasks USING INDEX tasks_ready")
            || reserve.contains("COVERING INDEX tasks_ready"),
        "{reserve}"
    );
    assert!(
        !reserve.contains("TEMP B-TREE"),
        "reserve must not sort: {reserve}"
    );
    let rescue = plan(
        &conn,
        "SELECT rowid FROM tasks WHERE status = 'running' AND lease_expires_at <= 1",
    );
    assert!(
        rescue.contains("INDEX tasks_leased (lease_expires_at<?)"),
        "{rescue}"
    );
    let retention = plan(
        &conn,
        "SELECT rowid FROM tasks WHERE status IN ('completed', 'dead', 'cancelled') \
         ORDER BY finished_at, rowid LIMIT 5",
    );
    assert!(retention.contains("INDEX tasks_finished"), "{retention}");
    assert!(
        !retention.contains("TEMP B-TREE"),
        "retention must not sort: {retention}"
    );
    // The statements as the backend runs them, with their limits bound, plan the same way.
    let reserve = plan_bound(&conn, super::reserve::READY, [1, 10]);
    assert!(reserve.contains("INDEX tasks_ready"), "{reserve}");
    assert!(
        !reserve.contains("TEMP B-TREE"),
        "reserve must not sort: {reserve}"
    );
    let retention = plan_bound(&conn, super::admin::EVICT, [5]);
    assert!(retention.contains("INDEX tasks_finished"), "{retention}");
    assert!(
        !retention.contains("TEMP B-TREE"),
        "retention must not sort: {retention}"
    );
}

#[test]
fn job_bookkeeping_reads_its_indexes() {
    let (_dir, path) = temp_db();
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
    let maps = (0..200u32)
        .map(|i| NewTask::new("plan.map", i.to_le_bytes().to_vec()))
        .collect();
    queue
        .submit_job(NewJob::new(maps, NewTask::new("plan.reduce", Vec::new())))
        .unwrap();
    queue
        .enqueue_batch(
            (0..2_000)
                .map(|_| NewTask::new("plan.plain", Vec::new()))
                .collect(),
        )
        .unwrap();
    drop(queue);

    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("ANALYZE").unwrap();
    let members = plan(
        &conn,
        "SELECT rowid, status FROM tasks WHERE job_id = 'j' AND status IN ('pending', 'retrying')",
    );
    assert!(members.contains("INDEX tasks_by_job"), "{members}");
    let map_row = plan(
        &conn,
        "UPDATE job_maps SET result = x'00' WHERE task_id = 't' AND job_id = 'j' AND completed_at IS NULL",
    );
    assert!(
        map_row.contains("INDEX job_maps_by_task") || map_row.contains("PRIMARY KEY"),
        "{map_row}"
    );
    let detach = plan(
        &conn,
        "UPDATE tasks SET job_id = NULL WHERE job_id IN (SELECT id FROM jobs WHERE status = 'completed')",
    );
    assert!(detach.contains("INDEX tasks_by_job"), "{detach}");
}

/// A writer that finds the file locked waits for the lock and then writes; one that finds it
/// locked for longer than the busy timeout gives up with a store error instead of hanging.
#[test]
fn a_writer_waits_out_a_short_lock_and_gives_up_on_a_long_one() {
    let (_dir, path) = temp_db();
    let patient = SqliteQueue::open_path(
        &path,
        SqliteConfig::new().busy_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    let impatient = SqliteQueue::open_path(
        &path,
        SqliteConfig::new().busy_timeout(Duration::from_millis(50)),
    )
    .unwrap();
    let mut holder = Connection::open(&path).unwrap();

    let lock = holder
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    match impatient.enqueue(NewTask::new("refused", vec![])) {
        Err(QueueError::Backend { .. }) => {}
        other => panic!("a write under a long lock gives up with a store error: {other:?}"),
    }
    let writer = std::thread::spawn(move || patient.enqueue(NewTask::new("waited", vec![])));
    std::thread::sleep(Duration::from_millis(100));
    lock.commit().unwrap();
    writer
        .join()
        .unwrap()
        .expect("the patient writer writes once the lock is free");
    let stats = impatient.stats().unwrap();
    assert_eq!((stats.submitted, stats.pending), (1, 1));
}

/// Writes by hand into the file at `path`, as an operator's tool or a disk fault might.
fn damage(path: &std::path::Path, sql: &str, id: &str) {
    let changed = Connection::open(path).unwrap().execute(sql, [id]).unwrap();
    assert_eq!(changed, 1, "{sql} changed no row");
}

/// The stats invariant: every submitted task is counted in exactly one status gauge.
fn assert_counts_add_up(queue: &SqliteQueue) {
    let s = queue.stats().unwrap();
    assert_eq!(
        s.submitted,
        s.pending + s.retrying + s.running + s.completed + s.dead + s.cancelled,
        "{s:?}"
    );
}

/// A job whose one map is `map` (with `retry`), and a plain task enqueued after it.
fn job_and_plain_task(queue: &SqliteQueue, map: &str, retry: RetryPolicy) -> (TaskId, TaskId) {
    let job = queue
        .submit_job(NewJob::new(
            vec![
                NewTask::new("damage.map", vec![1])
                    .with_id(TaskId::new(map).unwrap())
                    .retry(retry),
            ],
            NewTask::new("damage.reduce", Vec::new()),
        ))
        .unwrap();
    let plain = queue
        .enqueue(NewTask::new("damage.plain", vec![2]).with_id(TaskId::new("plain").unwrap()))
        .unwrap();
    (job, plain)
}

/// A job row whose reduce id is a blob fails only the job's own task: reserve dead-letters the
/// corrupt map and still hands out the other task, and `job` reports the damaged job.
#[test]
fn a_damaged_job_row_does_not_stall_reserve() {
    let (_dir, path) = temp_db();
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
    let (job, plain) = job_and_plain_task(&queue, "map", RetryPolicy::new(3));
    damage(
        &path,
        "UPDATE jobs SET reduce_id = x'00ff' WHERE id = ?1",
        job.as_str(),
    );
    damage(
        &path,
        "UPDATE tasks SET payload = x'0102' WHERE id = ?1",
        "map",
    );

    let worker = WorkerId::new("w").unwrap();
    let got = queue
        .reserve(&worker, 10, Duration::from_secs(60))
        .expect("a damaged job row must not fail every reserve");
    let ids: Vec<&TaskId> = got.iter().map(|r| r.id()).collect();
    assert_eq!(ids, [&plain]);
    let map = queue.status(&TaskId::new("map").unwrap());
    assert!(matches!(map, Err(QueueError::Corrupt { .. })), "{map:?}");
    match queue.job(&job) {
        Err(QueueError::Corrupt { id, detail }) => {
            assert_eq!(id, job);
            assert!(detail.contains("reduce_id"), "{detail}");
        }
        other => panic!("the damaged job is reported as corrupt: {other:?}"),
    }
    assert_eq!(queue.stats().unwrap().dead, 1);
    assert_counts_add_up(&queue);
}

/// The rescue of a lapsed lease whose task's job row is damaged dead-letters the task and goes
/// on: the reserve that runs it still hands out the other task.
#[test]
fn a_damaged_job_row_does_not_stall_the_rescue() {
    let (_dir, path) = temp_db();
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
    let worker = WorkerId::new("w").unwrap();
    let job = queue
        .submit_job(NewJob::new(
            vec![
                NewTask::new("damage.map", vec![1])
                    .with_id(TaskId::new("map").unwrap())
                    .retry(RetryPolicy::never()),
            ],
            NewTask::new("damage.reduce", Vec::new()),
        ))
        .unwrap();
    let held = queue.reserve(&worker, 1, Duration::from_millis(1)).unwrap();
    assert_eq!(held.len(), 1);
    let plain = queue
        .enqueue(NewTask::new("damage.plain", vec![2]).with_id(TaskId::new("plain").unwrap()))
        .unwrap();
    damage(
        &path,
        "UPDATE jobs SET reduce_id = x'00ff' WHERE id = ?1",
        job.as_str(),
    );
    // The lease lapses; the next reserve rescues it as a failed attempt, its last.
    std::thread::sleep(Duration::from_millis(20));

    let got = queue
        .reserve(&worker, 10, Duration::from_secs(60))
        .expect("a damaged job row must not fail the rescue in every reserve");
    let ids: Vec<&TaskId> = got.iter().map(|r| r.id()).collect();
    assert_eq!(ids, [&plain]);
    let map = queue.status(&TaskId::new("map").unwrap()).unwrap();
    assert_eq!(map.status, TaskStatus::Dead);
    assert_eq!(
        map.last_error.map(|e| e.kind),
        Some(FailureKind::LeaseExpired)
    );
    assert_counts_add_up(&queue);
}

/// A running row without a lease token (a hand edit; the column allows NULL) is dead-lettered
/// by the rescue as `Corrupt`, naming the column, as on PostgreSQL; the intact lapsed lease
/// beside it is rescued as a retry.
#[test]
fn the_rescue_dead_letters_a_running_row_without_a_lease_token() {
    let (_dir, path) = temp_db();
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
    for id in ["damaged", "intact"] {
        queue
            .enqueue(
                NewTask::new("rescue.token", id.as_bytes().to_vec())
                    .with_id(TaskId::new(id).unwrap())
                    .retry(RetryPolicy::new(3).backoff(Backoff::Fixed(Duration::from_secs(600)))),
            )
            .unwrap();
    }
    let worker = WorkerId::new("vanished").unwrap();
    assert_eq!(
        queue
            .reserve(&worker, 2, Duration::from_millis(1))
            .unwrap()
            .len(),
        2
    );
    damage(
        &path,
        "UPDATE tasks SET lease_token = NULL WHERE id = ?1",
        "damaged",
    );
    std::thread::sleep(Duration::from_millis(20));

    assert_eq!(queue.rescue_expired().unwrap(), 2);
    let damaged = queue.status(&TaskId::new("damaged").unwrap()).unwrap();
    assert_eq!(damaged.status, TaskStatus::Dead);
    let failure = damaged.last_error.expect("a dead-lettered task says why");
    assert_eq!(failure.kind, FailureKind::Corrupt, "{failure:?}");
    assert!(failure.message.contains("lease_token"), "{failure:?}");
    let intact = queue.status(&TaskId::new("intact").unwrap()).unwrap();
    assert_eq!(intact.status, TaskStatus::Retrying);
    assert_eq!(
        intact.last_error.map(|e| e.kind),
        Some(FailureKind::LeaseExpired)
    );
    assert_counts_add_up(&queue);
}

/// A task whose job link is not text (invalid UTF-8) is dead-lettered as corrupt like any
/// unreadable task; the link is left alone and the other tasks go on.
#[test]
fn an_unreadable_job_link_does_not_stall_reserve() {
    let (_dir, path) = temp_db();
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
    let (_job, plain) = job_and_plain_task(&queue, "map", RetryPolicy::new(3));
    damage(
        &path,
        "UPDATE tasks SET job_id = x'ff', payload = x'ffff' WHERE id = ?1",
        "map",
    );

    let worker = WorkerId::new("w").unwrap();
    let got = queue
        .reserve(&worker, 10, Duration::from_secs(60))
        .expect("an unreadable job link must not fail every reserve");
    let ids: Vec<&TaskId> = got.iter().map(|r| r.id()).collect();
    assert_eq!(ids, [&plain]);
    assert_eq!(queue.stats().unwrap().dead, 1);
    assert_counts_add_up(&queue);
}

/// `list` fills its page with readable records: unreadable rows are skipped before the limit
/// is counted, not after, so they do not hide the tasks behind them.
#[test]
fn list_fills_its_page_past_unreadable_rows() {
    let (_dir, path) = temp_db();
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
    let ids: Vec<TaskId> = (0..5)
        .map(|i| {
            queue
                .enqueue(
                    NewTask::new("list.page", vec![i])
                        .with_id(TaskId::new(format!("t{i}")).unwrap()),
                )
                .unwrap()
        })
        .collect();
    damage(
        &path,
        "UPDATE tasks SET payload = x'ffff' WHERE id = ?1",
        "t0",
    );
    damage(
        &path,
        "UPDATE tasks SET priority = x'00' WHERE id = ?1",
        "t1",
    );

    for status in [None, Some(TaskStatus::Pending)] {
        let page = queue.list(&ListFilter { status, limit: 2 }).unwrap();
        let listed: Vec<&TaskId> = page.iter().map(|r| &r.id).collect();
        assert_eq!(listed, [&ids[2], &ids[3]], "status filter {status:?}");
        let all = queue.list(&ListFilter { status, limit: 100 }).unwrap();
        assert_eq!(all.len(), 3, "status filter {status:?}");
    }
    let none = queue
        .list(&ListFilter {
            status: None,
            limit: 0,
        })
        .unwrap();
    assert!(none.is_empty());
}

/// The reserve query and the retention bound's delete are each one cached statement whatever
/// their limit, and binding the limit does not make SQLite prepare them again on every run
/// (it does for a plain `LIMIT ?`, whose bound value the planner reads).
#[test]
fn reserve_and_retention_reuse_one_statement_whatever_the_limit() {
    let queue = SqliteQueue::open_with(
        "sqlite::memory:",
        SqliteConfig::new().retain_finished(Some(1)),
    )
    .unwrap();
    let worker = WorkerId::new("w").unwrap();
    let batches = [3usize, 5, 1, 4];
    for &size in &batches {
        let tasks = (0..size).map(|_| NewTask::new("cache.check", Vec::new()));
        queue.enqueue_batch(tasks.collect()).unwrap();
        let done: Vec<_> = queue
            .reserve(&worker, size, Duration::from_secs(60))
            .unwrap()
            .into_iter()
            .map(|r| (r.lease, Vec::new()))
            .collect();
        assert_eq!(done.len(), size);
        queue.complete_batch(done).unwrap();
    }
    let conn = queue.connections.get();
    let runs = |sql: &str| {
        let statement = conn.prepare_cached(sql).unwrap();
        (
            statement.get_status(StatementStatus::Run),
            statement.get_status(StatementStatus::RePrepare),
        )
    };
    // Each reserve runs the query once (and the rescue finds nothing).
    assert_eq!(runs(super::reserve::READY), (batches.len() as i32, 0));
    // Every batch but the first completes over the bound of one: each evicts once.
    assert_eq!(runs(super::admin::EVICT), (batches.len() as i32, 0));
}

/// A job row whose map count is a blob does not fail the completion of its map: the map
/// completes, the job is left alone, and `job` reports it as corrupt.
#[test]
fn a_damaged_job_count_does_not_fail_a_completion() {
    let (_dir, path) = temp_db();
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
    let (job, plain) = job_and_plain_task(&queue, "map", RetryPolicy::new(3));
    damage(
        &path,
        "UPDATE jobs SET maps_total = x'01' WHERE id = ?1",
        job.as_str(),
    );

    let worker = WorkerId::new("w").unwrap();
    let got = queue.reserve(&worker, 10, Duration::from_secs(60)).unwrap();
    assert_eq!(got.len(), 2);
    let done = got
        .into_iter()
        .map(|r| (r.lease, b"out".to_vec()))
        .collect();
    let outcomes = queue
        .complete_batch(done)
        .expect("a damaged job row must not fail the batch");
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    for id in [TaskId::new("map").unwrap(), plain] {
        assert_eq!(queue.status(&id).unwrap().status, TaskStatus::Completed);
    }
    assert!(
        matches!(queue.job(&job), Err(QueueError::Corrupt { .. })),
        "the damaged job is reported as corrupt"
    );
    assert_counts_add_up(&queue);
}

/// Opening a file already at the current schema takes no write lock: a worker reconnecting,
/// or a process starting, while another connection holds the write lock opens at once and
/// can read, instead of failing after the busy timeout. (Its migration check used to begin
/// with `BEGIN IMMEDIATE`.)
#[test]
fn opening_a_current_file_waits_for_no_writer() {
    let (_dir, path) = temp_db();
    let queue = SqliteQueue::open_path(&path, SqliteConfig::new()).unwrap();
    queue
        .enqueue(NewTask::new("held.open", vec![1]).with_id(TaskId::new("t").unwrap()))
        .unwrap();
    let writer = rusqlite::Connection::open(&path).unwrap();
    writer
        .execute_batch("BEGIN IMMEDIATE; UPDATE tasks SET priority = priority;")
        .unwrap();
    let config = SqliteConfig::new().busy_timeout(Duration::from_millis(50));
    let again = SqliteQueue::open_path(&path, config).expect("opens beside a writer");
    assert_eq!(
        again.status(&TaskId::new("t").unwrap()).unwrap().status,
        TaskStatus::Pending
    );
    writer.execute_batch("COMMIT").unwrap();
}
