//! What `inspect` and `list` show of tasks and jobs: records turned into JSON-ready views,
//! with built-in tasks' inputs and results decoded, and timestamps written in UTC.

use serde::Serialize;
use serde_json::Value;
use workmill::{Failure, JobRecord, TaskRecord, Timestamp};

use crate::builtin;
use crate::table;

/// A failure as shown: its kind and message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureView {
    /// `error`, `permanent`, `panic`, `unknown_task`, ...
    pub kind: String,
    /// What went wrong.
    pub message: String,
}

impl FailureView {
    /// The view of `failure`.
    pub fn new(failure: &Failure) -> FailureView {
        FailureView {
            kind: failure.kind.as_str().to_owned(),
            message: failure.message.clone(),
        }
    }
}

/// One task as `inspect` and `list` show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskView {
    /// Its id.
    pub id: String,
    /// Its task name.
    pub name: String,
    /// Its status (`pending`, `running`, `retrying`, `completed`, `dead`, `cancelled`).
    pub status: String,
    /// Its current priority, after retry demotions.
    pub priority: u16,
    /// Attempts started.
    pub attempts: u32,
    /// Attempts its retry policy allows.
    pub max_attempts: u32,
    /// When it was submitted (UTC).
    pub created_at: String,
    /// When it may run next (UTC).
    pub run_at: String,
    /// When its latest attempt started (UTC).
    pub started_at: Option<String>,
    /// When it finished (UTC).
    pub finished_at: Option<String>,
    /// The worker of its latest attempt.
    pub worker: Option<String>,
    /// Why its latest failed attempt failed.
    pub last_error: Option<FailureView>,
    /// Its input as JSON, for built-in tasks.
    pub input: Option<Value>,
    /// Its result as JSON, for completed built-in tasks.
    pub result: Option<Value>,
    /// Size of its encoded input.
    pub payload_bytes: usize,
}

impl TaskView {
    /// The view of `record`; `decode` says whether to decode input and result (`list` does
    /// not: a word count's result alone is tens of thousands of entries).
    pub fn new(record: &TaskRecord, decode: bool) -> TaskView {
        let known = builtin::find(&record.name).filter(|_| decode);
        TaskView {
            id: record.id.as_str().to_owned(),
            name: record.name.to_string(),
            status: record.status.as_str().to_owned(),
            priority: record.priority.level(),
            attempts: record.attempts,
            max_attempts: record.retry.max_attempts(),
            created_at: utc(record.created_at),
            run_at: utc(record.run_at),
            started_at: record.started_at.map(utc),
            finished_at: record.finished_at.map(utc),
            worker: record.worker.as_ref().map(|w| w.as_str().to_owned()),
            last_error: record.last_error.as_ref().map(FailureView::new),
            input: known.and_then(|task| task.input_json(&record.payload)),
            result: known.and_then(|task| task.output_json(record.result.as_deref()?)),
            payload_bytes: record.payload.len(),
        }
    }

    /// `key: value` lines for a terminal.
    pub fn to_text(&self) -> String {
        let mut lines = vec![
            ("id", self.id.clone()),
            ("name", self.name.clone()),
            ("status", self.status.clone()),
            ("priority", self.priority.to_string()),
            (
                "attempts",
                format!("{} of {}", self.attempts, self.max_attempts),
            ),
            ("created", self.created_at.clone()),
            ("run at", self.run_at.clone()),
        ];
        let optional = [
            ("started", self.started_at.clone()),
            ("finished", self.finished_at.clone()),
            ("worker", self.worker.clone()),
            (
                "last error",
                self.last_error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.kind, e.message)),
            ),
            (
                "input",
                self.input
                    .as_ref()
                    .map(|v| table::truncate(&v.to_string(), 200)),
            ),
            (
                "result",
                self.result
                    .as_ref()
                    .map(|v| table::truncate(&v.to_string(), 200)),
            ),
        ];
        lines.extend(
            optional
                .into_iter()
                .filter_map(|(key, value)| Some((key, value?))),
        );
        lines.push(("payload", format!("{} bytes", self.payload_bytes)));
        key_values(&lines)
    }
}

/// One map-reduce job as `inspect` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobView {
    /// Its id.
    pub id: String,
    /// Always `"job"`, to tell a job from a task in JSON.
    pub kind: &'static str,
    /// `mapping`, `reducing`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Maps completed.
    pub maps_done: u32,
    /// Maps in the job.
    pub maps_total: u32,
    /// The reduce task's id.
    pub reduce: String,
    /// The task that failed the job, and why.
    pub failed_task: Option<String>,
    /// Why that task failed.
    pub failure: Option<FailureView>,
    /// When it was submitted (UTC).
    pub created_at: String,
    /// When it finished (UTC).
    pub finished_at: Option<String>,
}

