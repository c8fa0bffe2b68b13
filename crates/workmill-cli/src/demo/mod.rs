//! `workmill demo`: the three things workmill does, each run for real and checked, on the
//! embedded default backend (SQLite files in a temporary directory, no server):
//!
//! - (a) word count as a map-reduce job through the Runtime, against the sequential count;
//! - (b) the seed's priority and retry scenario through the Runtime;
//! - (c) round-robin against the default balancing strategy on the seed's heterogeneous
//!   workers, in workmill-balance's simulator.
//!
//! It prints a summary table (or JSON with `--json`) and fails if any check failed.

mod balance;
mod checks;
mod priority;
mod progress;
mod wordcount;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::cli::DemoArgs;
use crate::commands::Output;
use crate::commands::stats_table;
use crate::error::CliError;
use crate::table;

pub use balance::{BalanceReport, BalanceRow};
pub use checks::Check;
pub use priority::{PriorityReport, TaskOutcome};
pub use wordcount::WordCountReport;

/// Everything the demo measured and checked; `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct DemoSummary {
    /// Whether every check held.
    pub passed: bool,
    /// Wall time of the whole demo, in milliseconds.
    pub wall_ms: f64,
    /// The backend the Runtime steps ran on.
    pub backend: String,
    /// Step (a).
    pub wordcount: WordCountReport,
    /// Step (b).
    pub priority: PriorityReport,
    /// Step (c).
    pub balance: BalanceReport,
    /// Every check, in the order made.
    pub checks: Vec<Check>,
}

/// Step (a)'s corpus, which its maps read.
const CORPUS_FILE: &str = "corpus.txt";
/// Step (a)'s SQLite file.
const WORDCOUNT_DB: &str = "wordcount.db";
/// Step (b)'s SQLite file.
const TASKS_DB: &str = "tasks.db";

/// The demo's files already in `dir`: its corpus and SQLite files, with their journals.
///
/// `--keep DIR` must hold none. Step (b) submits the seed's fixed task ids, so on an earlier
/// run's `tasks.db` it fails, after the whole word count, with a taken id; and the corpus
/// would overwrite a `corpus.txt` that may be the user's. A dangling link counts as a file:
/// writing through it would create one where the user did not ask.
fn files_in_the_way(dir: &Path) -> Vec<PathBuf> {
    let mut names = vec![CORPUS_FILE.to_owned()];
    for db in [WORDCOUNT_DB, TASKS_DB] {
        names.extend(["", "-wal", "-shm", "-journal"].map(|suffix| format!("{db}{suffix}")));
    }
    names
        .into_iter()
        .map(|name| dir.join(name))
        .filter(|path| path.symlink_metadata().is_ok())
        .collect()
}

/// Runs the demo and prints its summary; an error if a step could not run or a check failed.
pub fn run(args: &DemoArgs, output: &mut Output<'_>) -> Result<(), CliError> {
    let start = Instant::now();
    let temporary;
    let dir: &Path = match &args.keep {
        Some(dir) => {
            // Before any work, and without deleting anything: the files may be the user's.
            let taken = files_in_the_way(dir);
            if !taken.is_empty() {
                let taken: Vec<String> = taken.iter().map(|p| p.display().to_string()).collect();
                return Err(CliError::Usage(format!(
                    "--keep {} already holds files the demo writes ({}); the demo does not \
                     overwrite them: remove them, or keep this run in another directory",
                    dir.display(),
                    taken.join(", ")
                )));
            }
            std::fs::create_dir_all(dir).map_err(|error| {
                CliError::Usage(format!("cannot create {}: {error}", dir.display()))
            })?;
            dir
        }
        None => {
            temporary = tempfile::tempdir().map_err(|error| {
                CliError::Demo(format!("cannot create a temporary directory: {error}"))
            })?;
            temporary.path()
        }
    };
    let progress = progress::Progress::new(output.json);
    let say = |text: &str| {
        if progress.shown() {
            eprintln!("{text}");
        }
    };
    say("(a) word count as a map-reduce job on SQLite ...");
    let (wordcount, mut checks) = wordcount::run(dir, args, &progress)?;
    say("(b) the seed's priorities and retries on SQLite ...");
    let (priority, priority_checks) = priority::run(dir, args, &progress)?;
    checks.extend(priority_checks);
    say("(c) load balancing over the seed's workers, simulated ...");
    let (balance, balance_checks) = balance::run(args);
    checks.extend(balance_checks);

    let summary = DemoSummary {
        passed: checks.iter().all(|check| check.passed),
        wall_ms: start.elapsed().as_secs_f64() * 1000.0,
        backend: format!(
            "sqlite (files in {})",
            if args.keep.is_some() {
                dir.display().to_string()
            } else {
                "a temporary directory".to_owned()
            }
        ),
        wordcount,
        priority,
        balance,
        checks,
    };
    output.emit(&summary, || render(&summary))?;
    if summary.passed {
        Ok(())
    } else {
        let failed = summary.checks.iter().filter(|check| !check.passed).count();
        Err(CliError::Demo(format!(
            "{failed} of {} demo checks failed; see the table above",
            summary.checks.len()
        )))
    }
}

