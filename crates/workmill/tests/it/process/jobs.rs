//! The cross-process job test, on every durable backend: three worker processes share one store
//! and run a word count job that this process submits (and runs no part of); the job's answer is
//! the sequential one, and each of its tasks completed once.
//!
//! One scenario, three stores: a SQLite file; a key prefix on the Redis server of
//! `WORKMILL_REDIS_URL`; a schema on the PostgreSQL server of `WORKMILL_POSTGRES_URL`. The
//! server tests print why they are skipped when their variable is unset.

use std::path::Path;
use std::time::Duration;

use workmill::job::{self, Job};
use workmill::{Backoff, JobStatus, RetryPolicy};

use super::parent::{Settings, WorkerProcess, count};
use crate::stores::TestStore;
use crate::support::WAIT;
use crate::wordcount::{CountWords, MergeCounts, corpus, sequential};

const CHUNKS: usize = 60;
const WORDS: usize = 400;
const WORKERS: [&str; 3] = ["job-w1", "job-w2", "job-w3"];

#[test]
fn a_job_run_by_three_worker_processes_on_sqlite_gives_the_sequential_answer() {
    let dir = tempfile::tempdir().unwrap();
    run_a_job_across_processes(&TestStore::sqlite(&dir.path().join("jobs.db")), dir.path());
}

#[test]
fn a_job_run_by_three_worker_processes_on_redis_gives_the_sequential_answer() {
    let test = "a_job_run_by_three_worker_processes_on_redis_gives_the_sequential_answer";
    let Some(store) = TestStore::redis(test) else {
        return;
    };
    run_a_job_across_processes(&store, tempfile::tempdir().unwrap().path());
}

#[test]
fn a_job_run_by_three_worker_processes_on_postgres_gives_the_sequential_answer() {
    let test = "a_job_run_by_three_worker_processes_on_postgres_gives_the_sequential_answer";
    let Some(store) = TestStore::postgres(test) else {
        return;
    };
    run_a_job_across_processes(&store, tempfile::tempdir().unwrap().path());
}

/// The scenario, on `store`, with the workers' ledger in `dir`.
fn run_a_job_across_processes(store: &TestStore, dir: &Path) {
    let queue = workmill::backend::open(store.url()).unwrap();
    let settings = Settings {
        url: store.url().to_owned(),
        ledger: dir.join("ledger.txt"),
        concurrency: 2,
        min_batch: 1,
        max_batch: 4,
        lease: Duration::from_secs(10),
        sigterm_after: false,
    };
    let workers: Vec<WorkerProcess> = WORKERS
        .iter()
        .map(|id| WorkerProcess::start(id, &settings))
        .collect();

    let texts = corpus(11, CHUNKS, WORDS);
    let expected = sequential(&texts);
    let retry = RetryPolicy::new(5).backoff(Backoff::Immediate);
    let new_job = Job::map_reduce(texts.into_iter().map(CountWords), MergeCounts { min: 0 })
        .into_new_job(&retry)
        .unwrap();
    let id = queue.submit_job(new_job).unwrap();
    let counts: crate::wordcount::Counts = job::wait_result(&*queue, &id, WAIT).unwrap();
    assert_eq!(counts, expected, "{}: the job's answer", store.kind());
    let record = queue.job(&id).unwrap();
    assert_eq!(
        (record.status, record.maps_done, record.maps_total()),
        (JobStatus::Completed, CHUNKS as u32, CHUNKS as u32)
    );

    for worker in &workers {
        worker.signal(libc::SIGTERM);
    }
    let mut completed = 0;
    for worker in workers {
        let id = worker.id.clone();
        let (report, status) = worker.finish();
        assert!(status.success(), "worker {id} exited {status}");
        assert_eq!(
            (
                count(&report, "unrecorded"),
                count(&report, "lost"),
                count(&report, "failed")
            ),
            (0, 0, 0),
            "{id}: {report:?}"
        );
        completed += count(&report, "completed");
    }
    let tasks = CHUNKS as u64 + 1;
    assert_eq!(completed, tasks, "each map and the reduce completed once");
    let stats = queue.stats().unwrap();
    assert!(stats.is_consistent(), "{stats:?}");
    assert_eq!(
        (stats.submitted, stats.completed),
        (tasks, tasks),
        "{stats:?}"
    );
}
