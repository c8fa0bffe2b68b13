//! `ThreadPool`: an explicit pool with `install`, `join`, `scope`, `spawn`, `broadcast`, metrics and shutdown, and its `workmill_core::Worker` impl.

use std::fmt;

use workmill_core::{Load, Rejected, Worker};

use crate::broadcast::{self, BroadcastContext};
use crate::builder::ThreadPoolBuilder;
use crate::join::{self, FnContext};
use crate::metrics::PoolMetrics;
use crate::registry::Registry;
use crate::scope::{self, Scope};
use crate::spawn::{self, JoinHandle, Lane};
use crate::sync::{Arc, Ordering, thread};
use crate::worker::WorkerThread;

/// A work-stealing thread pool.
///
/// Work enters with [`install`](Self::install) (run a closure on the pool and
/// wait), [`join`](Self::join), [`scope`](Self::scope) (borrowing spawns),
/// [`spawn`](Self::spawn) (`'static` tasks with a [`JoinHandle`]) and
/// [`broadcast`](Self::broadcast). Inside the pool the free functions
/// ([`join`](crate::join), [`scope`](crate::scope), [`spawn`](crate::spawn),
/// ...) use this pool.
///
/// Dropping the pool, or calling [`shutdown`](Self::shutdown), finishes every
/// queued `'static` task, then stops and joins the threads.
///
/// # Examples
///
/// ```
/// use workmill_executor::ThreadPool;
///
/// let pool = ThreadPool::builder().num_threads(2).build()?;
/// let words = vec!["alpha", "beta", "gamma"];
/// let total: usize = pool.install(|| {
///     let (a, b) = workmill_executor::join(|| words[0].len(), || words[1..].iter().map(|w| w.len()).sum::<usize>());
///     a + b
/// });
/// assert_eq!(total, 14);
/// pool.shutdown();
/// # Ok::<(), workmill_executor::BuildError>(())
/// ```
pub struct ThreadPool {
    registry: Arc<Registry>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("num_threads", &self.registry.num_threads())
            .finish_non_exhaustive()
    }
}

