//! `RuntimeBuilder`: the backend, the worker loops (how many, where, under which worker id), and the submission defaults.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use workmill_core::{Queue, RetryPolicy, WorkerId};
use workmill_executor::ThreadPool;
use workmill_queue::{DEFAULT_MAX_PAYLOAD, MemoryConfig, MemoryQueue};

use super::host::{Host, Running};
use super::{Runtime, Shared};
use crate::error::RuntimeError;
use crate::registry::{Registry, SharedRegistry};
use crate::worker::{
    Control, DEFAULT_IDLE_WAIT, DEFAULT_LEASE, DEFAULT_MAX_BATCH, DEFAULT_PROCESS_LEASE, Heartbeat,
    Mode, WorkerOptions, run_until_refused,
};

enum Backend {
    Memory(MemoryConfig),
    SharedMemory(Arc<MemoryQueue>),
    Other(Arc<dyn Queue>),
    Url(String),
}

/// Configures and starts a [`Runtime`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill::{Backoff, MemoryConfig, RetryPolicy, Runtime, WorkerId};
///
/// let runtime = Runtime::builder()
///     .memory(MemoryConfig::default().capacity(100_000))
///     .threads(2)
///     .worker_id(WorkerId::new("billing")?)
///     .default_retry(RetryPolicy::new(5).backoff(Backoff::Fixed(Duration::from_millis(100))))
///     .max_payload(Some(64 * 1024))
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct RuntimeBuilder {
    backend: Backend,
    host: Host,
    concurrency: Option<usize>,
    worker_id: Option<WorkerId>,
    max_batch: usize,
    lease: Option<Duration>,
    idle_wait: Duration,
    max_payload: Option<usize>,
    default_retry: RetryPolicy,
    paused: bool,
    registry: Registry,
}

impl Default for RuntimeBuilder {
    fn default() -> RuntimeBuilder {
        RuntimeBuilder {
            backend: Backend::Memory(MemoryConfig::default()),
            host: Host::Threads,
            concurrency: None,
            worker_id: None,
            max_batch: DEFAULT_MAX_BATCH,
            lease: None,
            idle_wait: DEFAULT_IDLE_WAIT,
            max_payload: Some(DEFAULT_MAX_PAYLOAD),
            default_retry: RetryPolicy::default(),
            paused: false,
            registry: Registry::new(),
        }
    }
}

impl RuntimeBuilder {
    /// Uses a new in-process [`MemoryQueue`] bounded as `config` says (the default backend).
    pub fn memory(mut self, config: MemoryConfig) -> RuntimeBuilder {
        self.backend = Backend::Memory(config);
        self
    }

    /// Uses an existing memory queue, shared with whoever else holds it.
    pub fn memory_queue(mut self, queue: Arc<MemoryQueue>) -> RuntimeBuilder {
        self.backend = Backend::SharedMemory(queue);
        self
    }

    /// Uses any backend. Waiting for a result uses the backend's
    /// [`Queue::wait`]; waiting for idleness polls its stats.
    pub fn backend(mut self, queue: Arc<dyn Queue>) -> RuntimeBuilder {
        self.backend = Backend::Other(queue);
        self
    }

    /// Uses the backend named by `url`, opened when [`build`](RuntimeBuilder::build) is
    /// called: `memory://` (the same as the default) or `sqlite://path/to/tasks.db`; see
    /// [`backend::open`](crate::backend::open). A URL this build cannot open fails the
    /// build with [`QueueError::InvalidUrl`](workmill_core::QueueError::InvalidUrl), as
    /// `backend::open` refuses it (`memory://` with anything after it included).
    ///
    /// On a durable backend the runtime heartbeats its loops' leases, as
    /// [`worker::run`](crate::worker::run) processes do (see
    /// [`lease`](RuntimeBuilder::lease)); worker processes add signal handling and
    /// reconnection. A durable store may already hold tasks when the runtime starts, and its
    /// loops start reserving at `build`: pass the handlers those tasks need with
    /// [`registry`](RuntimeBuilder::registry) rather than registering them after `build`,
    /// where a task reserved first spends an attempt and a backoff on the missing handler.
    pub fn url(mut self, url: impl Into<String>) -> RuntimeBuilder {
        self.backend = Backend::Url(url.into());
        self
    }

    /// Runs the worker loops on `threads` dedicated threads, one loop each, so
    /// that up to `threads` tasks run at once. The default is one per CPU.
    pub fn threads(mut self, threads: usize) -> RuntimeBuilder {
        self.host = Host::Threads;
        self.concurrency = Some(threads);
        self
    }

