//! Unit tests of the memory backend's internals: stale entries are dropped, tokens never repeat
//! across slot reuse, the lease and delayed heaps stay proportional to what is live in them, and
//! reservations share payloads rather than copy them.

use std::time::Duration;

use workmill_core::{
    NewTask, Priority, Queue, Reservation, RetryPolicy, TaskId, TaskName, TaskStatus, WorkerId,
};

use super::{MemoryConfig, MemoryQueue};
use crate::sync::lock;

fn worker() -> WorkerId {
    WorkerId::new("unit").unwrap()
}

/// A task with a static name, so that a finished one holds nothing elsewhere (see
/// `Task::holds_nothing_elsewhere`).
fn task(id: &str) -> NewTask {
    NewTask::new(TaskName::from_static("unit"), vec![])
        .with_id(TaskId::new(id).unwrap())
        .retry(RetryPolicy::never())
}

/// Reserves the one due task for a minute; fails the test unless exactly one was due.
fn reserve_one(queue: &MemoryQueue) -> Reservation {
    let mut reserved = queue
        .reserve(&worker(), 1, Duration::from_secs(60))
        .unwrap();
    assert_eq!(reserved.len(), 1, "exactly one task was due");
    reserved.remove(0)
}

#[test]
fn the_lease_heap_stays_proportional_to_held_leases() {
    let queue = MemoryQueue::new();
    for round in 0..50 {
        let batch: Vec<NewTask> = (0..100)
            .map(|i| NewTask::new("unit", vec![]).priority(Priority::new(i % 3)))
            .collect();
        queue.enqueue_batch(batch).unwrap();
        let reserved = queue
            .reserve(&worker(), 100, Duration::from_secs(3_600))
            .unwrap();
        let done = reserved.into_iter().map(|r| (r.lease, vec![])).collect();
        assert!(
            queue
                .complete_batch(done)
                .unwrap()
                .iter()
                .all(Result::is_ok)
        );
        let state = lock(&queue.state);
        assert!(
            state.timers.lease_entries() <= 2 * 100 + 64,
            "round {round}: {} entries for 0 leases held",
            state.timers.lease_entries()
        );
    }
    assert_eq!(queue.stats().unwrap().completed, 5_000);
}

/// Delayed tasks cancelled (and evicted) long before their time leave stale entries in the
/// delayed heap; it is compacted as they dominate, so a loop of delayed submissions and
/// cancellations keeps it bounded, and the tasks still delayed keep their entries.
#[test]
fn the_delayed_heap_stays_proportional_to_the_waiting_tasks() {
    use super::Clock;
    let clock = std::sync::Arc::new(super::ManualClock::new(
        workmill_core::Timestamp::from_micros(1_000_000),
    ));
    let queue = MemoryQueue::with_config(
        MemoryConfig::default()
            .retention(Some(0))
            .clock(clock.clone()),
    );
    let year = Duration::from_secs(365 * 24 * 3_600);
    let in_a_year = clock.now().saturating_add(year);
    for i in 0..10 {
        queue
            .enqueue(task(&format!("kept{i}")).run_at(in_a_year))
            .unwrap();
    }
    let mut largest = 0;
    for i in 0..10_000 {
        let id = queue
            .enqueue(task(&format!("gone{i}")).run_at(in_a_year))
            .unwrap();
        queue.cancel(&id).unwrap();
        largest = largest.max(lock(&queue.state).timers.delayed_entries());
    }
    // At most twice the 11 waiting tasks, or the floor of 64, plus the one just pushed.
    assert!(
        largest <= 65,
        "{largest} delayed entries for 11 waiting tasks"
    );
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.pending, stats.cancelled, stats.evicted),
        (10, 10_000, 10_000)
    );
    // The tasks still delayed fall due in their time.
    assert!(queue.reserve(&worker(), 100, year).unwrap().is_empty());
    clock.advance(year);
    let mut due: Vec<String> = queue
        .reserve(&worker(), 100, year)
        .unwrap()
        .iter()
        .map(|r| r.id().to_string())
        .collect();
    due.sort();
    let kept: Vec<String> = (0..10).map(|i| format!("kept{i}")).collect();
    assert_eq!(due, kept);
}

