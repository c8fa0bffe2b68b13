//! The Redis server killed (SIGKILL) and started again in the middle of a run: two worker processes
//! in `worker::run` ride it out by themselves (their reconnect logic), and no task is lost.
//!
//! The test starts its own `redis-server` with `appendonly yes` and `appendfsync always`, so that
//! every acknowledged write survives the kill; the shared CI server keeps nothing on disk.

use std::time::{Duration, Instant};

use super::outage::{self, CONCURRENCY, MAX_BATCH};
use super::parent::{WorkerProcess, count};
use super::private_redis::PrivateRedis;
use crate::support::wait_until;

const TASKS: usize = 4_000;
const WORKERS: [&str; 2] = ["r1", "r2"];

#[test]
fn workers_ride_out_a_redis_restart_and_lose_nothing() {
    let Some(mut server) = PrivateRedis::start("workers_ride_out_a_redis_restart_and_lose_nothing")
    else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("restart");
    let queue = workmill::backend::open(&url).unwrap();
    let settings = outage::settings(&url, dir.path());
    let workers: Vec<WorkerProcess> = WORKERS
        .iter()
        .map(|id| WorkerProcess::start(id, &settings))
        .collect();
    let ids = outage::ids("restart", TASKS);
    outage::enqueue(&*queue, &ids);

    // Mid-run, kill the server; leave it down long enough for the workers to find it gone
    // and back off, then start it again on the same port and log.
    wait_until(|| queue.stats().unwrap().completed >= (TASKS / 4) as u64);
    let completed_before = queue.stats().unwrap().completed;
    server.kill();
    std::thread::sleep(Duration::from_millis(500));
    server.start_again();

    // Every completion acknowledged before the kill is still there.
    let after = outage::answer(|| queue.stats());
    assert!(
        after.completed >= completed_before,
        "{completed_before} completions before the restart, {} after",
        after.completed
    );
    assert!(
        after.completed < TASKS as u64,
        "the restart came after the run: {after:?}"
    );
    outage::wait_for_completed(&*queue, TASKS);
    let reports = outage::stop(workers);
    // Each worker held at most a batch per loop when the server went away.
    let bound = WORKERS.len() * CONCURRENCY * MAX_BATCH;
    let duplicates = outage::check_nothing_lost(&*queue, &ids, &settings.ledger, bound);
    let stats = queue.stats().unwrap();
    eprintln!(
        "redis restart: {TASKS} tasks in {:?}, {completed_before} completed before the kill, \
         {} after the restart; {duplicates} ran twice; {} leases lapsed; reconnects {:?}, \
         store errors {:?}",
        started.elapsed(),
        after.completed,
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
