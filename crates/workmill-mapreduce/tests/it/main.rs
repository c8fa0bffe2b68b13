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

/// Zero to two pairs per item, over a small key space so keys repeat across chunks.
pub(crate) fn pairs(x: &u32) -> Vec<(u8, u64)> {
    (0..x % 3)
        .map(|i| {
            (
                (x.wrapping_mul(31).wrapping_add(i) % 37) as u8,
                u64::from(*x),
            )
        })
        .collect()
}

/// The combiner of [`pairs`]' values.
pub(crate) fn add(acc: &mut u64, value: u64) {
    *acc = acc.wrapping_add(value);
}
