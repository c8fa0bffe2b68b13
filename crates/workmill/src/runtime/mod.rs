//! `Runtime`: named tasks submitted to a queue backend and run by the runtime's own worker loops, with
//! status, typed results, cancellation, stats and shutdown.

mod builder;
mod gate;
pub(crate) mod host;
mod jobs;
mod shutdown;
#[cfg(test)]
mod tests;
pub(crate) mod wait;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, TryLockError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use workmill_core::{
    Codec, NamedTask, NewTask, Postcard, Queue, QueueError, QueueStats, TaskError, TaskId,
    TaskRecord, TaskStatus, Timestamp,
};
use workmill_queue::MemoryQueue;

use crate::error::RuntimeError;
use crate::registry::{FnHandle, SharedRegistry};
use crate::submit::{Submission, Submit, TaskHandle, new_task};
use crate::worker::{Control, LoopReport, Mode, Reconnect};
pub use builder::RuntimeBuilder;
use host::Running;
pub use shutdown::{Shutdown, ShutdownReport};
use wait::Waits;

/// How many tasks [`Runtime::submit_all`] hands the backend at once: large
/// enough to amortize the backend's lock, small enough that workers are not
/// kept from it for long.
const SUBMIT_CHUNK: usize = 512;

/// How long a drain sleeps on the memory queue's idle signal before it looks whether the loops
/// were stopped. (A wait for a task's result or a job's on the memory queue is one wait that
/// the stop interrupts: see [`Waits`].)
const STOP_CHECK_MEMORY: Duration = Duration::from_millis(50);

/// How long a wait for a result or a job from one of the runtime's own tasks, on a backend
/// other than the memory queue, waits before it looks whether the loops were stopped: each new
/// wait there costs a store round trip (or a subscription).
const STOP_CHECK: Duration = Duration::from_millis(500);

/// A queue of named tasks and the workers that run them, in this process.
///
/// Tasks are registered by name ([`register`](Runtime::register) for
/// [`NamedTask`] types, [`register_fn`](Runtime::register_fn) for closures),
/// submitted with a priority, a retry policy, an optional custom id and an
/// optional delay ([`submit`](Runtime::submit)), and run by the runtime's
/// worker loops, which reserve them from the backend in priority order. The
/// caller watches a task's [`status`](Runtime::status), blocks for its typed
/// result ([`get_result`](Runtime::get_result)), can
/// [`cancel`](Runtime::cancel) it before it starts, and reads exact
/// [`stats`](Runtime::stats). The backend is an in-process [`MemoryQueue`]
/// unless the builder says otherwise.
///
/// Map-reduce jobs run on the same workers: register the map and the reduce
/// ([`register`](Runtime::register), [`register_reduce`](Runtime::register_reduce)),
/// [`submit_job`](Runtime::submit_job), watch [`job_status`](Runtime::job_status) and block
/// for the result with [`wait_job`](Runtime::wait_job); the [`job`](crate::job) module has
/// the whole model and an example.
///
/// Dropping a runtime shuts it down with [`Shutdown::Abandon`]; call
/// [`shutdown`](Runtime::shutdown) to drain instead, or to read the report.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use serde::{Deserialize, Serialize};
/// use workmill::{NamedTask, Priority, Runtime, Shutdown, TaskContext, TaskError};
///
/// #[derive(Serialize, Deserialize)]
/// struct Square(u64);
///
/// impl NamedTask for Square {
///     const NAME: &'static str = "math.square";
///     type Output = u64;
///     fn run(self, _ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
///         Ok(self.0 * self.0)
///     }
/// }
///
/// let runtime = Runtime::builder().threads(2).build()?;
/// runtime.register::<Square>()?;
/// let task = runtime.submit(Square(12)).priority(Priority::HIGH).send()?;
/// assert_eq!(runtime.wait_for(&task, Duration::from_secs(10))?, 144);
///
/// let report = runtime.shutdown(Shutdown::Drain)?;
/// assert_eq!((report.stats.completed, report.left_waiting), (1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Runtime {
    shared: Arc<Shared>,
    workers: Mutex<Vec<Running>>,
    /// The ids of its worker loops, to tell a call from inside one of its tasks.
    loops: Vec<u64>,
    /// The heartbeat thread of a runtime on a durable or shared backend; stopped after the loops.
    heartbeat: Mutex<Option<crate::worker::Heartbeat>>,
}

