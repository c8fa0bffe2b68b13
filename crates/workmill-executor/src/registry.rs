//! The registry: what a pool's workers share (queues, join frames, sleep state, hooks) and how work enters it.

use crossbeam_utils::CachePadded;
use std::any::Any;

use crate::deque::{Injector, Stealer};
use crate::frames::SharedFrames;
use crate::job::{JobRef, StackJob};
use crate::latch::{CoreLatch, LockLatch, SpinLatch};
use crate::sleep::Sleep;
use crate::spawn::Lane;
use crate::sync::{Arc, AtomicBool, AtomicUsize, Ordering};
use crate::worker::WorkerThread;

/// Called with a panic's payload; see `ThreadPoolBuilder::panic_handler`.
pub(crate) type PanicHandler = dyn Fn(&(dyn Any + Send)) + Send + Sync;
/// Called with a worker's index when it starts or exits.
pub(crate) type ThreadHook = dyn Fn(usize) + Send + Sync;

/// Per-worker state that other threads read: its stealer, shared frames, broadcast inbox and counters.
pub(crate) struct ThreadInfo {
    pub(crate) stealer: Stealer<JobRef>,
    pub(crate) frames: SharedFrames,
    /// Broadcast jobs addressed to this worker alone.
    pub(crate) inbox: Injector<JobRef>,
    /// Set when the pool terminates; the worker's main loop waits on it.
    pub(crate) terminate: CoreLatch,
    /// True while the worker's main loop has nothing to run.
    pub(crate) idle: AtomicBool,
    pub(crate) tasks_run: AtomicUsize,
    pub(crate) steals: AtomicUsize,
    pub(crate) injected: AtomicUsize,
}

/// The pool's hooks, as the builder left them.
#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) panic_handler: Option<Box<PanicHandler>>,
    pub(crate) start_handler: Option<Box<ThreadHook>>,
    pub(crate) exit_handler: Option<Box<ThreadHook>>,
}

/// The state a pool's workers share.
pub(crate) struct Registry {
    pub(crate) thread_infos: Box<[CachePadded<ThreadInfo>]>,
    pub(crate) sleep: Sleep,
    /// Injected work, one queue per lane: high, normal, low.
    lanes: [Injector<JobRef>; 3],
    /// One for each `ThreadPool` handle and one for each `'static` job not yet
    /// finished; when it reaches zero the workers exit.
    outstanding: AtomicUsize,
    pub(crate) hooks: Hooks,
}

impl Registry {
    /// A registry without threads and without hooks, for unit and loom tests
    /// that play the workers themselves.
    #[cfg(test)]
    pub(crate) fn for_test(num_threads: usize) -> Arc<Registry> {
        let stealers = (0..num_threads)
            .map(|_| crate::deque::Worker::new_lifo().stealer())
            .collect();
        Arc::new(Registry::new(stealers, Hooks::default(), false))
    }

    /// `clock_ticks`: the pool has no heartbeat thread (see [`Sleep::new`]).
    pub(crate) fn new(stealers: Vec<Stealer<JobRef>>, hooks: Hooks, clock_ticks: bool) -> Registry {
        let num_threads = stealers.len();
        Registry {
            thread_infos: stealers
                .into_iter()
                .map(|stealer| {
                    CachePadded::new(ThreadInfo {
                        stealer,
                        frames: SharedFrames::new(),
                        inbox: Injector::new(),
                        terminate: CoreLatch::new(),
                        idle: AtomicBool::new(false),
                        tasks_run: AtomicUsize::new(0),
                        steals: AtomicUsize::new(0),
                        injected: AtomicUsize::new(0),
                    })
                })
                .collect(),
            sleep: Sleep::new(num_threads, clock_ticks),
            lanes: [Injector::new(), Injector::new(), Injector::new()],
            outstanding: AtomicUsize::new(1),
            hooks,
        }
    }

    pub(crate) fn num_threads(&self) -> usize {
        self.thread_infos.len()
    }

    pub(crate) fn lane(&self, lane: Lane) -> &Injector<JobRef> {
        &self.lanes[lane as usize]
    }

    /// Queues a job in a lane and wakes a sleeper for it.
    pub(crate) fn inject(&self, lane: Lane, job: JobRef) {
        self.lane(lane).push(job);
        self.sleep.new_jobs();
    }