#[test]
fn cancelled_tasks_leave_stale_entries_that_reserve_skips() {
    let queue = MemoryQueue::new();
    for i in 0..10 {
        queue.enqueue(task(&format!("t{i}"))).unwrap();
    }
    for i in (0..10).step_by(2) {
        queue
            .cancel(&TaskId::new(format!("t{i}")).unwrap())
            .unwrap();
    }
    assert_eq!(lock(&queue.state).ready.len(), 10, "cancel is lazy");
    let ids: Vec<String> = queue
        .reserve(&worker(), 10, Duration::from_secs(60))
        .unwrap()
        .iter()
        .map(|r| r.id().to_string())
        .collect();
    assert_eq!(ids, ["t1", "t3", "t5", "t7", "t9"]);
    assert!(lock(&queue.state).ready.is_empty());
    assert_eq!(lock(&queue.state).next_key(), None);
}

#[test]
fn a_reused_slot_never_reissues_a_token() {
    let queue = MemoryQueue::with_config(MemoryConfig::default().retention(Some(0)));
    let mut tokens = std::collections::HashSet::new();
    for i in 0..100 {
        queue.enqueue(task(&format!("t{i}"))).unwrap();
        let reservation = reserve_one(&queue);
        assert!(
            tokens.insert(reservation.lease.token),
            "token reissued at {i}"
        );
        queue.complete(&reservation.lease, vec![]).unwrap();
        // Retention 0: the record is evicted at once and its slot is reused.
        assert_eq!(lock(&queue.state).slots.len(), 0);
    }
    let stats = queue.stats().unwrap();
    assert_eq!((stats.completed, stats.evicted), (100, 100));
}

#[test]
fn an_old_lease_cannot_touch_the_next_occupant_of_its_slot() {
    let queue = MemoryQueue::with_config(MemoryConfig::default().retention(Some(0)));
    queue.enqueue(task("first")).unwrap();
    let first = reserve_one(&queue);
    queue.complete(&first.lease, vec![]).unwrap();
    queue.enqueue(task("second")).unwrap();
    let second = reserve_one(&queue);
    assert_eq!(
        first.lease.token >> 32,
        second.lease.token >> 32,
        "same slot"
    );
    // The first task is gone: NotFound, and the second task is untouched.
    assert!(matches!(
        queue.complete(&first.lease, vec![]),
        Err(workmill_core::QueueError::NotFound { .. })
    ));
    assert_eq!(
        queue
            .status(&TaskId::new("second").unwrap())
            .unwrap()
            .status,
        TaskStatus::Running
    );
}

#[test]
fn a_requeued_task_is_not_evicted_through_its_old_finished_entry() {
    let queue = MemoryQueue::with_config(MemoryConfig::default().retention(Some(1)));
    queue.enqueue(task("dead")).unwrap();
    let reservation = reserve_one(&queue);
    queue
        .fail(
            &reservation.lease,
            workmill_core::Failure::new(workmill_core::FailureKind::Error, "x"),
        )
        .unwrap();
    let id = TaskId::new("dead").unwrap();
    queue.requeue(&id).unwrap();
    // Two more tasks finish; the requeued one is pending and must survive.
    for name in ["a", "b"] {
        queue.enqueue(task(name)).unwrap();
    }
    let batch = queue
        .reserve(&worker(), 3, Duration::from_secs(60))
        .unwrap();
    let names: Vec<&str> = batch.iter().map(|r| r.id().as_str()).collect();
    assert_eq!(names, ["dead", "a", "b"], "requeued before a and b arrived");
    queue.complete(&batch[1].lease, vec![]).unwrap();
    queue.complete(&batch[2].lease, vec![]).unwrap();
    assert_eq!(queue.status(&id).unwrap().status, TaskStatus::Running);
    let stats = queue.stats().unwrap();
    assert!(stats.is_consistent());
    assert_eq!((stats.completed, stats.evicted, stats.running), (2, 1, 1));
}

#[test]
fn a_reservation_shares_the_queued_payload_and_name_instead_of_copying_them() {
    let queue = MemoryQueue::new();
    let id = queue
        .enqueue(NewTask::new(String::from("unit.large"), vec![3; 1 << 20]))
        .unwrap();
    let reserved = reserve_one(&queue);
    let record = queue.status(&id).unwrap();
    assert!(std::ptr::eq(
        reserved.payload.as_slice(),
        record.payload.as_slice()
    ));
    assert!(std::ptr::eq(reserved.name.as_str(), record.name.as_str()));
}

