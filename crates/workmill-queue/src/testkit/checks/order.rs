//! Checks of the order in which tasks leave a queue: priority, FIFO within a priority, and delays.

use std::time::Duration;

use workmill_core::{JobStatus, ListFilter, NewJob, Queue, TaskId, TaskStatus, Timestamp};

use crate::testkit::support::{LONG, id, task, task_at, wait_for, worker};
use crate::testkit::{Harness, QueueSettings};

/// Tasks of mixed priorities, submitted in a known order.
const MIXED: [(&str, u16); 7] = [
    ("a-p5", 5),
    ("b-p1", 1),
    ("c-p5", 5),
    ("d-p0", 0),
    ("e-p1", 1),
    ("f-p10", 10),
    ("g-p5", 5),
];

/// The order a correct queue hands them out: by priority, then by submission.
fn expected_order() -> Vec<TaskId> {
    let mut sorted: Vec<(u16, usize, &str)> = MIXED
        .iter()
        .enumerate()
        .map(|(arrival, &(name, priority))| (priority, arrival, name))
        .collect();
    sorted.sort();
    sorted.into_iter().map(|(_, _, name)| id(name)).collect()
}

/// One reservation at a time comes out lowest priority number first, FIFO within a priority.
pub fn priority_order_then_fifo(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    for (name, priority) in MIXED {
        queue.enqueue(task_at(name, priority)).expect("enqueue");
    }
    let worker = worker("order-worker");
    let mut seen = Vec::new();
    loop {
        let got = queue.reserve(&worker, 1, LONG).expect("reserve");
        assert!(got.len() <= 1, "asked for one task, got {}", got.len());
        let Some(reservation) = got.into_iter().next() else {
            break;
        };
        assert_eq!(reservation.attempt, 1);
        seen.push(reservation.id().clone());
    }
    assert_eq!(seen, expected_order());
}

/// A batch reservation returns the first due tasks in queue order, and the next batch the rest.
pub fn batch_reserve_keeps_queue_order(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let ids = queue
        .enqueue_batch(MIXED.iter().map(|&(n, p)| task_at(n, p)).collect())
        .expect("enqueue a batch");
    assert_eq!(ids.len(), MIXED.len());
    let worker = worker("batch-worker");
    let first = queue.reserve(&worker, 4, LONG).expect("reserve");
    let rest = queue.reserve(&worker, 100, LONG).expect("reserve");
    let seen: Vec<TaskId> = first.iter().chain(&rest).map(|r| r.id().clone()).collect();
    assert_eq!(first.len(), 4);
    assert_eq!(seen, expected_order());
    assert!(
        queue
            .reserve(&worker, 100, LONG)
            .expect("reserve")
            .is_empty()
    );
    let stats = queue.stats().expect("stats");
    assert_eq!((stats.pending, stats.running), (0, MIXED.len() as u64));
    let mut tokens: Vec<u64> = first.iter().chain(&rest).map(|r| r.lease.token).collect();
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(
        tokens.len(),
        MIXED.len(),
        "each reservation has its own lease"
    );
}

/// A delayed task is never handed out before its `run_at`, and is handed out after it.
pub fn delayed_tasks_stay_invisible_until_due(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let far = Timestamp::now().saturating_add(Duration::from_secs(3_600));
    queue
        .enqueue(task_at("later", 0).run_at(far))
        .expect("enqueue");
    let soon = task_at("soon", 0).delay(Duration::from_millis(30));
    let soon_at = soon.run_at.expect("delay sets run_at");
    queue.enqueue(soon).expect("enqueue");
    queue.enqueue(task_at("now", 9)).expect("enqueue");
    let worker = worker("delay-worker");

    let first = queue.reserve(&worker, 10, LONG).expect("reserve");
    let after_first = Timestamp::now();
    let got: Vec<TaskId> = first.iter().map(|r| r.id().clone()).collect();
    assert!(got.contains(&id("now")), "an undelayed task is due at once");
    assert!(
        !got.contains(&id("later")),
        "a task due in an hour was handed out"
    );
    if got.contains(&id("soon")) {
        assert!(
            after_first >= soon_at,
            "a delayed task was handed out early"
        );
    }
    let record = queue.status(&id("later")).expect("status");
    assert_eq!(record.run_at, far);
    assert_eq!(record.status, TaskStatus::Pending);

    if !got.contains(&id("soon")) {
        wait_for("the delayed task to be handed out once due", || {
            let batch = queue.reserve(&worker, 10, LONG).expect("reserve");
            let when = Timestamp::now();
            let mut found = None;
            for reservation in batch {
                assert_ne!(
                    reservation.id(),
                    &id("later"),
                    "a task due in an hour was handed out"
                );
                assert_eq!(reservation.id(), &id("soon"));
                assert!(when >= soon_at, "a delayed task was handed out early");
                found = Some(());
            }
            found
        });
    }
    let stats = queue.stats().expect("stats");
    assert_eq!(
        (stats.pending, stats.running),
        (1, 2),
        "only the hour-delayed task waits"
    );
}

