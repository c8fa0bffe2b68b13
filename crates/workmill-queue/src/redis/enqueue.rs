//! Enqueue: validating new tasks and adding a whole batch in one script, refusing any duplicate id.

use redis::Value;
use workmill_core::{NewTask, QueueError, RetryPolicy, TaskId};

use super::RedisQueue;
use super::record::{checksum, policy_text};
use super::scripts::{ENQUEUE, Reply, malformed};

const OP: &str = "enqueue tasks";

/// The latest `run_at` a task is stored with: 2^53 microseconds after the epoch (in the year
/// 2255). Later ones, up to `Timestamp::from_micros(u64::MAX)` (what `NewTask::delay` gives
/// for `Duration::MAX`), are stored as this.
///
/// The scripts hold numbers as Lua doubles, exact only up to 2^53, and write them back with
/// `%d`, which cannot print a double beyond `i64::MAX`: a larger time came back as a negative
/// number, so the task was due at once and its record unreadable. Clamped here, a far-future
/// task stays delayed, and every sum a script makes with it (`math.max` against the clock, a
/// score) is exact.
pub(crate) const LATEST_RUN_AT: u64 = 1 << 53;

/// Checks what can be checked before touching the server: the policy and the payload size.
pub(crate) fn validate(task: &NewTask, payload_limit: usize) -> Result<(), QueueError> {
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
/// batch, or an id held back as the reduce of a job still mapping) none.
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
    let mut policies = PolicyTexts::default();
    for task in &tasks {
        task_args(&mut invocation, task, &mut policies);
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

/// The retry policy of the last task written, as text: tasks of one batch mostly share a
/// policy, whose text is then written once.
#[derive(Default)]
pub(crate) struct PolicyTexts<'a> {
    last: Option<(&'a RetryPolicy, String)>,
}

impl<'a> PolicyTexts<'a> {
    fn text(&mut self, policy: &'a RetryPolicy) -> String {
        match &self.last {
            Some((last, text)) if *last == policy => text.clone(),
            _ => {
                let text = policy_text(policy);
                self.last = Some((policy, text.clone()));
                text
            }
        }
    }
}

/// Adds a task's seven fields, as `add_tasks.lua` reads them: id, name, payload, checksum,
/// priority, retry policy, run_at (microseconds, at most [`LATEST_RUN_AT`], or '' for now).
pub(crate) fn task_args<'a>(
    invocation: &mut redis::ScriptInvocation<'_>,
    task: &'a NewTask,
    policies: &mut PolicyTexts<'a>,
) {
    invocation
        .arg(task.id.as_str())
        .arg(task.name.as_str())
        .arg(task.payload.as_slice())
        .arg(checksum(&task.payload))
        .arg(task.priority.level())
        .arg(policies.text(&task.retry));
    match task.run_at {
        Some(at) => invocation.arg(at.as_micros().min(LATEST_RUN_AT)),
        None => invocation.arg(""),
    };
}