#[test]
fn a_batch_of_completions_evicts_the_oldest_finished_beyond_the_bound_before_anyone_looks() {
    let queue = MemoryQueue::with_config(MemoryConfig::default().retention(Some(3)));
    let names: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    queue
        .enqueue_batch(names.iter().map(|name| task(name)).collect())
        .unwrap();
    let batch = queue
        .reserve(&worker(), 8, Duration::from_secs(60))
        .unwrap();
    // Two finish on their own, then six in one batch, in reverse order of arrival.
    for reservation in &batch[..2] {
        queue.complete(&reservation.lease, vec![]).unwrap();
    }
    let rest = batch[2..]
        .iter()
        .rev()
        .map(|reservation| (reservation.lease.clone(), vec![1]))
        .collect();
    assert!(
        queue
            .complete_batch(rest)
            .unwrap()
            .iter()
            .all(Result::is_ok)
    );
    // Finish order: t0, t1, t7, t6, t5, t4, t3, t2; the last three are kept.
    for (name, kept) in names
        .iter()
        .zip([false, false, true, true, true, false, false, false])
    {
        let found = queue.status(&TaskId::new(name).unwrap());
        assert_eq!(found.is_ok(), kept, "{name}");
    }
    let state = lock(&queue.state);
    assert_eq!((state.retained_finished, state.finished.len()), (3, 3));
    assert_eq!((state.stats.completed, state.stats.evicted), (8, 5));
    assert!(
        state.graveyard.is_empty(),
        "dropped once the lock was released"
    );
}

#[test]
fn an_evicted_record_lets_go_of_what_it_shared_and_its_box_holds_the_next_task() {
    let queue = MemoryQueue::with_config(MemoryConfig::default().retention(Some(0)));
    let input: std::sync::Arc<[u8]> = vec![5u8; 1000].into();
    queue
        .enqueue(
            NewTask::new("unit", workmill_core::Payload::from(input.clone()))
                .with_id(TaskId::new("first").unwrap()),
        )
        .unwrap();
    let reserved = reserve_one(&queue);
    assert_eq!(
        std::sync::Arc::strong_count(&input),
        3,
        "queued and reserved"
    );
    let lease = reserved.lease.clone();
    drop(reserved);
    queue.complete(&lease, vec![9; 1000]).unwrap();
    // Evicted at once (retention 0): the box waits, empty, for the next task.
    assert_eq!(std::sync::Arc::strong_count(&input), 1);
    let spare: *const super::slots::Task = {
        let spares = lock(&queue.spares.0);
        assert_eq!(spares.len(), 1);
        assert!(spares[0].record.payload.is_empty() && spares[0].record.result.is_none());
        &*spares[0]
    };
    queue.enqueue(task("second")).unwrap();
    assert!(lock(&queue.spares.0).is_empty());
    let state = lock(&queue.state);
    let slot = state.slots.find(&TaskId::new("second").unwrap()).unwrap();
    let task = state.slots.get(slot).unwrap();
    assert!(std::ptr::eq(task, spare), "the spare box was reused");
    assert_eq!(
        (task.record.status, task.record.attempts),
        (TaskStatus::Pending, 0)
    );
    assert_eq!(task.record.id.as_str(), "second");
}

#[test]
fn spare_boxes_are_kept_up_to_the_limit_and_emptied_unless_clean() {
    use super::state::{Evicted, Spares, prepare};
    let spares = Spares::default();
    let hasher = super::slots::IdHasher::default();
    let make = |n: u32, clean: bool| -> Vec<Evicted> {
        (0..n)
            .map(|_| {
                let name = TaskName::from_static("unit");
                // A clean record's payload is inline; the others' is shared.
                let payload = vec![1; if clean { 10 } else { 100 }];
                let task = prepare(
                    NewTask::new(name, payload),
                    None,
                    workmill_core::Timestamp::EPOCH,
                    &hasher,
                );
                Evicted { task, clean }
            })
            .collect()
    };
    spares.keep(make(Spares::LIMIT as u32 - 10, false));
    spares.keep(make(30, true));
    assert_eq!(lock(&spares.0).len(), Spares::LIMIT);
    let kept = spares.take(usize::MAX);
    // The dirty ones were emptied; the clean ones were not touched.
    let (dirty, clean) = kept.split_at(Spares::LIMIT - 10);
    assert!(
        dirty
            .iter()
            .all(|task| task.record.payload.is_empty() && task.record.name.is_empty())
    );
    assert!(
        clean
            .iter()
            .all(|task| task.record.payload.len() == 10 && task.record.name == "unit")
    );
    spares.keep(make(40, true));
    assert_eq!(spares.take(25).len(), 25);
    assert_eq!(spares.take(usize::MAX).len(), 15);
    assert!(spares.take(1).is_empty());
}

