//! `ThreadPoolBuilder`: the size, names, stack size, hooks and heartbeat of a pool, and `BuildError`.

use std::any::Any;
use std::fmt;
use std::io;
use std::time::Duration;

use crate::deque::Worker;
use crate::global;
use crate::heartbeat;
use crate::pool::ThreadPool;
use crate::registry::{Hooks, PanicHandler, Registry, ThreadHook};
use crate::sync::{Arc, thread};
use crate::unwind;
use crate::worker;

/// Why a pool could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The operating system refused to start a thread.
    #[error(
        "could not start worker thread {index} of the pool: {source}; lower num_threads or the stack size, or raise the process's thread limit"
    )]
    Spawn {
        /// The index of the thread that failed to start.
        index: usize,
        /// The operating system's error.
        source: io::Error,
    },
    /// More threads were asked for than a pool can count ([`ThreadPoolBuilder::MAX_THREADS`]).
    #[error(
        "a pool of {requested} threads was asked for; a pool has at most {max} (its sleep protocol counts sleeping threads in 16 bits)"
    )]
    TooManyThreads {
        /// The number asked for (by `num_threads` or `WORKMILL_NUM_THREADS`).
        requested: usize,
        /// The most a pool has.
        max: usize,
    },
    /// The heartbeat interval asked for is shorter than
    /// [`ThreadPoolBuilder::MIN_HEARTBEAT_INTERVAL`].
    #[error(
        "a heartbeat interval of {requested:?} was asked for; the shortest is {min:?} (a shorter one would keep the heartbeat thread busy and make every join wake a sleeping worker)"
    )]
    HeartbeatTooShort {
        /// The interval asked for.
        requested: Duration,
        /// The shortest interval a pool accepts.
        min: Duration,
    },
    /// The [`thread_name`](ThreadPoolBuilder::thread_name) closure panicked, or
    /// returned a name with a NUL byte, which a thread's name cannot hold.
    #[error(
        "could not name worker thread {index} of the pool: {reason}; the threads started before it were shut down"
    )]
    ThreadName {
        /// The index of the thread that could not be named.
        index: usize,
        /// What went wrong: the closure's panic message, or the name with the NUL byte.
        reason: String,
    },
    /// `build_global` was called after the global pool already existed.
    #[error(
        "the global thread pool is already initialized (by an earlier build_global or by first use); call build_global once, before any parallel work"
    )]
    GlobalAlreadyInitialized,
}

/// Configures and builds a [`ThreadPool`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use workmill_executor::ThreadPoolBuilder;
///
/// let started = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&started);
/// let pool = ThreadPoolBuilder::new()
///     .num_threads(2)
///     .thread_name(|index| format!("crunch-{index}"))
///     .stack_size(4 << 20)
///     .start_handler(move |_index| {
///         counter.fetch_add(1, Ordering::SeqCst);
///     })
///     .build()?;
/// let name = pool.install(|| std::thread::current().name().map(str::to_owned));
/// assert!(name.unwrap().starts_with("crunch-"));
/// drop(pool); // joins the threads
/// assert_eq!(started.load(Ordering::SeqCst), 2);
/// # Ok::<(), workmill_executor::BuildError>(())
/// ```
#[must_use = "a builder does nothing until build() or build_global()"]
pub struct ThreadPoolBuilder {
    num_threads: usize,
    thread_name: Option<Box<dyn FnMut(usize) -> String>>,
    stack_size: Option<usize>,
    start_handler: Option<Box<ThreadHook>>,
    exit_handler: Option<Box<ThreadHook>>,
    panic_handler: Option<Box<PanicHandler>>,
    heartbeat: Option<Duration>,
}

