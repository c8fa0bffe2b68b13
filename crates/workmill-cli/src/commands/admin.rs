//! `stats`, `inspect`, `list`, `retry`, `cancel` and `purge`: an operator's look at a queue
//! and the moves core's `Queue` allows on it.

use serde::Serialize;
use serde_json::json;
use workmill::{ListFilter, Queue, QueueError, QueueStats, TaskId, TaskRecord, TaskStatus};

use super::Output;
use crate::cli::{ListArgs, PurgeArgs, StatusArg};
use crate::error::CliError;
use crate::table;
use crate::view::{JobView, TaskView, task_table};

/// Prints the backend's exact counts.
pub fn stats(queue: &dyn Queue, output: &mut Output<'_>) -> Result<(), CliError> {
    let stats = queue.stats()?;
    output.emit(&stats, || stats_table(&stats))
}

/// The counts as a two-column table.
pub fn stats_table(stats: &QueueStats) -> String {
    let rows: Vec<Vec<String>> = [
        ("submitted", stats.submitted),
        ("pending", stats.pending),
        ("running", stats.running),
        ("retrying", stats.retrying),
        ("completed", stats.completed),
        ("dead", stats.dead),
        ("cancelled", stats.cancelled),
        ("failed attempts", stats.failed_attempts),
        ("retried", stats.retried),
        ("expired leases", stats.expired_leases),
    ]
    .into_iter()
    .map(|(name, count)| vec![name.to_owned(), count.to_string()])
    .collect();
    table::render(&["", "tasks"], &rows)
}

/// Prints one task's record, or, if no task has the id, the job's.
pub fn inspect(queue: &dyn Queue, id: &TaskId, output: &mut Output<'_>) -> Result<(), CliError> {
    match queue.status(id) {
        Ok(record) => {
            let view = TaskView::new(&record, true);
            output.emit(&view, || view.to_text())
        }
        Err(QueueError::NotFound { .. }) => match queue.job(id) {
            Ok(job) => {
                let view = JobView::new(&job);
                output.emit(&view, || view.to_text())
            }
            Err(QueueError::JobNotFound { .. }) => Err(CliError::Usage(format!(
                "no task or job has the id {id} in this {} backend",
                queue.backend_name()
            ))),
            Err(error) => Err(error.into()),
        },
        Err(error) => Err(error.into()),
    }
}

/// Prints tasks in the given statuses (all when none is given), oldest first.
pub fn list(queue: &dyn Queue, args: &ListArgs, output: &mut Output<'_>) -> Result<(), CliError> {
    let limit = args.limit as usize;
    let records = list_records(queue, &statuses(&args.status), limit)?;
    let views: Vec<TaskView> = records
        .iter()
        .map(|record| TaskView::new(record, false))
        .collect();
    output.emit(&views, || {
        if views.is_empty() {
            "no tasks\n".to_owned()
        } else {
            task_table(&views)
        }
    })
}

/// At most `limit` records in `statuses` (any status when empty), oldest first.
fn list_records(
    queue: &dyn Queue,
    statuses: &[TaskStatus],
    limit: usize,
) -> Result<Vec<TaskRecord>, CliError> {
    if statuses.is_empty() {
        return Ok(queue.list(&ListFilter {
            status: None,
            limit,
        })?);
    }
    let mut records = Vec::new();
    for &status in statuses {
        records.extend(queue.list(&ListFilter {
            status: Some(status),
            limit,
        })?);
    }
    records.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    records.truncate(limit);
    Ok(records)
}

