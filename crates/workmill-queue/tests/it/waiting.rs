//! Blocking calls: `wait` for a final status, `await_work` for new work, `wait_idle` for the end of
//! all work, each woken by another thread's operation.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use workmill_core::{Queue, QueueError, TaskStatus};
use workmill_queue::MemoryQueue;

use crate::support::{LEASE, id, reserve_one, task, worker};

const LONG: Duration = Duration::from_secs(120);

#[test]
fn wait_returns_the_final_record_when_another_thread_completes_it() {
    let queue = Arc::new(MemoryQueue::new());
    queue.enqueue(task("t", 5, 1)).unwrap();
    let waiter = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || queue.wait(&id("t"), LONG))
    };
    let reservation = reserve_one(&*queue);
    queue
        .complete(&reservation.lease, b"done".to_vec())
        .unwrap();
    let record = waiter.join().unwrap().unwrap();
    assert_eq!(record.status, TaskStatus::Completed);
    assert_eq!(record.result.as_deref(), Some(&b"done"[..]));
}

#[test]
fn many_waiters_on_many_tasks_all_see_their_own_task() {
    let queue = Arc::new(MemoryQueue::new());
    let names: Vec<String> = (0..40).map(|i| format!("t{i}")).collect();
    for name in &names {
        queue.enqueue(task(name, 5, 1)).unwrap();
    }
    let waiters: Vec<_> = names
        .iter()
        .map(|name| {
            let queue = Arc::clone(&queue);
            let name = name.clone();
            thread::spawn(move || queue.wait(&id(&name), LONG).map(|r| (name, r)))
        })
        .collect();
    for reservation in queue.reserve(&worker(), 40, LEASE).unwrap() {
        let result = reservation.id().to_string().into_bytes();
        queue.complete(&reservation.lease, result).unwrap();
    }
    for waiter in waiters {
        let (name, record) = waiter.join().unwrap().unwrap();
        assert_eq!(record.id.as_str(), name);
        assert_eq!(record.result.unwrap(), name.as_bytes());
    }
}

#[test]
fn wait_times_out_with_the_current_status() {
    let queue = MemoryQueue::new();
    queue.enqueue(task("slow", 5, 1)).unwrap();
    match queue.wait(&id("slow"), Duration::from_millis(5)) {
        Err(QueueError::Timeout { id, status, waited }) => {
            assert_eq!(id.as_str(), "slow");
            assert_eq!(status, TaskStatus::Pending);
            assert!(waited >= Duration::from_millis(5));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        queue.wait(&id("missing"), LONG),
        Err(QueueError::NotFound { .. })
    ));
}

#[test]
fn a_waiter_on_a_purged_task_is_told_it_is_gone() {
    let queue = Arc::new(MemoryQueue::new());
    queue.enqueue(task("doomed", 5, 1)).unwrap();
    let waiter = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || queue.wait(&id("doomed"), LONG))
    };
    // Whether the purge lands before or after the waiter blocks, the answer is NotFound
    // (the loom tests check the wake-up itself).
    assert_eq!(queue.purge(&[TaskStatus::Pending]).unwrap(), 1);
    assert!(matches!(
        waiter.join().unwrap(),
        Err(QueueError::NotFound { .. })
    ));
}

#[test]
fn await_work_returns_for_a_task_enqueued_by_another_thread() {
    let queue = Arc::new(MemoryQueue::new());
    let worker_thread = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            loop {
                let batch = queue.reserve(&worker(), 1, LEASE).unwrap();
                if let Some(reservation) = batch.into_iter().next() {
                    return reservation.id().clone();
                }
                queue.await_work(LONG).unwrap();
            }
        })
    };
    queue.enqueue(task("wake-up", 5, 1)).unwrap();
    assert_eq!(worker_thread.join().unwrap(), id("wake-up"));
}

#[test]
fn wait_idle_returns_once_every_task_finished() {
    let queue = Arc::new(MemoryQueue::new());
    for i in 0..20 {
        queue.enqueue(task(&format!("t{i}"), 5, 1)).unwrap();
    }
    let idle = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || queue.wait_idle(LONG))
    };
    for _ in 0..20 {
        let reservation = reserve_one(&*queue);
        queue.complete(&reservation.lease, vec![]).unwrap();
    }
    let stats = idle.join().unwrap().unwrap();
    assert_eq!((stats.completed, stats.pending, stats.running), (20, 0, 0));

    queue.enqueue(task("stuck", 5, 1)).unwrap();
    let timeout = queue.wait_idle(Duration::from_millis(5)).unwrap_err();
    assert_eq!(timeout.stats.pending, 1);
    assert!(timeout.to_string().contains("1 pending"), "{timeout}");
}