/// A task delayed further than any store can count (`Duration::MAX`, or the last
/// representable instant) stays delayed, and its record reads back, waiting, far in the
/// future; so does a job's reduce held back with such a `run_at` once its maps complete.
pub fn far_future_tasks_stay_delayed_and_readable(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    let end_of_time = Timestamp::from_micros(u64::MAX);
    queue
        .enqueue(task_at("forever", 0).delay(Duration::MAX))
        .expect("enqueue a task delayed by Duration::MAX");
    queue
        .enqueue(task_at("end-of-time", 0).run_at(end_of_time))
        .expect("enqueue a task due at the last instant");
    queue
        .enqueue_batch(vec![
            task_at("batched-forever", 0).run_at(end_of_time),
            task_at("due-now", 0),
        ])
        .expect("enqueue a batch");
    let job = NewJob::new(
        vec![task("far-map")],
        task("far-reduce").run_at(end_of_time),
    )
    .with_id(id("far-job"));
    queue.submit_job(job).expect("submit a job");
    let worker = worker("far-future-worker");

    let got: Vec<TaskId> = queue
        .reserve(&worker, 10, LONG)
        .expect("reserve")
        .into_iter()
        .map(|r| {
            if r.id() == &id("far-map") {
                queue
                    .complete(&r.lease, Vec::new())
                    .expect("complete the map");
            }
            r.id().clone()
        })
        .collect();
    assert_eq!(
        got,
        vec![id("due-now"), id("far-map")],
        "only the undelayed tasks are due"
    );
    assert!(
        queue
            .reserve(&worker, 10, LONG)
            .expect("reserve")
            .is_empty(),
        "a far-future task (or reduce) was handed out"
    );
    // More than a century ahead: no store has to keep the very last microsecond.
    let century = Timestamp::now().saturating_add(Duration::from_secs(100 * 366 * 86_400));
    for name in ["forever", "end-of-time", "batched-forever", "far-reduce"] {
        let record = queue
            .status(&id(name))
            .expect("a far-future record reads back");
        assert_eq!(record.status, TaskStatus::Pending, "{name}");
        assert!(
            record.run_at > century,
            "{name} is due at {}, not far in the future",
            record.run_at
        );
    }
    assert_eq!(
        queue.job(&id("far-job")).expect("job").status,
        JobStatus::Reducing
    );
    let listed = queue
        .list(&ListFilter {
            status: Some(TaskStatus::Pending),
            limit: 10,
        })
        .expect("list");
    assert_eq!(listed.len(), 4, "{listed:?}");
    let stats = queue.stats().expect("stats");
    assert_eq!((stats.pending, stats.running, stats.completed), (4, 1, 1));
    assert!(stats.is_consistent(), "{stats:?}");
}

/// `reserve` with `max` as large as it goes hands out every due task, in queue order.
pub fn reserve_with_an_unbounded_max_takes_every_due_task(harness: &impl Harness) {
    let queue = harness.fresh(&QueueSettings::default());
    queue
        .enqueue_batch(MIXED.iter().map(|&(n, p)| task_at(n, p)).collect())
        .expect("enqueue a batch");
    let worker = worker("greedy-worker");
    let got: Vec<TaskId> = queue
        .reserve(&worker, usize::MAX, LONG)
        .expect("reserve with max = usize::MAX")
        .iter()
        .map(|r| r.id().clone())
        .collect();
    assert_eq!(got, expected_order());
    assert!(
        queue
            .reserve(&worker, usize::MAX, LONG)
            .expect("reserve from an empty queue")
            .is_empty()
    );
}
