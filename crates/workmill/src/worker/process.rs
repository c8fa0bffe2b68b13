//! `worker::run`: a worker process's main: connect, start the loops and the heartbeat thread,
//! answer signals, and report when stopped.

use std::sync::Arc;

use workmill_core::{Queue, QueueError};
use workmill_executor::ThreadPool;

use super::heartbeat::Heartbeat;
use super::reconnect::ReconnectingQueue;
use super::run_loop::run_until_refused;
use super::{LoopReport, Mode, RunOptions, StopHandle, WorkerReport};
use crate::backend::Backend;
use crate::error::RuntimeError;
use crate::registry::{Registry, SharedRegistry};
use crate::runtime::host::{Host, Running};
use crate::sync::{Mutex, lock};

/// Runs a worker process on the backend at `url` until `SIGTERM`, `SIGINT` or
/// [`StopHandle::stop`], and reports what it did.
///
/// `options.concurrency` loops reserve batches and run tasks with the handlers
/// in `registry`, each on its own thread; a heartbeat thread keeps every held
/// lease alive. Stopping finishes the running tasks, hands back the reserved
/// but unstarted ones at once, and writes every outcome before returning. A
/// store that fails is opened again (for durable backends) and every call is
/// tried again after a [`Reconnect`](super::Reconnect) wait.
///
/// Errors: a URL this build cannot open ([`QueueError::InvalidUrl`]), a store
/// that refuses the first connection for a reason waiting cannot fix (its
/// schema is newer than this build), settings that cannot work, or threads or
/// signal handlers that cannot be set up. A store that is merely down at start
/// is waited for. A store that refuses to reserve or wait for work for such a
/// reason while the worker runs stops it: the loops finish their tasks and
/// settle what they hold, as on a stop, and the refusal is returned.
pub fn run(
    registry: Registry,
    url: &str,
    options: RunOptions,
) -> Result<WorkerReport, RuntimeError> {
    let backend = Backend::parse(url)?;
    if backend.is_durable() {
        run_with(registry, move || backend.open(), options)
    } else {
        // Opening `memory://` again would make a new, empty queue: keep the one.
        let queue = backend.open()?;
        run_with(registry, move || Ok(Arc::clone(&queue)), options)
    }
}

