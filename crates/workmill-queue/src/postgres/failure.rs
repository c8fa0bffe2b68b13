//! The one rule for failed attempts of running tasks, shared by `fail`, the rescue of lapsed leases
//! and the dead-lettering of corrupt reservations: each task's `RetryPolicy::decide` sends it to
//! `retrying` after its backoff, or to `dead`; a batch is written in at most two statements.

use std::collections::{HashMap, HashSet};

use postgres::GenericClient;
use workmill_core::{
    FailOutcome, Failure, FailureKind, Priority, QueueError, RetryDecision, RetryPolicy, TaskId,
    TaskStatus, Timestamp,
};

use super::job_bookkeeping::{self, DeadTask};
use super::pool::{Settings, Statements};
use super::store::{micros, store_error};
use crate::stored::{Deltas, transition};

const OP: &str = "record failed attempts";

/// A failed attempt of a task that is `running` under `token`.
pub(crate) struct FailedAttempt {
    /// The id as stored, to address the row.
    pub(crate) stored_id: String,
    /// The id for results and messages.
    pub(crate) id: TaskId,
    /// The lease token the row holds. `None` only for a `running` row whose token is missing
    /// (a hand edit) that the caller has locked: it is then addressed as running with no token.
    pub(crate) token: Option<i64>,
    /// Attempts started, the failed one included.
    pub(crate) attempts_made: u32,
    pub(crate) priority: Priority,
    /// The task's policy, or why it cannot be read: then the task is dead-lettered as corrupt.
    pub(crate) policy: Result<RetryPolicy, String>,
    pub(crate) failure: Failure,
}

const RETRY: &str = "
UPDATE {s}.tasks AS t
SET status = 'retrying', priority = retry.priority, seq = nextval('{s}.task_arrivals'),
    run_at = retry.run_at, lease_token = NULL, lease_expires_at = NULL,
    last_error_kind = retry.kind, last_error_message = retry.message
FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::bigint[], $5::text[], $6::text[])
     AS retry(id, token, priority, run_at, kind, message)
WHERE t.id = retry.id AND t.status = 'running' AND t.lease_token IS NOT DISTINCT FROM retry.token
RETURNING t.id";

const DEAD: &str = "
UPDATE {s}.tasks AS t
SET status = 'dead', finished_at = $1, lease_token = NULL, lease_expires_at = NULL,
    last_error_kind = dead.kind, last_error_message = dead.message
FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[]) AS dead(id, token, kind, message)
WHERE t.id = dead.id AND t.status = 'running' AND t.lease_token IS NOT DISTINCT FROM dead.token
RETURNING t.id, t.job_id";

