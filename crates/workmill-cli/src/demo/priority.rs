//! Demo step (b): the seed's priority and retry scenario through the Runtime on SQLite:
//! 3 high and 3 low priority tasks, 3 unreliable ones failing 70% of their attempts with
//! 3 attempts each and a demotion of 10 priority levels per retry.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use workmill::{Backoff, Priority, QueueStats, RetryPolicy, Runtime, Shutdown, TaskId, TaskStatus};

use super::checks::{Check, Checks};
use super::progress::Progress;
use super::{TASKS_DB, sqlite_url};
use crate::builtin::{self, Flaky};
use crate::cli::DemoArgs;
use crate::error::CliError;

/// The seed's unreliable tasks fail this share of their attempts.
const FAILURE_RATE: f64 = 0.7;
/// The seed's `max_retries = 3`: three attempts in all.
const MAX_ATTEMPTS: u32 = 3;
/// The seed's `task.priority += 10` at each retry.
const DEMOTION: u16 = 10;
/// Simulated work per attempt.
const WORK_MS: u64 = 20;
/// The wait before a retry; the seed's doubles from 2 s, which would only slow the demo.
const BACKOFF: Duration = Duration::from_millis(50);
/// How long the scenario may take before the demo gives up on it.
const TIMEOUT: Duration = Duration::from_secs(120);

/// One task of the scenario and how it ended.
#[derive(Clone, Debug, Serialize)]
pub struct TaskOutcome {
    /// The seed's task id (`high_priority_0`, `unreliable_2`, ...).
    pub id: String,
    /// Its priority at submit.
    pub submitted_priority: u16,
    /// Its priority at the end, after demotions.
    pub final_priority: u16,
    /// Attempts it took.
    pub attempts: u32,
    /// `completed` or `dead`.
    pub status: String,
    /// The attempts and end the failure draws predict.
    pub predicted: String,
}

/// What the priority step measured.
#[derive(Clone, Debug, Serialize)]
pub struct PriorityReport {
    /// Every task, in submission order.
    pub tasks: Vec<TaskOutcome>,
    /// The backend's final counts.
    pub stats: QueueStats,
    /// Wall time of the scenario, in milliseconds.
    pub elapsed_ms: f64,
}

/// The scenario's tasks: the seed's ids, priorities and failure rates.
///
/// The nine keys are `seed * 10` plus 0 to 8, wrapping: any `--seed` is accepted, and a
/// wrapped key is as good a key as any (keys only seed the failure draws).
fn scenario(seed: u64) -> Vec<(String, Priority, Flaky)> {
    let base = seed.wrapping_mul(10);
    let task = |offset: u64, failure_rate: f64| Flaky {
        key: base.wrapping_add(offset),
        failure_rate,
        work_ms: WORK_MS,
    };
    let mut tasks = Vec::new();
    for i in 0..3u64 {
        tasks.push((format!("high_priority_{i}"), Priority::HIGH, task(i, 0.0)));
    }
    for i in 0..3u64 {
        tasks.push((format!("low_priority_{i}"), Priority::LOW, task(3 + i, 0.0)));
    }
    for i in 0..3u64 {
        tasks.push((
            format!("unreliable_{i}"),
            Priority::NORMAL,
            task(6 + i, FAILURE_RATE),
        ));
    }
    tasks
}

/// The attempts a task takes and whether it completes, from its failure draws alone.
fn predict(task: &Flaky) -> (u32, TaskStatus) {
    (1..=MAX_ATTEMPTS)
        .find(|&attempt| !task.fails(attempt))
        .map_or((MAX_ATTEMPTS, TaskStatus::Dead), |attempt| {
            (attempt, TaskStatus::Completed)
        })
}

