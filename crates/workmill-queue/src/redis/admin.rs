//! The operator's side: status and list, cancel and requeue, purge, and the exact stats.

use std::collections::HashMap;

use redis::Value;
use workmill_core::{ListFilter, QueueError, QueueStats, TaskId, TaskRecord, TaskStatus};

use super::RedisQueue;
use super::record::{Fields, read_record};
use super::scripts::{CANCEL, LIST, PURGE, REQUEUE, Reply, malformed, sources_of};

/// The record of `id`, or `NotFound`, or `Corrupt` if it cannot be read.
pub(crate) fn status(queue: &RedisQueue, id: &TaskId) -> Result<TaskRecord, QueueError> {
    const OP: &str = "read a task";
    let fields: Fields = queue.pool.run(OP, |con| {
        redis::cmd("HGETALL").arg(queue.task_key(id)).query(con)
    })?;
    if fields.is_empty() {
        return Err(QueueError::NotFound { id: id.clone() });
    }
    read_record(id, &fields)
}

/// Records matching `filter`, in submission order.
///
/// A record that cannot be read is left out with a warning naming it, so that one damaged
/// task does not hide every other from an operator; `status` on its id says what is wrong.
pub(crate) fn list(queue: &RedisQueue, filter: &ListFilter) -> Result<Vec<TaskRecord>, QueueError> {
    const OP: &str = "list tasks";
    if filter.limit == 0 {
        return Ok(Vec::new());
    }
    let reply: Value = queue.pool.run(OP, |con| {
        LIST.prepare_invoke()
            .arg(&queue.prefix)
            .arg(filter.status.map_or("", TaskStatus::as_str))
            .arg(filter.limit)
            .invoke(con)
    })?;
    let read = Reply::of(OP);
    let mut values = read.items(reply)?.into_iter();
    let mut records = Vec::new();
    while let (Some(id), Some(fields)) = (values.next(), values.next()) {
        let id = read.text(id)?;
        let mut hash: Fields = HashMap::new();
        let mut pairs = read.items(fields)?.into_iter();
        while let (Some(name), Some(value)) = (pairs.next(), pairs.next()) {
            hash.insert(read.text(name)?, read.bytes(value)?);
        }
        let record = TaskId::new(&id)
            .map_err(QueueError::from)
            .and_then(|id| read_record(&id, &hash));
        match record {
            Ok(record) => records.push(record),
            Err(err) => {
                tracing::warn!(task = %id, error = %err, "list skips a task whose record cannot be read")
            }
        }
    }
    Ok(records)
}

/// Reads an admin script's verdict: `ok`, `missing`, or `{'illegal', status}`.
fn admin_verdict(
    reply: Value,
    id: &TaskId,
    to: TaskStatus,
    operation: &'static str,
) -> Result<(), QueueError> {
    let read = Reply::of(operation);
    match reply {
        Value::Array(items) => {
            let current = items
                .into_iter()
                .nth(1)
                .ok_or_else(|| malformed(operation, "a refusal without a status"))?;
            let current = read.text(current)?;
            let from: TaskStatus = current.parse().map_err(|_| QueueError::Corrupt {
                id: id.clone(),
                detail: format!("field status: {current:?} is not a task status"),
            })?;
            // The script refused because the table does not list this move, or (requeue)
            // because an operator may only requeue from a subset; either way it is illegal.
            let source = from
                .transition(to)
                .err()
                .unwrap_or(workmill_core::IllegalTransition { from, to });
            Err(QueueError::IllegalTransition {
                id: id.clone(),
                source,
            })
        }
        other => match read.text(other)?.as_str() {
            "ok" => Ok(()),
            "missing" => Err(QueueError::NotFound { id: id.clone() }),
            verdict => Err(malformed(operation, format_args!("verdict {verdict:?}"))),
        },
    }
}

/// Cancels a task the transition table lets become `Cancelled` (pending or retrying).
pub(crate) fn cancel(queue: &RedisQueue, id: &TaskId) -> Result<(), QueueError> {
    const OP: &str = "cancel a task";
    let mut invocation = CANCEL.prepare_invoke();
    invocation
        .arg(&queue.prefix)
        .arg(queue.config.bound_arg())
        .arg(queue.config.age_arg())
        .arg(id.as_str());
    for status in sources_of(TaskStatus::Cancelled) {
        invocation.arg(status);
    }
    let reply: Value = queue.pool.run(OP, |con| invocation.invoke(con))?;
    admin_verdict(reply, id, TaskStatus::Cancelled, OP)
}

/// Puts a `Dead` task back to `Pending` with no attempts used, behind its priority's queue.
///
/// `Running -> Pending` is a legal move too, but it is `release`, a lease holder's act, not
/// an operator's requeue; so only dead tasks are requeued.
pub(crate) fn requeue(queue: &RedisQueue, id: &TaskId) -> Result<(), QueueError> {
    const OP: &str = "requeue a task";
    let mut invocation = REQUEUE.prepare_invoke();
    invocation.arg(&queue.prefix).arg(id.as_str());
    for status in sources_of(TaskStatus::Pending).filter(|s| *s == TaskStatus::Dead.as_str()) {
        invocation.arg(status);
    }
    let reply: Value = queue.pool.run(OP, |con| invocation.invoke(con))?;
    admin_verdict(reply, id, TaskStatus::Pending, OP)
}

/// Deletes every task in `statuses` as if never submitted; returns how many, evicted records
/// included. Jobs that would lose a waiting or running task are cancelled first, and jobs
/// that a purged status ended are removed (`purge.lua`).
pub(crate) fn purge(queue: &RedisQueue, statuses: &[TaskStatus]) -> Result<u64, QueueError> {
    const OP: &str = "purge tasks";
    if statuses.is_empty() {
        return Ok(0);
    }
    let mut invocation = PURGE.prepare_invoke();
    invocation
        .arg(&queue.prefix)
        .arg(queue.config.bound_arg())
        .arg(queue.config.age_arg());
    for status in statuses {
        invocation.arg(status.as_str());
    }
    let reply: Value = queue.pool.run(OP, |con| invocation.invoke(con))?;
    Reply::of(OP).uint(reply)
}

/// The exact counts, from the counters hash the scripts keep.
pub(crate) fn stats(queue: &RedisQueue) -> Result<QueueStats, QueueError> {
    const OP: &str = "read the stats";
    let counters: HashMap<String, i64> = queue.pool.run(OP, |con| {
        redis::cmd("HGETALL").arg(queue.key("counters")).query(con)
    })?;
    // Counters never go below zero; a hand-edited negative value reads as zero.
    let get = |name: &str| {
        counters
            .get(name)
            .map_or(0, |&v| u64::try_from(v).unwrap_or(0))
    };
    Ok(QueueStats {
        submitted: get("submitted"),
        pending: get("pending"),
        retrying: get("retrying"),
        running: get("running"),
        completed: get("completed"),
        dead: get("dead"),
        cancelled: get("cancelled"),
        failed_attempts: get("failed_attempts"),
        retried: get("retried"),
        expired_leases: get("expired_leases"),
        evicted: get("evicted"),
    })
}