/// The distinct statuses named, in the order first named.
fn statuses(args: &[StatusArg]) -> Vec<TaskStatus> {
    let mut statuses: Vec<TaskStatus> = Vec::new();
    for status in args.iter().map(|arg| arg.status()) {
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    statuses
}

/// Puts a dead task back to pending with a fresh set of attempts.
pub fn retry(queue: &dyn Queue, id: &TaskId, output: &mut Output<'_>) -> Result<(), CliError> {
    let record = queue.status(id)?;
    if record.status != TaskStatus::Dead {
        return Err(CliError::Usage(format!(
            "task {id} is {}, not dead; only dead (failed) tasks can be retried",
            record.status
        )));
    }
    queue.requeue(id)?;
    let status = queue
        .status(id)
        .map(|r| r.status)
        .unwrap_or(TaskStatus::Pending);
    output.emit(
        &json!({ "id": id.as_str(), "status": status.as_str() }),
        || format!("task {id} requeued with a fresh set of attempts"),
    )
}

/// Cancels a task that has not started.
pub fn cancel(queue: &dyn Queue, id: &TaskId, output: &mut Output<'_>) -> Result<(), CliError> {
    let record = queue.status(id)?;
    if !record.status.is_waiting() {
        return Err(CliError::Usage(format!(
            "task {id} is {}; only pending or retrying tasks can be cancelled",
            record.status
        )));
    }
    queue.cancel(id)?;
    output.emit(&json!({ "id": id.as_str(), "status": "cancelled" }), || {
        format!("task {id} cancelled")
    })
}

/// What `purge` reports.
#[derive(Debug, Serialize)]
struct Purged {
    purged: u64,
    statuses: Vec<&'static str>,
}

/// Deletes finished tasks in the given statuses (all three final statuses when none is given).
pub fn purge(queue: &dyn Queue, args: &PurgeArgs, output: &mut Output<'_>) -> Result<(), CliError> {
    let mut chosen = statuses(&args.status);
    if chosen.is_empty() {
        chosen = vec![
            TaskStatus::Completed,
            TaskStatus::Dead,
            TaskStatus::Cancelled,
        ];
    }
    if let Some(status) = chosen.iter().find(|status| !status.is_final()) {
        return Err(CliError::Usage(format!(
            "purge deletes finished tasks only (completed, dead, cancelled), not {status} ones; \
             cancel waiting tasks first"
        )));
    }
    let purged = queue.purge(&chosen)?;
    let report = Purged {
        purged,
        statuses: chosen.iter().map(|status| status.as_str()).collect(),
    };
    output.emit(&report, || {
        format!("purged {purged} {} tasks", report.statuses.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use workmill::{Failure, FailureKind, MemoryQueue, NewTask, WorkerId};

    use super::*;

    fn text(run: impl FnOnce(&mut Output<'_>) -> Result<(), CliError>) -> Result<String, CliError> {
        let mut out = Vec::new();
        run(&mut Output {
            out: &mut out,
            json: false,
        })?;
        Ok(String::from_utf8(out).unwrap())
    }

    /// A queue with one task in each of pending, completed and dead.
    fn queue() -> (MemoryQueue, [TaskId; 3]) {
        let queue = MemoryQueue::new();
        let ids = ["a", "b", "c"].map(|id| {
            queue
                .enqueue(NewTask::new("demo.echo", Vec::new()).with_id(TaskId::new(id).unwrap()))
                .unwrap()
        });
        let worker = WorkerId::new("w").unwrap();
        let mut reserved = queue.reserve(&worker, 2, Duration::from_secs(30)).unwrap();
        let second = reserved.pop().unwrap();
        let first = reserved.pop().unwrap();
        queue.complete(&first.lease, Vec::new()).unwrap();
        queue
            .fail(
                &second.lease,
                Failure::new(FailureKind::Permanent, "broken"),
            )
            .unwrap();
        (queue, ids)
    }

    #[test]
    fn list_filters_by_status_and_merges_oldest_first() {
        let (queue, _) = queue();
        let all = list_records(&queue, &[], 10).unwrap();
        assert_eq!(all.len(), 3);
        let some = list_records(&queue, &[TaskStatus::Pending, TaskStatus::Dead], 10).unwrap();
        let ids: Vec<&str> = some.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(
            list_records(&queue, &[TaskStatus::Pending, TaskStatus::Dead], 1)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn retry_takes_dead_tasks_only() {
        let (queue, [a, b, c]) = queue();
        let error = text(|out| retry(&queue, &a, out)).unwrap_err();
        assert!(
            error.to_string().contains("is completed, not dead"),
            "{error}"
        );
        assert_eq!(error.exit_code(), crate::error::EXIT_USAGE);
        let printed = text(|out| retry(&queue, &b, out)).unwrap();
        assert!(printed.contains("requeued"), "{printed}");
        assert_eq!(queue.status(&b).unwrap().status, TaskStatus::Pending);
        assert_eq!(queue.status(&b).unwrap().attempts, 0);
        assert!(
            text(|out| cancel(&queue, &c, out))
                .unwrap()
                .contains("cancelled")
        );
        assert!(text(|out| cancel(&queue, &a, out)).is_err());
    }

    #[test]
    fn inspect_names_a_missing_id_and_purge_refuses_waiting_statuses() {
        let (queue, [a, ..]) = queue();
        assert!(
            text(|out| inspect(&queue, &a, out))
                .unwrap()
                .contains("status:")
        );
        let missing = TaskId::new("zzz").unwrap();
        let error = text(|out| inspect(&queue, &missing, out)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no task or job has the id zzz in this memory backend"
        );
        let args = PurgeArgs {
            status: vec![StatusArg::Pending],
        };
        assert!(text(|out| purge(&queue, &args, out)).is_err());
        let printed = text(|out| purge(&queue, &PurgeArgs { status: vec![] }, out)).unwrap();
        assert_eq!(printed, "purged 2 completed, dead, cancelled tasks\n");
        assert_eq!(queue.stats().unwrap().submitted, 1);
    }

    #[test]
    fn stats_print_every_gauge() {
        let (queue, _) = queue();
        let printed = text(|out| stats(&queue, out)).unwrap();
        assert!(printed.contains("completed        1"), "{printed}");
        assert!(printed.contains("dead             1"), "{printed}");
    }
}