/// What the runtime and its worker loops share.
pub(crate) struct Shared {
    pub(crate) queue: Arc<dyn Queue>,
    /// The same queue when it is a memory queue, for its direct wake-ups.
    pub(crate) memory: Option<Arc<MemoryQueue>>,
    pub(crate) registry: SharedRegistry,
    pub(crate) control: Control,
    /// True once shutdown began: submissions, requeues and pauses are refused. Set under
    /// `stopped_as`, which [`Runtime::pause`] holds too, so that no pause lands after it.
    pub(crate) closed: AtomicBool,
    /// True once an abandon began: submissions still waiting for room in the memory queue give
    /// up then, as the loops that would make it are about to stop (see
    /// `Runtime::keeps_waiting_for_room`).
    pub(crate) abandoning: AtomicBool,
    /// Submitters hold the read side while they look at `closed` and enqueue, so once a
    /// shutdown has set `closed` and taken the write side no submission is half done and a
    /// drain cannot miss one.
    pub(crate) submitting: RwLock<()>,
    /// How the worker loops were stopped, once they were: the first stop decides.
    pub(crate) stopped_as: Mutex<Option<Shutdown>>,
    pub(crate) max_payload: Option<usize>,
    pub(crate) default_retry: workmill_core::RetryPolicy,
}

impl Shared {
    /// A loop met a refusal no wait mends (a store migrated by a newer build, say): the runtime
    /// stops as an abandon, as a worker process stops. Submissions are refused, the other
    /// loops stop and settle what they hold, waits on the memory queue end, and a later
    /// [`Runtime::shutdown`] reports [`Shutdown::Abandon`].
    pub(crate) fn stop_on_refusal(&self, error: &QueueError) {
        tracing::error!(%error, "the store refused a loop of this runtime; the runtime stops");
        {
            let _order = self.stopped_as();
            self.abandoning.store(true, Ordering::SeqCst);
            self.closed.store(true, Ordering::SeqCst);
        }
        self.stop_loops(Shutdown::Abandon);
    }

    /// Stops the worker loops, unless they were, and wakes the idle ones and, on the memory
    /// queue, the waits for results and jobs; returns how the runtime stopped (the first stop
    /// decides).
    fn stop_loops(&self, mode: Shutdown) -> Shutdown {
        let applied = {
            let mut stopped_as = self.stopped_as();
            self.control.set(Mode::Stop);
            *stopped_as.get_or_insert(mode)
        };
        if let Some(memory) = &self.memory {
            memory.wake_workers();
            // Waits for results and jobs give up on tasks no loop will run (see `Waits`).
            memory.interrupt_waits();
        }
        applied
    }

    fn stopped_as(&self) -> MutexGuard<'_, Option<Shutdown>> {
        self.stopped_as.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Runtime {
    /// A builder with the defaults: a memory queue, one worker thread per CPU.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A runtime with the defaults; see [`Runtime::builder`].
    pub fn new() -> Result<Runtime, RuntimeError> {
        Runtime::builder().build()
    }

    /// Registers the named task `T`, so that workers can run tasks named [`T::NAME`](NamedTask::NAME).
    pub fn register<T: NamedTask>(&self) -> Result<(), RuntimeError> {
        self.shared
            .registry
            .update(|registry| registry.register::<T>().map(|_| ()))?;
        Ok(())
    }

    /// Registers a closure under `name` (the seed's `register_function`) and
    /// returns a typed handle whose [`call`](FnHandle::call)s can be submitted.
    ///
    /// The closure runs on worker threads, once per attempt; a panic in it is
    /// a failed attempt carrying the panic message.
    pub fn register_fn<I, O, F>(
        &self,
        name: impl Into<String>,
        f: F,
    ) -> Result<FnHandle<I, O>, RuntimeError>
    where
        I: Serialize + DeserializeOwned + Send + 'static,
        O: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(I) -> Result<O, TaskError> + Send + Sync + 'static,
    {
        let name = name.into();
        Ok(self
            .shared
            .registry
            .update(move |registry| registry.register_fn(name, f))?)
    }

    /// Starts a submission of `task` with the runtime's defaults; set options on the
    /// returned [`Submit`], then [`send`](Submit::send) it.
    pub fn submit<S: Submission>(&self, task: S) -> Submit<'_, S::Output> {
        Submit::new(
            self,
            new_task(&task, TaskId::generate(), &self.shared.default_retry),
        )
    }

