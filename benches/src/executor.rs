//! Helpers shared by the `executor_*` and `mapreduce_*` benches: a workmill pool and a rayon pool of
//! the same size, a timer, and work of skewed cost.

use std::time::{Duration, Instant};

use workmill_executor::ThreadPool;

/// One thread per CPU, as both libraries default to.
pub fn num_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A workmill pool and a rayon pool with the same number of threads.
pub fn pools() -> (ThreadPool, rayon::ThreadPool) {
    let threads = num_threads();
    let ours = ThreadPool::builder()
        .num_threads(threads)
        .build()
        .expect("the workmill pool starts");
    let theirs = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("the rayon pool starts");
    (ours, theirs)
}

/// Times `iters` calls of `f`; call it on a worker so that entering the pool is not measured.
pub fn timed(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed()
}

/// Work proportional to `i²`: a xorshift chain the optimizer cannot skip.
pub fn skewed_work(i: u64) -> u64 {
    let mut x = i | 1;
    for _ in 0..(i * i) / 128 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}
