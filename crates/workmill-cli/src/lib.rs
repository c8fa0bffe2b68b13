//! The `workmill` command line: a demo of what workmill does, a worker process, and an
//! operator's tools for any backend.
//!
//! ```text
//! workmill demo                          word count as a map-reduce job, priorities and retries,
//!                                        load balancing compared; every answer checked
//! workmill worker --backend URL          run the built-in tasks from a backend
//! workmill submit square 12 --priority 1 enqueue a built-in task
//! workmill stats | inspect ID | list --status dead --limit 20
//! workmill retry ID | cancel ID | purge
//! ```
//!
//! Every command takes `--backend URL` (default `sqlite://workmill.db`, a file in the working
//! directory) and `--json` (machine-readable output). Errors are one line on stderr; the exit
//! code is 2 for a usage error (bad arguments, a bad URL, an unknown id or task) and 1 for
//! other failures, a failed demo check included.
//!
//! The binary is thin: [`main`] parses with clap ([`cli::Cli`]), installs the log on stderr
//! ([`logging`]: the library's warnings and errors, `WORKMILL_LOG=info|debug|...` for more,
//! `off` for none) and hands the command to [`commands::dispatch`]. [`main_with_args`] does
//! the same without the log, for tests and embedding programs; the tests also call
//! [`commands::dispatch`] directly.
//!
//! # Examples
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let backend = format!("sqlite://{}", dir.path().join("tasks.db").display());
//! let mut out = Vec::new();
//! let code = workmill_cli::run_with_output(
//!     ["workmill", "submit", "square", "12", "--id", "sq-12", "--backend", &backend],
//!     &mut out,
//! );
//! assert_eq!((code, String::from_utf8(out)?), (0, "sq-12\n".to_owned()));
//!
//! let mut out = Vec::new();
//! let code = workmill_cli::run_with_output(
//!     ["workmill", "inspect", "sq-12", "--json", "--backend", &backend],
//!     &mut out,
//! );
//! let task: serde_json::Value = serde_json::from_slice(&out)?;
//! assert_eq!((code, task["status"].as_str(), task["input"].as_u64()), (0, Some("pending"), Some(12)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod builtin;
pub mod cli;
pub mod commands;
pub mod corpus;
pub mod demo;
pub mod error;
pub mod logging;
pub mod table;
pub mod view;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::Cli;
use crate::error::{CliError, EXIT_USAGE};

/// The `workmill` binary: parses the process's command line, installs the log on stderr at
/// the level `WORKMILL_LOG` names ([`logging`]) and runs the command; returns the exit code.
/// `--help` and `--version` answer first; a bad `WORKMILL_LOG` is a usage error before the
/// command runs.
pub fn main() -> u8 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let cli = match Cli::try_parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        // `--help` and `--version` answer whatever `WORKMILL_LOG` holds.
        Err(error) => return usage_error(&error, &mut out),
    };
    if let Err(error) = logging::install_from_env() {
        return report(&error);
    }
    run_parsed(cli, &mut out)
}

/// Runs the command line `args` (program name first), writing results to stdout and one line
/// per error to stderr; returns the exit code.
pub fn main_with_args<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    run_with_output(args, &mut lock)
}

/// [`main_with_args`] with the results written to `out` (errors still go to stderr).
pub fn run_with_output<I, T>(args: I, out: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => run_parsed(cli, out),
        Err(error) => usage_error(&error, out),
    }
}

/// Runs a parsed command line; returns the exit code.
fn run_parsed(cli: Cli, out: &mut dyn Write) -> u8 {
    match commands::dispatch(cli, out) {
        Ok(()) => 0,
        Err(error) => report(&error),
    }
}

/// Help and version go to `out` with exit code 0; a usage error is its first line on stderr,
/// with exit code 2.
fn usage_error(error: &clap::Error, out: &mut dyn Write) -> u8 {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        let _ = write!(out, "{error}");
        return 0;
    }
    let rendered = error.to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("error: invalid arguments");
    eprintln!("{first} (see workmill --help)");
    EXIT_USAGE
}

/// Prints `error` as one line on stderr and returns its exit code.
fn report(error: &CliError) -> u8 {
    let message = error.to_string().replace('\n', " ");
    eprintln!("workmill: {message}");
    error.exit_code()
}
