//! `spawn`: `'static` tasks on a priority lane, each with a `JoinHandle` to join, poll or cancel it.

use std::fmt;
use std::marker::PhantomData;
// A std `Arc` even under loom: loom's cannot coerce to `Arc<dyn TaskControl<T>>`,
// and the reference count is not what the model checks.
use std::sync::Arc;

use workmill_core::Priority;

use crate::global;
use crate::job::HeapJob;
use crate::latch::CoreLatch;
use crate::registry::Registry;
use crate::sync::{AtomicU8, AtomicUsize, Condvar, Mutex, Ordering, UnsafeCell, lock, wait};
use crate::unwind::{self, Panic};
use crate::worker::WorkerThread;

/// A pool's registry as its workers hold it (loom's `Arc` under loom, unlike the task's).
type RegistryArc = crate::sync::Arc<Registry>;

/// The priority lane of a spawned task. Workers take high-lane tasks before
/// anything else queued, and low-lane tasks only when nothing else is left.
///
/// A [`Priority`] from workmill-core maps onto a lane: [`Priority::HIGH`] and
/// more urgent to `High`, [`Priority::LOW`] and less urgent to `Low`, the rest
/// to `Normal`.
///
/// # Examples
///
/// ```
/// use workmill_core::Priority;
/// use workmill_executor::Lane;
///
/// assert_eq!(Lane::from(Priority::HIGHEST), Lane::High);
/// assert_eq!(Lane::from(Priority::NORMAL), Lane::Normal);
/// assert_eq!(Lane::from(Priority::new(200)), Lane::Low);
/// assert_eq!(Lane::default(), Lane::Normal);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Runs before any queued normal or low task.
    High = 0,
    /// The default.
    #[default]
    Normal = 1,
    /// Runs when no high or normal task is waiting.
    Low = 2,
}

impl From<Priority> for Lane {
    fn from(priority: Priority) -> Lane {
        if priority <= Priority::HIGH {
            Lane::High
        } else if priority >= Priority::LOW {
            Lane::Low
        } else {
            Lane::Normal
        }
    }
}

/// A spawned task panicked; the error carries the panic's message and payload.
///
/// # Examples
///
/// ```
/// let handle = workmill_executor::spawn(|| -> u32 { panic!("disk on fire") });
/// let err = handle.join().unwrap_err();
/// assert_eq!(err.message(), "disk on fire");
/// assert!(err.to_string().contains("disk on fire"));
/// ```
#[derive(thiserror::Error)]
#[error("spawned task panicked: {message}; the worker thread survived, the task's result is lost")]
pub struct TaskPanicked {
    message: String,
    // A std mutex only to make the error `Sync` (payloads are merely `Send`).
    payload: std::sync::Mutex<Option<Panic>>,
}

impl TaskPanicked {
    fn new(payload: Panic) -> TaskPanicked {
        TaskPanicked {
            message: unwind::panic_message(&*payload),
            payload: std::sync::Mutex::new(Some(payload)),
        }
    }

    /// The panic message (or a note that the payload was not a string).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The panic's payload, for example to re-raise it with `std::panic::resume_unwind`.
    pub fn into_panic(self) -> Box<dyn std::any::Any + Send + 'static> {
        let payload = self
            .payload
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        payload.unwrap_or_else(|| Box::new(self.message))
    }
}

impl fmt::Debug for TaskPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskPanicked")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const CANCELLED: u8 = 3;

/// The state a spawned task shares with its handle and its queued job.
///
/// `state` decides who may touch `func`: whoever moves it out of `QUEUED`
/// (the worker that runs it, a joiner that runs it inline, or `cancel`).
///
/// A thread outside every pool waits for the result on `done`. A worker waits
/// on `latch` instead, by its pool's sleep protocol, so that it keeps running
/// other work, its broadcast copies included, and sleeps like any idle worker;
/// the runner sets the latch and wakes it (`waiter`, of `waiter_pool` when the
/// waiter belongs to another pool than the task).
pub(crate) struct TaskCell<F, T> {
    state: AtomicU8,
    func: UnsafeCell<Option<F>>,
    result: Mutex<Option<Result<T, TaskPanicked>>>,
    done: Condvar,
    latch: CoreLatch,
    /// The index of the worker waiting on `latch`, written before it can sleep.
    waiter: AtomicUsize,
    /// The pool of that worker when it is not the task's, written before it can sleep.
    waiter_pool: Mutex<Option<RegistryArc>>,
    /// One more than the index of the worker that runs the task; 0 before it starts.
    runner: AtomicUsize,
}

