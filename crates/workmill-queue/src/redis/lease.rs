//! The operations a lease holder performs (heartbeat, one or a batch; complete, fail, release)
//! and the rescue of lapsed leases; each script first checks that the task is still `running`
//! under the caller's token, so a worker whose lease was rescued gets `LeaseLost` and changes
//! nothing.

use std::time::Duration;

use redis::Value;
use workmill_core::{
    FailOutcome, Failure, FailureKind, Lease, Priority, QueueError, RetryDecision, TaskId,
    TaskStatus, Timestamp, Transition,
};

use super::RedisQueue;
use super::record::{number, parse_policy, priority, text};
use super::scripts::{COMPLETE, FAIL, HEARTBEAT, LAPSED, RELEASE, Reply, malformed};

/// How many lapsed leases one rescue script handles.
const RESCUE_BATCH: usize = 1_000;

/// Checks a move of a running task against the transition table.
fn from_running(id: &TaskId, to: TaskStatus) -> Result<Transition, QueueError> {
    TaskStatus::Running
        .transition(to)
        .map_err(|source| QueueError::IllegalTransition {
            id: id.clone(),
            source,
        })
}

/// Turns a lease check's refusal into the error the trait promises.
fn refused(lease: &Lease, verdict: &str, operation: &'static str) -> QueueError {
    match verdict {
        "missing" => QueueError::NotFound {
            id: lease.task.clone(),
        },
        "lost" => QueueError::LeaseLost {
            id: lease.task.clone(),
            token: lease.token,
        },
        other => malformed(operation, format_args!("verdict {other:?}")),
    }
}

/// A duration in microseconds for a script, capped at 2^52 (about 142 years) so that the
/// script's arithmetic on doubles stays exact and its integers never overflow.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).map_or(1 << 52, |us| us.min(1 << 52))
}

/// Extends the lease to `extend` from now (by the server's clock): a batch of one.
pub(crate) fn heartbeat(
    queue: &RedisQueue,
    lease: &Lease,
    extend: Duration,
) -> Result<Lease, QueueError> {
    const OP: &str = "extend a lease";
    extend_leases(queue, std::slice::from_ref(lease), extend, OP)?
        .pop()
        .ok_or_else(|| malformed(OP, "no verdict"))?
}

/// Extends every lease still held to `extend` from now (by the server's clock) in one
/// script, so that a worker's round of heartbeats is one round trip whatever it holds.
/// Each entry reports its own lease, in order, as [`heartbeat`] would.
pub(crate) fn heartbeat_all(
    queue: &RedisQueue,
    leases: &[Lease],
    extend: Duration,
) -> Result<Vec<Result<Lease, QueueError>>, QueueError> {
    extend_leases(queue, leases, extend, "extend leases")
}

/// Runs the heartbeat script over `leases`. A failure of the call, or a reply the script
/// does not give, fails the whole batch: the script may or may not have run, and running
/// it again is safe (a held lease is extended once more, the others are refused again).
fn extend_leases(
    queue: &RedisQueue,
    leases: &[Lease],
    extend: Duration,
    operation: &'static str,
) -> Result<Vec<Result<Lease, QueueError>>, QueueError> {
    if leases.is_empty() {
        return Ok(Vec::new());
    }
    let mut invocation = HEARTBEAT.prepare_invoke();
    invocation.arg(&queue.prefix).arg(micros(extend));
    for lease in leases {
        invocation.arg(lease.task.as_str()).arg(lease.token);
    }
    let reply: Value = queue.pool.run(operation, |con| invocation.invoke(con))?;
    let read = Reply::of(operation);
    let mut items = read.items(reply)?.into_iter();
    let expires = items
        .next()
        .ok_or_else(|| malformed(operation, "no expiry"))?;
    let expires_at = Timestamp::from_micros(read.uint(expires)?);
    if items.len() != leases.len() {
        return Err(malformed(
            operation,
            format_args!("{} verdicts for {} leases", items.len(), leases.len()),
        ));
    }
    let mut outcomes = Vec::with_capacity(leases.len());
    for (lease, verdict) in leases.iter().zip(items) {
        outcomes.push(match read.text(verdict)?.as_str() {
            "ok" => Ok(Lease {
                expires_at,
                ..lease.clone()
            }),
            other => match refused(lease, other, operation) {
                // A verdict the script does not give is a fault of the whole reply.
                error if error.is_transient() => return Err(error),
                error => Err(error),
            },
        });
    }
    Ok(outcomes)
}

