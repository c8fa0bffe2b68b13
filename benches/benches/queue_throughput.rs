//! Group `queue`, case `end_to_end`: no-op tasks from submit to completion with status and result
//! recorded, through the workmill `Runtime` on the memory backend, against a plain crossbeam-channel
//! thread pool that runs the same closures and returns their results without any bookkeeping.

use std::hint::black_box;
use std::thread;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::{Deserialize, Serialize};
use workmill::{NamedTask, Runtime, TaskContext, TaskError};
use workmill_benches::quick;

/// Worker threads on both sides: the machine's two cores.
const WORKERS: usize = 2;

/// A task that does nothing but hand its input back.
#[derive(Serialize, Deserialize)]
struct Noop(u64);

impl NamedTask for Noop {
    const NAME: &'static str = "bench.noop";
    type Output = u64;
    fn run(self, _ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
        Ok(black_box(self.0))
    }
}

type Job = Box<dyn FnOnce() -> u64 + Send>;

/// The baseline: jobs in one channel, results in another, `WORKERS` threads between them.
struct ChannelPool {
    jobs: Option<Sender<Job>>,
    results: Receiver<u64>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl ChannelPool {
    fn new(workers: usize) -> ChannelPool {
        let (jobs, job_rx) = unbounded::<Job>();
        let (result_tx, results) = unbounded();
        let threads = (0..workers)
            .map(|_| {
                let (job_rx, result_tx) = (job_rx.clone(), result_tx.clone());
                thread::spawn(move || {
                    for job in job_rx {
                        if result_tx.send(job()).is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        ChannelPool {
            jobs: Some(jobs),
            results,
            threads,
        }
    }

    fn run(&self, tasks: u64) -> u64 {
        let jobs = self.jobs.as_ref().expect("the pool is running");
        for i in 0..tasks {
            jobs.send(Box::new(move || black_box(i)))
                .expect("the pool is running");
        }
        (0..tasks)
            .map(|_| self.results.recv().expect("the pool is running"))
            .sum()
    }
}

impl Drop for ChannelPool {
    fn drop(&mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn end_to_end(c: &mut Criterion) {
    let tasks: u64 = if quick() { 20_000 } else { 100_000 };
    let mut group = c.benchmark_group("queue/end_to_end");
    group.throughput(Throughput::Elements(tasks));

    let runtime = Runtime::builder()
        .threads(WORKERS)
        .build()
        .expect("a runtime starts");
    runtime.register::<Noop>().expect("registers");
    group.bench_function("workmill", |b| {
        b.iter(|| {
            let handles = runtime.submit_all((0..tasks).map(Noop)).expect("submits");
            let stats = runtime
                .wait_idle(Duration::from_secs(600))
                .expect("finishes");
            black_box((handles, stats))
        })
    });

    let pool = ChannelPool::new(WORKERS);
    group.bench_function("channel-pool", |b| b.iter(|| pool.run(tasks)));
    group.finish();

    // Every task the runtime ran must have completed, with nothing left behind.
    let stats = runtime.stats().expect("stats");
    assert!(stats.is_consistent() && stats.completed == stats.submitted && stats.dead == 0);
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