// SAFETY: `func` is only accessed by the single thread that won the state
// transition out of QUEUED, and `F: Send`; the rest is synchronised.
unsafe impl<F: Send, T: Send> Sync for TaskCell<F, T> {}

impl<F, T> TaskCell<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    pub(crate) fn new(func: F) -> TaskCell<F, T> {
        TaskCell {
            state: AtomicU8::new(QUEUED),
            func: UnsafeCell::new(Some(func)),
            result: Mutex::new(None),
            done: Condvar::new(),
            latch: CoreLatch::new(),
            waiter: AtomicUsize::new(0),
            waiter_pool: Mutex::new(None),
            runner: AtomicUsize::new(0),
        }
    }

    /// Runs the task on worker `worker` of `registry` if nobody started or cancelled it;
    /// true if this call ran it.
    pub(crate) fn try_run(&self, registry: &Registry, worker: usize) -> bool {
        if self
            .state
            .compare_exchange(QUEUED, RUNNING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // Read only by a joiner on this same worker (see `runs_below`): no ordering needed.
        self.runner.store(worker + 1, Ordering::Relaxed);
        // SAFETY: we won the transition out of QUEUED, so `func` is ours alone.
        let func = self.func.with_mut(|func| unsafe { (*func).take() });
        let Some(func) = func else {
            unreachable!("a spawned task's closure was taken twice")
        };
        let result = unwind::halt_unwinding(func).map_err(|payload| {
            registry.report_panic(&*payload);
            TaskPanicked::new(payload)
        });
        let mut slot = lock(&self.result);
        *slot = Some(result);
        self.state.store(DONE, Ordering::Release);
        self.done.notify_all();
        drop(slot);
        // SAFETY: the caller holds the cell (an `Arc`) for the whole call, so it stays live
        // after the swap too.
        if unsafe { CoreLatch::set(&self.latch) } {
            // The waiter wrote its index and pool before it could fall asleep, and the
            // swap that found it asleep orders those writes before these reads.
            let waiter = self.waiter.load(Ordering::Relaxed);
            match lock(&self.waiter_pool).take() {
                Some(pool) => pool.sleep.wake_specific(waiter),
                None => registry.sleep.wake_specific(waiter),
            };
        }
        true
    }

    /// True if the task is running on worker `worker`: lower on that worker's own stack
    /// when the worker asks, so it cannot finish before the caller's job returns.
    pub(crate) fn runs_below(&self, worker: usize) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING
            && self.runner.load(Ordering::Relaxed) == worker + 1
    }

    /// Prevents the task from starting; true if it had not started.
    pub(crate) fn cancel(&self) -> bool {
        if self
            .state
            .compare_exchange(QUEUED, CANCELLED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // SAFETY: we won the transition out of QUEUED, so `func` is ours alone.
        let func = self.func.with_mut(|func| unsafe { (*func).take() });
        drop(func);
        true
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.load(Ordering::Acquire) == DONE
    }

    /// Blocks until the task has run, and takes its result.
    pub(crate) fn wait(&self) -> Result<T, TaskPanicked> {
        let mut slot = lock(&self.result);
        loop {
            if let Some(result) = slot.take() {
                return result;
            }
            slot = wait(&self.done, slot);
        }
    }
}

/// What a `JoinHandle` needs from its task, without naming the closure's type.
trait TaskControl<T>: Send + Sync {
    fn try_run(&self, registry: &Registry, worker: usize) -> bool;
    fn runs_below(&self, worker: usize) -> bool;
    /// Makes worker `worker` the one the runner wakes, and returns the latch it waits on.
    /// `pool` is the worker's pool if it is not the task's.
    fn waiter_latch(&self, worker: usize, pool: Option<RegistryArc>) -> &CoreLatch;
    fn cancel(&self) -> bool;
    fn is_finished(&self) -> bool;
    fn wait(&self) -> Result<T, TaskPanicked>;
}

