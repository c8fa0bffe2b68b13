//! Bad input is an outcome, never a crash: unknown names end dead with the reason once their
//! attempts run out (a handler registered meanwhile runs them), undecodable payloads at once, oversized payloads are refused at submit, panics are failed attempts, permanent errors skip retries.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use workmill::{
    Call, FailureKind, MemoryConfig, NamedTask, QueueError, Runtime, RuntimeError, TaskContext,
    TaskError, TaskStatus,
};

use crate::support::{WAIT, quick_retry};

fn runtime() -> Runtime {
    Runtime::builder()
        .threads(1)
        .default_retry(quick_retry(3))
        .build()
        .unwrap()
}

#[test]
fn an_unknown_task_name_is_retried_then_ends_dead_with_unknown_task() {
    let runtime = runtime();
    let task = runtime
        .submit(Call::<u32, u32>::new("never.registered", 7))
        .send()
        .unwrap();
    match runtime.wait_for(&task, WAIT) {
        Err(RuntimeError::TaskFailed {
            status: TaskStatus::Dead,
            last_error: Some(failure),
            ..
        }) => {
            assert_eq!(failure.kind, FailureKind::UnknownTask);
            assert!(failure.message.contains("never.registered"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        runtime.status(task.id()).unwrap().attempts,
        3,
        "retried under the policy"
    );
}

/// A runtime that starts reserving before its handlers are registered (tasks already in its
/// store) must not lose the tasks it reserved too early.
#[test]
fn a_task_reserved_before_its_handler_is_registered_runs_once_it_is() {
    let runtime = Runtime::builder()
        .threads(1)
        .default_retry(
            workmill::RetryPolicy::new(100)
                .backoff(workmill::Backoff::Fixed(Duration::from_millis(10)))
                .jitter(0.0),
        )
        .build()
        .unwrap();
    let call = Call::<u32, u32>::new("registered.late", 20);
    let task = runtime.submit(call).send().unwrap();
    // Its first attempt met no handler.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let record = runtime.status(task.id()).unwrap();
        if record.attempts >= 1 {
            let failure = record.last_error.expect("the first attempt failed");
            assert_eq!(failure.kind, FailureKind::UnknownTask);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never attempted");
        std::thread::sleep(Duration::from_millis(1));
    }
    runtime
        .register_fn("registered.late", |x: u32| Ok::<_, TaskError>(x + 1))
        .unwrap();
    assert_eq!(runtime.wait_for(&task, WAIT).unwrap(), 21);
}

#[test]
fn an_undecodable_payload_ends_dead_with_the_decode_error() {
    let runtime = runtime();
    runtime
        .register_fn("needs.number", |x: u64| Ok::<_, TaskError>(x + 1))
        .unwrap();
    // A string where the handler expects a number: postcard refuses the leftover bytes.
    let task = runtime
        .submit(Call::<String, u64>::new(
            "needs.number",
            "not a number".into(),
        ))
        .send()
        .unwrap();
    let error = runtime.wait_for(&task, WAIT).unwrap_err();
    let RuntimeError::TaskFailed {
        status: TaskStatus::Dead,
        last_error: Some(failure),
        ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(failure.kind, FailureKind::Decode);
    assert!(failure.message.contains("u64"), "{}", failure.message);
    assert!(error.to_string().contains(task.id().as_str()), "{error}");
    assert_eq!(runtime.status(task.id()).unwrap().attempts, 1);
}

#[test]
fn an_oversized_payload_is_refused_at_submit_and_nothing_is_queued() {
    let runtime = Runtime::builder()
        .threads(1)
        .max_payload(Some(16))
        .build()
        .unwrap();
    let echo = runtime
        .register_fn("echo", |bytes: Vec<u8>| Ok::<_, TaskError>(bytes))
        .unwrap();
    match runtime.submit(echo.call(vec![0; 100])).send() {
        Err(RuntimeError::Queue(QueueError::PayloadTooLarge { size, limit, .. })) => {
            assert_eq!((size, limit), (101, 16), "postcard adds a one-byte length");
        }
        other => panic!("{other:?}"),
    }
    assert!(runtime.submit_all([echo.call(vec![0; 100])]).is_err());
    assert_eq!(runtime.stats().unwrap().submitted, 0);
    // The backend's own limit applies too.
    let runtime = Runtime::builder()
        .threads(1)
        .memory(MemoryConfig::default().max_payload(Some(8)))
        .build()
        .unwrap();
    let echo = runtime
        .register_fn("echo", |bytes: Vec<u8>| Ok::<_, TaskError>(bytes))
        .unwrap();
    assert!(matches!(
        runtime.submit(echo.call(vec![0; 9])).send(),
        Err(RuntimeError::Queue(QueueError::PayloadTooLarge { .. }))
    ));
    let small = runtime.submit(echo.call(vec![1, 2])).send().unwrap();
    assert_eq!(runtime.wait_for(&small, WAIT).unwrap(), vec![1, 2]);
}

#[test]
fn a_panicking_handler_is_a_failed_attempt_and_the_worker_lives_on() {
    // One worker thread: if a panic killed it, nothing after the panics would run.
    let runtime = runtime();
    let fragile = runtime
        .register_fn("fragile", |x: i32| {
            if x < 0 {
                panic!("negative input {x}");
            }
            Ok::<_, TaskError>(x * 10)
        })
        .unwrap();
    let panicking: Vec<_> = (1..=3)
        .map(|i| runtime.submit(fragile.call(-i)).send().unwrap())
        .collect();
    let fine = runtime.submit(fragile.call(4)).send().unwrap();
    for (i, task) in panicking.iter().enumerate() {
        let record = match runtime.wait_for(task, WAIT) {
            Err(RuntimeError::TaskFailed { .. }) => runtime.status(task.id()).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!((record.status, record.attempts), (TaskStatus::Dead, 3));
        let failure = record.last_error.unwrap();
        assert_eq!(failure.kind, FailureKind::Panic);
        assert!(
            failure
                .message
                .contains(&format!("negative input -{}", i + 1)),
            "{}",
            failure.message
        );
    }
    assert_eq!(runtime.wait_for(&fine, WAIT).unwrap(), 40);
    let stats = runtime.stats().unwrap();
    assert_eq!(
        (stats.failed_attempts, stats.retried, stats.completed),
        (9, 6, 1)
    );
}

#[derive(Serialize, Deserialize)]
struct Validate(String);

impl NamedTask for Validate {
    const NAME: &'static str = "validate";
    type Output = usize;
    fn run(self, _ctx: &TaskContext<'_>) -> Result<usize, TaskError> {
        if self.0.is_empty() {
            return Err(TaskError::permanent("empty input can never be valid"));
        }
        Ok(self.0.len())
    }
}

#[test]
fn a_permanent_error_skips_the_remaining_retries() {
    let runtime = runtime();
    runtime.register::<Validate>().unwrap();
    let task = runtime
        .submit(Validate(String::new()))
        .retry(quick_retry(5))
        .send()
        .unwrap();
    let error = runtime.wait_for(&task, WAIT).unwrap_err();
    assert!(
        error.to_string().contains("empty input can never be valid"),
        "{error}"
    );
    let record = runtime.status(task.id()).unwrap();
    assert_eq!((record.status, record.attempts), (TaskStatus::Dead, 1));
    assert_eq!(record.last_error.unwrap().kind, FailureKind::Permanent);
    assert_eq!(runtime.stats().unwrap().retried, 0);
    let fine = runtime.submit(Validate("ok".into())).send().unwrap();
    assert_eq!(runtime.wait_for(&fine, Duration::from_secs(60)).unwrap(), 2);
}
