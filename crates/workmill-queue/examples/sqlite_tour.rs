//! A tour of the SQLite backend: leaves a queue file with tasks in every status, to inspect with `sqlite3`.
//!
//! ```sh
//! cargo run -p workmill-queue --example sqlite_tour --features sqlite -- /tmp/tour.db
//! sqlite3 /tmp/tour.db 'SELECT id, status, attempts, last_error_kind FROM task_overview'
//! sqlite3 /tmp/tour.db 'SELECT * FROM job_overview'
//! ```

use std::time::Duration;

use workmill_core::{
    Backoff, Failure, FailureKind, NewJob, NewTask, Queue, QueueError, RetryPolicy, TaskId,
    WorkerId,
};
use workmill_queue::sqlite::SqliteQueue;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tour.db".to_owned());
    let queue = SqliteQueue::open(&format!("sqlite://{path}"))?;
    let retry = RetryPolicy::new(3).backoff(Backoff::Fixed(Duration::from_secs(60)));
    for name in ["resize-1", "resize-2", "email-1", "email-2", "report-1"] {
        let task = NewTask::new("demo.task", name.as_bytes().to_vec())
            .with_id(TaskId::new(name)?)
            .retry(retry.clone());
        match queue.enqueue(task) {
            Ok(_) | Err(QueueError::DuplicateTask { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let worker = WorkerId::generate();
    let mut leased = queue
        .reserve(&worker, 4, Duration::from_secs(300))?
        .into_iter();
    if let Some(first) = leased.next() {
        queue.complete(&first.lease, b"thumbnail.png".to_vec())?;
    }
    if let Some(second) = leased.next() {
        queue.fail(
            &second.lease,
            Failure::new(FailureKind::Error, "smtp timeout"),
        )?;
    }
    if let Some(third) = leased.next() {
        queue.fail(
            &third.lease,
            Failure::new(FailureKind::Permanent, "no such mailbox"),
        )?;
    }
    // The fourth stays running under its lease; the fifth waits.

    // A word-count job: two of its three maps complete, so it is mapping 2/3 and its
    // reduce is still held back.
    let maps = ["count-a", "count-b", "count-c"]
        .into_iter()
        .map(|name| {
            Ok(NewTask::new("demo.count", name.as_bytes().to_vec()).with_id(TaskId::new(name)?))
        })
        .collect::<Result<Vec<_>, QueueError>>()?;
    let reduce = NewTask::new("demo.merge", Vec::new()).with_id(TaskId::new("merge-counts")?);
    match queue.submit_job(NewJob::new(maps, reduce).with_id(TaskId::new("wordcount")?)) {
        Ok(_) => {
            // The waiting plain task comes first in line; it is handed back untouched.
            for reserved in queue.reserve(&worker, 3, Duration::from_secs(300))? {
                if reserved.name == "demo.count" {
                    let words = format!("words of {}", reserved.id()).into_bytes();
                    queue.complete(&reserved.lease, words)?;
                } else {
                    queue.release(&reserved.lease)?;
                }
            }
        }
        Err(QueueError::DuplicateJob { .. }) => {}
        Err(err) => return Err(err.into()),
    }
    let stats = queue.stats()?;
    println!("{path}: {stats:?}");
    println!("inspect it with: sqlite3 {path} 'SELECT * FROM task_overview'");
    println!("and its jobs with: sqlite3 {path} 'SELECT * FROM job_overview'");
    Ok(())
}