#[test]
fn a_task_holds_nothing_elsewhere_only_with_inline_parts_no_error_and_no_waiters() {
    use workmill_core::{Failure, FailureKind};
    let queue = MemoryQueue::new();
    let worker = WorkerId::new("w").unwrap();
    let long_worker = WorkerId::new("w".repeat(31)).unwrap();
    let finish = |task: NewTask, result: Vec<u8>, by: &WorkerId| -> bool {
        let id = queue.enqueue(task).unwrap();
        let reserved = queue.reserve(by, 1, Duration::from_secs(60)).unwrap();
        queue.complete(&reserved[0].lease, result).unwrap();
        let state = lock(&queue.state);
        let slot = state.slots.slot_of(&id).unwrap();
        let entry = state
            .finished
            .iter()
            .rev()
            .find(|e| e.slot == slot)
            .copied()
            .unwrap();
        assert_eq!(
            entry.clean,
            state.slots.get(slot).unwrap().holds_nothing_elsewhere()
        );
        entry.clean
    };
    let name = TaskName::from_static("t");
    assert!(finish(
        NewTask::new(name.clone(), vec![1; 22]),
        vec![2; 22],
        &worker
    ));
    assert!(
        !finish(NewTask::new(name.clone(), vec![1; 23]), vec![], &worker),
        "shared payload"
    );
    assert!(
        !finish(NewTask::new(name.clone(), vec![]), vec![2; 23], &worker),
        "shared result"
    );
    assert!(
        !finish(NewTask::new(name.clone(), vec![]), vec![], &long_worker),
        "shared worker id"
    );
    assert!(
        !finish(
            NewTask::new(TaskName::from("t".to_owned()), vec![]),
            vec![],
            &worker
        ),
        "shared name"
    );
    let long_id = NewTask::new(name.clone(), vec![]).with_id(TaskId::new("x".repeat(31)).unwrap());
    assert!(!finish(long_id, vec![], &worker), "shared id");
    // A dead task carries its error.
    let id = queue
        .enqueue(NewTask::new(name.clone(), vec![]).retry(RetryPolicy::never()))
        .unwrap();
    let reserved = queue.reserve(&worker, 1, Duration::from_secs(60)).unwrap();
    queue
        .fail(&reserved[0].lease, Failure::new(FailureKind::Error, "no"))
        .unwrap();
    let state = lock(&queue.state);
    let slot = state.slots.slot_of(&id).unwrap();
    assert!(!state.finished.back().unwrap().clean && state.finished.back().unwrap().slot == slot);
    drop(state);
    // A waiter registered before the task finished.
    let id = queue.enqueue(NewTask::new(name, vec![])).unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| queue.wait(&id, Duration::from_secs(30)));
        let waiting = || {
            let state = lock(&queue.state);
            let slot = state.slots.slot_of(&id).unwrap();
            state.slots.get(slot).unwrap().waiters > 0
        };
        while !waiting() {
            std::thread::yield_now();
        }
        let reserved = queue.reserve(&worker, 1, Duration::from_secs(60)).unwrap();
        queue.complete(&reserved[0].lease, vec![]).unwrap();
        assert_eq!(
            waiter.join().unwrap().unwrap().status,
            TaskStatus::Completed
        );
    });
    assert!(
        !lock(&queue.state).finished.back().unwrap().clean,
        "a waiter"
    );
}