    /// Queues a spawned job: normal-lane work from one of our workers goes to
    /// its own deque (cheapest, and stolen from there), everything else to a lane.
    pub(crate) fn push_spawned(&self, lane: Lane, job: JobRef) {
        // SAFETY: a non-null current worker is alive on this thread.
        let worker = unsafe { WorkerThread::current().as_ref() };
        self.push_spawned_from(worker, lane, job);
    }

    /// [`Registry::push_spawned`] for a caller that has already looked up this
    /// thread's worker (`worker` is [`WorkerThread::current`]).
    pub(crate) fn push_spawned_from(&self, worker: Option<&WorkerThread>, lane: Lane, job: JobRef) {
        if lane == Lane::Normal
            && let Some(worker) = worker
            && worker.belongs_to(self)
        {
            worker.push(job);
            self.sleep.new_jobs();
            return;
        }
        self.inject(lane, job);
    }

    /// Jobs waiting in the lanes and the workers' deques and shared frames (an estimate under concurrency).
    pub(crate) fn queued(&self) -> usize {
        let lanes: usize = self.lanes.iter().map(Injector::len).sum();
        let local: usize = self
            .thread_infos
            .iter()
            .map(|info| info.stealer.len() + info.frames.live() + info.inbox.len())
            .sum();
        lanes + local
    }

    /// Runs `op` on a worker of this pool: here if this thread is one, otherwise
    /// by injecting it and waiting. The flag tells `op` whether it was injected.
    pub(crate) fn in_worker<OP, R>(registry: &Arc<Registry>, op: OP) -> R
    where
        OP: FnOnce(&WorkerThread, bool) -> R + Send,
        R: Send,
    {
        let worker = WorkerThread::current();
        // SAFETY: a non-null current worker is alive on this thread.
        match unsafe { worker.as_ref() } {
            None => registry.in_worker_cold(op),
            Some(worker) if worker.belongs_to(registry) => op(worker, false),
            Some(worker) => registry.in_worker_cross(worker, op),
        }
    }

    /// From a thread outside every pool: inject, then block.
    #[cold]
    fn in_worker_cold<OP, R>(&self, op: OP) -> R
    where
        OP: FnOnce(&WorkerThread, bool) -> R + Send,
        R: Send,
    {
        let job = StackJob::new(
            |_migrated| {
                // SAFETY: injected jobs run on a worker, whose pointer is set.
                let worker = unsafe { &*WorkerThread::current() };
                op(worker, true)
            },
            LockLatch::new(),
        );
        // SAFETY: `job` stays in place until its latch is set: we wait below.
        self.inject(Lane::Normal, unsafe { job.as_job_ref() });
        job.latch.wait();
        // SAFETY: the latch is set.
        unsafe { job.into_result() }
    }

    /// From a worker of another pool: inject here, and keep that worker busy with its own pool's work while waiting.
    #[cold]
    fn in_worker_cross<OP, R>(&self, current: &WorkerThread, op: OP) -> R
    where
        OP: FnOnce(&WorkerThread, bool) -> R + Send,
        R: Send,
    {
        let job = StackJob::new(
            |_migrated| {
                // SAFETY: injected jobs run on a worker, whose pointer is set.
                let worker = unsafe { &*WorkerThread::current() };
                op(worker, true)
            },
            SpinLatch::cross(current.registry(), current.index()),
        );
        // SAFETY: `job` stays in place until its latch is set: we wait below.
        self.inject(Lane::Normal, unsafe { job.as_job_ref() });
        current.wait_until(&job.latch.core);
        // SAFETY: the latch is set.
        unsafe { job.into_result() }
    }

    /// A `'static` job was queued; the workers stay until it is done.
    pub(crate) fn job_started(&self) {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
    }

    /// A `'static` job (or a pool handle) is done; the last one terminates the workers.
    pub(crate) fn job_finished(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.terminate();
        }
    }

    fn terminate(&self) {
        self.sleep.terminate_heartbeat();
        for (index, info) in self.thread_infos.iter().enumerate() {
            // SAFETY: the latch lives in the registry, which we are borrowing.
            if unsafe { CoreLatch::set(&info.terminate) } {
                self.sleep.wake_specific(index);
            }
        }
    }

    /// Reports a panic of a `'static` task to the pool's panic handler, if any.
    pub(crate) fn report_panic(&self, payload: &(dyn Any + Send)) {
        if let Some(handler) = &self.hooks.panic_handler {
            // A panicking handler must not take the worker down with it, nor its payload,
            // whose `Drop` may panic too: that would unwind out of the task that panicked
            // first and leave it running forever for its joiner.
            crate::unwind::run_quietly(|| handler(payload));
        }
    }
}
