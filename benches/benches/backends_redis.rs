//! Group `backends`: tasks per second through a Redis queue end to end (a producer and two
//! worker threads), against the server's raw ceiling measured in the same run: the same
//! threads pushing and popping the same payloads with pipelined `LPUSH` and `RPOP`.
//!
//! The server is `WORKMILL_REDIS_URL` (default `redis://127.0.0.1:6379`); every key goes under
//! a prefix of this run's own and is deleted at the end. Throughput is per task.
//!
//! - `backends/redis-2-workers`: one producer enqueues tasks in batches of 100
//!   (`enqueue_batch`, one script each); two worker threads reserve batches of up to 100
//!   and record them with `complete_batch`, waiting on `await_work` when the queue is empty.
//!   The ceiling (`raw-redis`) has the producer push 100 payloads per pipelined round trip
//!   and the two consumers pop up to 100 per `RPOP key count` and push each result back in
//!   one pipeline: the same tasks, the same round trips, none of the bookkeeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use workmill_core::{NewTask, Queue, TaskId, WorkerId};
use workmill_queue::redis::{RedisConfig, RedisQueue};

const TASKS: usize = 4_000;
const BATCH: usize = 100;
const WORKERS: usize = 2;
const PAYLOAD: usize = 64;
const LEASE: Duration = Duration::from_secs(300);

fn url() -> String {
    std::env::var("WORKMILL_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// Runs `TASKS` tasks through the queue: one producer, `WORKERS` workers.
fn end_to_end(queue: &RedisQueue) -> Duration {
    let completed = Mutex::new(0usize);
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..TASKS / BATCH {
                let batch = (0..BATCH)
                    .map(|_| NewTask::new("bench.echo", vec![7; PAYLOAD]))
                    .collect();
                queue.enqueue_batch(batch).expect("enqueue");
            }
        });
        for n in 0..WORKERS {
            let completed = &completed;
            scope.spawn(move || {
                let me = WorkerId::new(format!("bench-worker-{n}")).expect("a valid id");
                loop {
                    let got = queue.reserve(&me, BATCH, LEASE).expect("reserve");
                    if got.is_empty() {
                        if *completed.lock().unwrap() >= TASKS {
                            return;
                        }
                        queue
                            .await_work(Duration::from_millis(5))
                            .expect("await work");
                        continue;
                    }
                    let done: Vec<_> = got.into_iter().map(|r| (r.lease, vec![1; 16])).collect();
                    let count = done.len();
                    for outcome in queue.complete_batch(done).expect("complete") {
                        outcome.expect("a fresh lease is held");
                    }
                    *completed.lock().unwrap() += count;
                }
            });
        }
    });
    start.elapsed()
}

/// The ceiling: the same producer and consumers, each task one pipelined `LPUSH` and one
/// `RPOP`, and each result one pipelined `LPUSH` onto a results list.
fn raw(client: &redis::Client, prefix: &str) -> Duration {
    let jobs = format!("{prefix}:raw-jobs");
    let results = format!("{prefix}:raw-results");
    let popped = Mutex::new(0usize);
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut con = client.get_connection().expect("connect");
            for _ in 0..TASKS / BATCH {
                let mut pipe = redis::pipe();
                for _ in 0..BATCH {
                    pipe.cmd("LPUSH")
                        .arg(&jobs)
                        .arg(vec![7u8; PAYLOAD])
                        .ignore();
                }
                pipe.query::<()>(&mut con).expect("push");
            }
        });
        for _ in 0..WORKERS {
            let (popped, jobs, results) = (&popped, &jobs, &results);
            scope.spawn(move || {
                let mut con = client.get_connection().expect("connect");
                loop {
                    let got: Option<Vec<Vec<u8>>> = redis::cmd("RPOP")
                        .arg(jobs)
                        .arg(BATCH)
                        .query(&mut con)
                        .expect("pop");
                    let got = got.unwrap_or_default();
                    if got.is_empty() {
                        if *popped.lock().unwrap() >= TASKS {
                            return;
                        }
                        std::thread::yield_now();
                        continue;
                    }
                    let mut pipe = redis::pipe();
                    for _ in &got {
                        pipe.cmd("LPUSH").arg(results).arg(vec![1u8; 16]).ignore();
                    }
                    pipe.cmd("LTRIM").arg(results).arg(0).arg(10_000).ignore();
                    pipe.query::<()>(&mut con).expect("record results");
                    *popped.lock().unwrap() += got.len();
                }
            });
        }
    });
    start.elapsed()
}

fn two_workers(c: &mut Criterion) {
    let url = url();
    let prefix = format!("workmill-bench:{}", TaskId::generate());
    let queue = match RedisConfig::new().prefix(&prefix).open(&url) {
        Ok(queue) => queue,
        Err(err) => {
            eprintln!("backends/redis-2-workers skipped: no Redis at {url}: {err}");
            return;
        }
    };
    let client = redis::Client::open(url.as_str()).expect("a valid URL");
    let mut group = c.benchmark_group("backends/redis-2-workers");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.bench_function("workmill", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| end_to_end(&queue)).sum())
    });
    group.bench_function("raw-redis", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| raw(&client, &prefix)).sum())
    });
    group.finish();
    let stats = queue.stats().expect("stats");
    assert!(
        stats.is_consistent() && stats.running == 0 && stats.pending == 0,
        "{stats:?}"
    );
    queue.destroy().expect("delete the bench keys");
    // The ceiling's lists are not the queue's, so `destroy` leaves them.
    let mut con = client.get_connection().expect("connect");
    redis::cmd("DEL")
        .arg(format!("{prefix}:raw-jobs"))
        .arg(format!("{prefix}:raw-results"))
        .query::<()>(&mut con)
        .expect("delete the ceiling's lists");
}

criterion_group!(benches, two_workers);
criterion_main!(benches);
