//! Results: typed, blocking without polling, and clear errors for timeouts, failures, wrong types and unknown ids.

use std::time::Duration;

use workmill::{Call, Runtime, RuntimeError, TaskError, TaskStatus};

use crate::support::{WAIT, id};

#[test]
fn a_wait_that_runs_out_says_which_task_and_its_status() {
    let runtime = Runtime::builder().threads(1).paused().build().unwrap();
    let square = runtime
        .register_fn("square", |x: u64| Ok::<_, TaskError>(x * x))
        .unwrap();
    let task = runtime.submit(square.call(12)).send().unwrap();
    let error = runtime
        .wait_for(&task, Duration::from_millis(10))
        .unwrap_err();
    match &error {
        RuntimeError::Timeout { id, status, waited } => {
            assert_eq!(id, task.id());
            assert_eq!(*status, TaskStatus::Pending);
            assert!(*waited >= Duration::from_millis(10));
        }
        other => panic!("{other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(task.id().as_str()) && message.contains("pending"),
        "{message}"
    );
    runtime.resume();
    assert_eq!(runtime.wait_for(&task, WAIT).unwrap(), 144);
}

#[test]
fn a_result_read_as_the_wrong_type_is_a_decode_error_naming_the_task() {
    let runtime = Runtime::builder().threads(1).build().unwrap();
    let greet = runtime
        .register_fn("greet", |name: String| {
            Ok::<_, TaskError>(format!("hello {name}"))
        })
        .unwrap();
    let task = runtime.submit(greet.call("ada".into())).send().unwrap();
    assert_eq!(runtime.wait_for(&task, WAIT).unwrap(), "hello ada");
    match runtime.get_result::<(u8, u8, u8, u8)>(task.id(), WAIT) {
        Err(RuntimeError::DecodeResult { id, .. }) => assert_eq!(&id, task.id()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn waiting_for_an_unknown_task_is_not_found() {
    let runtime = Runtime::builder().threads(1).build().unwrap();
    let error = runtime
        .get_result::<u64>(&id("never-submitted"), WAIT)
        .unwrap_err();
    assert!(error.to_string().contains("never-submitted"), "{error}");
    assert!(runtime.status(&id("never-submitted")).is_err());
}

#[test]
fn many_callers_wait_for_many_tasks_at_once() {
    let runtime = Runtime::builder().threads(2).build().unwrap();
    runtime
        .register_fn("triple", |x: u64| Ok::<_, TaskError>(3 * x))
        .unwrap();
    let handles = runtime
        .submit_all((0..64u64).map(|x| Call::<u64, u64>::new("triple", x)))
        .unwrap();
    std::thread::scope(|scope| {
        for (x, handle) in handles.iter().enumerate() {
            let runtime = &runtime;
            scope.spawn(move || assert_eq!(runtime.wait_for(handle, WAIT).unwrap(), 3 * x as u64));
        }
    });
}

#[test]
fn ids_from_submit_all_sort_after_ids_made_while_its_iterator_was_still_working() {
    let runtime = Runtime::builder().threads(1).paused().build().unwrap();
    let double = runtime
        .register_fn("double", |x: u64| Ok::<_, TaskError>(x * 2))
        .unwrap();
    let mut made_meanwhile = None;
    // The iterator takes a while before its first task; an id made meanwhile elsewhere
    // is older than every task it yields, and sorts before them.
    let inputs = (0..3u64).map(|x| {
        if x == 0 {
            std::thread::sleep(Duration::from_millis(3));
            made_meanwhile = Some(workmill::TaskId::generate());
            std::thread::sleep(Duration::from_millis(3));
        }
        double.call(x)
    });
    let handles = runtime.submit_all(inputs).unwrap();
    let meanwhile = made_meanwhile.unwrap();
    assert!(handles.iter().all(|handle| *handle.id() > meanwhile));
    runtime.resume();
    for (x, handle) in handles.iter().enumerate() {
        assert_eq!(runtime.wait_for(handle, WAIT).unwrap(), 2 * x as u64);
    }
}
