//! `workmill worker`: a worker process running the built-in tasks from the backend, through
//! the facade's `worker::run` (heartbeats, clean stop on SIGTERM/SIGINT, reconnection).

use std::sync::mpsc;
use std::time::Duration;

use serde::Serialize;
use workmill::worker::{self, RunOptions, StopHandle};

use super::Output;
use crate::builtin;
use crate::cli::{Global, WorkerArgs};
use crate::error::CliError;

/// How often `--until-idle` looks at the backend's counts.
const IDLE_POLL: Duration = Duration::from_millis(100);

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
    let backend = workmill::backend::Backend::parse(&global.backend)?;
    if !backend.is_durable() {
        return Err(CliError::Usage(format!(
            "{} is private to the process that opens it, so no other process could give this \
             worker tasks; run workers on a shared backend such as sqlite://workmill.db",
            global.backend
        )));
    }
    let options = RunOptions::new()
        .concurrency(usize::from(args.concurrency))
        .lease(Duration::from_secs(args.lease_secs));
    let stop = options.stop_handle();
    let (done, finished) = mpsc::channel::<()>();
    let watcher = if args.until_idle {
        let queue = backend.open()?;
        Some(std::thread::spawn(move || {
            stop_when_idle(&*queue, &stop, &finished)
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
fn stop_when_idle(queue: &dyn workmill::Queue, stop: &StopHandle, finished: &mpsc::Receiver<()>) {
    let mut idle_looks = 0;
    loop {
        match finished.recv_timeout(IDLE_POLL) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        idle_looks = match queue.stats() {
            Ok(stats) if stats.pending + stats.retrying + stats.running == 0 => idle_looks + 1,
            _ => 0,
        };
        if idle_looks >= 2 {
            stop.stop();
            return;
        }
    }
}
