//! The lifecycle through the runtime: each path a task can take, state by state, and the moves the runtime refuses.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workmill::{
    Call, FailureKind, Priority, QueueError, Runtime, RuntimeError, TaskError, TaskStatus,
};

use crate::support::{WAIT, id, quick_retry};

fn runtime() -> Runtime {
    Runtime::builder()
        .threads(2)
        .default_retry(quick_retry(3))
        .build()
        .unwrap()
}

#[test]
fn completed_on_the_first_attempt() {
    let runtime = runtime();
    let add = runtime
        .register_fn("add", |(a, b): (i64, i64)| Ok::<_, TaskError>(a + b))
        .unwrap();
    let task = runtime.submit(add.call((40, 2))).send().unwrap();
    assert_eq!(runtime.wait_for(&task, WAIT).unwrap(), 42);
    let record = runtime.status(task.id()).unwrap();
    assert_eq!((record.status, record.attempts), (TaskStatus::Completed, 1));
    assert_eq!(record.name, "add");
    let (created, started, finished) = (
        record.created_at,
        record.started_at.unwrap(),
        record.finished_at.unwrap(),
    );
    assert!(created <= started && started <= finished);
    assert!(record.worker.unwrap().as_str().ends_with("-0") || record.last_error.is_none());
}

#[test]
fn retried_with_demotion_then_completed() {
    let runtime = runtime();
    let attempts = Arc::new(Mutex::new(0));
    let flaky = {
        let attempts = attempts.clone();
        runtime
            .register_fn("flaky", move |x: u32| {
                let mut attempts = attempts.lock().unwrap();
                *attempts += 1;
                if *attempts < 3 {
                    return Err(TaskError::retryable(format!("attempt {attempts} failed")));
                }
                Ok(x)
            })
            .unwrap()
    };
    let task = runtime
        .submit(flaky.call(9))
        .priority(Priority::HIGH)
        .retry(quick_retry(3).demote_by(10))
        .send()
        .unwrap();
    assert_eq!(runtime.wait_for(&task, WAIT).unwrap(), 9);
    let record = runtime.status(task.id()).unwrap();
    assert_eq!((record.status, record.attempts), (TaskStatus::Completed, 3));
    assert_eq!(record.priority, Priority::new(21));
    assert_eq!(record.last_error.unwrap().message, "attempt 2 failed");
    let stats = runtime.stats().unwrap();
    assert_eq!((stats.failed_attempts, stats.retried), (2, 2));
}

