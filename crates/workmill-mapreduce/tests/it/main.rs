//! Integration tests of workmill-mapreduce: every operation against its sequential reference, keyed map-reduce, custom partitioners, panics and inputs.

mod equivalence;
mod inputs;
mod keyed;
mod panics;
mod partition;

use std::sync::OnceLock;

use workmill_executor::ThreadPool;

/// A shared three-thread pool, so halves really migrate between workers.
pub(crate) fn pool() -> &'static ThreadPool {
    static POOL: OnceLock<ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        ThreadPool::builder()
            .num_threads(3)
            .build()
            .expect("a three-thread pool starts")
    })
}
