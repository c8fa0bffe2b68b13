//! The operator's commands: each opens the backend named by `--backend`, does one thing
//! through core's `Queue` trait, and prints text or JSON.

mod admin;
mod submit;
mod worker;

use std::io::Write;
use std::sync::Arc;

use serde::Serialize;
use workmill::{Queue, TaskId};

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
        Command::Submit(args) => submit(&*open(&global)?, &args, &mut output),
        Command::Stats => stats(&*open(&global)?, &mut output),
        Command::Inspect { id } => inspect(&*open(&global)?, &parse_id(&id)?, &mut output),
        Command::List(args) => list(&*open(&global)?, &args, &mut output),
        Command::Retry { id } => retry(&*open(&global)?, &parse_id(&id)?, &mut output),
        Command::Cancel { id } => cancel(&*open(&global)?, &parse_id(&id)?, &mut output),
        Command::Purge(args) => purge(&*open(&global)?, &args, &mut output),
    }
}

/// Opens the backend named by `--backend`.
pub fn open(global: &Global) -> Result<Arc<dyn Queue>, CliError> {
    Ok(workmill::backend::open(&global.backend)?)
}

/// Reads a task id from the command line.
pub fn parse_id(text: &str) -> Result<TaskId, CliError> {
    TaskId::new(text)
        .map_err(|error| CliError::Usage(format!("{text:?} is not a task id: {error}")))
}