#[test]
fn dead_after_its_attempts_then_requeued_and_completed() {
    let runtime = runtime();
    let healthy = Arc::new(Mutex::new(false));
    let check = {
        let healthy = healthy.clone();
        runtime
            .register_fn("check", move |_: ()| {
                if *healthy.lock().unwrap() {
                    Ok("up".to_owned())
                } else {
                    Err(TaskError::retryable("service down"))
                }
            })
            .unwrap()
    };
    let task = runtime.submit(check.call(())).send().unwrap();
    match runtime.wait_for(&task, WAIT) {
        Err(RuntimeError::TaskFailed {
            status: TaskStatus::Dead,
            last_error: Some(failure),
            ..
        }) => {
            assert_eq!(failure.kind, FailureKind::Error);
            assert_eq!(failure.message, "service down");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(runtime.status(task.id()).unwrap().attempts, 3);
    *healthy.lock().unwrap() = true;
    runtime.requeue(task.id()).unwrap();
    assert_eq!(runtime.wait_for(&task, WAIT).unwrap(), "up");
    let record = runtime.status(task.id()).unwrap();
    assert_eq!((record.status, record.attempts), (TaskStatus::Completed, 1));
    let stats = runtime.stats().unwrap();
    assert_eq!(
        (stats.completed, stats.dead, stats.failed_attempts),
        (1, 0, 3)
    );
}

#[test]
fn pending_and_delayed_tasks_are_cancelled_and_never_run() {
    let runtime = Runtime::builder().threads(2).paused().build().unwrap();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let record_run = {
        let ran = ran.clone();
        runtime
            .register_fn("record", move |x: u32| {
                ran.lock().unwrap().push(x);
                Ok::<_, TaskError>(x)
            })
            .unwrap()
    };
    let pending = runtime.submit(record_run.call(1)).send().unwrap();
    let delayed = runtime
        .submit(record_run.call(2))
        .delay(Duration::from_secs(3_600))
        .send()
        .unwrap();
    let kept = runtime.submit(record_run.call(3)).send().unwrap();
    let record = runtime.status(delayed.id()).unwrap();
    assert_eq!(record.status, TaskStatus::Pending);
    assert!(record.run_at >= record.created_at.saturating_add(Duration::from_secs(3_599)));

    runtime.cancel(pending.id()).unwrap();
    runtime.cancel(delayed.id()).unwrap();
    runtime.resume();
    assert_eq!(runtime.wait_for(&kept, WAIT).unwrap(), 3);
    for task in [&pending, &delayed] {
        match runtime.wait_for(task, WAIT) {
            Err(RuntimeError::TaskFailed {
                status: TaskStatus::Cancelled,
                last_error: None,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(*ran.lock().unwrap(), [3]);
    let stats = runtime.wait_idle(WAIT).unwrap();
    assert_eq!((stats.cancelled, stats.completed, stats.pending), (2, 1, 0));
}

#[test]
fn a_running_or_finished_task_cannot_be_cancelled() {
    let runtime = runtime();
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let gate = {
        let started_tx = Mutex::new(started_tx);
        runtime
            .register_fn("gate", move |_: ()| {
                started_tx.lock().unwrap().send(()).unwrap();
                release_rx.lock().unwrap().recv().unwrap();
                Ok::<_, TaskError>(())
            })
            .unwrap()
    };
    let task = runtime.submit(gate.call(())).send().unwrap();
    started_rx.recv().unwrap();
    assert_eq!(
        runtime.status(task.id()).unwrap().status,
        TaskStatus::Running
    );
    match runtime.cancel(task.id()) {
        Err(RuntimeError::Queue(QueueError::IllegalTransition { source, .. })) => {
            assert_eq!(
                (source.from, source.to),
                (TaskStatus::Running, TaskStatus::Cancelled)
            )
        }
        other => panic!("{other:?}"),
    }
    release_tx.send(()).unwrap();
    runtime.wait_for(&task, WAIT).unwrap();
    assert!(matches!(
        runtime.cancel(task.id()),
        Err(RuntimeError::Queue(QueueError::IllegalTransition { .. }))
    ));
    assert!(matches!(
        runtime.requeue(task.id()),
        Err(RuntimeError::Queue(QueueError::IllegalTransition { .. }))
    ));
    assert!(matches!(
        runtime.cancel(&id("no-such-task")),
        Err(RuntimeError::Queue(QueueError::NotFound { .. }))
    ));
}

#[test]
fn a_custom_id_is_an_idempotency_key() {
    let runtime = runtime();
    let charge = runtime
        .register_fn("charge", |cents: u64| Ok::<_, TaskError>(cents))
        .unwrap();
    let first = runtime
        .submit(charge.call(500))
        .id(id("invoice-42"))
        .send()
        .unwrap();
    let error = runtime
        .submit(charge.call(999))
        .id(id("invoice-42"))
        .send()
        .unwrap_err();
    assert!(error.is_duplicate(), "{error:?}");
    assert!(error.to_string().contains("invoice-42"), "{error}");
    assert_eq!(
        runtime.wait_for(&first, WAIT).unwrap(),
        500,
        "the first submission stands"
    );
    assert_eq!(runtime.stats().unwrap().submitted, 1);
    let same = runtime
        .submit(Call::<u64, u64>::new("charge", 1))
        .id(id("invoice-42"))
        .send();
    assert!(same.unwrap_err().is_duplicate());
}

/// The idempotency of a custom id lasts as long as the backend keeps the task's record: once
/// the retention bound evicts it, or a purge removes it, the id names a new task.
#[test]
fn a_custom_id_is_taken_only_while_its_record_is_kept() {
    let runtime = Runtime::builder()
        .memory(workmill::MemoryConfig::default().retention(Some(1)))
        .threads(1)
        .build()
        .unwrap();
    let charge = runtime
        .register_fn("charge", |cents: u64| Ok::<_, TaskError>(cents))
        .unwrap();
    let first = runtime
        .submit(charge.call(500))
        .id(id("invoice-42"))
        .send()
        .unwrap();
    assert_eq!(runtime.wait_for(&first, WAIT).unwrap(), 500);
    let refused = runtime.submit(charge.call(500)).id(id("invoice-42")).send();
    assert!(refused.unwrap_err().is_duplicate(), "kept: still taken");
    // Another task finishes: the bound of one record evicts the first.
    let other = runtime.submit(charge.call(1)).send().unwrap();
    assert_eq!(runtime.wait_for(&other, WAIT).unwrap(), 1);
    let again = runtime
        .submit(charge.call(700))
        .id(id("invoice-42"))
        .send()
        .unwrap();
    assert_eq!(runtime.wait_for(&again, WAIT).unwrap(), 700, "a new task");
    // A purge frees it too.
    runtime.queue().purge(&[TaskStatus::Completed]).unwrap();
    let after_purge = runtime
        .submit(charge.call(900))
        .id(id("invoice-42"))
        .send()
        .unwrap();
    assert_eq!(runtime.wait_for(&after_purge, WAIT).unwrap(), 900);
}