impl<F, T> TaskControl<T> for TaskCell<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    fn try_run(&self, registry: &Registry, worker: usize) -> bool {
        TaskCell::try_run(self, registry, worker)
    }
    fn runs_below(&self, worker: usize) -> bool {
        TaskCell::runs_below(self, worker)
    }
    fn waiter_latch(&self, worker: usize, pool: Option<RegistryArc>) -> &CoreLatch {
        self.waiter.store(worker, Ordering::Relaxed);
        // Only the one consuming `join` writes it, and it starts empty: a waiter of the task's
        // own pool leaves it so, without the lock.
        if pool.is_some() {
            *lock(&self.waiter_pool) = pool;
        }
        &self.latch
    }
    fn cancel(&self) -> bool {
        TaskCell::cancel(self)
    }
    fn is_finished(&self) -> bool {
        TaskCell::is_finished(self)
    }
    fn wait(&self) -> Result<T, TaskPanicked> {
        TaskCell::wait(self)
    }
}

/// An owned handle to a spawned task: join it, poll it, or cancel it.
///
/// Dropping the handle detaches the task: it still runs, and a panic in it
/// still reaches the pool's panic handler, if one is set.
#[must_use = "dropping a JoinHandle detaches the task; call join() to get its result"]
pub struct JoinHandle<T> {
    task: Arc<dyn TaskControl<T>>,
    /// The pool the task was spawned on, by address, to recognise its workers.
    registry: *const Registry,
    marker: PhantomData<T>,
}

// SAFETY: `registry` is only compared by address, never dereferenced through the handle.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: as above; the task itself is `Sync`.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.task.is_finished())
            .finish_non_exhaustive()
    }
}

impl<T: Send> JoinHandle<T> {
    /// Waits for the task and returns its result, or [`TaskPanicked`] if it panicked.
    ///
    /// On a worker of the task's pool, a task that has not started yet runs
    /// right here, inline; one that is running on another worker is waited
    /// for as an idle worker waits, running other work meanwhile (broadcasts
    /// included) and sleeping when there is none. A worker of another pool
    /// waits so too, running its own pool's work: the task may use that pool
    /// (its `install` or `broadcast`) while it waits. As in `install`, that work
    /// runs on the joiner's stack: a caller holding a lock that such work takes
    /// may deadlock, as with any wait inside a pool. A thread outside every
    /// pool blocks.
    ///
    /// Because a waiting worker runs other tasks on its own stack, waits on
    /// handles can form a cycle that the tasks' joins alone do not: worker 1
    /// runs `y`, which waits for `z`, running on worker 0; meanwhile worker 1
    /// takes up `w`, which waits for `x`, which lies under `z` on worker 0 and
    /// itself waits for `y`. `y` cannot resume until `w` returns, so all of
    /// them wait for good. Joining each task only in the closure that spawned
    /// it (not in another closure that a worker may take up later, such as the
    /// second closure of a [`join`](crate::join) or a `scope` spawn), or
    /// using [`scope`](crate::scope) instead of handles, never builds such a
    /// cycle: then every wait, on a handle or on the tasks above on a worker's
    /// stack, is for a task that started later than the waiting code.
    ///
    /// # Errors
    ///
    /// [`TaskPanicked`] if the task panicked.
    ///
    /// # Panics
    ///
    /// If the task is running lower on this same worker's stack: this worker
    /// took up the calling job while that task waited for something, so the
    /// task cannot go on until the caller returns, and waiting would never
    /// end. (A chain of tasks that each join the one spawned before them can
    /// do this.) The panic reaches the caller's own handle or `join`.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_executor::ThreadPool;
    ///
    /// // One worker, and the joiner runs on it: the queued tasks run inline.
    /// let pool = ThreadPool::builder().num_threads(1).build()?;
    /// let sum = pool.install(|| {
    ///     let parts: Vec<_> = (1..=4).map(|i| workmill_executor::spawn(move || i * 10)).collect();
    ///     parts.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
    /// });
    /// assert_eq!(sum, 100);
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn join(self) -> Result<T, TaskPanicked> {
        let worker = WorkerThread::current();
        // SAFETY: a non-null current worker is alive on this thread.
        let Some(worker) = (unsafe { worker.as_ref() }) else {
            return self.task.wait();
        };
        if !std::ptr::eq(&**worker.registry(), self.registry) {
            // Blocking this thread would take a worker from its pool, which the task may need.
            let pool = RegistryArc::clone(worker.registry());
            worker.wait_until(self.task.waiter_latch(worker.index(), Some(pool)));
        } else if !self.task.try_run(worker.registry(), worker.index()) {
            assert!(
                !self.task.runs_below(worker.index()),
                "JoinHandle::join would wait forever: the task runs lower on this worker's own \
                 stack, and cannot go on until the caller returns"
            );
            worker.wait_until(self.task.waiter_latch(worker.index(), None));
        }
        self.task.wait()
    }