/// Runs the step in `dir`.
pub(super) fn run(
    dir: &Path,
    args: &DemoArgs,
    progress: &Progress,
) -> Result<(PriorityReport, Vec<Check>), CliError> {
    let retry = RetryPolicy::new(MAX_ATTEMPTS)
        .backoff(Backoff::Fixed(BACKOFF))
        .jitter(0.0)
        .demote_by(DEMOTION);
    // Paused, so that every task waits before the first is taken, as in the seed, and one task
    // per reservation, so that reservations follow the priorities exactly.
    let runtime = Runtime::builder()
        .url(sqlite_url(&dir.join(TASKS_DB)))
        .threads(usize::from(args.threads))
        .max_batch(1)
        .registry(builtin::registry()?)
        .paused()
        .build()?;
    let tasks = scenario(args.seed);
    let start = Instant::now();
    for (id, priority, task) in &tasks {
        let id = TaskId::new(id).map_err(workmill::QueueError::from)?;
        runtime
            .submit(task.clone())
            .id(id)
            .priority(*priority)
            .retry(retry.clone())
            .send()?;
    }
    runtime.resume();
    let bar = progress.bar(tasks.len() as u64, "priorities and retries");
    loop {
        let stats = runtime.stats()?;
        bar.set_position(stats.finished());
        if stats.finished() >= tasks.len() as u64 || start.elapsed() > TIMEOUT {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed();

    let mut outcomes = Vec::new();
    let mut records = Vec::new();
    for (id, priority, task) in &tasks {
        let record = runtime.status(&TaskId::new(id).map_err(workmill::QueueError::from)?)?;
        let (attempts, status) = predict(task);
        outcomes.push(TaskOutcome {
            id: id.clone(),
            submitted_priority: priority.level(),
            final_priority: record.priority.level(),
            attempts: record.attempts,
            status: record.status.as_str().to_owned(),
            predicted: format!("{status} after {attempts}"),
        });
        records.push((record, attempts, status));
    }
    let stats = runtime.shutdown(Shutdown::Drain)?.stats;

    let mut checks = Checks::new("priority");
    let finished = outcomes
        .iter()
        .filter(|o| o.status == "completed" || o.status == "dead");
    checks.check(
        "every task ended completed or dead",
        finished.count() == tasks.len() && stats.is_consistent(),
        format!(
            "{} completed, {} dead of {}",
            stats.completed, stats.dead, stats.submitted
        ),
    );
    let unpredicted: Vec<&str> = records
        .iter()
        .filter(|(record, attempts, status)| {
            record.attempts != *attempts || record.status != *status
        })
        .map(|(record, ..)| record.id.as_str())
        .collect();
    checks.check(
        "each task took the attempts its failure draws predict (at most 3)",
        unpredicted.is_empty(),
        if unpredicted.is_empty() {
            format!(
                "{} failed attempts, {} retried",
                stats.failed_attempts, stats.retried
            )
        } else {
            format!("unexpected: {}", unpredicted.join(", "))
        },
    );
    let undemoted: Vec<&str> = outcomes
        .iter()
        .filter(|o| {
            let retries = u16::try_from(o.attempts.saturating_sub(1)).unwrap_or(u16::MAX);
            o.final_priority
                != o.submitted_priority
                    .saturating_add(DEMOTION.saturating_mul(retries))
        })
        .map(|o| o.id.as_str())
        .collect();
    checks.check(
        "each retry demoted its task by 10 priority levels",
        undemoted.is_empty(),
        if undemoted.is_empty() {
            let demoted: Vec<String> = outcomes
                .iter()
                .filter(|o| o.attempts > 1)
                .map(|o| format!("{} {}->{}", o.id, o.submitted_priority, o.final_priority))
                .collect();
            if demoted.is_empty() {
                "no task retried".to_owned()
            } else {
                demoted.join(", ")
            }
        } else {
            format!("not demoted as expected: {}", undemoted.join(", "))
        },
    );
    let started = |prefix: &str| {
        records
            .iter()
            .filter(|(record, ..)| record.id.as_str().starts_with(prefix))
            .filter_map(|(record, ..)| record.started_at)
            .collect::<Vec<_>>()
    };
    let (high, low) = (started("high_"), started("low_"));
    let ordered = high.len() == 3 && low.len() == 3 && high.iter().max() <= low.iter().min();
    checks.check(
        "every high priority task started before every low priority one",
        ordered,
        format!("{} high, {} low tasks started", high.len(), low.len()),
    );

    let report = PriorityReport {
        tasks: outcomes,
        stats,
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
    };
    Ok((report, checks.into_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenario_is_the_seeds() {
        let tasks = scenario(2026);
        assert_eq!(tasks.len(), 9);
        let at = |p: Priority| {
            tasks
                .iter()
                .filter(|(_, priority, _)| *priority == p)
                .count()
        };
        assert_eq!(
            (at(Priority::HIGH), at(Priority::LOW), at(Priority::NORMAL)),
            (3, 3, 3)
        );
        assert!(tasks[6..].iter().all(|(id, _, task)| {
            id.starts_with("unreliable_") && task.failure_rate == FAILURE_RATE
        }));
    }

    #[test]
    fn any_seed_makes_nine_keys_and_ordinary_seeds_keep_theirs() {
        let keys = |seed| {
            scenario(seed)
                .iter()
                .map(|(.., task)| task.key)
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(2026), (20_260..20_269).collect::<Vec<u64>>());
        assert_eq!(keys(0), (0..9).collect::<Vec<u64>>());
        // Past u64::MAX / 10 the keys wrap instead of overflowing (a panic in debug builds).
        let wrapped = keys(u64::MAX);
        assert_eq!(wrapped[0], u64::MAX.wrapping_mul(10));
        assert_eq!(wrapped[8], u64::MAX.wrapping_mul(10).wrapping_add(8));
        let mut distinct = wrapped.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 9, "{wrapped:?}");
        assert_eq!(keys(u64::MAX / 10 + 1).len(), 9);
    }

    #[test]
    fn predictions_follow_the_draws() {
        let always = Flaky {
            key: 1,
            failure_rate: 1.0,
            work_ms: 0,
        };
        assert_eq!(predict(&always), (3, TaskStatus::Dead));
        let never = Flaky {
            key: 1,
            failure_rate: 0.0,
            work_ms: 0,
        };
        assert_eq!(predict(&never), (1, TaskStatus::Completed));
    }
}
