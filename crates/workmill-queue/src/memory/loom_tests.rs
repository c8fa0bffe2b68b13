//! Loom model checks of the memory backend's sleep and wake-up protocol: every sleeper that should
//! wake does, whatever the interleaving (loom's timed waits never time out, so a lost wake-up
//! shows as a deadlock).

use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use workmill_core::{NewTask, Queue, QueueError, RetryPolicy, TaskId, TaskStatus, WorkerId};

use super::{MemoryConfig, MemoryQueue, OnFull};

const LONG: Duration = Duration::from_secs(3_600);

fn task(id: &str) -> NewTask {
    NewTask::new("loom", vec![])
        .with_id(TaskId::new(id).unwrap())
        .retry(RetryPolicy::never())
}

fn worker() -> WorkerId {
    WorkerId::new("loom-worker").unwrap()
}

/// Reserves one task, sleeping in `await_work` until there is one.
fn take_one(queue: &MemoryQueue) -> TaskId {
    loop {
        if let Some(reservation) = queue.reserve(&worker(), 1, LONG).unwrap().pop() {
            return reservation.id().clone();
        }
        queue.await_work(LONG).unwrap();
    }
}

#[test]
fn loom_enqueue_wakes_an_idle_worker() {
    loom::model(|| {
        let queue = Arc::new(MemoryQueue::new());
        let worker = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || take_one(&queue))
        };
        queue.enqueue(task("t")).unwrap();
        assert_eq!(worker.join().unwrap().as_str(), "t");
    });
}

/// A batch wakes one sleeping worker; taking one task, it leaves the other and passes the
/// wake-up on, so the second sleeper wakes too (a lost hand-off deadlocks).
#[test]
fn loom_a_batch_reaches_as_many_idle_workers_as_it_has_tasks() {
    loom::model(|| {
        let queue = Arc::new(MemoryQueue::new());
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let queue = Arc::clone(&queue);
                thread::spawn(move || take_one(&queue))
            })
            .collect();
        queue.enqueue_batch(vec![task("a"), task("b")]).unwrap();
        let mut taken: Vec<String> = workers
            .into_iter()
            .map(|w| w.join().unwrap().to_string())
            .collect();
        taken.sort();
        assert_eq!(taken, ["a", "b"]);
    });
}

/// Queues task `t`, has another thread `wait` for it, then reserves and completes it with
/// result `[7]`; what the waiter got.
fn wait_while_completing(queue: MemoryQueue) -> Result<workmill_core::TaskRecord, QueueError> {
    let queue = Arc::new(queue);
    queue.enqueue(task("t")).unwrap();
    let waiter = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || queue.wait(&TaskId::new("t").unwrap(), LONG))
    };
    let reservation = queue.reserve(&worker(), 1, LONG).unwrap().remove(0);
    queue.complete(&reservation.lease, vec![7]).unwrap();
    waiter.join().unwrap()
}

#[test]
fn loom_completion_wakes_a_waiter() {
    loom::model(|| {
        let record = wait_while_completing(MemoryQueue::new()).unwrap();
        assert_eq!(record.status, TaskStatus::Completed);
        assert_eq!(record.result.as_deref(), Some(&[7][..]));
    });
}

#[test]
fn loom_a_waiter_on_a_task_the_bound_evicts_as_it_finishes_gets_its_record() {
    // Retention 0: the completion that finishes the task would evict it under the same lock;
    // a waiter registered by then keeps the record until it has read it.
    loom::model(|| {
        let queue = Arc::new(MemoryQueue::with_config(
            MemoryConfig::default().retention(Some(0)),
        ));
        queue.enqueue(task("t")).unwrap();
        let waiter = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.wait(&TaskId::new("t").unwrap(), LONG))
        };
        let reservation = queue.reserve(&worker(), 1, LONG).unwrap().remove(0);
        // Whether the waiter is registered on the task already; if so, the completion must
        // not take the record from it.
        let registered = {
            let state = crate::sync::lock(&queue.state);
            let slot = state.slots.slot_of(&TaskId::new("t").unwrap()).unwrap();
            state.slots.get(slot).is_some_and(|task| task.waiters > 0)
        };
        queue.complete(&reservation.lease, vec![7]).unwrap();
        // It returns: with the record if it waited before the completion, or finding the task
        // gone if it first looked after it. Either way the record is gone once it returned.
        match waiter.join().unwrap() {
            Ok(record) => assert_eq!(record.result.as_deref(), Some(&[7][..])),
            Err(QueueError::NotFound { .. }) => assert!(
                !registered,
                "a waiter registered before the completion lost the record to eviction"
            ),
            Err(other) => panic!("{other:?}"),
        }
        assert!(matches!(
            queue.status(&TaskId::new("t").unwrap()),
            Err(QueueError::NotFound { .. })
        ));
    });
}

#[test]
fn loom_reserving_wakes_a_producer_waiting_for_room() {
    loom::model(|| {
        let queue = Arc::new(MemoryQueue::with_config(
            MemoryConfig::default()
                .capacity(1)
                .on_full(OnFull::Wait(LONG)),
        ));
        queue.enqueue(task("first")).unwrap();
        let producer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.enqueue(task("second")))
        };
        assert_eq!(take_one(&queue).as_str(), "first");
        assert_eq!(producer.join().unwrap().unwrap().as_str(), "second");
    });
}