impl Default for ThreadPoolBuilder {
    fn default() -> ThreadPoolBuilder {
        ThreadPoolBuilder::new()
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("num_threads", &self.num_threads)
            .field("stack_size", &self.stack_size)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

impl ThreadPoolBuilder {
    /// A builder with the defaults: one thread per CPU, no names, the
    /// platform's stack size, no hooks, a 100 µs heartbeat.
    pub fn new() -> ThreadPoolBuilder {
        ThreadPoolBuilder {
            num_threads: 0,
            thread_name: None,
            stack_size: None,
            start_handler: None,
            exit_handler: None,
            panic_handler: None,
            heartbeat: Some(heartbeat::DEFAULT_INTERVAL),
        }
    }

    /// The most worker threads a pool has: the sleep protocol counts sleeping threads in
    /// 16 bits.
    pub const MAX_THREADS: usize = crate::sleep::MAX_THREADS;

    /// The shortest heartbeat interval a pool accepts (10 µs; see
    /// [`heartbeat_interval`](Self::heartbeat_interval)).
    pub const MIN_HEARTBEAT_INTERVAL: Duration = heartbeat::MIN_INTERVAL;

    /// The number of worker threads, at most [`MAX_THREADS`](Self::MAX_THREADS) (more fail
    /// [`build`](Self::build)). 0 (the default) means: the value of the
    /// `WORKMILL_NUM_THREADS` environment variable if it is a positive number,
    /// otherwise the number of logical CPUs.
    pub fn num_threads(mut self, num_threads: usize) -> ThreadPoolBuilder {
        self.num_threads = num_threads;
        self
    }

    /// Names each worker thread by its index.
    ///
    /// If the closure panics or returns a name with a NUL byte (`'\0'`),
    /// [`build`](Self::build) fails with [`BuildError::ThreadName`].
    pub fn thread_name<F>(mut self, name: F) -> ThreadPoolBuilder
    where
        F: FnMut(usize) -> String + 'static,
    {
        self.thread_name = Some(Box::new(name));
        self
    }

    /// The stack size of each worker thread, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> ThreadPoolBuilder {
        self.stack_size = Some(bytes);
        self
    }

    /// Called on each worker thread, with its index, before it runs any job.
    ///
    /// `build` does not wait for the handlers: a pool dropped at once may be
    /// shutting down by the time one runs. A task the handler spawns on this
    /// pool still runs, on this thread before it ends if need be; as with
    /// [`exit_handler`](Self::exit_handler), it must not wait for the other
    /// workers then.
    pub fn start_handler<F>(mut self, handler: F) -> ThreadPoolBuilder
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.start_handler = Some(Box::new(handler));
        self
    }

    /// Called on each worker thread, with its index, just before it exits.
    ///
    /// The pool is shutting down by then: a task the handler spawns on this
    /// pool runs on the exiting thread before it ends. It must not wait for
    /// the other workers (a `broadcast`, or a task it hands them): they may
    /// have exited already, and the wait would never end.
    pub fn exit_handler<F>(mut self, handler: F) -> ThreadPoolBuilder
    where
        F: Fn(usize) + Send + Sync + 'static,
    {
        self.exit_handler = Some(Box::new(handler));
        self
    }

    /// Called on the worker thread with the payload of every panic in a
    /// `'static` spawned task (`spawn`, `spawn_with`, `Worker::submit`),
    /// before the panic is handed to the task's `JoinHandle`, and of a panic
    /// in dropping the result of a task whose handle was dropped, which has
    /// no other owner. Panics in
    /// `join`, `scope` and `install` propagate to their caller instead.
    /// Without a handler such panics are still caught: a worker never dies.
    pub fn panic_handler<F>(mut self, handler: F) -> ThreadPoolBuilder
    where
        F: Fn(&(dyn Any + Send)) + Send + Sync + 'static,
    {
        self.panic_handler = Some(Box::new(handler));
        self
    }

    /// How often the heartbeat thread checks for shared join work waiting
    /// while workers sleep, and wakes one (default 100 µs). While its checks
    /// find nothing shared it naps longer, up to 32 intervals, until a check
    /// finds a shared frame or a worker sharing one rouses it. `None` disables
    /// it: the clock's 100 µs intervals stand in for its ticks, so a
    /// computation that has run across one wakes a sleeping worker at its next
    /// first join, and a join half that waits is otherwise picked up only by
    /// workers awake.
    ///
    /// An interval shorter than [`MIN_HEARTBEAT_INTERVAL`](Self::MIN_HEARTBEAT_INTERVAL)
    /// (10 µs) fails [`build`](Self::build) with [`BuildError::HeartbeatTooShort`]: its
    /// ticks would come faster than a sleeping worker can be woken, so that every
    /// computation would look long enough at its first join to wake one, and the
    /// heartbeat thread would keep a core busy (a zero interval, all of it).
    pub fn heartbeat_interval(mut self, interval: Option<Duration>) -> ThreadPoolBuilder {
        self.heartbeat = interval;
        self
    }

