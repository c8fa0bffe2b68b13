//! Tests of a whole pool under loom: injection into a parked pool, and shutdown draining queued work.

#[cfg(workmill_loom)]
mod loom_tests {
    use crate::ThreadPool;
    use crate::sync::{Arc, AtomicUsize, Ordering};

    /// `install` from outside: the job is injected while the only worker may
    /// be falling asleep, and the caller blocks on a lock latch.
    #[test]
    fn loom_install_into_a_sleeping_pool() {
        loom::model(|| {
            let pool = ThreadPool::builder().num_threads(1).build().unwrap();
            assert_eq!(pool.install(|| 6 * 7), 42);
        });
    }

    /// Dropping the pool finishes queued `'static` tasks, then the worker exits and is joined.
    #[test]
    fn loom_shutdown_drains_queued_tasks() {
        loom::model(|| {
            let pool = ThreadPool::builder().num_threads(1).build().unwrap();
            let done = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&done);
            drop(pool.spawn(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            }));
            pool.shutdown();
            assert_eq!(done.load(Ordering::Relaxed), 1);
        });
    }
}
