//! The operator's commands: each opens the backend named by `--backend`, does one thing
//! through core's `Queue` trait, and prints text or JSON.

mod admin;
mod submit;
mod worker;

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use workmill::backend::Backend;
use workmill::{Queue, QueueError, TaskId};

use crate::cli::{Cli, Command, Global};
use crate::error::CliError;

pub use admin::{cancel, inspect, list, purge, retry, stats, stats_table};
pub use submit::submit;
pub use worker::worker;

/// Where a command writes its result, and in which form.
pub struct Output<'a> {
    /// Stdout, or a buffer in tests.
    pub out: &'a mut dyn Write,
    /// JSON instead of text.
    pub json: bool,
}

impl Output<'_> {
    /// Writes `value` as pretty JSON in `--json` mode, and `text()` otherwise.
    pub fn emit<T: Serialize>(
        &mut self,
        value: &T,
        text: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        if self.json {
            serde_json::to_writer_pretty(&mut *self.out, value)?;
            writeln!(self.out)?;
        } else {
            let text = text();
            write!(self.out, "{text}")?;
            if !text.ends_with('\n') {
                writeln!(self.out)?;
            }
        }
        Ok(())
    }
}

/// Runs one parsed command line.
pub fn dispatch(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    let Cli { global, command } = cli;
    let mut output = Output {
        out,
        json: global.json,
    };
    match command {
        Command::Demo(args) => crate::demo::run(&args, &mut output),
        Command::Worker(args) => worker(&global, &args, &mut output),
        Command::Submit(args) => submit(&*open(&global, "submit")?, &args, &mut output),
        Command::Stats => stats(&*open(&global, "stats")?, &mut output),
        Command::Inspect { id } => {
            inspect(&*open(&global, "inspect")?, &parse_id(&id)?, &mut output)
        }
        Command::List(args) => list(&*open(&global, "list")?, &args, &mut output),
        Command::Retry { id } => retry(&*open(&global, "retry")?, &parse_id(&id)?, &mut output),
        Command::Cancel { id } => cancel(&*open(&global, "cancel")?, &parse_id(&id)?, &mut output),
        Command::Purge(args) => purge(&*open(&global, "purge")?, &args, &mut output),
    }
}

/// Opens the backend named by `--backend` for `command`, which acts on it once and exits.
///
/// Refused with a usage error: a URL this build cannot open, a backend private to this
/// process (`memory://`: see `shared_backend`), and a SQLite file in a directory that does
/// not exist (see `open_error`).
pub fn open(global: &Global, command: &str) -> Result<Arc<dyn Queue>, CliError> {
    let backend = shared_backend(
        global,
        &format!(
            "`workmill {command}` would act on a new, empty queue that nothing else reaches \
             and that vanishes when it exits"
        ),
    )?;
    backend.open().map_err(|error| open_error(&backend, error))
}

/// `--backend`, parsed, and refused if only this process could reach it.
///
/// `memory://` (and SQLite's `sqlite::memory:`) is a new, empty queue at each open: a task
/// submitted there is gone when the command exits, and stats, list or inspect can only ever
/// show nothing, so exiting 0 would tell the user something happened that did not.
/// `consequence` says what it would mean for the command at hand. A malformed private URL
/// (`memory://x`) is reported as the bad URL it is.
pub(crate) fn shared_backend(global: &Global, consequence: &str) -> Result<Backend, CliError> {
    let backend = Backend::parse(&global.backend)?;
    if !backend.is_durable() {
        // Opening a private backend touches nothing outside this process; it checks the URL.
        drop(backend.open()?);
        return Err(CliError::Usage(format!(
            "{} is private to the process that opens it, so {consequence}; use a shared \
             backend such as sqlite://workmill.db",
            global.backend
        )));
    }
    Ok(backend)
}

/// A failure to open `backend`, as the user should read it: a SQLite file whose directory is
/// missing is a mistake in the command line, which no retry fixes (a usage error naming the
/// directory); anything else is the store's own error.
fn open_error(backend: &Backend, error: QueueError) -> CliError {
    match sqlite_directory_problem(backend) {
        Some(problem) => CliError::Usage(problem),
        None => error.into(),
    }
}

/// What is wrong with the directory of a `sqlite://` file, if it is missing or not a
/// directory; `None` for other backends, and for a file in the working directory.
pub(crate) fn sqlite_directory_problem(backend: &Backend) -> Option<String> {
    if backend.scheme() != "sqlite" {
        return None;
    }
    let path = Path::new(backend.url().strip_prefix("sqlite://")?);
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty())?;
    let problem = match std::fs::metadata(dir) {
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            "does not exist"
        }
        Ok(metadata) if !metadata.is_dir() => "is not a directory",
        _ => return None,
    };
    Some(format!(
        "cannot open {}: the directory {} {problem}; create it, or name a file in a directory \
         that exists",
        backend.url(),
        dir.display()
    ))
}

/// Reads a task id from the command line.
pub fn parse_id(text: &str) -> Result<TaskId, CliError> {
    TaskId::new(text)
        .map_err(|error| CliError::Usage(format!("{text:?} is not a task id: {error}")))
}