/// `sqlite://` and the path.
fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// The summary as text: one section per step, then the checks.
pub fn render(summary: &DemoSummary) -> String {
    let mut out = String::new();
    let wc = &summary.wordcount;
    out.push_str(&format!(
        "(a) word count, map-reduce job on {} threads over {}\n\
         \x20   corpus {:.1} MB, {} words, {} distinct; {} maps of the Runtime's job\n\
         \x20   sequential {:.0} ms, job {:.0} ms: speedup {:.2}x{}\n\
         \x20   in process (map_reduce_by_key, text in memory): sequential {:.0} ms, parallel {:.0} ms: speedup {:.2}x\n\
         \x20   top words: {}\n\n",
        wc.threads,
        summary.backend,
        wc.corpus_bytes as f64 / (1024.0 * 1024.0),
        wc.words,
        wc.distinct_words,
        wc.maps,
        wc.sequential_ms,
        wc.job_ms,
        wc.speedup,
        if wc.speedup < 1.0 {
            " (each map's partial counts go through SQLite to one reduce that merges \
             them; a count this small does not repay that on this machine)"
        } else {
            ""
        },
        wc.in_process_sequential_ms,
        wc.in_process_ms,
        wc.in_process_speedup,
        wc.top_words
            .iter()
            .map(|(word, count)| format!("{word} {count}"))
            .collect::<Vec<_>>()
            .join(", "),
    ));

    let rows: Vec<Vec<String>> = summary
        .priority
        .tasks
        .iter()
        .map(|task| {
            vec![
                task.id.clone(),
                task.submitted_priority.to_string(),
                task.final_priority.to_string(),
                task.attempts.to_string(),
                task.status.clone(),
            ]
        })
        .collect();
    out.push_str(&format!(
        "(b) priorities and retries (70% failing, 3 attempts, +10 per retry) in {:.0} ms\n",
        summary.priority.elapsed_ms
    ));
    out.push_str(&indent(&table::render(
        &["TASK", "PRIORITY", "FINAL", "ATTEMPTS", "STATUS"],
        &rows,
    )));
    out.push_str("    final stats:\n");
    out.push_str(&indent(&indent(&stats_table(&summary.priority.stats))));
    out.push('\n');

    out.push_str("(c) load balancing over the seed's workers (simulated, virtual seconds)\n");
    out.push_str(&format!(
        "    workers: {}\n",
        summary.balance.workers.join(", ")
    ));
    let rows: Vec<Vec<String>> = summary
        .balance
        .runs
        .iter()
        .map(|run| {
            vec![
                run.scenario.clone(),
                run.strategy.clone(),
                format!("{:.2}", run.p50_s),
                format!("{:.2}", run.p99_s),
                format!("{:.1}", run.makespan_s),
                format!("{}", run.completed),
                match run.stable {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "-",
                }
                .to_owned(),
            ]
        })
        .collect();
    out.push_str(&indent(&table::render(
        &[
            "ARRIVALS",
            "STRATEGY",
            "P50 S",
            "P99 S",
            "MAKESPAN S",
            "COMPLETED",
            "STABLE",
        ],
        &rows,
    )));
    out.push('\n');

    let rows: Vec<Vec<String>> = summary
        .checks
        .iter()
        .map(|check| {
            vec![
                check.step.to_owned(),
                if check.passed { "pass" } else { "FAIL" }.to_owned(),
                check.name.clone(),
                check.detail.clone(),
            ]
        })
        .collect();
    out.push_str("summary\n");
    out.push_str(&indent(&table::render(
        &["STEP", "RESULT", "CHECK", "MEASURED"],
        &rows,
    )));
    let passed = summary.checks.iter().filter(|check| check.passed).count();
    out.push_str(&format!(
        "\n{passed} of {} checks passed in {:.1} s\n",
        summary.checks.len(),
        summary.wall_ms / 1000.0
    ));
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("    {line}\n")).collect()
}
