//! `workmill worker`: a worker process running the built-in tasks from the backend, through
//! the facade's `worker::run` (heartbeats, clean stop on SIGTERM/SIGINT, reconnection).

use std::sync::{Arc, mpsc};
use std::time::Duration;

use serde::Serialize;
use workmill::Queue;
use workmill::backend::Backend;
use workmill::worker::{self, RunOptions, StopHandle};

use super::{Output, shared_backend, sqlite_directory_problem};
use crate::builtin;
use crate::cli::{Global, WorkerArgs};
use crate::error::CliError;

/// How often `--until-idle` looks at the backend's counts.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How often `--until-idle` tries again to open a store that could not be opened.
const REOPEN_WAIT: Duration = Duration::from_secs(1);

/// What `worker --json` reports when the worker stops.
#[derive(Debug, Serialize)]
struct WorkerSummary {
    worker: String,
    attempts: u64,
    completed: u64,
    failed: u64,
    released: u64,
    lost_leases: u64,
    reconnects: u64,
    stopped_by: Option<String>,
}

/// Runs a worker until it is stopped by a signal, or, with `--until-idle`, until no task is
/// left waiting or running.
pub fn worker(global: &Global, args: &WorkerArgs, output: &mut Output<'_>) -> Result<(), CliError> {
    // Refuse a bad URL at once, rather than after the worker's threads started.
    let backend = shared_backend(global, "no other process could give this worker tasks")?;
    // `worker::run` waits out a store that fails to open, as a server that is still starting
    // should be; but a SQLite file needs no server, and if its directory is missing no wait
    // will create it: say so and stop, rather than retry for ever. (Other failures, such as a
    // file locked by another process, are waited for, each logged on stderr.)
    if let Some(problem) = sqlite_directory_problem(&backend) {
        return Err(CliError::Usage(problem));
    }
    let options = RunOptions::new()
        .concurrency(usize::from(args.concurrency))
        .lease(Duration::from_secs(args.lease_secs));
    let stop = options.stop_handle();
    let (done, finished) = mpsc::channel::<()>();
    let watcher = if args.until_idle {
        let backend = backend.clone();
        Some(std::thread::spawn(move || {
            stop_when_idle(&backend, &stop, &finished)
        }))
    } else {
        None
    };
    if !output.json {
        eprintln!(
            "workmill worker: running {} on {} with {} threads; stop with Ctrl-C or SIGTERM",
            builtin::names(),
            global.backend,
            args.concurrency
        );
    }
    let report = worker::run(builtin::registry()?, backend.url(), options);
    drop(done);
    if let Some(watcher) = watcher {
        let _ = watcher.join();
    }
    let report = report?;
    let summary = WorkerSummary {
        worker: report.worker.as_str().to_owned(),
        attempts: report.tasks.attempts,
        completed: report.tasks.completed,
        failed: report.tasks.failed,
        released: report.tasks.released,
        lost_leases: report.tasks.lost_leases,
        reconnects: report.reconnects,
        stopped_by: report.stopped_by.map(|cause| cause.to_string()),
    };
    output.emit(&summary, || report.to_string())
}

/// Stops the worker once the backend has no task pending, retrying or running at two looks
/// in a row (one look could fall between a task's retry and its wake-up), or when `finished`
/// says the worker stopped by itself.
///
/// It opens the backend itself, and a store that cannot be opened yet is tried again every
/// [`REOPEN_WAIT`]: the worker waits for a store that is down, so this must too, rather than
/// fail the command while the worker would have waited.
fn stop_when_idle(backend: &Backend, stop: &StopHandle, finished: &mpsc::Receiver<()>) {
    let mut queue: Option<Arc<dyn Queue>> = None;
    let mut idle_looks = 0;
    loop {
        if queue.is_none() {
            queue = backend.open().ok();
        }
        let wait = if queue.is_some() {
            IDLE_POLL
        } else {
            REOPEN_WAIT
        };
        match finished.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        idle_looks = match queue.as_deref().map(Queue::stats) {
            Some(Ok(stats)) if stats.pending + stats.retrying + stats.running == 0 => {
                idle_looks + 1
            }
            _ => 0,
        };
        if idle_looks >= 2 {
            stop.stop();
            return;
        }
    }
}
