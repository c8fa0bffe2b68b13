//! The crash test: three worker processes on one SQLite file, 10,000 tasks that append their id
//! to a ledger, one worker killed with SIGKILL mid-run and a new one started. Nothing is lost,
//! and only what the killed worker held runs twice.
//!
//! Set `WORKMILL_KEEP_CRASH_DB=path/to/crash.db` to keep the SQLite file for `sqlite3`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use workmill::{
    Backoff, Codec, ListFilter, NamedTask, NewTask, Postcard, Queue, RetryPolicy, SqliteQueue,
    TaskId, TaskRecord, TaskStatus,
};

use super::child::{AppendId, Ledger};
use super::parent::{Settings, WorkerProcess, count};
use crate::support::wait_until;

const TASKS: usize = 10_000;
const CONCURRENCY: usize = 4;
const MAX_BATCH: usize = 16;
/// Short, so that the killed worker's tasks come back within seconds.
const LEASE: Duration = Duration::from_secs(2);
const VICTIM: &str = "w2";

#[test]
fn a_worker_killed_mid_run_loses_nothing_and_runs_again_only_what_it_held() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = crash_db(dir.path().join("crash.db"));
    let url = format!("sqlite://{}", db.display());
    let queue = SqliteQueue::open(&url).unwrap();
    let settings = Settings {
        url,
        ledger: dir.path().join("ledger.txt"),
        concurrency: CONCURRENCY,
        min_batch: 1,
        max_batch: MAX_BATCH,
        lease: LEASE,
        sigterm_after: false,
    };
    let w1 = WorkerProcess::start("w1", &settings);
    let victim = WorkerProcess::start(VICTIM, &settings);
    let w3 = WorkerProcess::start("w3", &settings);

    let policy = RetryPolicy::new(10).backoff(Backoff::Immediate);
    let payload = Postcard.encode(&AppendId).unwrap();
    let ids: Vec<TaskId> = (0..TASKS)
        .map(|i| TaskId::new(format!("task-{i:05}")).unwrap())
        .collect();
    queue
        .enqueue_batch(
            ids.iter()
                .map(|id| {
                    NewTask::new(AppendId::NAME, payload.clone())
                        .with_id(id.clone())
                        .retry(policy.clone())
                })
                .collect(),
        )
        .unwrap();

    // Mid-run: some done, most not. Then freeze the victim at a moment it holds
    // tasks, read what it holds, and kill it.
    wait_until(|| queue.stats().unwrap().completed >= 1_500);
    let (held_at_kill, victim_completed) = freeze_while_holding(&victim, &db);
    let killed = victim.kill();
    assert_eq!(killed.signal(), Some(libc::SIGKILL), "{killed}");
    let remaining_at_kill = TASKS as u64 - queue.stats().unwrap().completed;
    let w4 = WorkerProcess::start("w4", &settings);

    wait_until(|| queue.stats().unwrap().completed == TASKS as u64);
    w1.signal(libc::SIGTERM);
    w3.signal(libc::SIGTERM);
    w4.signal(libc::SIGINT);
    let mut reports = BTreeMap::new();
    for (worker, signal) in [(w1, libc::SIGTERM), (w3, libc::SIGTERM), (w4, libc::SIGINT)] {
        let id = worker.id.clone();
        let (report, status) = worker.finish();
        assert!(status.success(), "worker {id} exited {status}");
        assert_eq!(report["stopped_by"], format!("Some(Signal({signal}))"));
        assert_eq!(count(&report, "unrecorded"), 0, "{id}: {report:?}");
        reports.insert(id, report);
    }

    // Every task completed, once in the books; the stats add up.
    let stats = queue.stats().unwrap();
    assert!(stats.is_consistent(), "{stats:?}");
    assert_eq!(stats.submitted, TASKS as u64);
    assert_eq!(stats.completed, TASKS as u64, "{stats:?}");
    assert_eq!(
        (
            stats.pending,
            stats.retrying,
            stats.running,
            stats.dead,
            stats.cancelled
        ),
        (0, 0, 0, 0, 0)
    );
    // The only failures are lapsed leases, each retried.
    assert_eq!(stats.failed_attempts, stats.expired_leases, "{stats:?}");
    assert_eq!(stats.retried, stats.expired_leases, "{stats:?}");
    assert!(
        stats.expired_leases >= held_at_kill.len() as u64,
        "every task the victim held came back through a lapsed lease: {stats:?}"
    );
    let records: HashMap<TaskId, TaskRecord> = queue
        .list(&ListFilter {
            status: Some(TaskStatus::Completed),
            limit: 2 * TASKS,
        })
        .unwrap()
        .into_iter()
        .map(|record| (record.id.clone(), record))
        .collect();
    assert_eq!(records.len(), TASKS);

    // Every id is in the ledger; a line names the loop that ran it.
    let mut runs: HashMap<String, Vec<String>> = HashMap::new();
    for line in Ledger::read(&settings.ledger) {
        let [task, worker] = <[String; 2]>::try_from(line).expect("`task worker` lines");
        runs.entry(task).or_default().push(worker);
    }
    let expected: BTreeSet<&str> = ids.iter().map(TaskId::as_str).collect();
    assert_eq!(
        runs.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        expected,
        "the ledger has every task and nothing else"
    );

    // Only what the victim held ran twice, and no more than once by the living.
    let victim_loop = format!("{VICTIM}-");
    let mut duplicates = 0;
    for (task, workers) in &runs {
        let id = TaskId::new(task).unwrap();
        let record = &records[&id];
        assert!(
            workers.len() as u64 <= u64::from(record.attempts),
            "{task} ran {workers:?} in {} attempts",
            record.attempts
        );
        let by_the_living = workers
            .iter()
            .filter(|w| !w.starts_with(&victim_loop))
            .count();
        assert!(
            by_the_living <= 1,
            "{task} ran twice on live workers: {workers:?}"
        );
        if workers.len() > 1 {
            duplicates += workers.len() - 1;
            assert!(
                held_at_kill.contains(&id),
                "{task} ran {workers:?} but the victim did not hold it when killed"
            );
        }
    }
    assert!(duplicates <= held_at_kill.len());
    assert!(
        held_at_kill.len() <= CONCURRENCY * MAX_BATCH,
        "a worker holds at most a batch per loop"
    );
    for id in &held_at_kill {
        assert!(
            records[id].attempts >= 2,
            "{id} was held by the victim, so its victim attempt lapsed"
        );
    }

    // Each completion is counted by the process that recorded it.
    let mut completed_by: BTreeMap<String, u64> = BTreeMap::new();
    for record in records.values() {
        let worker = record
            .worker
            .as_ref()
            .expect("a completed task names its worker");
        let process = worker.as_str().split('-').next().unwrap().to_owned();
        *completed_by.entry(process).or_default() += 1;
    }
    assert_eq!(completed_by.remove(VICTIM).unwrap_or(0), victim_completed);
    for (id, report) in &reports {
        assert_eq!(
            completed_by.remove(id.as_str()).unwrap_or(0),
            count(report, "completed"),
            "{id}: {report:?}"
        );
    }
    assert!(completed_by.is_empty(), "unknown workers: {completed_by:?}");

    eprintln!(
        "crash test: {TASKS} tasks in {:?}; the victim completed {victim_completed} and held {} \
         when killed ({remaining_at_kill} tasks left); {duplicates} ran twice; {} leases lapsed; \
         the others reported {:?}",
        started.elapsed(),
        held_at_kill.len(),
        stats.expired_leases,
        reports,
    );
    drop(queue);
    if std::env::var_os(KEEP).is_some() {
        eprintln!("crash test: kept the SQLite file at {}", db.display());
    }
}