#[test]
fn loom_the_last_completion_wakes_wait_idle() {
    loom::model(|| {
        let queue = Arc::new(MemoryQueue::new());
        queue.enqueue(task("t")).unwrap();
        let idle = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.wait_idle(LONG))
        };
        let reservation = queue.reserve(&worker(), 1, LONG).unwrap().remove(0);
        queue.complete(&reservation.lease, vec![]).unwrap();
        assert_eq!(idle.join().unwrap().unwrap().completed, 1);
    });
}

/// A change that makes a `wait_while` give up, followed by `interrupt_waits`, ends a wait in
/// progress, whenever the waiter looked at the change (a lost interruption deadlocks).
#[test]
fn loom_interrupt_waits_ends_a_wait_that_gives_up() {
    use loom::sync::atomic::{AtomicBool, Ordering};
    loom::model(|| {
        let queue = Arc::new(MemoryQueue::new());
        queue.enqueue(task("t")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (queue, stop) = (Arc::clone(&queue), Arc::clone(&stop));
            thread::spawn(move || {
                queue.wait_while(&TaskId::new("t").unwrap(), LONG, |_| {
                    !stop.load(Ordering::Relaxed)
                })
            })
        };
        stop.store(true, Ordering::Relaxed);
        queue.interrupt_waits();
        assert!(matches!(
            waiter.join().unwrap(),
            Err(QueueError::Timeout {
                status: TaskStatus::Pending,
                ..
            })
        ));
    });
}

/// A job's waiter sleeps while the maps run; the reduce's completion, which the bound would
/// evict at once, wakes it, and it gets the reduce's record if it was registered by then (a
/// lost wake-up deadlocks).
#[test]
fn loom_a_job_waiter_gets_the_reduce_record_the_bound_evicts() {
    use workmill_core::{JobStatus, NewJob};
    loom::model(|| {
        let queue = Arc::new(MemoryQueue::with_config(
            MemoryConfig::default().retention(Some(0)),
        ));
        let job = queue
            .submit_job(NewJob::new(vec![task("map")], task("reduce")))
            .unwrap();
        let waiter = {
            let (queue, job) = (Arc::clone(&queue), job.clone());
            thread::spawn(move || queue.wait_job_while(&job, LONG, |_| true))
        };
        let map = queue.reserve(&worker(), 1, LONG).unwrap().remove(0);
        queue.complete(&map.lease, vec![]).unwrap();
        let reduce = queue.reserve(&worker(), 1, LONG).unwrap().remove(0);
        // Whether the waiter is registered on the job already; if so, the completion must not
        // take the reduce's record from it.
        let registered = crate::sync::lock(&queue.state)
            .jobs
            .get(&job)
            .unwrap()
            .waiters
            > 0;
        queue.complete(&reduce.lease, vec![7]).unwrap();
        let (record, reduce) = waiter.join().unwrap().unwrap();
        assert_eq!(record.status, JobStatus::Completed);
        match reduce {
            Some(reduce) => assert_eq!(reduce.result.as_deref(), Some(&[7][..])),
            None => assert!(
                !registered,
                "a waiter registered before the reduce completed lost its record to eviction"
            ),
        }
    });
}

/// A wait that waits while its task runs gives up once the task is handed back unstarted, as
/// a stopping loop hands back the rest of its batch: the hand-back wakes it (a lost wake-up
/// deadlocks).
#[test]
fn loom_a_hand_back_wakes_a_wait_for_a_running_task() {
    loom::model(|| {
        let queue = Arc::new(MemoryQueue::new());
        queue.enqueue(task("t")).unwrap();
        let reservation = queue.reserve(&worker(), 1, LONG).unwrap().remove(0);
        let waiter = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                queue.wait_while(&TaskId::new("t").unwrap(), LONG, |status| {
                    status == TaskStatus::Running
                })
            })
        };
        queue.release(&reservation.lease).unwrap();
        assert!(matches!(
            waiter.join().unwrap(),
            Err(QueueError::Timeout {
                status: TaskStatus::Pending,
                ..
            })
        ));
    });
}

/// A change that makes an `enqueue_batch_while` give up, followed by `interrupt_waits`, ends
/// a producer waiting for room, whenever it looked at the change (a lost interruption
/// deadlocks); the batch it gave up on adds nothing.
#[test]
fn loom_interrupt_waits_ends_a_wait_for_room_that_gives_up() {
    use loom::sync::atomic::{AtomicBool, Ordering};
    loom::model(|| {
        let queue = Arc::new(MemoryQueue::with_config(
            MemoryConfig::default()
                .capacity(1)
                .on_full(OnFull::Wait(LONG)),
        ));
        queue.enqueue(task("first")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (queue, stop) = (Arc::clone(&queue), Arc::clone(&stop));
            thread::spawn(move || {
                queue.enqueue_batch_while(vec![task("second")], || !stop.load(Ordering::Relaxed))
            })
        };
        stop.store(true, Ordering::Relaxed);
        queue.interrupt_waits();
        assert!(matches!(
            producer.join().unwrap(),
            Err(QueueError::QueueFull { capacity: 1 })
        ));
        assert!(matches!(
            queue.status(&TaskId::new("second").unwrap()),
            Err(QueueError::NotFound { .. })
        ));
        assert_eq!(queue.stats().unwrap().pending, 1);
    });
}
