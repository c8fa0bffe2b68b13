//! Group `backends`: tasks per second end to end on PostgreSQL (a producer enqueues, two worker
//! threads reserve and complete), against the server's raw ceiling measured in the same run: the
//! same producer and two consumers doing a bare INSERT and `DELETE ... RETURNING` loop.
//!
//! Needs `WORKMILL_POSTGRES_URL` (`.ci/run` and `cargo xtask ci` set it to
//! `postgres://postgres@127.0.0.1:5432/test`); without it the group says so and measures nothing.
//! Each run works in a schema of its own, dropped at the end. Throughput is per task.
//!
//! Both sides use the same shape, so the ratio is what the queue costs over moving rows:
//! producer batches of [`PRODUCER_BATCH`] rows per statement, consumers taking up to
//! [`WORKER_BATCH`] rows per statement with `FOR UPDATE SKIP LOCKED`, one connection per
//! thread, every statement its own commit. The queue does three commits per batch
//! (enqueue, reserve, complete) where the ceiling does two (insert, delete), and it keeps
//! the record, the lease, the counters, retention and notifications.
//!
//! - `backends/postgres-2-workers`: durable commits (`synchronous_commit = on`, the server
//!   default): every acknowledged change is on the server's disk.
//! - `backends/postgres-2-workers-async-commit`: `synchronous_commit = off` for the session
//!   on both sides: a server crash may lose the last ~600 ms of acknowledged changes (never
//!   half of one); see `SynchronousCommit` in workmill-queue.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use postgres::{Client, NoTls};
use workmill_core::{NewTask, Queue, TaskId, WorkerId};
use workmill_queue::postgres::{PostgresConfig, PostgresQueue, SynchronousCommit};

const PAYLOAD: usize = 64;
const PRODUCER_BATCH: usize = 500;
const WORKER_BATCH: usize = 100;
const WORKERS: usize = 2;
/// Tasks pushed through per criterion iteration.
const TASKS_PER_ITERATION: usize = 2_000;
const LEASE: Duration = Duration::from_secs(300);

fn server_url() -> Option<String> {
    let url = std::env::var("WORKMILL_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        println!(
            "backends_postgres: skipped, WORKMILL_POSTGRES_URL is not set (for example postgres://postgres@127.0.0.1:5432/test)"
        );
    }
    url
}

/// Pushes `total` tasks through `queue`: one producer thread, two workers sharing one handle.
fn run_workmill(producer: &PostgresQueue, workers: &PostgresQueue, total: usize) -> Duration {
    let completed = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut sent = 0;
            while sent < total {
                let n = PRODUCER_BATCH.min(total - sent);
                let batch = (0..n)
                    .map(|_| NewTask::new("bench.echo", vec![7; PAYLOAD]))
                    .collect();
                producer.enqueue_batch(batch).expect("enqueue");
                sent += n;
            }
        });
        for n in 0..WORKERS {
            let completed = &completed;
            scope.spawn(move || {
                let me = WorkerId::new(format!("bench-worker-{n}")).expect("a valid id");
                while completed.load(Ordering::Relaxed) < total {
                    let got = workers.reserve(&me, WORKER_BATCH, LEASE).expect("reserve");
                    if got.is_empty() {
                        workers
                            .await_work(Duration::from_millis(5))
                            .expect("await work");
                        continue;
                    }
                    let done: Vec<_> = got.into_iter().map(|r| (r.lease, vec![1; 8])).collect();
                    let count = done.len();
                    for outcome in workers.complete_batch(done).expect("complete") {
                        outcome.expect("a fresh lease is held");
                    }
                    completed.fetch_add(count, Ordering::Relaxed);
                }
            });
        }
    });
    start.elapsed()
}

/// The ceiling: the same threads and batches on a bare table, one statement per commit.
struct RawPostgres {
    url: String,
    table: String,
    synchronous_commit: SynchronousCommit,
}