impl JobView {
    /// The view of `record`.
    pub fn new(record: &JobRecord) -> JobView {
        JobView {
            id: record.id.as_str().to_owned(),
            kind: "job",
            status: record.status.as_str().to_owned(),
            maps_done: record.maps_done,
            maps_total: record.maps_total(),
            reduce: record.reduce.as_str().to_owned(),
            failed_task: record
                .failure
                .as_ref()
                .map(|(id, _)| id.as_str().to_owned()),
            failure: record
                .failure
                .as_ref()
                .map(|(_, failure)| FailureView::new(failure)),
            created_at: utc(record.created_at),
            finished_at: record.finished_at.map(utc),
        }
    }

    /// `key: value` lines for a terminal.
    pub fn to_text(&self) -> String {
        let mut lines = vec![
            ("job", self.id.clone()),
            ("status", self.status.clone()),
            (
                "maps done",
                format!("{} of {}", self.maps_done, self.maps_total),
            ),
            ("reduce", self.reduce.clone()),
            ("created", self.created_at.clone()),
        ];
        if let Some(finished) = &self.finished_at {
            lines.push(("finished", finished.clone()));
        }
        if let (Some(task), Some(failure)) = (&self.failed_task, &self.failure) {
            lines.push((
                "failed by",
                format!("{task} ({}: {})", failure.kind, failure.message),
            ));
        }
        key_values(&lines)
    }
}

/// The table `list` prints.
pub fn task_table(tasks: &[TaskView]) -> String {
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|task| {
            vec![
                task.id.clone(),
                task.name.clone(),
                task.status.clone(),
                task.priority.to_string(),
                format!("{}/{}", task.attempts, task.max_attempts),
                task.created_at.clone(),
                task.last_error
                    .as_ref()
                    .map(|e| table::truncate(&format!("{}: {}", e.kind, e.message), 60))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "NAME",
            "STATUS",
            "PRI",
            "ATTEMPTS",
            "CREATED",
            "LAST ERROR",
        ],
        &rows,
    )
}

fn key_values(lines: &[(&str, String)]) -> String {
    let width = lines
        .iter()
        .map(|(key, _)| key.len() + 1)
        .max()
        .unwrap_or(0);
    lines
        .iter()
        .map(|(key, value)| format!("{:<width$}  {value}\n", format!("{key}:")))
        .collect()
}

/// A timestamp as `YYYY-MM-DD HH:MM:SS.mmmZ` (UTC): core's RFC 3339 `Display` with a space
/// for the `T`, easier to read in a terminal.
pub fn utc(at: Timestamp) -> String {
    at.to_string().replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    use workmill::{Codec, FailureKind, NewTask, Postcard, Queue, TaskStatus};

    use super::*;

    #[test]
    fn timestamps_print_as_utc_dates() {
        assert_eq!(utc(Timestamp::EPOCH), "1970-01-01 00:00:00.000Z");
        // 2000-02-29 12:34:56.789 UTC: a leap day in a year divisible by 400.
        assert_eq!(
            utc(Timestamp::from_micros(951_827_696_789_000)),
            "2000-02-29 12:34:56.789Z"
        );
        assert_eq!(
            utc(Timestamp::from_micros(1_798_761_600_000_000)),
            "2027-01-01 00:00:00.000Z"
        );
    }

    #[test]
    fn a_record_shows_its_decoded_input_and_failure() {
        let queue = workmill::MemoryQueue::new();
        let payload = Postcard.encode(&12u64).unwrap();
        let id = queue.enqueue(NewTask::new("demo.square", payload)).unwrap();
        let mut record = queue.status(&id).unwrap();
        record.last_error = Some(Failure::new(FailureKind::Error, "flaked"));
        record.status = TaskStatus::Retrying;
        let view = TaskView::new(&record, true);
        assert_eq!(view.input, Some(serde_json::json!(12)));
        assert_eq!(view.status, "retrying");
        let text = view.to_text();
        assert!(text.contains("last error:  error: flaked"), "{text}");
        assert!(text.contains("input:       12"), "{text}");
        assert_eq!(TaskView::new(&record, false).input, None);

        let table = task_table(&[view]);
        assert!(table.starts_with("ID"), "{table}");
        assert!(table.contains("demo.square  retrying  5"), "{table}");
    }
}