/// Records several successful attempts in one script; each entry reports its own task.
pub(crate) fn complete_all(
    queue: &RedisQueue,
    done: Vec<(Lease, Vec<u8>)>,
) -> Result<Vec<Result<(), QueueError>>, QueueError> {
    const OP: &str = "complete tasks";
    if done.is_empty() {
        return Ok(Vec::new());
    }
    let mut invocation = COMPLETE.prepare_invoke();
    invocation
        .arg(&queue.prefix)
        .arg(queue.config.bound_arg())
        .arg(queue.config.age_arg());
    for (lease, result) in &done {
        invocation
            .arg(lease.task.as_str())
            .arg(lease.token)
            .arg(result);
    }
    let reply: Value = queue.pool.run(OP, |con| invocation.invoke(con))?;
    let read = Reply::of(OP);
    let verdicts = read.items(reply)?;
    if verdicts.len() != done.len() {
        return Err(malformed(
            OP,
            format_args!("{} verdicts for {} tasks", verdicts.len(), done.len()),
        ));
    }
    done.iter()
        .zip(verdicts)
        .map(|((lease, _), verdict)| {
            let verdict = read.text(verdict)?;
            Ok(match verdict.as_str() {
                "ok" => from_running(&lease.task, TaskStatus::Completed).map(drop),
                other => Err(refused(lease, other, OP)),
            })
        })
        .collect()
}

/// A failed attempt whose outcome was decided by the task's retry policy, to be applied by
/// the fail script if the lease is still what the decision assumed.
pub(crate) struct FailItem {
    /// The task id as stored (it may be unreadable as a `TaskId` when the record is damaged).
    pub(crate) id: String,
    pub(crate) token: u64,
    pub(crate) decision: RetryDecision,
    pub(crate) failure: Failure,
    /// A rescue of a lapsed lease: applied only if the lease is still lapsed.
    pub(crate) rescue: bool,
}

/// Applies decided failures in one script; returns each task's verdict: a retry's `run_at`
/// in microseconds, `dead`, `lost`, `missing` or `held`.
pub(crate) fn apply_failures(
    queue: &RedisQueue,
    items: &[FailItem],
) -> Result<Vec<String>, QueueError> {
    const OP: &str = "record a failed attempt";
    let mut invocation = FAIL.prepare_invoke();
    invocation
        .arg(&queue.prefix)
        .arg(queue.config.bound_arg())
        .arg(queue.config.age_arg());
    for item in items {
        invocation.arg(&item.id).arg(item.token);
        match item.decision {
            RetryDecision::Retry { delay, priority } => invocation
                .arg("retry")
                .arg(micros(delay))
                .arg(priority.level()),
            RetryDecision::GiveUp => invocation.arg("dead").arg(0).arg(0),
        };
        invocation
            .arg(item.failure.kind.as_str())
            .arg(&item.failure.message)
            .arg(if item.rescue { "1" } else { "0" });
    }
    let reply: Value = queue.pool.run(OP, |con| invocation.invoke(con))?;
    let read = Reply::of(OP);
    let verdicts = read
        .items(reply)?
        .into_iter()
        .map(|v| read.text(v))
        .collect::<Result<Vec<_>, _>>()?;
    if verdicts.len() != items.len() {
        return Err(malformed(
            OP,
            format_args!("{} verdicts for {} tasks", verdicts.len(), items.len()),
        ));
    }
    Ok(verdicts)
}

/// The state of a running task that a failure decision needs.
struct Held {
    attempts: u32,
    priority: Priority,
    retry: workmill_core::RetryPolicy,
}

fn held_state(attempts: &[u8], level: &[u8], retry: &[u8]) -> Result<Held, String> {
    Ok(Held {
        attempts: number("attempts", attempts)?,
        priority: priority(level)?,
        retry: parse_policy(text("retry", retry)?)?,
    })
}

/// The decision for a failed attempt, checked against the transition table.
fn decide(id: &TaskId, held: &Held, failure: &Failure) -> Result<RetryDecision, QueueError> {
    let decision = held
        .retry
        .decide_now(held.attempts, failure.kind.is_permanent(), held.priority);
    let to = match decision {
        RetryDecision::Retry { .. } => TaskStatus::Retrying,
        RetryDecision::GiveUp => TaskStatus::Dead,
    };
    from_running(id, to)?;
    Ok(decision)
}

