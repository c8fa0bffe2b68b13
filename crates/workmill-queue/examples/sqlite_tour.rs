//! A tour of the SQLite backend: leaves a queue file with tasks in every status, to inspect with `sqlite3`.
//!
//! ```sh
//! cargo run -p workmill-queue --example sqlite_tour --features sqlite -- /tmp/tour.db
//! sqlite3 /tmp/tour.db 'SELECT id, status, attempts, last_error_kind FROM task_overview'
//! ```

use std::time::Duration;

use workmill_core::{
    Backoff, Failure, FailureKind, NewTask, Queue, QueueError, RetryPolicy, TaskId, WorkerId,
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
    let stats = queue.stats()?;
    println!("{path}: {stats:?}");
    println!("inspect it with: sqlite3 {path} 'SELECT * FROM task_overview'");
    Ok(())
}