    /// Submits many tasks with the runtime's defaults, a chunk of them per backend call.
    ///
    /// Each chunk is accepted whole or not at all by the memory queue; on an
    /// error, earlier chunks stay submitted (their handles are lost with the
    /// error, but their ids can be found with the backend's `list`).
    pub fn submit_all<S, I>(&self, tasks: I) -> Result<Vec<TaskHandle<S::Output>>, RuntimeError>
    where
        S: Submission,
        I: IntoIterator<Item = S>,
    {
        let tasks = tasks.into_iter();
        let mut ids = Vec::with_capacity(tasks.size_hint().0);
        let mut chunk = Vec::with_capacity(SUBMIT_CHUNK.min(tasks.size_hint().0.max(1)));
        // One clock reading stamps the ids of a chunk (see `TaskId::generate_at`): taken
        // when the chunk's first task is made, so neither a slow iterator before it nor a
        // wait for room in the queue makes the ids older than the tasks.
        let mut stamp = Timestamp::EPOCH;
        for task in tasks {
            if chunk.is_empty() {
                stamp = Timestamp::now();
            }
            let id = TaskId::generate_at(stamp);
            chunk.push(new_task(&task, id, &self.shared.default_retry)?);
            if chunk.len() == SUBMIT_CHUNK {
                ids.extend(self.enqueue_batch(std::mem::take(&mut chunk))?);
            }
        }
        if !chunk.is_empty() {
            ids.extend(self.enqueue_batch(chunk)?);
        }
        Ok(ids.into_iter().map(TaskHandle::new).collect())
    }

    /// The task's whole record: status, attempts, timestamps, last error, worker, result bytes.
    pub fn status(&self, id: &TaskId) -> Result<TaskRecord, RuntimeError> {
        Ok(self.shared.queue.status(id)?)
    }

    /// Blocks until the task finishes, then decodes its result as `R`.
    ///
    /// Waiting uses the backend's notification (a condition variable for the
    /// memory queue), not polling. Fails with [`RuntimeError::Timeout`] if the
    /// task is not finished within `timeout`, and with
    /// [`RuntimeError::TaskFailed`] (carrying the last error) if it ended dead
    /// or cancelled.
    ///
    /// Once the runtime has stopped its worker loops ([`shutdown`](Runtime::shutdown), or a
    /// drop), a task still waiting to run (pending, delayed or retrying) fails the wait with
    /// [`RuntimeError::ShutDown`] at once, instead of waiting for a loop that will not come;
    /// a running task is still waited for, as its loop finishes it. A wait in progress sees
    /// the stop at once on the memory queue (the stop interrupts it; it is one wait, so a
    /// task it waits for hands it its result however small the retention bound: see
    /// [`MemoryQueue::wait_while`]); on other backends, a wait made from one of
    /// the runtime's own tasks sees it within 500 ms, so a task of the runtime waiting for
    /// one queued behind it lets a shutdown finish, and a wait from outside runs to its
    /// timeout, as other workers sharing the backend may still run the task. (Wait on
    /// [`queue`](Runtime::queue) to wait for them after a shutdown.)
    pub fn get_result<R: DeserializeOwned>(
        &self,
        id: &TaskId,
        timeout: Duration,
    ) -> Result<R, RuntimeError> {
        let record = self.wait_record(id, timeout)?;
        match record.status {
            TaskStatus::Completed => {
                let bytes = record.result.unwrap_or_default();
                Postcard
                    .decode(&bytes)
                    .map_err(|source| RuntimeError::DecodeResult {
                        id: record.id,
                        source,
                    })
            }
            status => Err(RuntimeError::TaskFailed {
                id: record.id,
                status,
                last_error: record.last_error,
            }),
        }
    }

