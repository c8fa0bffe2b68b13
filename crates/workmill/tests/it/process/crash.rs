//! The crash test, on every durable backend: three worker processes share one store, 10,000 tasks
//! append their id to a ledger, one worker is killed with SIGKILL mid-run while it holds tasks,
//! and a new one is started. Nothing is lost, and only what the killed worker held runs twice.
//!
//! One scenario, three stores: a SQLite file; a key prefix on the Redis server of
//! `WORKMILL_REDIS_URL`; a schema on the PostgreSQL server of `WORKMILL_POSTGRES_URL`. The
//! server tests print why they are skipped when their variable is unset.
//!
//! Set `WORKMILL_KEEP_CRASH_DB=path/to/crash.db` to keep the SQLite file for `sqlite3`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use workmill::{
    Backoff, Codec, FailureKind, ListFilter, NamedTask, NewTask, Postcard, Queue, RetryPolicy,
    TaskId, TaskRecord, TaskStatus,
};

use super::child::{AppendId, Ledger};
use super::parent::{Settings, WorkerProcess, count};
use crate::stores::TestStore;
use crate::support::wait_until;

const TASKS: usize = 10_000;
const CONCURRENCY: usize = 4;
const MAX_BATCH: usize = 16;
/// Short, so that the killed worker's tasks come back within seconds, yet long enough that a
/// live worker starved of CPU by a loaded machine (CI runs test binaries side by side on 2
/// cores) still extends its leases in time: at 2 s, two busy loops beside the test were enough
/// to let a live worker's leases lapse now and then.
const LEASE: Duration = Duration::from_secs(5);
const VICTIM: &str = "w2";
/// How long a server gets to finish a frozen victim's last statement.
const SETTLE: Duration = Duration::from_millis(250);

#[test]
fn a_worker_killed_mid_run_on_sqlite_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = crash_db(dir.path().join("crash.db"));
    kill_a_worker_mid_run(&TestStore::sqlite(&db), dir.path());
    if std::env::var_os(KEEP).is_some() {
        eprintln!("crash test: kept the SQLite file at {}", db.display());
    }
}

#[test]
fn a_worker_killed_mid_run_on_redis_loses_nothing() {
    let Some(store) = TestStore::redis("a_worker_killed_mid_run_on_redis_loses_nothing") else {
        return;
    };
    kill_a_worker_mid_run(&store, tempfile::tempdir().unwrap().path());
}

#[test]
fn a_worker_killed_mid_run_on_postgres_loses_nothing() {
    let Some(store) = TestStore::postgres("a_worker_killed_mid_run_on_postgres_loses_nothing")
    else {
        return;
    };
    kill_a_worker_mid_run(&store, tempfile::tempdir().unwrap().path());
}

