//! Complete: a batch of successful attempts recorded in one statement for plain tasks, and in one
//! transaction with their jobs' bookkeeping for the tasks of map-reduce jobs.

use std::collections::{HashMap, HashSet};

use workmill_core::{Lease, QueueError, TaskStatus, Timestamp};

use super::counters::{any_shard, evict_over_retention};
use super::job_bookkeeping::{self, CompletedTask};
use super::lease::not_held;
use super::pool::{Session, Settings, Statements};
use super::store::{micros, sql_token, store_error};
use super::wakeup::notify;
use crate::stored::{Deltas, transition};

/// Completes every held lease of the batch whose task belongs to no job, applies the retention
/// bound, counts, and wakes waiters, in one statement and so one round trip and one commit.
/// A job's tasks are left for [`COMPLETE_JOB_TASKS`], whose bookkeeping needs a transaction.
///
/// `evicted` sees the table as it was before this statement, so the records completed here are
/// not among its candidates; once over the bound it drops the excess and a slack of 1/64 of the
/// bound more (`$8`); `counted` adds both moves to one shard. See `evict_over_retention` in
/// `counters.rs` for the slack and for how concurrent evictions stay out of each other's way.
///
/// It returns the id and the token of each lease it completed, both in id order so that they
/// pair up: a batch may name one task under two leases, and only one of them completed it.
const COMPLETE: &str = "
WITH done AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS done(id, token, result)
), completed AS (
    UPDATE {s}.tasks AS t
    SET status = 'completed', finished_at = $4, result = done.result,
        lease_token = NULL, lease_expires_at = NULL
    FROM done
    WHERE t.id = done.id AND t.status = 'running' AND t.lease_token = done.token
        AND t.job_id IS NULL
    RETURNING t.id, done.token
), evicted AS (
    DELETE FROM {s}.tasks WHERE id IN (
        SELECT id FROM {s}.tasks
        WHERE status IN ('completed', 'dead', 'cancelled')
        ORDER BY finished_at, submission
        LIMIT (SELECT CASE WHEN $5::bigint IS NOT NULL AND excess > 0 THEN excess + $8::bigint
                           ELSE 0 END
               FROM (SELECT (SELECT coalesce(sum(retained_finished), 0) FROM {s}.queue_counters)
                            + (SELECT count(*) FROM completed) - $5::bigint AS excess) AS over)::bigint
        FOR UPDATE SKIP LOCKED)
    RETURNING 1
), counted AS (
    UPDATE {s}.queue_counters
    SET running = running - finished.n, completed = completed + finished.n,
        retained_finished = retained_finished + finished.n - dropped.n,
        evicted = evicted + dropped.n
    FROM (SELECT count(*) AS n FROM completed) AS finished,
         (SELECT count(*) AS n FROM evicted) AS dropped
    WHERE shard = $6 AND finished.n + dropped.n > 0
)
SELECT array(SELECT id FROM completed ORDER BY id),
       array(SELECT token FROM completed ORDER BY id),
       CASE WHEN EXISTS (SELECT 1 FROM completed) THEN pg_notify($7, '') END";