/// Random enqueues, reservations, completions, failures, requeues, cancels and purges under small
/// retention bounds: after every step the bound holds, the finished list and the finish numbers
/// agree with the finished records, every record is found by its id, and the stats add up.
#[test]
fn random_operations_keep_the_retention_bookkeeping_exact() {
    use workmill_core::{Failure, FailureKind};
    let mut rng = fastrand::Rng::with_seed(7);
    let lease = Duration::from_secs(60);
    let mut clean_checked = 0;
    for retention in [0usize, 1, 3, 7] {
        let queue = MemoryQueue::with_config(MemoryConfig::default().retention(Some(retention)));
        let mut leases = Vec::new();
        for step in 0..4_000 {
            let id = TaskId::new(format!("t{}", rng.usize(0..40))).unwrap();
            match rng.usize(0..9) {
                0 | 1 => {
                    let _ = queue.enqueue(task(id.as_str()));
                }
                2 => {
                    let batch = queue.reserve(&worker(), rng.usize(1..4), lease).unwrap();
                    leases.extend(batch.into_iter().map(|reservation| reservation.lease));
                }
                3 if !leases.is_empty() => {
                    let held = leases.swap_remove(rng.usize(0..leases.len()));
                    let _ = queue.complete(&held, vec![1]);
                }
                4 if !leases.is_empty() => {
                    let held = leases.swap_remove(rng.usize(0..leases.len()));
                    let _ = queue.fail(&held, Failure::new(FailureKind::Permanent, "x"));
                }
                5 => {
                    let _ = queue.requeue(&id);
                }
                6 => {
                    let _ = queue.cancel(&id);
                }
                7 if rng.usize(0..20) == 0 => {
                    let statuses = [
                        TaskStatus::Completed,
                        TaskStatus::Dead,
                        TaskStatus::Cancelled,
                        TaskStatus::Pending,
                    ];
                    let _ = queue.purge(&[statuses[rng.usize(0..statuses.len())]]);
                }
                _ => {}
            }
            let state = lock(&queue.state);
            let finals = state
                .slots
                .iter()
                .filter(|(_, task)| task.record.status.is_final())
                .count();
            assert_eq!(
                finals, state.retained_finished,
                "retention {retention}, step {step}"
            );
            assert!(finals <= retention, "retention {retention}, step {step}");
            let listed = state
                .finished
                .iter()
                .filter(|entry| state.slots.finish_seq(entry.slot) == entry.seq)
                .count();
            assert_eq!(listed, finals, "retention {retention}, step {step}");
            // Only waiters change after a task finishes, and only downwards: a task noted as
            // holding nothing elsewhere still does.
            for entry in state.finished.iter() {
                if entry.clean && state.slots.finish_seq(entry.slot) == entry.seq {
                    let task = state.slots.get(entry.slot).unwrap();
                    assert!(
                        task.holds_nothing_elsewhere(),
                        "retention {retention}, step {step}"
                    );
                    clean_checked += 1;
                }
            }
            for (slot, task) in state.slots.iter() {
                assert_eq!(state.slots.find(&task.record.id), Some(slot));
                assert_eq!(
                    task.record.status.is_final(),
                    state.slots.finish_seq(slot) != super::slots::NOT_FINISHED,
                    "retention {retention}, step {step}"
                );
            }
            assert!(
                state.stats.is_consistent(),
                "retention {retention}, step {step}"
            );
        }
    }
    // Completed tasks (static name, inline ids, one-byte results) are clean: the check above ran.
    assert!(
        clean_checked > 1_000,
        "{clean_checked} clean entries checked"
    );
}

/// One operation that both makes a task ready and makes a delayed task the earliest due wakes
/// two sleeping workers: one for the work, one to shorten its sleep for the delayed task (the
/// first may be busy with the work by then). The clock is frozen, so the workers, asked to
/// sleep an hour, return only when notified.
#[test]
fn work_and_an_earlier_due_task_in_one_batch_wake_two_workers() {
    use super::ManualClock;
    use std::sync::mpsc;
    let clock = std::sync::Arc::new(ManualClock::new(workmill_core::Timestamp::from_micros(
        1_000_000,
    )));
    let queue = MemoryQueue::with_config(MemoryConfig::default().clock(clock));
    let (returned, returns) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let returned = returned.clone();
            let queue = &queue;
            s.spawn(move || {
                queue.await_work(Duration::from_secs(3_600)).unwrap();
                returned.send(()).unwrap();
            });
        }
        while lock(&queue.state).sleepers.workers < 2 {
            std::thread::yield_now();
        }
        let now = task("now");
        let later = task("later").delay(Duration::from_secs(10));
        queue.enqueue_batch(vec![now, later]).unwrap();
        let woken = (0..2)
            .take_while(|_| returns.recv_timeout(Duration::from_secs(20)).is_ok())
            .count();
        // Whatever happened, let the threads go before the scope waits for them.
        queue.wake_workers();
        assert_eq!(woken, 2, "a worker was still asleep");
    });
}

