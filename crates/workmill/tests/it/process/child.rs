//! The body of the worker processes the process tests start (`worker_process_entry`, run when
//! the test binary is started with `WORKMILL_TEST_WORKER` set), their tasks, and their ledger.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use workmill::worker::{self, RunOptions, StopHandle};
use workmill::{NamedTask, Registry, TaskContext, TaskError, WorkerId};

use crate::support::WAIT;
use crate::wordcount::{CountWords, MergeCounts};

/// Set in a worker process's environment: its worker id. Nothing else runs the entry's body.
pub(super) const WORKER: &str = "WORKMILL_TEST_WORKER";
pub(super) const URL: &str = "WORKMILL_TEST_URL";
pub(super) const LEDGER: &str = "WORKMILL_TEST_LEDGER";
pub(super) const CONCURRENCY: &str = "WORKMILL_TEST_CONCURRENCY";
pub(super) const BATCH: &str = "WORKMILL_TEST_BATCH";
pub(super) const LEASE_MS: &str = "WORKMILL_TEST_LEASE_MS";
/// If set, the worker sends itself SIGTERM after `worker::run` returned, to show that the
/// signal's default action (ending the process) is back.
pub(super) const SIGTERM_AFTER: &str = "WORKMILL_TEST_SIGTERM_AFTER";
/// The exact name of the entry test, as the child's test filter.
pub(super) const ENTRY: &str = "process::child::worker_process_entry";

/// The body of the worker processes that the process tests start; not a test of its own.
///
/// The parent re-runs this test binary with `--exact` on this name and the
/// settings in its environment. Without them (in an ordinary test run) it
/// returns at once.
#[test]
fn worker_process_entry() {
    let Ok(worker) = std::env::var(WORKER) else {
        return;
    };
    let setting = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let number = |name: &str| -> u64 { setting(name).parse().expect("a number") };
    let (min_batch, max_batch) = setting(BATCH)
        .split_once(',')
        .map(|(min, max)| (min.parse().unwrap(), max.parse().unwrap()))
        .expect("BATCH is min,max");
    let lease = Duration::from_millis(number(LEASE_MS));
    let options = RunOptions::new()
        .worker_id(WorkerId::new(&worker).unwrap())
        .concurrency(number(CONCURRENCY) as usize)
        .min_batch(min_batch)
        .max_batch(max_batch)
        .lease(lease)
        .heartbeat_every(lease / 4);
    let stop = options.stop_handle();
    assert!(
        LEDGER_FILE
            .set(Ledger::open(Path::new(&setting(LEDGER))))
            .is_ok()
    );
    assert!(STOP.set(stop.clone()).is_ok());
    // Tells the parent the stop was taken in (by a signal), for tests that signal twice.
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            if stop.wait(Duration::MAX) {
                say(&format!("STOPPING {:?}", stop.cause()));
            }
        });
    }
    say("READY");
    let report = worker::run(registry(), &setting(URL), options).expect("the worker runs");
    say(&format!(
        "REPORT attempts={} completed={} failed={} released={} lost={} unrecorded={} errors={} heartbeats={} heartbeat_errors={} heartbeat_refused={} reconnects={} stopped_by={:?}",
        report.tasks.attempts,
        report.tasks.completed,
        report.tasks.failed,
        report.tasks.released,
        report.tasks.lost_leases,
        report.tasks.unrecorded,
        report.tasks.backend_errors,
        report.heartbeats,
        report.heartbeat_errors,
        report.heartbeat_refused,
        report.reconnects,
        report.stopped_by,
    ));
    if std::env::var_os(SIGTERM_AFTER).is_some_and(|set| !set.is_empty()) {
        // SAFETY: `kill` only sends a signal, to this very process.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        std::thread::sleep(WAIT);
        say("STILL ALIVE after SIGTERM");
    }
}

/// One line to the parent, marked so it stands out among the test harness's own output.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "WORKMILL {line}").unwrap();
    out.flush().unwrap();
}

/// The file every task of a test appends a line to, shared by all its processes.
#[derive(Clone)]
pub(crate) struct Ledger {
    file: Arc<File>,
}

impl Ledger {
    fn open(path: &Path) -> Ledger {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("the ledger opens");
        Ledger {
            file: Arc::new(file),
        }
    }

    /// Appends one line in one `write` on an `O_APPEND` file: lines of concurrent
    /// processes never interleave, and a line written survives its writer's death.
    fn append(&self, line: &str) -> Result<(), TaskError> {
        (&*self.file)
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|error| {
                TaskError::retryable(format!("could not append to the ledger: {error}"))
            })
    }

    /// The lines of the ledger at `path`, split at spaces.
    pub(crate) fn read(path: &Path) -> Vec<Vec<String>> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| line.split(' ').map(str::to_owned).collect())
            .collect()
    }
}

/// This process's ledger and stop handle, for the tasks (a task type has no other state).
static LEDGER_FILE: OnceLock<Ledger> = OnceLock::new();
static STOP: OnceLock<StopHandle> = OnceLock::new();

fn ledger() -> &'static Ledger {
    LEDGER_FILE.get().expect("the worker opened its ledger")
}

/// Appends `{task id} {worker loop id}` to the ledger, then works for a quarter millisecond (as a
/// task doing I/O would, which also lets every process take its turn at the SQLite write
/// lock): the crash test's task.
#[derive(Serialize, Deserialize)]
pub(crate) struct AppendId;

impl NamedTask for AppendId {
    const NAME: &'static str = "test.append_id";
    type Output = ();
    fn run(self, ctx: &TaskContext<'_>) -> Result<(), TaskError> {
        let (Some(task), Some(worker)) = (ctx.task_id(), ctx.worker()) else {
            return Err(TaskError::permanent("a worker names the task and itself"));
        };
        ledger().append(&format!("{task} {worker}"))?;
        std::thread::sleep(Duration::from_micros(250));
        Ok(())
    }
}

/// Appends `start {task id}`, runs until the worker is stopped, appends `end {task id}`.
#[derive(Serialize, Deserialize)]
pub(crate) struct RunUntilStopped;

impl NamedTask for RunUntilStopped {
    const NAME: &'static str = "test.run_until_stopped";
    type Output = ();
    fn run(self, ctx: &TaskContext<'_>) -> Result<(), TaskError> {
        let task = ctx.task_id().expect("a worker names the task");
        ledger().append(&format!("start {task}"))?;
        STOP.get().expect("the worker has a stop handle").wait(WAIT);
        ledger().append(&format!("end {task}"))
    }
}

/// Appends `start {task id}` and then hangs, ignoring stops: only an exit ends it.
#[derive(Serialize, Deserialize)]
pub(crate) struct Hang;

impl NamedTask for Hang {
    const NAME: &'static str = "test.hang";
    type Output = ();
    fn run(self, ctx: &TaskContext<'_>) -> Result<(), TaskError> {
        let task = ctx.task_id().expect("a worker names the task");
        ledger().append(&format!("start {task}"))?;
        std::thread::sleep(WAIT);
        ledger().append(&format!("end {task}"))
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register::<AppendId>().unwrap();
    registry.register::<RunUntilStopped>().unwrap();
    registry.register::<Hang>().unwrap();
    registry.register::<CountWords>().unwrap();
    registry.register_reduce::<MergeCounts>().unwrap();
    registry
}