/// The scenario, on `store`, with the ledger in `dir`.
fn kill_a_worker_mid_run(store: &TestStore, dir: &Path) {
    let started = Instant::now();
    let queue = workmill::backend::open(store.url()).unwrap();
    let settings = Settings {
        url: store.url().to_owned(),
        ledger: dir.join("ledger.txt"),
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
    let held_at_kill = freeze_while_holding(&victim, &*queue, &settings.ledger, store);
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

    // The store's account of the kill: the leases the victim held when it died lapsed, each
    // once, and were retried on a living worker; nothing else failed.
    let victim_loop = format!("{VICTIM}-");
    let by_victim = |record: &TaskRecord| {
        let worker = record
            .worker
            .as_ref()
            .expect("a completed task names its worker");
        worker.as_str().starts_with(&victim_loop)
    };
    let lapsed: BTreeSet<TaskId> = records
        .values()
        .filter(|record| record.attempts > 1)
        .map(|record| record.id.clone())
        .collect();
    assert!(!lapsed.is_empty(), "the victim held tasks when it died");
    assert!(
        lapsed.len() <= CONCURRENCY * MAX_BATCH,
        "a worker holds at most a batch per loop: {} lapsed",
        lapsed.len()
    );
    assert_eq!(stats.expired_leases, lapsed.len() as u64, "{stats:?}");
    assert_eq!(stats.failed_attempts, stats.expired_leases, "{stats:?}");
    assert_eq!(stats.retried, stats.expired_leases, "{stats:?}");
    for id in &lapsed {
        let record = &records[id];
        assert_eq!(record.attempts, 2, "{id} lapsed once: {record:?}");
        assert_eq!(
            record.last_error.as_ref().map(|failure| failure.kind),
            Some(FailureKind::LeaseExpired),
            "{id}: {record:?}"
        );
        assert!(!by_victim(record), "{id} was completed by a living worker");
    }

    // Every id is in the ledger; a line names the loop that ran it.
    let mut runs: HashMap<TaskId, Vec<String>> = HashMap::new();
    for line in Ledger::read(&settings.ledger) {
        let [task, worker] = <[String; 2]>::try_from(line).expect("`task worker` lines");
        runs.entry(TaskId::new(task).unwrap())
            .or_default()
            .push(worker);
    }
    assert_eq!(
        runs.keys().collect::<BTreeSet<_>>(),
        ids.iter().collect::<BTreeSet<_>>(),
        "the ledger has every task and nothing else"
    );

    // Only what the victim held ran twice, and no more than once by the living.
    let mut duplicates = 0;
    for (id, workers) in &runs {
        let record = &records[id];
        assert!(
            workers.len() as u64 <= u64::from(record.attempts),
            "{id} ran {workers:?} in {} attempts",
            record.attempts
        );
        let by_the_living = workers
            .iter()
            .filter(|w| !w.starts_with(&victim_loop))
            .count();
        assert!(
            by_the_living <= 1,
            "{id} ran twice on live workers: {workers:?}; its record: {record:?}; worker reports: {reports:?}"
        );
        if workers.len() > 1 {
            duplicates += workers.len() - 1;
            assert!(
                held_at_kill.contains(id) && lapsed.contains(id),
                "{id} ran {workers:?} but the victim did not hold it when killed"
            );
        }
    }
    assert!(duplicates <= lapsed.len());

    // What the victim ran and did not hold when it died, it completed itself.
    let ran_by_victim: BTreeSet<TaskId> = runs
        .iter()
        .filter(|(_, workers)| workers.iter().any(|w| w.starts_with(&victim_loop)))
        .map(|(id, _)| id.clone())
        .collect();
    let completed_by_victim: BTreeSet<TaskId> = records
        .values()
        .filter(|record| by_victim(record))
        .map(|record| record.id.clone())
        .collect();
    assert_eq!(
        completed_by_victim,
        &ran_by_victim - &lapsed,
        "the victim's completions are what it ran less what lapsed"
    );

    // What the store showed while the victim was frozen is what lapsed. A server may still
    // finish a statement the victim sent just before it froze: a completion of tasks it held
    // (which then do not lapse), or a reservation it never received (which lapses unrun).
    if store.frozen_writer_writes_nothing() {
        assert_eq!(held_at_kill, lapsed, "what the frozen victim held lapsed");
    } else {
        for id in held_at_kill.difference(&lapsed) {
            assert!(completed_by_victim.contains(id), "{id} was held, then lost");
        }
        for id in lapsed.difference(&held_at_kill) {
            assert!(
                !ran_by_victim.contains(id),
                "{id} lapsed after a run unseen"
            );
        }
    }

    // Each completion is counted by the process that recorded it.
    let mut completed_by: BTreeMap<String, u64> = BTreeMap::new();
    for record in records.values().filter(|record| !by_victim(record)) {
        let worker = record
            .worker
            .as_ref()
            .expect("a completed task names its worker");
        let process = worker.as_str().split('-').next().unwrap().to_owned();
        *completed_by.entry(process).or_default() += 1;
    }
    for (id, report) in &reports {
        assert_eq!(
            completed_by.remove(id.as_str()).unwrap_or(0),
            count(report, "completed"),
            "{id}: {report:?}"
        );
    }
    assert!(completed_by.is_empty(), "unknown workers: {completed_by:?}");

    eprintln!(
        "crash test on {}: {TASKS} tasks in {:?}; the victim completed {} and held {} when \
         killed ({remaining_at_kill} tasks left); {} leases lapsed; {duplicates} ran twice; \
         the others reported {:?}",
        store.kind(),
        started.elapsed(),
        completed_by_victim.len(),
        held_at_kill.len(),
        lapsed.len(),
        reports,
    );
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

/// Freezes (`SIGSTOP`) the victim at a moment when it holds tasks and has finished some;
/// returns the tasks the store shows it holding.
///
/// A frozen process starts nothing, so the running tasks the store lists under its loops are
/// what it holds, and stay so until it is killed (but for a statement a server was still
/// running for it). If it holds nothing at that instant (between batches), it is let go and
/// caught again a moment later. The store is read with one listing, so the victim stays
/// frozen for milliseconds (a server gets `SETTLE` to finish its last statement): on SQLite it may hold the write lock, which every other worker
/// (heartbeats included) waits for while it is frozen.
fn freeze_while_holding(
    victim: &WorkerProcess,
    queue: &dyn Queue,
    ledger: &Path,
    store: &TestStore,
) -> BTreeSet<TaskId> {
    let victim_loop = format!("{VICTIM}-");
    for _ in 0..1_000 {
        victim.freeze();
        if !store.frozen_writer_writes_nothing() {
            // A server may still be running a statement the victim sent just before it froze
            // (completing the very tasks it holds): let it finish before looking.
            std::thread::sleep(SETTLE);
        }
        let held: BTreeSet<TaskId> = queue
            .list(&ListFilter {
                status: Some(TaskStatus::Running),
                limit: TASKS,
            })
            .unwrap()
            .into_iter()
            .filter(|record| {
                record
                    .worker
                    .as_ref()
                    .is_some_and(|worker| worker.as_str().starts_with(&victim_loop))
            })
            .map(|record| record.id)
            .collect();
        let finished = Ledger::read(ledger)
            .iter()
            .filter(|line| line[1].starts_with(&victim_loop) && !held.contains(line[0].as_str()))
            .count();
        if !held.is_empty() && finished > 0 {
            return held;
        }
        assert!(
            queue.stats().unwrap().pending > 0,
            "the queue ran dry before the victim was caught holding tasks"
        );
        victim.thaw();
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the victim never held a task when looked at");
}
