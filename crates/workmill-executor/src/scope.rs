//! `scope`: spawn any number of jobs that borrow from the caller's stack; the scope returns when all are done.

use std::marker::PhantomData;

use crate::global;
use crate::job;
use crate::latch::CountLatch;
use crate::registry::Registry;
use crate::spawn::Lane;
use crate::sync::{Arc, Mutex, lock};
use crate::unwind::{self, Panic};
use crate::worker::WorkerThread;

/// A scope in which to spawn jobs that may borrow anything that outlives the scope.
///
/// Made by [`scope`] or [`ThreadPool::scope`](crate::ThreadPool::scope).
pub struct Scope<'scope> {
    registry: Arc<Registry>,
    /// One for the scope's own body plus one per spawned job not yet finished.
    pending: CountLatch,
    /// The first panic among the body and the jobs, re-raised when all are done.
    panic: Mutex<Option<Panic>>,
    /// Invariant in `'scope`, as the closures it accepts are.
    marker: PhantomData<Box<ScopeBody<'scope>>>,
}

/// The shape of the closures a scope accepts; only used to make `Scope` invariant in `'scope`.
type ScopeBody<'scope> = dyn FnOnce(&Scope<'scope>) + Send + Sync + 'scope;

/// Creates a scope on the current pool (the global pool outside every pool),
/// runs `op` in it, and returns once `op` and every job spawned in the scope
/// have finished.
///
/// Jobs spawned with [`Scope::spawn`] may borrow from the caller's stack,
/// because `scope` does not return before they are done. They may spawn more
/// jobs into the same scope.
///
/// # Panics
///
/// If `op` or a spawned job panics, the scope still waits for every other job,
/// then panics with the first payload. Every job runs even after a panic.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// let data: Vec<u64> = (1..=1000).collect();
/// let total = AtomicU64::new(0);
/// workmill_executor::scope(|s| {
///     for chunk in data.chunks(100) {
///         let total = &total;
///         s.spawn(move |_| {
///             total.fetch_add(chunk.iter().sum::<u64>(), Ordering::Relaxed);
///         });
///     }
/// });
/// assert_eq!(total.into_inner(), 500_500);
/// ```
pub fn scope<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R + Send,
    R: Send,
{
    let worker = WorkerThread::current();
    // SAFETY: a non-null current worker is alive on this thread.
    match unsafe { worker.as_ref() } {
        Some(worker) => run_scope(worker, op),
        None => Registry::in_worker(global::registry(), |worker, _| run_scope(worker, op)),
    }
}

/// Runs a whole scope on `worker`.
pub(crate) fn run_scope<'scope, OP, R>(worker: &WorkerThread, op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R + Send,
    R: Send,
{
    let scope = Scope {
        registry: Arc::clone(worker.registry()),
        pending: CountLatch::new(1, worker.registry(), worker.index()),
        panic: Mutex::new(None),
        marker: PhantomData,
    };
    let result = match unwind::halt_unwinding(|| op(&scope)) {
        Ok(value) => Some(value),
        Err(payload) => {
            scope.record_panic(payload);
            None
        }
    };
    // SAFETY: the scope is live, and this worker holds the registry.
    unsafe { CountLatch::decrement(&scope.pending) };
    worker.wait_until(&scope.pending.core);
    // Every job has finished: nothing borrows the caller's stack any more.
    if let Some(payload) = lock(&scope.panic).take() {
        unwind::resume_unwinding(payload);
    }
    match result {
        Some(value) => value,
        None => unreachable!("a scope whose body panicked recorded the panic"),
    }
}

impl<'scope> Scope<'scope> {
    /// Spawns a job into the scope. It may borrow anything that outlives the
    /// scope, and receives the scope to spawn more jobs.
    ///
    /// From a worker of the scope's pool the job goes to that worker's own
    /// deque (idle workers steal it); from elsewhere, to the pool's normal lane.
    ///
    /// # Examples
    ///
    /// A job that spawns more jobs into the same scope:
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let visited = AtomicUsize::new(0);
    /// workmill_executor::scope(|s| {
    ///     s.spawn(|s| {
    ///         visited.fetch_add(1, Ordering::Relaxed);
    ///         s.spawn(|_| {
    ///             visited.fetch_add(1, Ordering::Relaxed);
    ///         });
    ///     });
    /// });
    /// assert_eq!(visited.into_inner(), 2);
    /// ```
    pub fn spawn<BODY>(&self, body: BODY)
    where
        BODY: FnOnce(&Scope<'scope>) + Send + 'scope,
    {
        self.pending.increment();
        let scope = ScopePtr(self);
        let job = move || {
            let scope = scope;
            // SAFETY: the scope waits for this job before it is dropped.
            unsafe { Scope::run_job(scope.0, body) }
        };
        // SAFETY: a non-null current worker is alive on this thread.
        let worker = unsafe { WorkerThread::current().as_ref() };
        // SAFETY: everything the job borrows outlives `'scope`, the scope
        // does not end before the job has run (`pending` counts it), and
        // every queued job runs once.
        let job = unsafe { job::scope_job(worker, job) };
        self.registry.push_spawned_from(worker, Lane::Normal, job);
    }

    /// Runs a spawned job and counts it done.
    ///
    /// # Safety
    ///
    /// `this` is live: the scope has not seen this job finish yet.
    unsafe fn run_job<BODY>(this: *const Scope<'scope>, body: BODY)
    where
        BODY: FnOnce(&Scope<'scope>),
    {
        // SAFETY: live, per the contract.
        let scope = unsafe { &*this };
        if let Err(payload) = unwind::halt_unwinding(|| body(scope)) {
            scope.record_panic(payload);
        }
        // SAFETY: the scope is live until this decrement lets it finish; the
        // job runs on one of the registry's workers, which hold the registry.
        unsafe { CountLatch::decrement(&scope.pending) };
    }

    /// Keeps the first panic, to re-raise once every job has finished. A later one's
    /// payload is dropped here, and its `Drop` may panic (`panic_any` of such a value): that
    /// must not unwind out before the caller counts its job done, or out of the scope body
    /// before the scope waited for its jobs, which still borrow its stack.
    fn record_panic(&self, payload: Panic) {
        let mut first = lock(&self.panic);
        if first.is_none() {
            *first = Some(payload);
            return;
        }
        drop(first);
        unwind::drop_quietly(payload, |_| {});
    }
}

/// A pointer to the scope that a job carries across threads.
struct ScopePtr<'scope>(*const Scope<'scope>);

// SAFETY: `Scope` is `Sync`, so sharing a pointer to it is like sharing `&Scope`.
unsafe impl Send for ScopePtr<'_> {}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use crate::ThreadPool;

    /// A panic payload whose `Drop` panics.
    struct Bomb;

    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("the payload's drop panicked");
        }
    }

    #[test]
    fn a_later_panic_whose_payload_cannot_be_dropped_still_waits_for_every_job() {
        let pool = ThreadPool::builder().num_threads(2).build().unwrap();
        let finished = AtomicBool::new(false);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.scope(|s| {
                s.spawn(|_| {
                    std::thread::sleep(Duration::from_millis(20));
                    finished.store(true, Ordering::SeqCst);
                });
                // As if a job had panicked first; the body's own panic then comes second.
                s.record_panic(Box::new("the first panic"));
                std::panic::panic_any(Bomb);
            })
        }));
        let payload = outcome.expect_err("the scope re-raises its first panic");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"the first panic"),
            "the first panic is re-raised, not the dropped payload's"
        );
        assert!(
            finished.load(Ordering::SeqCst),
            "the scope waited for its job before re-raising"
        );
    }
}
