//! The command line's grammar (clap derive): global options, subcommands and their arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use workmill::TaskStatus;

/// The backend used when `--backend` is not given: a SQLite file in the working directory.
pub const DEFAULT_BACKEND: &str = "sqlite://workmill.db";

/// The environment the binary reads, for `--help`.
const LOG_HELP: &str = "Environment:\n  WORKMILL_LOG  what the library logs on stderr (a worker waiting for a store it \
cannot open, leases it could not extend): off, error, warn, info, debug or trace [default: warn]";

/// workmill: distribute work in Rust. Run the demo, run workers, and operate a task queue.
#[derive(Debug, Parser)]
#[command(name = "workmill", version, about, long_about = None, after_help = LOG_HELP)]
pub struct Cli {
    /// The options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes, before or after its name.
#[derive(Clone, Debug, Args)]
pub struct Global {
    /// The queue backend: sqlite://path/to/tasks.db, postgres://... or redis://... (the last
    /// two with the CLI's `postgres` and `redis` features). memory:// is refused: each process
    /// would get a new, empty queue of its own.
    #[arg(long, global = true, value_name = "URL", default_value = DEFAULT_BACKEND)]
    pub backend: String,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Word count as a map-reduce job, the seed's priority and retry scenario, and load
    /// balancing compared; checks every answer. Runs on SQLite files of its own in a
    /// temporary directory (or --keep DIR), whatever --backend says.
    Demo(DemoArgs),
    /// Run the built-in tasks from the backend until SIGTERM or Ctrl-C.
    #[command(after_help = LOG_HELP)]
    Worker(WorkerArgs),
    /// Enqueue a built-in task.
    Submit(SubmitArgs),
    /// The backend's exact counts.
    Stats,
    /// One task's (or job's) whole record.
    Inspect {
        /// The task or job id.
        id: String,
    },
    /// Tasks, oldest first.
    List(ListArgs),
    /// Requeue a dead task with a fresh set of attempts.
    Retry {
        /// The dead task's id.
        id: String,
    },
    /// Cancel a task that has not started.
    Cancel {
        /// The task's id.
        id: String,
    },
    /// Delete finished tasks (and the jobs they ended) from the backend.
    Purge(PurgeArgs),
}

/// `workmill demo`.
#[derive(Clone, Debug, Args)]
pub struct DemoArgs {
    /// Size of the generated word-count corpus: bytes, or with a unit (512KB, 4MB, 1GB).
    #[arg(long, default_value = "8MB", value_parser = parse_size)]
    pub size: usize,
    /// Size of each map's chunk of the corpus (same units).
    #[arg(long, default_value = "1MB", value_parser = parse_size)]
    pub chunk: usize,
    /// Worker threads of the demo's runtimes.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// Tasks per simulated load-balancing run (at least 2000: fewer cannot tell the strategies'
    /// tails apart).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(2000..))]
    pub balance_tasks: u32,
    /// Seed of the corpus, the unreliable tasks' failures and the simulator.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Keep the demo's files (tasks.db, wordcount.db, corpus.txt) in this directory, created
    /// if missing, instead of a temporary one. Refused before any work if DIR already holds any
    /// of them: the demo never overwrites a file, so give each run its own directory.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// `workmill worker`.
#[derive(Clone, Debug, Args)]
pub struct WorkerArgs {
    /// Tasks run at once (worker threads).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// Lease length in seconds; heartbeats keep it alive while a task runs.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub lease_secs: u64,
    /// Stop once no task is pending, retrying or running (instead of waiting for more).
    #[arg(long)]
    pub until_idle: bool,
}

/// `workmill submit`.
#[derive(Clone, Debug, Args)]
pub struct SubmitArgs {
    /// A built-in task: square, echo, sleep, fail, flaky, words.count (with or without `demo.`).
    pub task: String,
    /// Its input as JSON (`12`, `'"text"'`, `'{"key":1,"failure_rate":0.7}'`); text that is not
    /// JSON is taken as a string.
    #[arg(default_value = "null")]
    pub input: String,
    /// Priority: lower runs first (high 1, normal 5, low 10).
    #[arg(long, default_value_t = 5)]
    pub priority: u16,
    /// Retries after a failed first attempt (attempts = retries + 1).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub retries: u32,
    /// Priority levels a task drops by at each retry (the seed's is 10).
    #[arg(long, default_value_t = 0)]
    pub demote: u16,
    /// Milliseconds before the first attempt may start.
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// The task's id (an idempotency key: a second submit with it is refused); generated if absent.
    #[arg(long)]
    pub id: Option<String>,
}

/// A status on the command line; `failed` is the dead letters' other name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Waiting for a worker.
    Pending,
    /// Reserved by a worker.
    Running,
    /// Waiting out a retry backoff.
    Retrying,
    /// Finished with a result.
    Completed,
    /// Out of attempts or failed permanently.
    Dead,
    /// The same as `dead`: tasks that failed for good.
    Failed,
    /// Cancelled before it ran.
    Cancelled,
}

impl StatusArg {
    /// The task status it names.
    pub fn status(self) -> TaskStatus {
        match self {
            StatusArg::Pending => TaskStatus::Pending,
            StatusArg::Running => TaskStatus::Running,
            StatusArg::Retrying => TaskStatus::Retrying,
            StatusArg::Completed => TaskStatus::Completed,
            StatusArg::Dead | StatusArg::Failed => TaskStatus::Dead,
            StatusArg::Cancelled => TaskStatus::Cancelled,
        }
    }
}

/// `workmill list`.
#[derive(Clone, Debug, Args)]
pub struct ListArgs {
    /// Only tasks in these statuses (repeat, or separate with commas); all when absent.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub status: Vec<StatusArg>,
    /// At most this many tasks.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub limit: u32,
}

/// `workmill purge`.
#[derive(Clone, Debug, Args)]
pub struct PurgeArgs {
    /// Only these finished statuses (completed, dead/failed, cancelled); all three when absent.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub status: Vec<StatusArg>,
}

/// Reads a size: a number of bytes, or a number with `B`, `KB`, `MB` or `GB` (powers of 1024,
/// case-insensitive, `K`/`M`/`G` alone too).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        format!("{text:?} is not a size; write bytes or a number with KB, MB or GB")
    })?;
    let scale = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit {other:?}; use B, KB, MB or GB")),
    };
    let bytes = number * scale;
    if !(1.0..=64.0 * 1024.0 * 1024.0 * 1024.0).contains(&bytes) {
        return Err(format!("{text:?} is out of range: from 1 byte to 64GB"));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_parse_with_and_without_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4KB"), Ok(4096));
        assert_eq!(parse_size("1.5mb"), Ok(1_572_864));
        assert_eq!(parse_size("2 M"), Ok(2 * 1024 * 1024));
        assert!(parse_size("MB").unwrap_err().contains("not a size"));
        assert!(parse_size("3TB").unwrap_err().contains("unknown size unit"));
        assert!(parse_size("0").unwrap_err().contains("out of range"));
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let cli =
            Cli::try_parse_from(["workmill", "stats", "--json", "--backend", "memory://"]).unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.backend, "memory://");
        let cli = Cli::try_parse_from(["workmill", "--json", "stats"]).unwrap();
        assert_eq!(cli.global.backend, DEFAULT_BACKEND);
    }

    #[test]
    fn statuses_repeat_or_split_and_failed_means_dead() {
        let cli = Cli::try_parse_from([
            "workmill",
            "list",
            "--status",
            "dead,pending",
            "--status",
            "failed",
        ])
        .unwrap();
        let Command::List(list) = cli.command else {
            panic!("not list")
        };
        let statuses: Vec<TaskStatus> = list.status.iter().map(|s| s.status()).collect();
        assert_eq!(
            statuses,
            [TaskStatus::Dead, TaskStatus::Pending, TaskStatus::Dead]
        );
        assert!(Cli::try_parse_from(["workmill", "list", "--status", "lost"]).is_err());
    }
}
