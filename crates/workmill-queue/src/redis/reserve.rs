//! Reserve: one script promotes due delayed tasks, pops the first ready tasks in queue order
//! and leases them; Rust then checks each record and dead-letters any it cannot read.

use std::time::Duration;

use redis::Value;
use workmill_core::{
    Failure, FailureKind, Lease, Payload, QueueError, Reservation, RetryDecision, RetryPolicy,
    TaskId, TaskName, TaskStatus, Timestamp, WorkerId,
};

use super::RedisQueue;
use super::lease::{FailItem, apply_failures, rescue_expired};
use super::record::{parse_policy, priority, text, verify_payload};
use super::scripts::{RESERVE, Reply, malformed, sources_of};

const OP: &str = "reserve tasks";
/// Values per reserved task in the script's reply.
const PER_TASK: usize = 8;
/// The most tasks one call leases; a larger `max` (up to `usize::MAX`, "all there is") asks
/// for this many.
///
/// `max` reaches the script as a Lua double, and `ZPOPMIN` refuses a count beyond a 64-bit
/// integer, so `usize::MAX` failed every call with a transient error that a worker retried
/// forever. Beyond that, the script runs alone on the server: the bound keeps one call from
/// stalling every other client while it leases a whole backlog. It matches the bound on the
/// delayed tasks one call promotes (`reserve.lua`).
pub(crate) const MAX_BATCH: usize = 10_000;

/// What one run of the reserve script found.
struct Batch {
    /// Leases that had lapsed when the script ran; a rescue should follow.
    lapsed: u64,
    reserved: Vec<Reservation>,
}

/// Leases up to `max` (at most [`MAX_BATCH`]) due tasks to `worker`, rescuing lapsed leases
/// on the way.
///
/// The script reports how many leases have lapsed; when some have, they are rescued (each
/// a failed attempt decided by its retry policy) and the reservation is topped up, so a
/// rescued task that is due at once can go out in the same call.
pub(crate) fn reserve(
    queue: &RedisQueue,
    worker: &WorkerId,
    max: usize,
    lease: Duration,
) -> Result<Vec<Reservation>, QueueError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let max = max.min(MAX_BATCH);
    let first = reserve_once(queue, worker, max, lease)?;
    let mut reserved = first.reserved;
    if first.lapsed == 0 {
        return Ok(reserved);
    }
    // The tasks above are leased already: a failure from here on must not hide them from
    // the worker, or they would sit out their lease unrun. It is logged, and the next
    // reserve or rescue tries again.
    match rescue_expired(queue) {
        Ok(_) if reserved.len() < max => {
            match reserve_once(queue, worker, max - reserved.len(), lease) {
                Ok(more) => reserved.extend(more.reserved),
                Err(err) => tracing::warn!(error = %err, "topping up a reservation failed"),
            }
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "rescuing lapsed leases failed"),
    }
    Ok(reserved)
}

fn reserve_once(
    queue: &RedisQueue,
    worker: &WorkerId,
    max: usize,
    lease: Duration,
) -> Result<Batch, QueueError> {
    let lease_us = super::lease::micros(lease);
    let mut invocation = RESERVE.prepare_invoke();
    invocation
        .arg(&queue.prefix)
        .arg(worker.as_str())
        .arg(max)
        .arg(lease_us);
    for status in sources_of(TaskStatus::Running) {
        invocation.arg(status);
    }
    let reply: Value = queue.pool.run(OP, |con| invocation.invoke(con))?;
    let read = Reply::of(OP);
    let mut items = read.items(reply)?.into_iter();
    let (Some(lapsed), Some(expires)) = (items.next(), items.next()) else {
        return Err(malformed(OP, "fewer than two values"));
    };
    let lapsed = read.uint(lapsed)?;
    let expires_at = Timestamp::from_micros(read.uint(expires)?);
    let items: Vec<Value> = items.collect();
    if !items.len().is_multiple_of(PER_TASK) {
        return Err(malformed(OP, format_args!("{} task values", items.len())));
    }
    let mut reserved = Vec::with_capacity(items.len() / PER_TASK);
    let mut damaged = Vec::new();
    // Tasks of one batch mostly share a policy; its text is parsed once.
    let mut last_policy: Option<(Vec<u8>, RetryPolicy)> = None;
    let mut values = items.into_iter();
    while let Some(id) = values.next() {
        let id = read.text(id)?;
        let token = read.uint(values.next().unwrap_or(Value::Nil))?;
        let fields: Vec<Vec<u8>> = values
            .by_ref()
            .take(PER_TASK - 2)
            .map(|v| read.bytes(v))
            .collect::<Result<_, _>>()?;
        let lease = |task: TaskId| Lease {
            task,
            token,
            expires_at,
        };
        match TaskId::new(&id)
            .map_err(|e| e.to_string())
            .and_then(|task| reservation(lease(task), fields, &mut last_policy))
        {
            Ok(reservation) => reserved.push(reservation),
            Err(detail) => {
                // An unreadable task is never handed out: it is dead-lettered as a failed
                // attempt of kind Corrupt, and the other tasks go on.
                tracing::warn!(task = %id, error = %detail, "dead-lettering a task whose stored record is corrupt");
                damaged.push(FailItem {
                    id,
                    token,
                    decision: RetryDecision::GiveUp,
                    failure: Failure::new(FailureKind::Corrupt, detail),
                    rescue: false,
                });
            }
        }
    }
    if !damaged.is_empty() {
        debug_assert!(FailureKind::Corrupt.is_permanent());
        // The good tasks are leased already and must reach the worker; a damaged task left
        // running by a failure here lapses and is looked at again by the rescue.
        if let Err(err) = apply_failures(queue, &damaged) {
            tracing::warn!(error = %err, "dead-lettering corrupt tasks failed");
        }
    }
    Ok(Batch { lapsed, reserved })
}

/// Reads one reserved task: name, payload, priority, attempts, retry policy, checksum.
fn reservation(
    lease: Lease,
    fields: Vec<Vec<u8>>,
    last_policy: &mut Option<(Vec<u8>, RetryPolicy)>,
) -> Result<Reservation, String> {
    let [name, payload, level, attempts, retry, stored_checksum] =
        <[Vec<u8>; 6]>::try_from(fields).map_err(|_| "a reserved task lacks fields".to_owned())?;
    verify_payload(&payload, text("checksum", &stored_checksum)?)?;
    let retry = match last_policy {
        Some((text, policy)) if *text == retry => policy.clone(),
        _ => {
            let policy = parse_policy(text("retry", &retry)?)?;
            *last_policy = Some((retry, policy.clone()));
            policy
        }
    };
    Ok(Reservation {
        lease,
        name: TaskName::from(text("name", &name)?),
        // The reply's own buffer: inline if small, else copied once into the shared `Arc`.
        payload: Payload::from(payload),
        priority: priority(&level)?,
        attempt: super::record::number("attempts", &attempts)?,
        retry,
    })
}