impl RawPostgres {
    fn connect(&self) -> Client {
        let mut client = Client::connect(&self.url, NoTls).expect("connect");
        if self.synchronous_commit == SynchronousCommit::Off {
            client
                .batch_execute("SET synchronous_commit = off")
                .expect("set synchronous_commit");
        }
        client
    }

    fn run(&self, total: usize) -> Duration {
        let mut producer = self.connect();
        let mut consumers: Vec<Client> = (0..WORKERS).map(|_| self.connect()).collect();
        let insert = producer
            .prepare(&format!(
                "INSERT INTO {} (payload) SELECT * FROM unnest($1::bytea[])",
                self.table
            ))
            .expect("prepare the insert");
        let take = format!(
            "DELETE FROM {table} WHERE id IN (
                 SELECT id FROM {table} ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
             RETURNING id, payload",
            table = self.table
        );
        let consumed = AtomicUsize::new(0);
        let finished = AtomicBool::new(false);
        let start = Instant::now();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut sent = 0;
                while sent < total {
                    let n = PRODUCER_BATCH.min(total - sent);
                    let payloads: Vec<Vec<u8>> = (0..n).map(|_| vec![7; PAYLOAD]).collect();
                    producer.execute(&insert, &[&payloads]).expect("insert");
                    sent += n;
                }
            });
            for client in &mut consumers {
                let (consumed, finished, take) = (&consumed, &finished, &take);
                scope.spawn(move || {
                    let take = client.prepare(take).expect("prepare the delete");
                    let limit = WORKER_BATCH as i64;
                    while !finished.load(Ordering::Relaxed) {
                        let rows = client.query(&take, &[&limit]).expect("delete");
                        if rows.is_empty() {
                            std::thread::sleep(Duration::from_micros(100));
                            continue;
                        }
                        if consumed.fetch_add(rows.len(), Ordering::Relaxed) + rows.len() >= total {
                            finished.store(true, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        start.elapsed()
    }
}

fn bench_case(c: &mut Criterion, url: &str, case: &str, synchronous_commit: SynchronousCommit) {
    let schema = format!("wmbench_{}", TaskId::generate().as_str().to_lowercase());
    let config = PostgresConfig::new()
        .schema(schema.clone())
        .synchronous_commit(synchronous_commit);
    let producer = config.clone().open(url).expect("open the producer's queue");
    let workers = config.open(url).expect("open the workers' queue");
    let raw = RawPostgres {
        url: url.to_owned(),
        table: format!("\"{schema}\".raw_tasks"),
        synchronous_commit,
    };
    let mut admin = Client::connect(url, NoTls).expect("connect");
    admin
        .batch_execute(&format!(
            "CREATE TABLE {} (id bigserial PRIMARY KEY, payload bytea NOT NULL)",
            raw.table
        ))
        .expect("create the raw table");

    let mut group = c.benchmark_group(format!("backends/{case}"));
    group.throughput(Throughput::Elements(TASKS_PER_ITERATION as u64));
    group.bench_function("workmill", |b| {
        b.iter_custom(|iters| {
            run_workmill(&producer, &workers, iters as usize * TASKS_PER_ITERATION)
        })
    });
    group.bench_function("raw-postgres", |b| {
        b.iter_custom(|iters| raw.run(iters as usize * TASKS_PER_ITERATION))
    });
    group.finish();

    let stats = producer.stats().expect("stats");
    assert!(
        stats.is_consistent() && stats.running == 0 && stats.pending == 0,
        "{stats:?}"
    );
    drop((producer, workers));
    admin
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .expect("drop the bench schema");
}

fn durable(c: &mut Criterion) {
    if let Some(url) = server_url() {
        bench_case(c, &url, "postgres-2-workers", SynchronousCommit::On);
    }
}

fn async_commit(c: &mut Criterion) {
    if let Some(url) = server_url() {
        bench_case(
            c,
            &url,
            "postgres-2-workers-async-commit",
            SynchronousCommit::Off,
        );
    }
}

criterion_group!(benches, durable, async_commit);
criterion_main!(benches);