/// [`run`] on a store that `connect` opens: called once at the start and again
/// each time the store failed. Return the same `Arc` every time to keep one
/// connection (a shared [`MemoryQueue`](crate::MemoryQueue), or a backend
/// that reconnects by itself).
pub fn run_with<C>(
    registry: Registry,
    connect: C,
    options: RunOptions,
) -> Result<WorkerReport, RuntimeError>
where
    C: Fn() -> Result<Arc<dyn Queue>, QueueError> + Send + Sync + 'static,
{
    options.validate()?;
    let loop_options = (0..options.concurrency)
        .map(|i| options.loop_options(i))
        .collect::<Result<Vec<_>, _>>()?;
    let stop = options.stop_handle();
    #[cfg(unix)]
    let _signals = match options.signals {
        true => Some(
            super::signals::SignalGuard::install(stop.clone())
                .map_err(|source| RuntimeError::Signals { source })?,
        ),
        false => None,
    };
    let queue = Arc::new(ReconnectingQueue::new(Box::new(connect)));
    let mut report = WorkerReport {
        worker: options.worker.clone(),
        loops: 0,
        unreported_loops: 0,
        tasks: LoopReport::default(),
        heartbeats: 0,
        heartbeat_errors: 0,
        heartbeat_refused: 0,
        reconnects: 0,
        stopped_by: None,
    };
    if !first_connection(&queue, &stop, &options, &mut report.tasks)? {
        report.stopped_by = stop.cause();
        return Ok(report);
    }
    tracing::info!(worker = %options.worker, backend = queue.backend_name(), loops = options.concurrency, "worker started");

    let registry = Arc::new(SharedRegistry::new(registry));
    // The pool first: a refusal must not leave a heartbeat thread behind.
    let host = match &options.pool {
        Some(pool) => Host::Pool(Arc::clone(pool)),
        None => Host::Pool(Arc::new(own_pool(&options)?)),
    };
    host.check(loop_options.len())?;
    let heartbeat = Heartbeat::start(
        Arc::clone(&queue) as Arc<dyn Queue>,
        format!("{}-heartbeat", options.worker),
        options.lease,
        options.heartbeat_interval(),
    )?;
    let held = heartbeat.held();
    // The first refusal that ended a loop; it stops the others, and `run` returns it.
    let refusal: Arc<Mutex<Option<QueueError>>> = Arc::default();
    let mut loops: Vec<Running> = Vec::with_capacity(loop_options.len());
    let mut started = Ok(());
    let starting = host.starting(loop_options.len());
    for (i, loop_options) in loop_options.into_iter().enumerate() {
        let (queue, registry, held, loop_stop, refusal) = (
            Arc::clone(&queue),
            Arc::clone(&registry),
            Arc::clone(&held),
            stop.clone(),
            Arc::clone(&refusal),
        );
        let job = move || {
            let (tasks, refused) = run_until_refused(
                &*queue,
                &registry,
                loop_stop.control(),
                &loop_options,
                Some(&held),
            );
            if let Some(error) = refused {
                // No wait mends it: the other loops stop too, with no stop cause recorded.
                lock(&refusal).get_or_insert(error);
                loop_stop.control().set(Mode::Stop);
            }
            tasks
        };
        match starting.start(format!("{}-{i}", options.worker), job) {
            Ok(running) => loops.push(running),
            Err(error) => {
                // The loops already started hand back what they hold and stop.
                stop.stop();
                started = Err(error);
                break;
            }
        }
    }

    starting.finish(&loops);
    report.loops = loops.len();
    for running in loops {
        match running.join() {
            Some(tasks) => report.tasks.add(&tasks),
            None => report.unreported_loops += 1,
        }
    }
    // The loops have settled every lease they held; the heartbeat can stop.
    let beats = heartbeat.stop();
    report.heartbeats = beats.beats;
    report.heartbeat_errors = beats.errors;
    report.heartbeat_refused = beats.refused;
    report.reconnects = queue.reconnects();
    report.stopped_by = stop.cause();
    let leftover = held.len();
    if leftover > 0 && report.unreported_loops == 0 {
        tracing::error!(leftover, "leases still held after every loop stopped");
    }
    tracing::info!(%report, "worker stopped");
    started?;
    match lock(&refusal).take() {
        Some(error) => Err(error.into()),
        None => Ok(report),
    }
}

/// Connects before starting the loops: true once connected, false if stopped first.
///
/// A store failure is waited out (the store may still be starting); a refusal
/// (a schema newer than this build, a URL the backend rejects) is returned.
fn first_connection(
    queue: &ReconnectingQueue,
    stop: &StopHandle,
    options: &RunOptions,
    tasks: &mut LoopReport,
) -> Result<bool, RuntimeError> {
    let mut failures = 0;
    loop {
        if stop.is_stopped() {
            return Ok(false);
        }
        match queue.connection() {
            Ok(_) => return Ok(true),
            Err(error) if error.is_transient() => {
                tasks.backend_errors += 1;
                failures += 1;
                let delay = options.reconnect.delay(failures, fastrand::f64());
                tracing::warn!(%error, ?delay, "could not open the store; trying again");
                stop.wait(delay);
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// The worker's own executor pool: one thread per loop, named after the worker.
fn own_pool(options: &RunOptions) -> Result<ThreadPool, RuntimeError> {
    let worker = options.worker.to_string();
    ThreadPool::builder()
        .num_threads(options.concurrency)
        .thread_name(move |i| format!("{worker}-{i}"))
        .build()
        .map_err(|error| {
            RuntimeError::Config(format!("could not start the worker's thread pool: {error}"))
        })
}