/// Records a failed attempt; the task's policy decides between a retry and the dead-letter set.
///
/// The decision needs the task's attempts, priority and policy, so they are read first;
/// the script then applies it only if the task is still running under the same token,
/// which also proves that attempts and priority are as read (both change only with a new
/// token or none).
pub(crate) fn fail(
    queue: &RedisQueue,
    lease: &Lease,
    failure: Failure,
) -> Result<FailOutcome, QueueError> {
    const OP: &str = "record a failed attempt";
    let fields: Vec<Option<Vec<u8>>> = queue.pool.run(OP, |con| {
        redis::cmd("HMGET")
            .arg(queue.task_key(&lease.task))
            .arg(&["status", "token", "attempts", "priority", "retry"])
            .query(con)
    })?;
    let [status, token, attempts, level, retry] = <[Option<Vec<u8>>; 5]>::try_from(fields)
        .map_err(|_| malformed(OP, "HMGET returned the wrong number of fields"))?;
    let Some(status) = status else {
        return Err(refused(lease, "missing", OP));
    };
    let held_by_caller =
        status == b"running" && token.as_deref() == Some(lease.token.to_string().as_bytes());
    if !held_by_caller {
        return Err(refused(lease, "lost", OP));
    }
    let state = held_state(
        attempts.as_deref().unwrap_or_default(),
        level.as_deref().unwrap_or_default(),
        retry.as_deref().unwrap_or_default(),
    )
    .map_err(|detail| QueueError::Corrupt {
        id: lease.task.clone(),
        detail,
    })?;
    let decision = decide(&lease.task, &state, &failure)?;
    let item = FailItem {
        id: lease.task.as_str().to_owned(),
        token: lease.token,
        decision,
        failure,
        rescue: false,
    };
    let verdict = apply_failures(queue, std::slice::from_ref(&item))?
        .pop()
        .unwrap_or_default();
    match (verdict.as_str(), decision) {
        ("dead", RetryDecision::GiveUp) => Ok(FailOutcome::Dead),
        (run_at, RetryDecision::Retry { priority, .. })
            if run_at.bytes().all(|b| b.is_ascii_digit()) && !run_at.is_empty() =>
        {
            let run_at = run_at
                .parse::<u64>()
                .map_err(|_| malformed(OP, format_args!("run_at {run_at:?}")))?;
            Ok(FailOutcome::Retrying {
                run_at: Timestamp::from_micros(run_at),
                priority,
            })
        }
        (other, _) => Err(refused(lease, other, OP)),
    }
}

/// Hands an unstarted task back to `Pending` at its old place in line, uncounting the attempt.
pub(crate) fn release(queue: &RedisQueue, lease: &Lease) -> Result<(), QueueError> {
    const OP: &str = "release a task";
    from_running(&lease.task, TaskStatus::Pending)?;
    let reply: Value = queue.pool.run(OP, |con| {
        RELEASE
            .prepare_invoke()
            .arg(&queue.prefix)
            .arg(lease.task.as_str())
            .arg(lease.token)
            .invoke(con)
    })?;
    match Reply::of(OP).text(reply)?.as_str() {
        "ok" => Ok(()),
        other => Err(refused(lease, other, OP)),
    }
}

/// Treats every lapsed lease as a failed attempt of kind `LeaseExpired`, decided by the
/// task's policy; returns how many were rescued.
///
/// The lapsed leases are read first, the decisions made here, and the fail script applies
/// each only if the task is still running under the same token *and* its lease is still
/// lapsed: a heartbeat that arrived in between wins, and two rescuers never rescue one
/// lease twice.
pub(crate) fn rescue_expired(queue: &RedisQueue) -> Result<u64, QueueError> {
    const OP: &str = "rescue lapsed leases";
    let read = Reply::of(OP);
    let mut rescued = 0;
    loop {
        let reply: Value = queue.pool.run(OP, |con| {
            LAPSED
                .prepare_invoke()
                .arg(&queue.prefix)
                .arg(RESCUE_BATCH)
                .invoke(con)
        })?;
        let values = read.items(reply)?;
        if !values.len().is_multiple_of(6) {
            return Err(malformed(OP, format_args!("{} values", values.len())));
        }
        let found = values.len() / 6;
        let mut items = Vec::with_capacity(found);
        let mut values = values.into_iter();
        while let Some(id) = values.next() {
            let id = read.text(id)?;
            let mut next = || read.bytes(values.next().unwrap_or(Value::Nil));
            let (token, attempts, level, retry, worker) =
                (next()?, next()?, next()?, next()?, next()?);
            let token = number::<u64>("token", &token).unwrap_or_default();
            let holder = String::from_utf8_lossy(&worker).into_owned();
            let failure = Failure::new(
                FailureKind::LeaseExpired,
                format!(
                    "lease {token} held by {} lapsed without a heartbeat (the worker died, hung or lost the server)",
                    if holder.is_empty() {
                        "an unknown worker"
                    } else {
                        &holder
                    }
                ),
            );
            let state = held_state(&attempts, &level, &retry);
            let (decision, failure) = match (TaskId::new(&id), state) {
                (Ok(task), Ok(state)) => (decide(&task, &state, &failure)?, failure),
                (Err(e), _) => (
                    RetryDecision::GiveUp,
                    Failure::new(FailureKind::Corrupt, e.to_string()),
                ),
                (_, Err(detail)) => (
                    RetryDecision::GiveUp,
                    Failure::new(FailureKind::Corrupt, detail),
                ),
            };
            items.push(FailItem {
                id,
                token,
                decision,
                failure,
                rescue: true,
            });
        }
        if !items.is_empty() {
            let verdicts = apply_failures(queue, &items)?;
            rescued += verdicts
                .iter()
                .filter(|v| !matches!(v.as_str(), "lost" | "missing" | "held"))
                .count() as u64;
        }
        if found < RESCUE_BATCH {
            return Ok(rescued);
        }
    }
}