    /// Runs the worker loops as long-lived jobs on a `workmill-executor` pool, one
    /// loop per pool thread unless [`concurrency`](RuntimeBuilder::concurrency) says
    /// fewer. Handlers then run on the pool's threads, so the `join`, `scope` and
    /// map-reduce calls they make share the pool instead of oversubscribing the
    /// machine. The pool must have at least as many threads as the runtime has
    /// loops (one more when `build` is called on one of the pool's threads): each
    /// loop holds a thread while the runtime runs. `build` returns once every loop
    /// holds its thread, so no loop job is left queued where a waiting `join` could
    /// run it nested; if the pool's threads stay busy for 5 s (another runtime's
    /// loops hold them), it warns and lets the loops start as threads free up.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use workmill::Runtime;
    /// use workmill_executor::ThreadPool;
    ///
    /// let pool = Arc::new(ThreadPool::builder().num_threads(2).build()?);
    /// let runtime = Runtime::builder().pool(Arc::clone(&pool)).build()?;
    /// // A handler that itself forks work: its `join` runs on the runtime's pool.
    /// let halves = runtime.register_fn("sum.halves", |n: u64| {
    ///     let (a, b) = workmill_executor::join(|| (0..n / 2).sum::<u64>(), || (n / 2..n).sum::<u64>());
    ///     Ok(a + b)
    /// })?;
    /// let task = runtime.submit(halves.call(1_000)).send()?;
    /// assert_eq!(runtime.wait_for(&task, std::time::Duration::from_secs(10))?, 499_500);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pool(mut self, pool: Arc<ThreadPool>) -> RuntimeBuilder {
        self.host = Host::Pool(pool);
        self
    }

    /// How many tasks run at once: the number of worker loops. On dedicated
    /// threads this is the same as [`threads`](RuntimeBuilder::threads).
    pub fn concurrency(mut self, tasks: usize) -> RuntimeBuilder {
        self.concurrency = Some(tasks);
        self
    }

    /// The worker id recorded on tasks; loop `i` records `{id}-{i}`. The default is
    /// [`WorkerId::generate`] (`host-pid-n`).
    pub fn worker_id(mut self, id: WorkerId) -> RuntimeBuilder {
        self.worker_id = Some(id);
        self
    }

    /// The most tasks a loop reserves at once (default 256); loops adapt below it.
    pub fn max_batch(mut self, tasks: usize) -> RuntimeBuilder {
        self.max_batch = tasks;
        self
    }

    /// The lease of each reservation.
    ///
    /// On a durable or shared backend (SQLite, PostgreSQL, Redis, or any queue given to
    /// [`backend`](RuntimeBuilder::backend)) the default is 30 s, and a heartbeat thread extends
    /// every held lease each quarter of it, as a worker process does: a task may run longer
    /// than its lease, and if this process dies its tasks come back to other workers within
    /// one lease. On the memory queue, which dies with the process, leases are not
    /// heartbeated and the default is one hour: a task that runs longer than that may be
    /// run again.
    pub fn lease(mut self, lease: Duration) -> RuntimeBuilder {
        self.lease = Some(lease);
        self
    }

    /// The longest an idle loop sleeps before checking for pause or stop (default 50 ms).
    /// Backends that notify (the memory queue) wake loops sooner.
    pub fn idle_wait(mut self, wait: Duration) -> RuntimeBuilder {
        self.idle_wait = wait;
        self
    }

    /// Refuses submissions whose encoded input is longer than `bytes` (default 16 MiB);
    /// `None` leaves only the backend's own limit.
    pub fn max_payload(mut self, bytes: Option<usize>) -> RuntimeBuilder {
        self.max_payload = bytes;
        self
    }

    /// The retry policy of submissions that do not set one (default: three attempts,
    /// 1 s doubling backoff, 10% jitter).
    pub fn default_retry(mut self, policy: RetryPolicy) -> RuntimeBuilder {
        self.default_retry = policy;
        self
    }

    /// Starts paused: tasks can be submitted but none runs until
    /// [`Runtime::resume`]. Useful to queue work before any worker starts, so
    /// that priorities decide the order from the first task.
    pub fn paused(mut self) -> RuntimeBuilder {
        self.paused = true;
        self
    }

    /// Starts with the handlers in `registry`. More can be registered later, but on a store
    /// that may already hold tasks, handlers that tasks there need belong here: the loops
    /// start reserving at `build`, and a task reserved before its handler is registered
    /// spends an attempt on [`FailureKind::UnknownTask`](workmill_core::FailureKind::UnknownTask)
    /// and waits out a retry backoff. (Or build [`paused`](Self::paused), register, and
    /// [`resume`](crate::Runtime::resume).)
    pub fn registry(mut self, registry: Registry) -> RuntimeBuilder {
        self.registry = registry;
        self
    }

    /// Checks the settings and starts the worker loops.
    pub fn build(self) -> Result<Runtime, RuntimeError> {
        let concurrency = self.concurrency.unwrap_or_else(|| match &self.host {
            Host::Pool(pool) => pool.current_num_threads(),
            Host::Threads => {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }
        });
        if concurrency == 0 {
            return Err(config("concurrency must be at least 1"));
        }
        self.host.check(concurrency)?;
        if self.max_batch == 0 {
            return Err(config("max_batch must be at least 1"));
        }
        if self.lease.is_some_and(|lease| lease.is_zero()) || self.idle_wait.is_zero() {
            return Err(config("lease and idle_wait must be longer than zero"));
        }
        if let Err(invalid) = self.default_retry.validate() {
            return Err(config(&format!("the default retry policy: {invalid}")));
        }
        let base = self.worker_id.unwrap_or_else(WorkerId::generate);
        let workers = (0..concurrency)
            .map(|i| WorkerId::new(format!("{base}-{i}")))
            .collect::<Result<Vec<_>, _>>()?;

        let (queue, memory): (Arc<dyn Queue>, Option<Arc<MemoryQueue>>) = match self.backend {
            Backend::Memory(config) => {
                let memory = Arc::new(MemoryQueue::with_config(config));
                (memory.clone(), Some(memory))
            }
            Backend::SharedMemory(memory) => (memory.clone(), Some(memory)),
            Backend::Other(queue) => (queue, None),
            Backend::Url(url) => {
                let backend = crate::backend::Backend::parse(&url)?;
                if backend.scheme() == "memory" {
                    // Kept as a memory queue, for its direct wake-ups and `wait_idle`; the
                    // URL is checked as `backend::open` checks it.
                    let memory = Arc::new(crate::backend::open_memory(backend.url())?);
                    (memory.clone(), Some(memory))
                } else {
                    (backend.open()?, None)
                }
            }
        };
        // Decided on the opened queue: a `memory://` URL is a memory queue too.
        let heartbeats = memory.is_none();
        let lease = self.lease.unwrap_or(if heartbeats {
            DEFAULT_PROCESS_LEASE
        } else {
            DEFAULT_LEASE
        });
        if heartbeats && lease < MIN_HEARTBEAT_LEASE {
            return Err(config(&format!(
                "a lease of {lease:?} is too short to heartbeat (every quarter lease); give at least {MIN_HEARTBEAT_LEASE:?}"
            )));
        }
        let shared = Arc::new(Shared {
            queue,
            memory,
            registry: SharedRegistry::new(self.registry),
            control: Control::new(if self.paused { Mode::Pause } else { Mode::Run }),
            closed: AtomicBool::new(false),
            abandoning: AtomicBool::new(false),
            submitting: RwLock::new(()),
            stopped_as: Mutex::new(None),
            max_payload: self.max_payload,
            default_retry: self.default_retry,
        });
        let heartbeat = if heartbeats {
            Some(Heartbeat::start(
                Arc::clone(&shared.queue),
                "workmill-heartbeat".to_owned(),
                lease,
                lease / 4,
            )?)
        } else {
            None
        };
        let held = heartbeat.as_ref().map(Heartbeat::held);
        let mut runtime = Runtime {
            shared: Arc::clone(&shared),
            workers: Mutex::new(Vec::with_capacity(concurrency)),
            loops: Vec::with_capacity(concurrency),
            heartbeat: Mutex::new(heartbeat),
        };
        let starting = self.host.starting(concurrency);
        for (i, worker) in workers.into_iter().enumerate() {
            let options = WorkerOptions {
                max_batch: self.max_batch,
                lease,
                idle_wait: self.idle_wait,
                // A memory queue never fails a write for the store's sake: no copies needed.
                retry_writes: shared.memory.is_none(),
                ..WorkerOptions::new(worker)
            };
            let (shared, held) = (Arc::clone(&shared), held.clone());
            let running = starting.start(format!("workmill-worker-{i}"), move || {
                let (report, refusal) = run_until_refused(
                    &*shared.queue,
                    &shared.registry,
                    &shared.control,
                    &options,
                    held.as_deref(),
                );
                if let Some(error) = refusal {
                    shared.stop_on_refusal(&error);
                }
                report
            });
            match running {
                Ok(running) => runtime.workers_mut().push(running),
                Err(error) => {
                    // Dropping `runtime` stops the loops that did start, once they may run.
                    starting.finish(&runtime.workers_mut());
                    return Err(error);
                }
            }
        }
        starting.finish(&runtime.workers_mut());
        let loops = runtime.workers_mut().iter().map(Running::id).collect();
        runtime.loops = loops;
        Ok(runtime)
    }
}

/// The shortest lease a heartbeating runtime accepts: it is extended every quarter lease.
const MIN_HEARTBEAT_LEASE: Duration = Duration::from_millis(4);

fn config(reason: &str) -> RuntimeError {
    RuntimeError::Config(reason.to_owned())
}