impl ThreadPool {
    /// A builder to configure a pool.
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }

    /// A pool with the default configuration (one thread per CPU).
    ///
    /// # Errors
    ///
    /// As [`ThreadPoolBuilder::build`].
    pub fn new() -> Result<ThreadPool, crate::BuildError> {
        ThreadPoolBuilder::new().build()
    }

    pub(crate) fn from_parts(
        registry: Arc<Registry>,
        threads: Vec<thread::JoinHandle<()>>,
    ) -> ThreadPool {
        ThreadPool { registry, threads }
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Runs `op` on a worker of this pool and returns its result.
    ///
    /// From outside the pool the calling thread blocks until `op` is done. On
    /// a worker of this pool `op` simply runs inline. On a worker of another
    /// pool, that worker keeps running its own pool's jobs while it waits, so
    /// pools can be nested in any order without deadlock.
    ///
    /// # Panics
    ///
    /// A panic in `op` is re-raised in the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_executor::{ThreadPool, current_num_threads};
    ///
    /// let outer = ThreadPool::builder().num_threads(2).build()?;
    /// let inner = ThreadPool::builder().num_threads(3).build()?;
    /// let sizes = outer.install(|| (current_num_threads(), inner.install(current_num_threads)));
    /// assert_eq!(sizes, (2, 3));
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn install<OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce() -> R + Send,
        R: Send,
    {
        Registry::in_worker(&self.registry, |_, _| op())
    }

    /// [`join`](crate::join) on this pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workmill_executor::ThreadPool::builder().num_threads(2).build()?;
    /// assert_eq!(pool.join(|| 1 + 1, || "two"), (2, "two"));
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn join<A, B, RA, RB>(&self, oper_a: A, oper_b: B) -> (RA, RB)
    where
        A: FnOnce() -> RA + Send,
        B: FnOnce() -> RB + Send,
        RA: Send,
        RB: Send,
    {
        Registry::in_worker(&self.registry, |worker, _| {
            join::join_on_worker(worker, |_: FnContext| oper_a(), |_: FnContext| oper_b())
        })
    }

    /// [`join_context`](crate::join_context) on this pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workmill_executor::ThreadPool::builder().num_threads(2).build()?;
    /// let (a, b) = pool.join_context(|ctx| ctx.migrated(), |_| 7);
    /// assert!(!a, "the first closure always runs on the calling worker");
    /// assert_eq!(b, 7);
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn join_context<A, B, RA, RB>(&self, oper_a: A, oper_b: B) -> (RA, RB)
    where
        A: FnOnce(FnContext) -> RA + Send,
        B: FnOnce(FnContext) -> RB + Send,
        RA: Send,
        RB: Send,
    {
        Registry::in_worker(&self.registry, |worker, _| {
            join::join_on_worker(worker, oper_a, oper_b)
        })
    }

    /// [`scope`](crate::scope) on this pool: spawns may borrow from the caller's stack.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workmill_executor::ThreadPool::builder().num_threads(2).build()?;
    /// let mut squares = vec![0u64; 8];
    /// pool.scope(|s| {
    ///     for (i, slot) in squares.iter_mut().enumerate() {
    ///         s.spawn(move |_| *slot = (i * i) as u64);
    ///     }
    /// });
    /// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49]);
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn scope<'scope, OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&Scope<'scope>) -> R + Send,
        R: Send,
    {
        Registry::in_worker(&self.registry, |worker, _| scope::run_scope(worker, op))
    }

    /// Spawns a `'static` task in the normal lane; see [`spawn`](crate::spawn).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workmill_executor::ThreadPool::builder().num_threads(2).build()?;
    /// let handle = pool.spawn(|| "done");
    /// assert_eq!(handle.join().unwrap(), "done");
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn spawn<F, T>(&self, func: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn::spawn_in(&self.registry, Lane::Normal, func)
    }

    /// Spawns a `'static` task in a priority lane; see [`Lane`].
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_core::Priority;
    /// use workmill_executor::{Lane, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().num_threads(2).build()?;
    /// let urgent = pool.spawn_with(Lane::from(Priority::HIGH), || "urgent");
    /// let batch = pool.spawn_with(Lane::Low, || "batch");
    /// assert_eq!((urgent.join().unwrap(), batch.join().unwrap()), ("urgent", "batch"));
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn spawn_with<F, T>(&self, lane: Lane, func: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn::spawn_in(&self.registry, lane, func)
    }

    /// Runs `op` once on every worker of this pool; see [`broadcast`](crate::broadcast).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workmill_executor::ThreadPool::builder().num_threads(2).build()?;
    /// let sizes = pool.broadcast(|ctx| ctx.num_threads());
    /// assert_eq!(sizes, vec![2, 2]);
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn broadcast<OP, R>(&self, op: OP) -> Vec<R>
    where
        OP: Fn(BroadcastContext) -> R + Sync,
        R: Send,
    {
        Registry::in_worker(&self.registry, |worker, _| {
            broadcast::broadcast_on_worker(worker, &op)
        })
    }

    /// The number of worker threads.
    pub fn current_num_threads(&self) -> usize {
        self.registry.num_threads()
    }

    /// The index of the current thread if it is a worker of this pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workmill_executor::ThreadPool::builder().num_threads(2).build()?;
    /// assert_eq!(pool.current_thread_index(), None);
    /// assert!(pool.install(|| pool.current_thread_index()).is_some());
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn current_thread_index(&self) -> Option<usize> {
        let worker = WorkerThread::current();
        // SAFETY: a non-null current worker is alive on this thread.
        unsafe { worker.as_ref() }
            .filter(|worker| worker.belongs_to(&self.registry))
            .map(WorkerThread::index)
    }

    /// Runs one queued job of this pool if called from one of its workers; see [`yield_now`](crate::yield_now).
    pub fn yield_now(&self) -> Option<crate::Yield> {
        self.current_thread_index()?;
        crate::yield_now()
    }

    /// A snapshot of each worker's counters; see [`PoolMetrics`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = workmill_executor::ThreadPool::builder().num_threads(2).build()?;
    /// pool.install(|| ());
    /// let metrics = pool.metrics();
    /// assert_eq!(metrics.total().injected, 1, "one job came from outside");
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn metrics(&self) -> PoolMetrics {
        PoolMetrics::read(&self.registry)
    }

    /// Finishes every queued `'static` task, then stops and joins the worker
    /// threads. Dropping the pool does the same. Called from one of the
    /// pool's own tasks, it returns at once and the threads exit when the
    /// remaining work is done.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let pool = workmill_executor::ThreadPool::builder().num_threads(2).build()?;
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for _ in 0..10 {
    ///     let done = Arc::clone(&done);
    ///     drop(pool.spawn(move || done.fetch_add(1, Ordering::SeqCst)));
    /// }
    /// pool.shutdown();
    /// assert_eq!(done.load(Ordering::SeqCst), 10);
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        // The pool handle's own count: once spawned tasks are done too, the workers exit.
        self.registry.job_finished();
        // A pool dropped by one of its own tasks cannot wait for its threads:
        // they exit once that task (and all other work) is done.
        if self.current_thread_index().is_some() {
            return;
        }
        for handle in self.threads.drain(..) {
            // A worker never panics out of its main loop; a join error carries nothing to
            // report, and its payload is dropped where its `Drop` cannot panic out of here.
            if let Err(payload) = handle.join() {
                crate::unwind::drop_quietly(payload, |_| {});
            }
        }
    }
}

/// A pool is a workmill-core [`Worker`]: balancers can route boxed jobs to it
/// and read its [`Load`].
///
/// `submit` never rejects: the pool's queues are unbounded, and a pool that is
/// shutting down has been consumed, so nobody can submit to it.
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use workmill_core::Worker;
/// use workmill_executor::ThreadPool;
///
/// let pool = ThreadPool::builder().num_threads(2).build()?;
/// let (tx, rx) = mpsc::channel();
/// pool.submit(Box::new(move || tx.send(6 * 7).unwrap())).unwrap();
/// assert_eq!(rx.recv().unwrap(), 42);
/// assert_eq!(pool.load().capacity, 2);
/// # Ok::<(), workmill_executor::BuildError>(())
/// ```
impl Worker for ThreadPool {
    type Job = Box<dyn FnOnce() + Send + 'static>;

    fn submit(&self, job: Self::Job) -> Result<(), Rejected<Self::Job>> {
        // Detached: the panic handler, if any, sees a panic.
        drop(self.spawn(job));
        Ok(())
    }

    fn load(&self) -> Load {
        let registry = &self.registry;
        let idle = registry
            .thread_infos
            .iter()
            .filter(|info| info.idle.load(Ordering::Relaxed))
            .count();
        Load {
            running: registry.num_threads() - idle,
            queued: registry.queued(),
            capacity: registry.num_threads(),
            ..Load::default()
        }
    }
}

#[cfg(test)]
mod tests;