    /// Waits for the task to be final; a wait that the runtime's stopped loops would never end
    /// fails with [`RuntimeError::ShutDown`] (see [`Waits::task`]).
    fn wait_record(&self, id: &TaskId, timeout: Duration) -> Result<TaskRecord, RuntimeError> {
        self.waits().task(id, timeout)
    }

    /// Waits for what the runtime's loops run: on the memory queue each one wait that
    /// [`stop_loops`](Runtime::stop_loops) interrupts, elsewhere a slice at a time (see
    /// [`stop_check`](Runtime::stop_check)); they give up on what the stopped loops will not run.
    fn waits(&self) -> Waits<'_> {
        Waits::for_loops(
            &*self.shared.queue,
            self.shared.memory.as_deref(),
            &self.shared.control,
            self.stop_check(),
        )
    }

    /// [`get_result`](Runtime::get_result) with the result type taken from the handle.
    pub fn wait_for<R: DeserializeOwned>(
        &self,
        task: &TaskHandle<R>,
        timeout: Duration,
    ) -> Result<R, RuntimeError> {
        self.get_result(task.id(), timeout)
    }

    /// Cancels a task that has not started; a running or finished task is refused.
    pub fn cancel(&self, id: &TaskId) -> Result<(), RuntimeError> {
        Ok(self.shared.queue.cancel(id)?)
    }

    /// Gives a dead task a fresh set of attempts (an operator's retry).
    ///
    /// Refused with [`RuntimeError::ShutDown`] once shutdown began, like a submission: no
    /// loop of the runtime would run it. (On a durable backend, requeue through
    /// [`queue`](Runtime::queue) for other workers to run it.)
    pub fn requeue(&self, id: &TaskId) -> Result<(), RuntimeError> {
        let _submitting = self.open_for_submissions()?;
        Ok(self.shared.queue.requeue(id)?)
    }

    /// The backend's exact counts.
    pub fn stats(&self) -> Result<QueueStats, RuntimeError> {
        Ok(self.shared.queue.stats()?)
    }

    /// Blocks until no task is pending, retrying or running, or until `timeout` passes.
    ///
    /// The memory queue signals idleness; other backends are polled (1 ms
    /// growing to 50 ms between looks).
    pub fn wait_idle(&self, timeout: Duration) -> Result<QueueStats, RuntimeError> {
        if let Some(memory) = &self.shared.memory {
            return memory
                .wait_idle(timeout)
                .map_err(|idle| RuntimeError::IdleTimeout {
                    waited: idle.waited,
                    unfinished: idle.stats.pending + idle.stats.retrying + idle.stats.running,
                });
        }
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let stats = self.shared.queue.stats()?;
            let unfinished = stats.pending + stats.retrying + stats.running;
            if unfinished == 0 {
                return Ok(stats);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(RuntimeError::IdleTimeout { waited, unfinished });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Stops the worker loops from starting tasks until [`resume`](Runtime::resume);
    /// running tasks finish. Submissions are still accepted.
    ///
    /// Ignored once [`shutdown`](Runtime::shutdown) began: a drain resumes a paused runtime
    /// and must not be stalled by a pause, and an abandon stops the loops anyway.
    pub fn pause(&self) {
        let _order = self.stopped_as();
        if !self.shared.closed.load(Ordering::SeqCst) {
            self.shared.control.set(Mode::Pause);
        }
    }

    /// Lets paused worker loops run tasks again.
    pub fn resume(&self) {
        self.shared.control.set(Mode::Run);
    }

    /// True if the calling thread is running one of this runtime's tasks. Read without the
    /// `workers` lock, which a drain in progress holds while it waits for that very task.
    fn called_from_own_task(&self) -> bool {
        let current = host::current_loop();
        current != 0 && self.loops.contains(&current)
    }

    /// The backend, for operations the runtime does not wrap (`list`, `purge`, ...).
    pub fn queue(&self) -> Arc<dyn Queue> {
        Arc::clone(&self.shared.queue)
    }

    /// Stops the runtime as `mode` says and reports what it did and left.
    ///
    /// From the first call on, submissions and [`requeue`](Runtime::requeue)s are refused
    /// with [`RuntimeError::ShutDown`] and [`pause`](Runtime::pause) is ignored. A submission
    /// already waiting for room in the memory queue ([`OnFull::Wait`](crate::OnFull::Wait))
    /// goes in as a drain's running loops make room, but is refused with
    /// [`RuntimeError::ShutDown`] once no loop will (an abandon, or a paused runtime); once the
    /// loops stop, waits for tasks they will not run end with [`RuntimeError::ShutDown`]
    /// (see [`get_result`](Runtime::get_result)). A drain resumes a paused runtime, and
    /// waits out store errors that may pass ([`QueueError::is_transient`]) as worker loops
    /// do. A second call (even a concurrent one, which waits for the first) stops nothing
    /// more and reports the backend's counts, under the mode the runtime was stopped in.
    ///
    /// From inside one of this runtime's own tasks, [`Shutdown::Abandon`] waits for nothing
    /// that may be waiting for the calling task. It stops the loops and joins the others,
    /// not its own (counted in [`unreported_workers`](ShutdownReport::unreported_workers)).
    /// If another call is already shutting the runtime down (a drain waiting for this very
    /// task, say), it stops the loops, so that a drain ends as an abandon, and returns at
    /// once with no workers of its own to report: that call joins and reports them.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::DrainFromOwnTask`] for a [`Shutdown::Drain`] called from inside one of
    /// this runtime's own tasks, which would wait for itself; nothing is stopped then.
    /// Otherwise, a backend error that will not pass met while draining, or one met while
    /// counting (the loops are stopped and joined all the same).
    pub fn shutdown(&self, mode: Shutdown) -> Result<ShutdownReport, RuntimeError> {
        let own_task = self.called_from_own_task();
        if mode == Shutdown::Drain && own_task {
            return Err(RuntimeError::DrainFromOwnTask);
        }
        {
            let _order = self.stopped_as();
            match mode {
                // A paused runtime drains too. Resumed before closing, so that a submission
                // waiting for room never sees the runtime closed with its loops paused.
                Shutdown::Drain => self.shared.control.set(Mode::Run),
                Shutdown::Abandon => self.shared.abandoning.store(true, Ordering::SeqCst),
            }
            self.shared.closed.store(true, Ordering::SeqCst);
        }
        if let Some(memory) = &self.shared.memory {
            // Submissions waiting for room look again (see `keeps_waiting_for_room`): the waits
            // below for submissions in flight, and the joins of the loops, must not wait out
            // their patience for room that no loop will make. `stop_loops` interrupts again.
            memory.interrupt_waits();
        }
        let mut running = if own_task {
            // Never waits for the submissions in flight (one may wait for room the calling
            // task's loop would make), nor for a shutdown in progress (a drain holds the
            // loops while it waits for this very task).
            match self.workers.try_lock() {
                Ok(running) => running,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    let applied = self.stop_loops(mode);
                    let stats = self.shared.queue.stats()?;
                    return Ok(ShutdownReport {
                        mode: applied,
                        workers: 0,
                        unreported_workers: 0,
                        loops: LoopReport::default(),
                        stats,
                        left_waiting: stats.pending + stats.retrying,
                    });
                }
            }
        } else {
            // Submissions in flight finish first, so that a drain cannot miss one.
            drop(
                self.shared
                    .submitting
                    .write()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            // Held to the end, so a concurrent second call waits for this one
            // instead of stopping the loops in the middle of its drain.
            self.workers_mut()
        };
        let workers = std::mem::take(&mut *running);
        let mut drained = Ok(());
        if mode == Shutdown::Drain && !workers.is_empty() {
            drained = self.drain();
        }
        // Even if the drain failed (the backend broke), the loops are stopped and joined; the
        // runtime then stopped as an abandon, with tasks left waiting.
        let applied = self.stop_loops(if drained.is_ok() {
            mode
        } else {
            Shutdown::Abandon
        });
        let started = workers.len();
        let mut loops = LoopReport::default();
        let mut reported = 0;
        for worker in workers {
            if let Some(report) = worker.join() {
                loops.add(&report);
                reported += 1;
            }
        }
        // The loops that returned have settled what they held; the heartbeat can stop.
        let heartbeat = self
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(heartbeat) = heartbeat {
            if reported < started {
                // Called from inside a task: that task's loop still runs, under a lease.
                heartbeat.stop_when_settled();
            } else {
                let report = heartbeat.stop();
                if report.errors > 0 || report.refused > 0 {
                    tracing::warn!(
                        extended = report.beats,
                        failed = report.errors,
                        refused = report.refused,
                        "the runtime's heartbeat could not extend (or hand back) every lease"
                    );
                }
            }
        }
        drop(running);
        drained?;
        let stats = self.shared.queue.stats()?;
        Ok(ShutdownReport {
            mode: applied,
            workers: started,
            unreported_workers: started - reported,
            loops,
            stats,
            left_waiting: stats.pending + stats.retrying,
        })
    }

    /// Waits, for a drain, until no task is pending, retrying or running.
    ///
    /// Store errors that may pass are waited out with the worker loops' [`Reconnect`] waits,
    /// as the loops wait them out; the wait ends early if the loops were stopped meanwhile
    /// (an abandon from inside one of the runtime's tasks).
    fn drain(&self) -> Result<(), RuntimeError> {
        let control = &self.shared.control;
        let reconnect = Reconnect::default();
        let mut pause = Duration::from_millis(1);
        let mut failures = 0u32;
        while control.mode() != Mode::Stop {
            if let Some(memory) = &self.shared.memory {
                if memory.wait_idle(STOP_CHECK_MEMORY).is_ok() {
                    return Ok(());
                }
                continue;
            }
            match self.shared.queue.stats() {
                Ok(stats) if stats.pending + stats.retrying + stats.running == 0 => {
                    return Ok(());
                }
                Ok(_) => {
                    failures = 0;
                    control.wait_for_stop(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(error) if error.is_transient() => {
                    failures = failures.saturating_add(1);
                    let delay = reconnect.delay(failures, fastrand::f64());
                    tracing::warn!(%error, ?delay, "a drain could not count the unfinished tasks; trying again");
                    control.wait_for_stop(delay);
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// See [`Shared::stop_loops`].
    fn stop_loops(&self, mode: Shutdown) -> Shutdown {
        self.shared.stop_loops(mode)
    }

    /// How long a wait in slices, for a result or a job on a backend other than the memory
    /// queue, waits before it looks whether the loops were stopped.
    ///
    /// Only a wait made from one of the runtime's own tasks looks: it is the one that would
    /// hold up a shutdown. Each look is a new wait on the store (on Redis, a new connection and
    /// subscription), which a wait from outside, for a task that other workers may run, need
    /// not pay. (Waits on the memory queue do not wait in slices: see [`Waits`].)
    fn stop_check(&self) -> Duration {
        if self.called_from_own_task() {
            STOP_CHECK
        } else {
            Duration::MAX
        }
    }

    fn stopped_as(&self) -> MutexGuard<'_, Option<Shutdown>> {
        self.shared.stopped_as()
    }

    /// The read side of the submission gate, held while a submission (or a requeue) is made;
    /// [`RuntimeError::ShutDown`] once shutdown began.
    fn open_for_submissions(&self) -> Result<RwLockReadGuard<'_, ()>, RuntimeError> {
        let submitting = self
            .shared
            .submitting
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(RuntimeError::ShutDown);
        }
        Ok(submitting)
    }

    /// Submits one prepared task, unless the runtime is shut down or the payload is too large.
    pub(crate) fn enqueue(&self, task: NewTask) -> Result<TaskId, RuntimeError> {
        self.check_payload(&task)?;
        let _submitting = self.open_for_submissions()?;
        match &self.shared.memory {
            Some(memory) => {
                let id = task.id.clone();
                self.submit_to_memory(|keep_waiting| {
                    memory.enqueue_batch_while(vec![task], keep_waiting)
                })
                .map(|_| id)
            }
            None => Ok(self.shared.queue.enqueue(task)?),
        }
    }

    fn enqueue_batch(&self, tasks: Vec<NewTask>) -> Result<Vec<TaskId>, RuntimeError> {
        for task in &tasks {
            self.check_payload(task)?;
        }
        let _submitting = self.open_for_submissions()?;
        match &self.shared.memory {
            Some(memory) => self
                .submit_to_memory(|keep_waiting| memory.enqueue_batch_while(tasks, keep_waiting)),
            None => Ok(self.shared.queue.enqueue_batch(tasks)?),
        }
    }

    /// The `keep_waiting` of a submission waiting for room in the memory queue, asked under the
    /// queue's lock: it gives up once shutdown began and no loop will make room: an abandon
    /// began (it stops the loops, and one called from inside a task joins the others without
    /// waiting for submissions in flight), or the loops do not run (paused, or stopped). A
    /// drain resumes the loops first, so a submission it finds in flight goes in as they make
    /// room, and the drain then runs it.
    fn keeps_waiting_for_room(&self) -> bool {
        #[cfg(test)]
        tests::hooks::waiting_for_room();
        let shared = &self.shared;
        !shared.closed.load(Ordering::SeqCst)
            || (!shared.abandoning.load(Ordering::SeqCst) && shared.control.mode() == Mode::Run)
    }

    /// Submits to the memory queue with `submit`, given the `keep_waiting` of its wait for
    /// room: one that gave up waiting because shutdown began
    /// ([`keeps_waiting_for_room`](Runtime::keeps_waiting_for_room)) is refused with
    /// [`RuntimeError::ShutDown`], like one made after; any other refusal is the queue's.
    fn submit_to_memory<T>(
        &self,
        submit: impl FnOnce(&mut dyn FnMut() -> bool) -> Result<T, QueueError>,
    ) -> Result<T, RuntimeError> {
        let mut gave_up = false;
        let outcome = submit(&mut || {
            let keep_waiting = self.keeps_waiting_for_room();
            gave_up |= !keep_waiting;
            keep_waiting
        });
        match outcome {
            Err(QueueError::QueueFull { .. }) if gave_up => Err(RuntimeError::ShutDown),
            outcome => Ok(outcome?),
        }
    }

    fn check_payload(&self, task: &NewTask) -> Result<(), RuntimeError> {
        match self.shared.max_payload {
            Some(limit) if task.payload.len() > limit => {
                Err(RuntimeError::Queue(QueueError::PayloadTooLarge {
                    id: task.id.clone(),
                    size: task.payload.len(),
                    limit,
                }))
            }
            _ => Ok(()),
        }
    }

    fn workers_mut(&self) -> MutexGuard<'_, Vec<Running>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if !self
            .workers
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
        {
            let _ = self.shutdown(Shutdown::Abandon);
        }
        // A runtime whose first loop failed to start has a heartbeat and no loops.
        let heartbeat = self
            .heartbeat
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(heartbeat) = heartbeat {
            heartbeat.stop();
        }
    }
}

impl std::fmt::Debug for Runtime {
    /// Takes no lock: a task may format its runtime while a shutdown holds the loops.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = self.shared.control.mode();
        let workers = if mode == Mode::Stop {
            0
        } else {
            self.loops.len()
        };
        f.debug_struct("Runtime")
            .field("backend", &self.shared.queue.backend_name())
            .field("workers", &workers)
            .field("mode", &mode)
            .finish_non_exhaustive()
    }
}