/// A sleeping worker is woken when a lease (taken by `reserve`, or cut short by `heartbeat`)
/// becomes the earliest to lapse, so that it does not sleep past the expiry. The clock is
/// frozen (advanced by hand), so the worker, asked to sleep an hour, returns only when
/// notified.
#[test]
fn a_lease_that_lapses_before_a_sleepers_deadline_wakes_it() {
    use super::{Clock, ManualClock};
    use std::sync::mpsc;
    for heartbeat in [false, true] {
        let clock = std::sync::Arc::new(ManualClock::new(workmill_core::Timestamp::from_micros(
            1_000_000,
        )));
        let queue = MemoryQueue::with_config(MemoryConfig::default().clock(clock.clone()));
        let hour = Duration::from_secs(3_600);
        let held = if heartbeat {
            // A lease held for an hour: the sleeper's deadline.
            queue.enqueue(task("held")).unwrap();
            Some(reserve_one(&queue))
        } else {
            // A task due in an hour, reserved by another worker once it is due, with no ready
            // task to wake anyone for.
            let in_an_hour = clock.now().saturating_add(hour);
            queue.enqueue(task("later").run_at(in_an_hour)).unwrap();
            None
        };
        let (returned, returns) = mpsc::channel();
        std::thread::scope(|s| {
            let queue = &queue;
            s.spawn(move || {
                queue.await_work(hour).unwrap();
                returned.send(()).unwrap();
            });
            while lock(&queue.state).sleepers.workers < 1 {
                std::thread::yield_now();
            }
            let short = Duration::from_secs(1);
            match &held {
                Some(reservation) => {
                    queue.heartbeat(&reservation.lease, short).unwrap();
                }
                None => {
                    clock.advance(hour);
                    assert_eq!(queue.reserve(&worker(), 1, short).unwrap().len(), 1);
                }
            }
            let woken = returns.recv_timeout(Duration::from_secs(20)).is_ok();
            // Whatever happened, let the thread go before the scope waits for it.
            queue.wake_workers();
            assert!(
                woken,
                "heartbeat {heartbeat}: the worker slept past the lease"
            );
        });
    }
}

/// A clean record (static name, inline ids, payload and result) is evicted without being
/// emptied, and its box, refilled, holds the next task whole.
#[test]
fn a_clean_evicted_record_goes_to_the_spares_unemptied_and_its_box_is_refilled() {
    let queue = MemoryQueue::with_config(MemoryConfig::default().retention(Some(0)));
    queue.enqueue(task("first")).unwrap();
    let reserved = reserve_one(&queue);
    queue.complete(&reserved.lease, vec![9; 5]).unwrap();
    {
        let spares = lock(&queue.spares.0);
        assert_eq!(spares.len(), 1);
        let kept = &spares[0].record;
        // Not emptied: its (inline) parts are as they were.
        assert_eq!(
            (kept.id.as_str(), kept.name.as_str(), kept.result.as_deref()),
            ("first", "unit", Some(&[9u8; 5][..]))
        );
    }
    queue
        .enqueue(
            NewTask::new(TaskName::from_static("next"), vec![4; 30])
                .with_id(TaskId::new("second").unwrap()),
        )
        .unwrap();
    assert!(lock(&queue.spares.0).is_empty(), "the box was taken");
    let record = queue.status(&TaskId::new("second").unwrap()).unwrap();
    assert_eq!(
        (
            record.status,
            record.name.as_str(),
            record.payload.as_ref(),
            record.result
        ),
        (TaskStatus::Pending, "next", &[4u8; 30][..], None)
    );
    assert!(matches!(
        queue.status(&TaskId::new("first").unwrap()),
        Err(workmill_core::QueueError::NotFound { .. })
    ));
}

