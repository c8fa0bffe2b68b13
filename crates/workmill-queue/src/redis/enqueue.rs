//! Enqueue: validating new tasks and adding a whole batch in one script, refusing any duplicate id.

use redis::Value;
use workmill_core::{NewTask, QueueError, RetryPolicy, TaskId};

use super::RedisQueue;
use super::record::{checksum, policy_text};
use super::scripts::{ENQUEUE, Reply, malformed};

const OP: &str = "enqueue tasks";

/// Checks what can be checked before touching the server: the policy and the payload size.
fn validate(task: &NewTask, payload_limit: usize) -> Result<(), QueueError> {
    task.retry
        .validate()
        .map_err(|source| QueueError::InvalidPolicy {
            id: task.id.clone(),
            source,
        })?;
    if task.payload.len() > payload_limit {
        return Err(QueueError::PayloadTooLarge {
            id: task.id.clone(),
            size: task.payload.len(),
            limit: payload_limit,
        });
    }
    Ok(())
}

/// Adds `tasks` atomically: all of them, or (on a duplicate id, in the store or within the
/// batch) none.
pub(crate) fn enqueue_all(
    queue: &RedisQueue,
    tasks: Vec<NewTask>,
) -> Result<Vec<TaskId>, QueueError> {
    for task in &tasks {
        validate(task, queue.config.payload_limit)?;
    }
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let mut invocation = ENQUEUE.prepare_invoke();
    invocation.arg(&queue.prefix).arg(tasks.len());
    // Tasks of one batch mostly share a policy; its text is written once.
    let mut last_policy: Option<(&RetryPolicy, String)> = None;
    for task in &tasks {
        let policy = match &last_policy {
            Some((policy, text)) if **policy == task.retry => text.clone(),
            _ => {
                let text = policy_text(&task.retry);
                last_policy = Some((&task.retry, text.clone()));
                text
            }
        };
        invocation
            .arg(task.id.as_str())
            .arg(&task.name)
            .arg(&task.payload)
            .arg(checksum(&task.payload))
            .arg(task.priority.level())
            .arg(policy);
        match task.run_at {
            Some(at) => invocation.arg(at.as_micros()),
            None => invocation.arg(""),
        };
    }
    let reply: Value = queue.pool.run(OP, |con| invocation.invoke(con))?;
    let read = Reply::of(OP);
    let mut items = read.items(reply)?.into_iter();
    let verdict = items.next().map(|v| read.text(v)).transpose()?;
    match verdict.as_deref() {
        Some("ok") => Ok(tasks.into_iter().map(|task| task.id).collect()),
        Some("duplicate") => {
            let taken = items
                .next()
                .map(|v| read.text(v))
                .transpose()?
                .ok_or_else(|| malformed(OP, "a duplicate without its id"))?;
            let id = tasks
                .into_iter()
                .map(|task| task.id)
                .find(|id| id.as_str() == taken)
                .ok_or_else(|| {
                    malformed(OP, format_args!("duplicate of an id not sent: {taken:?}"))
                })?;
            Err(QueueError::DuplicateTask { id })
        }
        other => Err(malformed(OP, format_args!("{other:?}"))),
    }
}