/// Set to a path to keep the crash test's SQLite file there.
const KEEP: &str = "WORKMILL_KEEP_CRASH_DB";

/// Where the crash test's database goes: `WORKMILL_KEEP_CRASH_DB`, emptied first, or `default`.
fn crash_db(default: PathBuf) -> PathBuf {
    match std::env::var_os(KEEP) {
        Some(path) => {
            let path = std::path::absolute(PathBuf::from(path)).unwrap();
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
            path
        }
        None => default,
    }
}

/// Stops (`SIGSTOP`) the victim at a moment when it holds tasks and has completed some; returns
/// the tasks it holds and how many it completed.
///
/// A stopped process changes nothing, so the running tasks the store lists under its loops
/// are exactly what it holds, and stay so until it is killed. If it holds nothing at that
/// instant (between batches), it is let go and caught again a moment later.
///
/// The file is read with one SQL query, as an operator would with `sqlite3`, so the victim
/// stays frozen for milliseconds: it may hold SQLite's write lock, and every other worker
/// (heartbeats included) waits for it while it is stopped.
fn freeze_while_holding(victim: &WorkerProcess, db: &Path) -> (BTreeSet<TaskId>, u64) {
    let file =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let pattern = format!("{VICTIM}-%");
    for _ in 0..1_000 {
        victim.signal(libc::SIGSTOP);
        wait_until_stopped(victim);
        let (held, completed, pending) = {
            let tx = file.unchecked_transaction().unwrap();
            let held: BTreeSet<TaskId> = tx
                .prepare("SELECT id FROM tasks WHERE status = 'running' AND worker LIKE ?1")
                .unwrap()
                .query_map([&pattern], |row| row.get::<_, String>(0))
                .unwrap()
                .map(|id| TaskId::new(id.unwrap()).unwrap())
                .collect();
            let count = |sql: &str| -> u64 {
                tx.query_row(sql, [&pattern], |row| row.get::<_, i64>(0))
                    .unwrap()
                    .try_into()
                    .unwrap()
            };
            let completed =
                count("SELECT count(*) FROM tasks WHERE status = 'completed' AND worker LIKE ?1");
            let pending =
                count("SELECT count(*) FROM tasks WHERE status = 'pending' AND ?1 IS NOT NULL");
            (held, completed, pending)
        };
        if !held.is_empty() && completed > 0 {
            return (held, completed);
        }
        assert!(
            pending > 0,
            "the queue ran dry before the victim was caught holding tasks"
        );
        victim.signal(libc::SIGCONT);
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the victim never held a task when looked at");
}

/// Waits until the kernel reports the process stopped (a `SIGSTOP` is delivered asynchronously).
fn wait_until_stopped(process: &WorkerProcess) {
    let mut status = 0;
    // SAFETY: `waitpid` on our own unreaped child with WUNTRACED reports a stop without
    // reaping it, so the `Child` still owns the exit status; `status` is a valid out pointer.
    let waited = unsafe { libc::waitpid(process.pid(), &mut status, libc::WUNTRACED) };
    assert_eq!(waited, process.pid(), "waitpid failed");
    assert!(
        libc::WIFSTOPPED(status),
        "worker {} did not stop (status {status:#x})",
        process.id
    );
}
