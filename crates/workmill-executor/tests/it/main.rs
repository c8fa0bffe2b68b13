//! Integration tests of workmill-executor: every public API item, its panic and shutdown behaviour.
//!
//! No test asserts on speed. Where a test must wait for the pool to reach a
//! state (a task started, every thread parked) it polls with a generous
//! deadline and fails with a message saying what never happened. One test
//! bounds a wake-up by a heartbeat tick: 1 s against a wake-up of about 1 ms.
#![cfg(not(workmill_loom))]

mod broadcast;
mod join;
mod pool;
mod scope;
mod spawn;

use std::time::{Duration, Instant};

/// Polls `condition` until it holds; fails the test if it does not within 30 s.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Spins until `flag` is set, giving the CPU away between checks.
pub fn wait_for(flag: &std::sync::atomic::AtomicBool, what: &str) {
    eventually(what, || flag.load(std::sync::atomic::Ordering::SeqCst));
}

/// A pool of `threads` workers.
pub fn pool(threads: usize) -> workmill_executor::ThreadPool {
    workmill_executor::ThreadPool::builder()
        .num_threads(threads)
        .build()
        .expect("the pool starts")
}

/// Panics when dropped: a panic payload (`std::panic::panic_any(PanicOnDrop)`) whose `Drop` fails.
pub struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("the payload's drop failed");
    }
}
