//! Group `backends`: tasks per second through a Redis queue end to end (a producer and two
//! worker threads), against the server's raw ceiling measured in the same run: the same
//! threads pushing and popping the same payloads with `LPUSH` and `BLMPOP`.
//!
//! The server is `WORKMILL_REDIS_URL` (default `redis://127.0.0.1:6379`); every key goes under
//! a prefix of this run's own and is deleted at the end. Throughput is per task.
//!
//! - `backends/redis-2-workers`: one producer enqueues tasks in batches of 100
//!   (`enqueue_batch`, one script each); two worker threads reserve batches of up to 100
//!   and record them with `complete_batch`, waiting on `await_work` when the queue is empty.
//!   The ceiling (`raw-redis`) has the producer push 100 payloads per `LPUSH`
//!   and the two consumers pop up to 100 per `BLMPOP` (blocking up to 5 ms on an empty list,
//!   as the workers' `await_work` does) and push their results back in one `LPUSH`: the same
//!   tasks, the same round trips, none of the bookkeeping. (`BLMPOP` needs Redis 7.0; on an
//!   older server the ceiling is skipped, with a message.) Its connections are opened once,
//!   outside the timed region, as the queue's pool holds its own. Both sides are timed from
//!   the first enqueue to the last task done (see [`Progress`]).

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

/// Tasks done so far, and when the last of the run's [`TASKS`] was done.
///
/// A run's time ends there, not when its threads have all returned: a worker blocked on an
/// empty queue when another takes the last batch returns only when its wait times out, and the
/// server sees blocking timeouts only at its `hz` (10 a second by default), so that tail would
/// add up to 100 ms to either side, whatever the throughput.
#[derive(Default)]
struct Progress {
    done: usize,
    finished: Option<Instant>,
}

impl Progress {
    fn is_finished(progress: &Mutex<Progress>) -> bool {
        progress.lock().unwrap().done >= TASKS
    }

    fn add(progress: &Mutex<Progress>, count: usize) {
        let mut progress = progress.lock().unwrap();
        progress.done += count;
        if progress.done >= TASKS && progress.finished.is_none() {
            progress.finished = Some(Instant::now());
        }
    }

    /// The time from `start` to the last task done.
    fn elapsed(progress: Mutex<Progress>, start: Instant) -> Duration {
        let finished = progress.into_inner().unwrap().finished;
        finished.expect("every task was done").duration_since(start)
    }
}

/// Runs `TASKS` tasks through the queue: one producer, `WORKERS` workers.
fn end_to_end(queue: &RedisQueue) -> Duration {
    let completed = Mutex::new(Progress::default());
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
                        if Progress::is_finished(completed) {
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
                    Progress::add(completed, count);
                }
            });
        }
    });
    Progress::elapsed(completed, start)
}

/// The ceiling: the same producer and consumers, a batch of tasks one `LPUSH` and one
/// blocking pop of up to a batch, and a batch of results one `LPUSH` onto a results list.
/// `connections` holds one connection per thread, opened beforehand.
fn raw(connections: &mut [redis::Connection], prefix: &str) -> Duration {
    let jobs = format!("{prefix}:raw-jobs");
    let results = format!("{prefix}:raw-results");
    let popped = Mutex::new(Progress::default());
    let (producer, consumers) = connections
        .split_first_mut()
        .expect("one connection per thread");
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..TASKS / BATCH {
                // One `LPUSH` of the whole batch, so that a consumer blocked on the
                // list wakes to all of it rather than to its first element.
                let mut push = redis::cmd("LPUSH");
                push.arg(&jobs);
                for _ in 0..BATCH {
                    push.arg(vec![7u8; PAYLOAD]);
                }
                push.query::<()>(producer).expect("push");
            }
        });
        for con in consumers.iter_mut() {
            let (popped, jobs, results) = (&popped, &jobs, &results);
            scope.spawn(move || {
                loop {
                    if Progress::is_finished(popped) {
                        return;
                    }
                    // `[key, [values]]`, or nil once the wait times out on an empty list.
                    let got: Option<(String, Vec<Vec<u8>>)> = redis::cmd("BLMPOP")
                        .arg(0.005)
                        .arg(1)
                        .arg(jobs)
                        .arg("RIGHT")
                        .arg("COUNT")
                        .arg(BATCH)
                        .query(con)
                        .expect("pop");
                    let Some((_, got)) = got else { continue };
                    let mut push = redis::cmd("LPUSH");
                    push.arg(results);
                    for _ in &got {
                        push.arg(vec![1u8; 16]);
                    }
                    let mut pipe = redis::pipe();
                    pipe.add_command(push).ignore();
                    pipe.cmd("LTRIM").arg(results).arg(0).arg(10_000).ignore();
                    pipe.query::<()>(con).expect("record results");
                    Progress::add(popped, got.len());
                }
            });
        }
    });
    Progress::elapsed(popped, start)
}

/// Whether the server knows `BLMPOP` (Redis 7.0 and later): `COMMAND INFO` answers nil for a
/// command it does not know.
fn has_blmpop(client: &redis::Client) -> bool {
    let Ok(mut con) = client.get_connection() else {
        return false;
    };
    let info: redis::RedisResult<redis::Value> = redis::cmd("COMMAND")
        .arg("INFO")
        .arg("BLMPOP")
        .query(&mut con);
    match info {
        Ok(redis::Value::Array(entries)) => entries
            .first()
            .is_some_and(|entry| !matches!(entry, redis::Value::Nil)),
        _ => false,
    }
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
    if has_blmpop(&client) {
        let mut connections: Vec<redis::Connection> = (0..=WORKERS)
            .map(|_| client.get_connection().expect("connect"))
            .collect();
        group.bench_function("raw-redis", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| raw(&mut connections, &prefix)).sum())
        });
    } else {
        eprintln!(
            "backends/redis-2-workers/raw-redis skipped: the server at {url} has no BLMPOP \
             (Redis 7.0 or later), which the ceiling pops with"
        );
    }
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