/// Waiters on a task get its final record even when the retention bound would evict it in the
/// operation that finishes it, or in a burst of completions before they run: a record is kept
/// until the waiters woken for it have read it, then evicted.
#[test]
fn waiters_get_the_record_of_a_task_the_bound_would_evict_at_once() {
    use std::sync::Arc;
    for burst in [false, true] {
        let queue = Arc::new(MemoryQueue::with_config(
            MemoryConfig::default().retention(Some(0)),
        ));
        let id = TaskId::new("t").unwrap();
        queue.enqueue(task("t")).unwrap();
        let state = {
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let (queue, id) = (Arc::clone(&queue), id.clone());
                    std::thread::spawn(move || queue.wait(&id, Duration::from_secs(120)))
                })
                .collect();
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            loop {
                let state = lock(&queue.state);
                let slot = state.slots.slot_of(&id).unwrap();
                if state.slots.get(slot).unwrap().waiters == 2 {
                    break;
                }
                drop(state);
                assert!(
                    std::time::Instant::now() < deadline,
                    "the waiters did not wait"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            let reservation = reserve_one(&queue);
            if burst {
                // Completed, and the bound applied, with the waiters' wake-up left owed: it
                // goes out as the burst of other completions that follows releases the lock,
                // so the waiters run after the eviction pass, during or after the burst.
                let mut state = lock(&queue.state);
                let now = queue.clock.now();
                state
                    .complete(&reservation.lease, vec![7].into(), now)
                    .unwrap();
                state.evict_excess();
                drop(state);
                for i in 0..5 {
                    queue.enqueue(task(&format!("other{i}"))).unwrap();
                    let other = reserve_one(&queue);
                    queue.complete(&other.lease, vec![]).unwrap();
                }
            } else {
                queue.complete(&reservation.lease, vec![7]).unwrap();
            }
            for waiter in waiters {
                let record = waiter.join().unwrap().unwrap();
                assert_eq!(record.status, TaskStatus::Completed, "burst {burst}");
                assert_eq!(record.result.as_deref(), Some(&[7][..]), "burst {burst}");
            }
            lock(&queue.state)
        };
        // Read by both: gone, and the bound holds again.
        assert!(state.slots.slot_of(&id).is_err(), "burst {burst}");
        assert_eq!(state.retained_finished, 0, "burst {burst}");
        assert_eq!(state.slots.len(), 0, "burst {burst}");
    }
}

/// Retries, releases, requeues and reduces come back even into a full queue, which can leave
/// more tasks waiting than the capacity; an empty batch, which needs no room, is still
/// accepted at once then, and a job without maps is refused as invalid, not as a full queue.
#[test]
fn nothing_needs_no_room_in_an_overfull_queue() {
    use super::OnFull;
    use workmill_core::{Failure, FailureKind, NewJob, QueueError};
    for on_full in [OnFull::Refuse, OnFull::Wait(Duration::from_millis(200))] {
        let queue = MemoryQueue::with_config(MemoryConfig::default().capacity(1).on_full(on_full));
        // A requeue of a dead task fills the queue; a released task overfills it.
        queue.enqueue(task("dead")).unwrap();
        let dead = reserve_one(&queue);
        queue
            .fail(&dead.lease, Failure::new(FailureKind::Permanent, "no"))
            .unwrap();
        queue.enqueue(task("released")).unwrap();
        let released = reserve_one(&queue);
        queue.requeue(&TaskId::new("dead").unwrap()).unwrap();
        queue.release(&released.lease).unwrap();
        assert_eq!(queue.stats().unwrap().pending, 2, "{on_full:?}");

        assert_eq!(queue.enqueue_batch(vec![]).unwrap(), vec![], "{on_full:?}");
        let job = NewJob::new(vec![], task("reduce"));
        assert!(
            matches!(queue.submit_job(job), Err(QueueError::InvalidJob { .. })),
            "{on_full:?}"
        );
        assert!(
            matches!(
                queue.enqueue(task("more")),
                Err(QueueError::QueueFull { capacity: 1 })
            ),
            "{on_full:?}"
        );
    }
}

/// Submits a job of one map (`map`) and a reduce (`reduce`), with a fresh id unless `id` says.
fn one_map_job(queue: &MemoryQueue, id: &str, map: &str, reduce: &str) -> TaskId {
    let job =
        workmill_core::NewJob::new(vec![task(map)], task(reduce)).with_id(TaskId::new(id).unwrap());
    queue.submit_job(job).unwrap()
}

