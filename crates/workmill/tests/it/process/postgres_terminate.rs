//! PostgreSQL terminating the workers' connections (`pg_terminate_backend`, as a server restart or
//! a failover would) again and again mid-run: two worker processes in `worker::run` resume by
//! themselves (their reconnect logic), and no task is lost.

use std::time::Instant;

use workmill::TaskId;

use super::outage::{self, CONCURRENCY, MAX_BATCH};
use super::parent::{WorkerProcess, count};
use crate::stores::{TestStore, with_parameter};
use crate::support::wait_until;

/// Tasks arrive in waves; each wave's connections are terminated a quarter of the way through
/// it, so every termination lands while tasks are held and more work follows it.
const WAVES: usize = 5;
const WAVE: usize = 800;
const WORKERS: [&str; 2] = ["p1", "p2"];

/// Terminates every connection named `app`; how many there were.
fn terminate(admin: &mut postgres::Client, app: &str) -> i64 {
    admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&app],
        )
        .expect("terminate the connections")
        .get(0)
}

#[test]
fn workers_resume_by_themselves_when_postgres_terminates_their_connections() {
    let Some(store) = TestStore::postgres(
        "workers_resume_by_themselves_when_postgres_terminates_their_connections",
    ) else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // The workers' connections carry a name of their own, so that only they are terminated.
    let app = format!(
        "wm_terminate_{}",
        TaskId::generate().as_str().to_lowercase()
    );
    let settings = outage::settings(
        &with_parameter(store.url(), "application_name", &app),
        dir.path(),
    );
    let queue = workmill::backend::open(store.url()).unwrap();
    let mut admin = store.postgres_admin();
    let workers: Vec<WorkerProcess> = WORKERS
        .iter()
        .map(|id| WorkerProcess::start(id, &settings))
        .collect();

    let ids = outage::ids("terminate", WAVES * WAVE);
    let mut terminated = Vec::new();
    for (wave, wave_ids) in ids.chunks(WAVE).enumerate() {
        outage::enqueue(&*queue, wave_ids);
        let quarter = (wave * WAVE + WAVE / 4) as u64;
        wait_until(|| queue.stats().unwrap().completed >= quarter);
        let connections = terminate(&mut admin, &app);
        assert!(connections > 0, "the workers had connections to terminate");
        terminated.push(connections);
    }
    outage::wait_for_completed(&*queue, ids.len());
    let reports = outage::stop(workers);
    // A termination costs each worker at most the batch each of its loops held.
    let bound = WAVES * WORKERS.len() * CONCURRENCY * MAX_BATCH;
    let duplicates = outage::check_nothing_lost(&*queue, &ids, &settings.ledger, bound);
    let stats = queue.stats().unwrap();
    eprintln!(
        "postgres terminations: {} tasks in {:?}; connections terminated per wave {terminated:?}; \
         {duplicates} ran twice; {} leases lapsed; reconnects {:?}, store errors {:?}",
        ids.len(),
        started.elapsed(),
        stats.expired_leases,
        reports
            .iter()
            .map(|(id, report)| (id, count(report, "reconnects")))
            .collect::<Vec<_>>(),
        reports
            .iter()
            .map(|(id, report)| (id, count(report, "errors")))
            .collect::<Vec<_>>(),
    );
}