    /// True once the task has finished (returned or panicked); `join` will not block then.
    ///
    /// # Examples
    ///
    /// ```
    /// let handle = workmill_executor::spawn(|| 1);
    /// while !handle.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(handle.join().unwrap(), 1);
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Prevents the task from running if it has not started yet.
    ///
    /// Returns `Ok(())` if the task will never run (its closure is dropped
    /// now), or gives the handle back in `Err` if the task already started or
    /// finished, so that its result can still be joined.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_executor::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().num_threads(1).build()?;
    /// let (started_tx, started_rx) = std::sync::mpsc::channel();
    /// let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    /// // Keep the only worker busy so that the next task stays queued.
    /// let blocker = pool.spawn(move || {
    ///     started_tx.send(()).unwrap();
    ///     release_rx.recv().unwrap();
    /// });
    /// started_rx.recv().unwrap();
    /// let queued = pool.spawn(|| 42);
    /// assert!(queued.cancel().is_ok(), "a queued task can be cancelled");
    /// release_tx.send(()).unwrap();
    /// blocker.join().unwrap();
    /// # Ok::<(), workmill_executor::BuildError>(())
    /// ```
    pub fn cancel(self) -> Result<(), JoinHandle<T>> {
        if self.task.cancel() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

/// Spawns a `'static` task on `registry` in `lane`.
pub(crate) fn spawn_in<F, T>(registry: &Registry, lane: Lane, func: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let task = Arc::new(TaskCell::new(func));
    let queued = Arc::clone(&task);
    registry.job_started();
    let job = move || {
        // SAFETY: jobs run on a worker of the registry they were queued on.
        let worker = unsafe { &*WorkerThread::current() };
        let registry = worker.registry();
        queued.try_run(registry, worker.index());
        // With its handle gone, this is the last reference, and dropping it drops the
        // task's result here. A panic in that `Drop` has no owner to go to, and must not
        // unwind into the worker: it may be waiting in a `join` whose frame a thief is
        // using, and `job_finished` must run. It goes to the panic handler.
        unwind::drop_quietly(queued, |payload| registry.report_panic(payload));
        registry.job_finished();
    };
    // On the heap, not in a block (see `block.rs`): a `'static` task may run
    // or wait in a lane for as long as it likes, and would keep a whole block
    // alive meanwhile; its `Arc` costs an allocation anyway.
    let job = HeapJob::new(job);
    // SAFETY: the job owns everything it uses (`'static`).
    registry.push_spawned(lane, unsafe { job.into_job_ref() });
    JoinHandle {
        task,
        registry,
        marker: PhantomData,
    }
}

/// Spawns a `'static` task on the current pool (the global pool outside every
/// pool) and returns a handle to join, poll or cancel it.
///
/// A panic in the task is caught: the worker lives on, the pool's panic
/// handler (if any) sees the payload, and [`JoinHandle::join`] returns
/// [`TaskPanicked`].
///
/// # Examples
///
/// ```
/// let handle = workmill_executor::spawn(|| (1..=10u64).product::<u64>());
/// assert_eq!(handle.join().unwrap(), 3_628_800);
/// ```
pub fn spawn<F, T>(func: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_with(Lane::Normal, func)
}

/// Like [`spawn`], in a chosen priority lane.
///
/// # Examples
///
/// ```
/// use workmill_executor::{Lane, spawn_with};
///
/// let urgent = spawn_with(Lane::High, || "first");
/// assert_eq!(urgent.join().unwrap(), "first");
/// ```
pub fn spawn_with<F, T>(lane: Lane, func: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let worker = WorkerThread::current();
    // SAFETY: a non-null current worker is alive on this thread.
    match unsafe { worker.as_ref() } {
        Some(worker) => spawn_in(worker.registry(), lane, func),
        None => spawn_in(global::registry(), lane, func),
    }
}

#[cfg(test)]
mod tests;