/// Records several successful attempts; each entry reports its own task.
///
/// Plain tasks, the common case, are completed by one statement ([`COMPLETE`]). Leases it
/// did not complete are either tasks of a job or no longer held: they go to one transaction
/// that completes the held ones and keeps their jobs' books ([`complete_job_tasks`]). Each
/// completion is recorded with its job's bookkeeping or not at all.
///
/// What was completed is matched to the entries by lease, id *and* token: a batch may hold a
/// stale lease of a task beside the task's current lease (its first lease lapsed, was rescued
/// and the task reserved again), and only the current one completed it.
///
/// The outer error means nothing was recorded, as the trait says: it is returned only while
/// nothing has committed. Once a statement has committed completions, a later failure (of
/// the job transaction, or of the look-up that tells a lost lease from a missing task) is
/// reported on the entries it leaves unsettled, and the committed ones stay `Ok`.
pub(crate) fn complete_all(
    session: &mut Session,
    done: Vec<(Lease, Vec<u8>)>,
) -> Result<Vec<Result<(), QueueError>>, QueueError> {
    const OP: &str = "complete tasks";
    if done.is_empty() {
        return Ok(Vec::new());
    }
    // The same lease twice in one batch completes once; the second entry finds it gone.
    let mut first = HashSet::with_capacity(done.len());
    let repeated: Vec<bool> = done
        .iter()
        .map(|(lease, _)| !first.insert((lease.task.as_str(), lease.token)))
        .collect();
    let (mut ids, mut tokens, mut results) = (Vec::new(), Vec::new(), Vec::new());
    for ((lease, result), &again) in done.iter().zip(&repeated) {
        transition(&lease.task, TaskStatus::Running, TaskStatus::Completed)?;
        if !again {
            ids.push(lease.task.as_str());
            tokens.push(sql_token(lease.token));
            results.push(result.as_slice());
        }
    }
    let Session {
        client,
        statements,
        settings,
    } = session;
    let update = statements
        .get(client, settings, COMPLETE)
        .map_err(store_error(OP))?;
    let row = client
        .query_one(
            &update,
            &[
                &ids,
                &tokens,
                &results,
                &micros(Timestamp::now()),
                &settings.retention(),
                &any_shard(),
                &settings.done_channel,
                &settings.retention_slack(),
            ],
        )
        .map_err(store_error(OP))?;
    let plain_ids: Vec<String> = row.try_get(0).map_err(store_error(OP))?;
    let plain_tokens: Vec<i64> = row.try_get(1).map_err(store_error(OP))?;
    // Both arrays are in id order, and a task is completed at most once: they pair up.
    let mut completed: HashSet<(&str, i64)> = plain_ids
        .iter()
        .map(String::as_str)
        .zip(plain_tokens.iter().copied())
        .collect();
    let missed: Vec<(&Lease, &[u8])> = done
        .iter()
        .zip(&repeated)
        .filter(|((lease, _), again)| !**again && !completed.contains(&lease_key(lease)))
        .map(|((lease, result), _)| (lease, result.as_slice()))
        .collect();
    let mut job_failure = None;
    let mut by_jobs = Vec::new();
    if !missed.is_empty() {
        match complete_job_tasks(client, statements, settings, &missed) {
            Ok(more) => by_jobs = more,
            // Nothing was recorded: the caller may write the whole batch again.
            Err(err) if completed.is_empty() => return Err(err),
            Err(err) => job_failure = Some(err.to_string()),
        }
    }
    completed.extend(by_jobs.iter().map(|(id, token)| (id.as_str(), *token)));
    // When that transaction failed, every lease it was given carries its failure instead.
    let unheld: Vec<&Lease> = done
        .iter()
        .zip(&repeated)
        .filter(|((lease, _), again)| {
            **again || (job_failure.is_none() && !completed.contains(&lease_key(lease)))
        })
        .map(|((lease, _), _)| lease)
        .collect();
    let reasons = if unheld.is_empty() {
        Ok(Vec::new())
    } else {
        not_held(client, statements, settings, &unheld, OP)
    };
    outcomes(
        &done,
        &repeated,
        &completed,
        job_failure.as_deref(),
        reasons,
    )
}

/// A lease as the statements return what they completed: its id and its token as stored.
fn lease_key(lease: &Lease) -> (&str, i64) {
    (lease.task.as_str(), sql_token(lease.token))
}

/// Each entry's outcome, in order: `Ok` for the leases in `completed`; the failure of the job
/// transaction (`job_failure`) for the others it was given; and for the rest (repeats and
/// leases no longer held) the reason `reasons` gives, in the order they were asked about.
///
/// When that look-up failed, its error is the outer error only if nothing was completed;
/// otherwise completions have committed, and the entries it could not settle carry it.
fn outcomes(
    done: &[(Lease, Vec<u8>)],
    repeated: &[bool],
    completed: &HashSet<(&str, i64)>,
    job_failure: Option<&str>,
    reasons: Result<Vec<QueueError>, QueueError>,
) -> Result<Vec<Result<(), QueueError>>, QueueError> {
    const OP: &str = "complete tasks";
    let (mut reasons, lookup_failure) = match reasons {
        Ok(reasons) => (reasons.into_iter(), None),
        Err(err) if completed.is_empty() && job_failure.is_none() => return Err(err),
        Err(err) => (Vec::new().into_iter(), Some(err.to_string())),
    };
    Ok(done
        .iter()
        .zip(repeated)
        .map(|((lease, _), &again)| {
            if !again && completed.contains(&lease_key(lease)) {
                Ok(())
            } else if let (Some(why), false) = (job_failure, again) {
                Err(QueueError::backend(
                    super::store::BACKEND,
                    OP,
                    why.to_owned(),
                ))
            } else if let Some(why) = &lookup_failure {
                Err(QueueError::backend(super::store::BACKEND, OP, why.clone()))
            } else {
                Err(reasons.next().unwrap_or(QueueError::LeaseLost {
                    id: lease.task.clone(),
                    token: lease.token,
                }))
            }
        })
        .collect())
}

/// Completes the held leases that [`COMPLETE`] left: tasks of jobs, and any task a purge
/// unlinked from its job between the two statements (its `job_id` is then NULL, and it is
/// completed as a plain task); the retention bound, the counts and the waiters' wake-up are
/// those of [`COMPLETE`], done step by step in the transaction.
const COMPLETE_JOB_TASKS: &str = "
UPDATE {s}.tasks AS t
SET status = 'completed', finished_at = $4, result = done.result,
    lease_token = NULL, lease_expires_at = NULL
FROM unnest($1::text[], $2::bigint[], $3::bytea[]) AS done(id, token, result)
WHERE t.id = done.id AND t.status = 'running' AND t.lease_token = done.token
RETURNING t.id, t.job_id, done.token";