/// Blocks until `count` threads are registered on the job `id`.
fn wait_for_job_waiters(queue: &MemoryQueue, id: &TaskId, count: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while lock(&queue.state).jobs.get(id).unwrap().waiters != count {
        assert!(
            std::time::Instant::now() < deadline,
            "the waiters did not wait"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Threads waiting on a job get its reduce's final record even when the retention bound would
/// evict it in the operation that completes it: the job's waiters keep it until they have read
/// it, as a task's waiters keep the task's; then it goes, and nothing is left registered.
/// `Queue::wait_job` waits so too.
#[test]
fn job_waiters_get_the_reduce_record_the_bound_would_evict_at_once() {
    use workmill_core::JobStatus;
    let queue = MemoryQueue::with_config(MemoryConfig::default().retention(Some(0)));
    let job = one_map_job(&queue, "job", "map", "reduce");
    let seen: Vec<_> = std::thread::scope(|s| {
        // One waits through the `Queue` trait, which the memory queue answers with the same wait.
        let waiters = vec![
            s.spawn(|| queue.wait_job_while(&job, Duration::from_secs(120), |_| true)),
            s.spawn(|| (&queue as &dyn Queue).wait_job(&job, Duration::from_secs(120))),
        ];
        wait_for_job_waiters(&queue, &job, 2);
        let map = reserve_one(&queue);
        queue.complete(&map.lease, vec![3]).unwrap();
        let reduce = reserve_one(&queue);
        queue.complete(&reduce.lease, vec![7]).unwrap();
        waiters.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for (record, reduce) in seen.into_iter().map(Result::unwrap) {
        assert_eq!(record.status, JobStatus::Completed);
        let reduce = reduce.expect("the reduce's record was kept for the waiter");
        assert_eq!(
            (reduce.status, reduce.result.as_deref()),
            (TaskStatus::Completed, Some(&[7][..]))
        );
    }
    let state = lock(&queue.state);
    assert_eq!(state.jobs.get(&job).unwrap().waiters, 0);
    // Read by both: gone, and the bound holds again.
    assert!(state.slots.find(&TaskId::new("reduce").unwrap()).is_none());
    assert_eq!((state.retained_finished, state.slots.len()), (0, 0));
}

/// A purge that removes a job ends the waits on it with `JobNotFound`, and a job submitted
/// under its id before they wake is not theirs: they neither return it nor unregister from it.
#[test]
fn a_purge_that_removes_a_job_ends_its_waits_and_a_new_job_of_its_id_is_not_theirs() {
    use workmill_core::QueueError;
    let queue = MemoryQueue::new();
    let job = one_map_job(&queue, "job", "map", "reduce");
    let seen = std::thread::scope(|s| {
        let waiter = s.spawn(|| queue.wait_job_while(&job, Duration::from_secs(120), |_| true));
        wait_for_job_waiters(&queue, &job, 1);
        // Both under one lock, so the waiter wakes to the new job.
        let mut state = lock(&queue.state);
        let now = queue.clock.now();
        state.purge(&[TaskStatus::Pending, TaskStatus::Cancelled], now);
        assert!(state.jobs.get(&job).is_err(), "the purge removed the job");
        let again =
            workmill_core::NewJob::new(vec![task("map2")], task("reduce2")).with_id(job.clone());
        state.submit_job(again, now).unwrap();
        queue.unlock(state);
        waiter.join().unwrap()
    });
    assert!(
        matches!(seen, Err(QueueError::JobNotFound { ref id }) if *id == job),
        "{seen:?}"
    );
    assert_eq!(lock(&queue.state).jobs.get(&job).unwrap().waiters, 0);
}

/// A job's waiters are woken when its reduce stops running without finishing (here handed
/// back, as a stopping loop hands back the unstarted rest of its batch), so a `keep_waiting`
/// that waited while the reduce ran looks at it again, and may give up.
#[test]
fn a_reduce_handed_back_wakes_the_waits_on_its_job() {
    use workmill_core::JobStatus;
    let queue = MemoryQueue::new();
    let job = one_map_job(&queue, "job", "map", "reduce");
    let map = reserve_one(&queue);
    queue.complete(&map.lease, vec![]).unwrap();
    let reduce = reserve_one(&queue);
    let mut seen = Vec::new();
    let outcome = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            queue.wait_job_while(&job, Duration::from_secs(20), |reduce| {
                seen.push(reduce);
                reduce == Some(TaskStatus::Running)
            })
        });
        wait_for_job_waiters(&queue, &job, 1);
        queue.release(&reduce.lease).unwrap();
        waiter.join().unwrap()
    });
    let (record, reduce) = outcome.unwrap();
    assert_eq!(record.status, JobStatus::Reducing);
    assert_eq!(
        reduce.map(|reduce| reduce.status),
        Some(TaskStatus::Pending)
    );
    // It gave up as it looked at the reduce handed back; a wait that ran to its timeout makes
    // no last look.
    assert_eq!(seen.last(), Some(&Some(TaskStatus::Pending)), "{seen:?}");
    assert_eq!(lock(&queue.state).jobs.get(&job).unwrap().waiters, 0);
}