/// Applies each task's policy to its failed attempt and writes the outcomes, inside the
/// caller's transaction; returns one result per attempt, in order.
///
/// A row no longer `running` under the attempt's token is left alone and reported as
/// [`QueueError::LeaseLost`]; `deltas` counts only the rows that moved. A retry re-enters
/// the line behind the tasks already waiting at its (possibly demoted) priority. A task of a
/// job that ends `Dead` fails its job here too, in the same transaction.
pub(crate) fn record_failures(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    failed: Vec<FailedAttempt>,
    now: Timestamp,
    deltas: &mut Deltas,
) -> Result<Vec<Result<FailOutcome, QueueError>>, QueueError> {
    let mut planned = Vec::with_capacity(failed.len());
    let (mut retry, mut dead) = (Batch::default(), Batch::default());
    for attempt in failed {
        let (outcome, failure) = match attempt.policy {
            Err(detail) => (
                FailOutcome::Dead,
                Failure::new(FailureKind::Corrupt, detail),
            ),
            Ok(policy) => {
                let permanent = attempt.failure.kind.is_permanent();
                match policy.decide_now(attempt.attempts_made, permanent, attempt.priority) {
                    RetryDecision::Retry { delay, priority } => (
                        FailOutcome::Retrying {
                            run_at: now.saturating_add(delay),
                            priority,
                        },
                        attempt.failure,
                    ),
                    RetryDecision::GiveUp => (FailOutcome::Dead, attempt.failure),
                }
            }
        };
        match outcome {
            FailOutcome::Retrying { run_at, priority } => {
                transition(&attempt.id, TaskStatus::Running, TaskStatus::Retrying)?;
                retry.push(&attempt.stored_id, attempt.token, &failure);
                retry.priorities.push(i32::from(priority.level()));
                retry.run_at.push(micros(run_at));
            }
            FailOutcome::Dead => {
                transition(&attempt.id, TaskStatus::Running, TaskStatus::Dead)?;
                dead.push(&attempt.stored_id, attempt.token, &failure);
                dead.failures.push(failure);
            }
        }
        planned.push((attempt.stored_id, attempt.id, attempt.token, outcome));
    }

    let mut moved = HashSet::new();
    let mut dead_in_jobs: Vec<(String, String)> = Vec::new();
    if !retry.ids.is_empty() {
        let update = statements
            .get(client, settings, RETRY)
            .map_err(store_error(OP))?;
        let rows = client
            .query(
                &update,
                &[
                    &retry.ids,
                    &retry.tokens,
                    &retry.priorities,
                    &retry.run_at,
                    &retry.kinds,
                    &retry.messages,
                ],
            )
            .map_err(store_error(OP))?;
        moved.extend(rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()));
    }
    if !dead.ids.is_empty() {
        let update = statements
            .get(client, settings, DEAD)
            .map_err(store_error(OP))?;
        let rows = client
            .query(
                &update,
                &[
                    &micros(now),
                    &dead.ids,
                    &dead.tokens,
                    &dead.kinds,
                    &dead.messages,
                ],
            )
            .map_err(store_error(OP))?;
        for row in &rows {
            let id: String = row.try_get(0).map_err(store_error(OP))?;
            if let Some(job) = row
                .try_get::<_, Option<String>>(1)
                .map_err(store_error(OP))?
            {
                dead_in_jobs.push((id.clone(), job));
            }
            moved.insert(id);
        }
    }
    if !dead_in_jobs.is_empty() {
        let failures: HashMap<&str, &Failure> = dead
            .ids
            .iter()
            .map(String::as_str)
            .zip(&dead.failures)
            .collect();
        let dead_tasks: Vec<DeadTask<'_>> = dead_in_jobs
            .iter()
            .filter_map(|(id, job)| {
                Some(DeadTask {
                    task: id,
                    job,
                    failure: failures.get(id.as_str())?,
                })
            })
            .collect();
        job_bookkeeping::tasks_dead(client, statements, settings, &dead_tasks, now, deltas)
            .map_err(store_error(OP))?;
    }

    let mut outcomes = Vec::with_capacity(planned.len());
    for (stored_id, id, token, outcome) in planned {
        if !moved.contains(&stored_id) {
            outcomes.push(Err(QueueError::LeaseLost {
                id,
                token: token.and_then(|t| u64::try_from(t).ok()).unwrap_or(0),
            }));
            continue;
        }
        deltas.failed_attempts += 1;
        match outcome {
            FailOutcome::Retrying { .. } => {
                deltas.moved(TaskStatus::Running, TaskStatus::Retrying);
                deltas.retried += 1;
            }
            FailOutcome::Dead => deltas.moved(TaskStatus::Running, TaskStatus::Dead),
        }
        outcomes.push(Ok(outcome));
    }
    Ok(outcomes)
}

/// The failed attempts going one way, one array per column.
#[derive(Default)]
struct Batch {
    ids: Vec<String>,
    tokens: Vec<Option<i64>>,
    kinds: Vec<&'static str>,
    messages: Vec<String>,
    priorities: Vec<i32>,
    run_at: Vec<i64>,
    /// Each dead task's failure, for its job.
    failures: Vec<Failure>,
}

impl Batch {
    fn push(&mut self, stored_id: &str, token: Option<i64>, failure: &Failure) {
        self.ids.push(stored_id.to_owned());
        self.tokens.push(token);
        self.kinds.push(failure.kind.as_str());
        self.messages.push(failure.message.clone());
    }
}