/// Completes the leases in `missed` that are held tasks of jobs, with their jobs' bookkeeping,
/// in one transaction; returns the leases completed, as id and stored token.
fn complete_job_tasks(
    client: &mut postgres::Client,
    statements: &mut Statements,
    settings: &Settings,
    missed: &[(&Lease, &[u8])],
) -> Result<Vec<(String, i64)>, QueueError> {
    const OP: &str = "complete tasks of jobs";
    let now = Timestamp::now();
    let ids: Vec<&str> = missed
        .iter()
        .map(|(lease, _)| lease.task.as_str())
        .collect();
    let tokens: Vec<i64> = missed
        .iter()
        .map(|(lease, _)| sql_token(lease.token))
        .collect();
    let results: Vec<&[u8]> = missed.iter().map(|(_, result)| *result).collect();
    let mut tx = client.transaction().map_err(store_error(OP))?;
    let update = statements
        .get(&mut tx, settings, COMPLETE_JOB_TASKS)
        .map_err(store_error(OP))?;
    let rows = tx
        .query(&update, &[&ids, &tokens, &results, &micros(now)])
        .map_err(store_error(OP))?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut completed = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get(0).map_err(store_error(OP))?;
        let job: Option<String> = row.try_get(1).map_err(store_error(OP))?;
        let token: i64 = row.try_get(2).map_err(store_error(OP))?;
        completed.push((id, job, token));
    }
    // Keyed by lease, not by id: a result belongs to the reservation that produced it.
    let by_lease: HashMap<(&str, i64), &[u8]> = ids
        .iter()
        .copied()
        .zip(tokens.iter().copied())
        .zip(results.iter().copied())
        .collect();
    let tasks: Vec<CompletedTask<'_>> = completed
        .iter()
        .filter_map(|(id, job, token)| {
            Some(CompletedTask {
                task: id,
                job: job.as_ref()?,
                result: by_lease
                    .get(&(id.as_str(), *token))
                    .copied()
                    .unwrap_or_default(),
            })
        })
        .collect();
    let mut deltas = Deltas::default();
    for _ in &completed {
        deltas.moved(TaskStatus::Running, TaskStatus::Completed);
    }
    job_bookkeeping::tasks_completed(&mut tx, statements, settings, &tasks, now, &mut deltas)
        .map_err(store_error(OP))?;
    evict_over_retention(&mut tx, statements, settings, &mut deltas)?;
    deltas.add_to_shard(&mut tx, statements, settings)?;
    notify(&mut tx, statements, settings, &settings.done_channel)?;
    tx.commit().map_err(store_error(OP))?;
    Ok(completed
        .into_iter()
        .map(|(id, _, token)| (id, token))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use workmill_core::{Lease, QueueError, TaskId, Timestamp};

    use super::outcomes;

    fn lease(id: &str, token: u64) -> (Lease, Vec<u8>) {
        let lease = Lease {
            task: TaskId::new(id).unwrap(),
            token,
            expires_at: Timestamp::EPOCH,
        };
        (lease, Vec::new())
    }

    fn lookup_failed() -> Result<Vec<QueueError>, QueueError> {
        Err(QueueError::backend(
            "postgres",
            "complete tasks",
            "connection closed",
        ))
    }

    /// A failed look-up after completions committed leaves them `Ok` and reports the entries
    /// it could not settle, instead of an outer error that would say nothing was recorded.
    #[test]
    fn a_failed_look_up_after_a_commit_is_reported_per_entry() {
        let done = [lease("a", 1), lease("b", 2), lease("a", 1)];
        let repeated = [false, false, true];
        let completed: HashSet<(&str, i64)> = [("a", 1)].into_iter().collect();
        let outcomes = outcomes(&done, &repeated, &completed, None, lookup_failed())
            .expect("completions committed: no outer error");
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
        for at in [1, 2] {
            assert!(
                matches!(&outcomes[at], Err(error) if error.is_transient()
                    && error.to_string().contains("connection closed")),
                "entry {at}: {:?}",
                outcomes[at]
            );
        }
    }

    /// With nothing committed, the look-up's failure is the outer error: nothing was recorded.
    #[test]
    fn a_failed_look_up_with_nothing_committed_is_the_outer_error() {
        let done = [lease("a", 1)];
        let outcomes = outcomes(&done, &[false], &HashSet::new(), None, lookup_failed());
        assert!(
            matches!(outcomes, Err(QueueError::Backend { .. })),
            "{outcomes:?}"
        );
    }

    /// A lease is matched by id and token: the stale lease of a completed task is not `Ok`.
    #[test]
    fn outcomes_match_leases_by_id_and_token() {
        let done = [lease("a", 5), lease("a", 7)];
        let completed: HashSet<(&str, i64)> = [("a", 7)].into_iter().collect();
        let lost = QueueError::LeaseLost {
            id: TaskId::new("a").unwrap(),
            token: 5,
        };
        let outcomes =
            outcomes(&done, &[false, false], &completed, None, Ok(vec![lost])).expect("outcomes");
        assert!(
            matches!(&outcomes[0], Err(QueueError::LeaseLost { token: 5, .. })),
            "{:?}",
            outcomes[0]
        );
        assert!(outcomes[1].is_ok(), "{:?}", outcomes[1]);
    }
}