    fn resolved_num_threads(&self) -> usize {
        if self.num_threads > 0 {
            return self.num_threads;
        }
        std::env::var("WORKMILL_NUM_THREADS")
            .ok()
            .and_then(|value| value.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(num_cpus::get)
            .max(1)
    }

    /// Starts the pool's threads.
    ///
    /// # Errors
    ///
    /// [`BuildError::TooManyThreads`] past [`MAX_THREADS`](Self::MAX_THREADS);
    /// [`BuildError::HeartbeatTooShort`] for a heartbeat interval under
    /// [`MIN_HEARTBEAT_INTERVAL`](Self::MIN_HEARTBEAT_INTERVAL);
    /// [`BuildError::Spawn`] if a thread cannot be started, and
    /// [`BuildError::ThreadName`] if it cannot be named; the threads started
    /// before it are shut down again.
    pub fn build(mut self) -> Result<ThreadPool, BuildError> {
        let num_threads = self.resolved_num_threads();
        if num_threads > Self::MAX_THREADS {
            return Err(BuildError::TooManyThreads {
                requested: num_threads,
                max: Self::MAX_THREADS,
            });
        }
        if let Some(requested) = self.heartbeat
            && requested < Self::MIN_HEARTBEAT_INTERVAL
        {
            return Err(BuildError::HeartbeatTooShort {
                requested,
                min: Self::MIN_HEARTBEAT_INTERVAL,
            });
        }
        let deques: Vec<Worker<_>> = (0..num_threads).map(|_| Worker::new_lifo()).collect();
        let stealers = deques.iter().map(Worker::stealer).collect();
        // The heartbeat is a wall-clock timer: loom cannot model it, and a
        // single worker has nobody to wake.
        let heartbeat = if cfg!(workmill_loom) || num_threads == 1 {
            None
        } else {
            self.heartbeat
        };
        // Asked for no heartbeat (rather than given none for loom or a single
        // worker, where nobody needs waking): fresh frames go by the clock.
        let clock_ticks = heartbeat.is_none() && num_threads > 1 && !cfg!(workmill_loom);
        let registry = Arc::new(Registry::new(
            stealers,
            Hooks {
                panic_handler: self.panic_handler.take(),
                start_handler: self.start_handler.take(),
                exit_handler: self.exit_handler.take(),
            },
            clock_ticks,
        ));
        let mut threads = Vec::with_capacity(num_threads + 1);
        for (index, deque) in deques.into_iter().enumerate() {
            let mut builder = thread::Builder::new();
            if let Some(name) = &mut self.thread_name {
                match thread_name(name, index) {
                    Ok(name) => builder = builder.name(name),
                    Err(reason) => {
                        drop(ThreadPool::from_parts(registry, threads));
                        return Err(BuildError::ThreadName { index, reason });
                    }
                }
            }
            if let Some(bytes) = self.stack_size {
                builder = builder.stack_size(bytes);
            }
            let thread_registry = Arc::clone(&registry);
            match builder.spawn(move || worker::main_loop(thread_registry, index, deque)) {
                Ok(handle) => threads.push(handle),
                Err(source) => {
                    // Shut down what started, then report.
                    drop(ThreadPool::from_parts(registry, threads));
                    return Err(BuildError::Spawn { index, source });
                }
            }
        }
        if let Some(interval) = heartbeat {
            let heartbeat_registry = Arc::clone(&registry);
            let spawned = thread::Builder::new()
                .name("workmill-heartbeat".to_owned())
                .spawn(move || heartbeat::run(heartbeat_registry, interval));
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(source) => {
                    drop(ThreadPool::from_parts(registry, threads));
                    return Err(BuildError::Spawn {
                        index: num_threads,
                        source,
                    });
                }
            }
        }
        Ok(ThreadPool::from_parts(registry, threads))
    }

    /// Builds the pool and makes it the global pool, used by the free
    /// functions ([`join`](crate::join), [`scope`](crate::scope),
    /// [`spawn`](crate::spawn), ...) outside every pool.
    ///
    /// # Errors
    ///
    /// [`BuildError::GlobalAlreadyInitialized`] if the global pool exists
    /// already (built here before, or lazily by first use), and the errors of
    /// [`build`](Self::build).
    pub fn build_global(self) -> Result<(), BuildError> {
        global::set(self)
    }
}

/// The name `name` gives worker `index`, or why it gives none: it panicked, or
/// the name holds a NUL byte, on which starting the thread would panic.
fn thread_name(name: &mut dyn FnMut(usize) -> String, index: usize) -> Result<String, String> {
    match unwind::halt_unwinding(|| name(index)) {
        Ok(name) if name.contains('\0') => Err(format!("the name {name:?} contains a NUL byte")),
        Ok(name) => Ok(name),
        Err(payload) => {
            let message = unwind::panic_message(&*payload);
            unwind::drop_quietly(payload, |_| {});
            Err(format!("the thread_name closure panicked: {message}"))
        }
    }
}
