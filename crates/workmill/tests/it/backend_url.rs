//! A `Runtime` built from a backend URL: SQLite files keep tasks across runtimes, `memory://` is the default queue, bad URLs are refused at build.

use std::time::Duration;

use workmill::{QueueError, Runtime, RuntimeError, TaskError};

use crate::support::WAIT;

#[cfg(feature = "sqlite")]
#[test]
fn a_runtime_on_a_sqlite_url_keeps_its_tasks_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tasks.db").display());
    let runtime = Runtime::builder().url(&url).threads(2).build().unwrap();
    let square = runtime
        .register_fn("math.square", |x: u64| Ok::<_, TaskError>(x * x))
        .unwrap();
    let handles: Vec<_> = (0..50)
        .map(|i| runtime.submit(square.call(i)).send().unwrap())
        .collect();
    for (i, handle) in handles.iter().enumerate() {
        assert_eq!(runtime.wait_for(handle, WAIT).unwrap(), (i * i) as u64);
    }
    let report = runtime.shutdown(workmill::Shutdown::Drain).unwrap();
    assert_eq!(report.stats.completed, 50);
    drop(runtime);

    // Another opener of the same URL finds every record.
    let queue = workmill::backend::open(&url).unwrap();
    assert_eq!(queue.backend_name(), "sqlite");
    assert_eq!(queue.stats().unwrap().completed, 50);
    let record = queue.status(handles[7].id()).unwrap();
    assert_eq!(record.status, workmill::TaskStatus::Completed);
}

/// A runtime on a durable backend heartbeats its leases: a task that runs for several lease
/// lengths, while another loop keeps rescuing lapsed leases, still runs exactly once.
#[cfg(feature = "sqlite")]
#[test]
fn a_runtime_on_sqlite_keeps_a_long_task_past_its_lease() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tasks.db").display());
    let runtime = Runtime::builder()
        .url(&url)
        .threads(2)
        .lease(Duration::from_millis(400))
        .build()
        .unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let slow = {
        let runs = Arc::clone(&runs);
        runtime
            .register_fn("slow", move |ms: u64| {
                runs.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(ms));
                Ok::<_, TaskError>(ms)
            })
            .unwrap()
    };
    let handle = runtime.submit(slow.call(1_500)).send().unwrap();
    assert_eq!(runtime.wait_for(&handle, WAIT).unwrap(), 1_500);
    let record = runtime.status(handle.id()).unwrap();
    assert_eq!(
        (record.attempts, runs.load(Ordering::SeqCst)),
        (1, 1),
        "{record:?}"
    );
    let report = runtime.shutdown(workmill::Shutdown::Drain).unwrap();
    assert_eq!(report.stats.expired_leases, 0, "{:?}", report.stats);
}

/// A runtime shut down from inside one of its own tasks cannot join that task's loop; the
/// heartbeat goes on until the task is settled, so its lease does not lapse meanwhile.
#[cfg(feature = "sqlite")]
#[test]
fn a_shutdown_from_inside_a_task_keeps_that_task_leased() {
    use std::sync::{Arc, OnceLock};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tasks.db").display());
    let runtime = Arc::new(
        Runtime::builder()
            .url(&url)
            .threads(1)
            .lease(Duration::from_millis(400))
            .build()
            .unwrap(),
    );
    let this: Arc<OnceLock<std::sync::Weak<Runtime>>> = Arc::new(OnceLock::new());
    this.set(Arc::downgrade(&runtime)).unwrap();
    let last = {
        let this = Arc::clone(&this);
        runtime
            .register_fn("last", move |ms: u64| {
                if let Some(runtime) = this.get().and_then(std::sync::Weak::upgrade) {
                    runtime.shutdown(workmill::Shutdown::Abandon).unwrap();
                }
                std::thread::sleep(Duration::from_millis(ms));
                Ok::<_, TaskError>(ms)
            })
            .unwrap()
    };
    let handle = runtime.submit(last.call(1_500)).send().unwrap();
    // Another worker's store would rescue a lapsed lease; this one asks while the task sleeps.
    let other = workmill::backend::open(&url).unwrap();
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(
        other.rescue_expired().unwrap(),
        0,
        "the lease is still extended"
    );
    let record = other.wait(handle.id(), WAIT).unwrap();
    assert_eq!(
        (record.status, record.attempts),
        (workmill::TaskStatus::Completed, 1),
        "{record:?}"
    );
}

#[test]
fn a_memory_url_is_the_default_queue() {
    let runtime = Runtime::builder()
        .url("memory://")
        .threads(1)
        .build()
        .unwrap();
    let double = runtime
        .register_fn("double", |x: u64| Ok::<_, TaskError>(x * 2))
        .unwrap();
    let handle = runtime.submit(double.call(21)).send().unwrap();
    assert_eq!(runtime.wait_for(&handle, WAIT).unwrap(), 42);
    // `wait_idle` uses the memory queue's own signal.
    assert_eq!(
        runtime
            .wait_idle(Duration::from_secs(60))
            .unwrap()
            .completed,
        1
    );
    assert_eq!(runtime.queue().backend_name(), "memory");
}

#[test]
fn a_url_the_build_cannot_open_fails_the_build() {
    let error = Runtime::builder()
        .url("mysql://db/tasks")
        .build()
        .unwrap_err();
    match &error {
        RuntimeError::Queue(QueueError::InvalidUrl { url, reason }) => {
            assert_eq!(url, "mysql://db/tasks");
            assert!(reason.contains("\"mysql\""), "{reason}");
            assert!(reason.contains("sqlite://"), "{reason}");
        }
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

#[test]
fn a_memory_url_with_more_than_the_scheme_is_refused_as_backend_open_refuses_it() {
    for url in ["memory://anything", "memory://host/path?x=1", "memory:"] {
        let opened = workmill::backend::open(url).err().expect("open refuses it");
        let built = Runtime::builder()
            .url(url)
            .threads(1)
            .build()
            .expect_err("the build refuses it");
        match &built {
            RuntimeError::Queue(refused @ QueueError::InvalidUrl { .. }) => {
                assert_eq!(refused.to_string(), opened.to_string(), "{url}");
            }
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}
