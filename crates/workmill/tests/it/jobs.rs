//! Map-reduce jobs through the `Runtime`, on the memory backend and on a SQLite file: the answer
//! a job gives against the sequential one, the closure-registered variant, and how a job that
//! fails, is cancelled, times out or loses its result says so.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use workmill::job::{Job, ReduceFn};
use workmill::{
    FailureKind, JobStatus, MemoryConfig, QueueError, Runtime, RuntimeError, Shutdown, TaskError,
    TaskStatus,
};

use crate::support::{WAIT, id, quick_retry};
use crate::wordcount::{CountWords, MergeCounts, corpus, sequential};

/// A runtime of three worker threads on each backend a job must work on: the memory queue,
/// and a SQLite file (kept alive by the returned directory).
fn runtimes() -> Vec<(Runtime, Option<tempfile::TempDir>)> {
    let memory = Runtime::builder().threads(3).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Runtime::builder()
        .threads(3)
        .url(format!("sqlite://{}", dir.path().join("jobs.db").display()))
        .build()
        .unwrap();
    vec![(memory, None), (sqlite, Some(dir))]
}

fn backend(runtime: &Runtime) -> &'static str {
    runtime.queue().backend_name()
}

#[test]
fn a_word_count_job_gives_the_sequential_answer_on_memory_and_sqlite() {
    let texts = corpus(7, 48, 150);
    let expected = sequential(&texts);
    assert_eq!(
        expected.values().sum::<u64>(),
        48 * 150,
        "every word counted"
    );
    for (runtime, _dir) in runtimes() {
        runtime.register::<CountWords>().unwrap();
        runtime.register_reduce::<MergeCounts>().unwrap();
        let job = Job::map_reduce(
            texts.iter().cloned().map(CountWords),
            MergeCounts { min: 0 },
        );
        let job = runtime.submit_job(job).unwrap();
        let counts = runtime.wait_job(&job, WAIT).unwrap();
        assert_eq!(counts, expected, "{}", backend(&runtime));
        let record = runtime.job_status(job.id()).unwrap();
        assert_eq!(
            (record.status, record.maps_done, record.maps_total()),
            (JobStatus::Completed, 48, 48)
        );
        assert!(record.failure.is_none() && record.finished_at.is_some());

        // The reduce's argument travels with the job: only words seen often enough stay.
        let min = expected.values().copied().max().unwrap();
        let frequent = Job::map_reduce(texts.iter().cloned().map(CountWords), MergeCounts { min })
            .id(id("frequent-words"));
        let frequent = runtime.submit_job(frequent).unwrap();
        assert_eq!(frequent.id(), &id("frequent-words"));
        let mut most = expected.clone();
        most.retain(|_, count| *count >= min);
        assert_eq!(runtime.wait_job(&frequent, WAIT).unwrap(), most);

        let report = runtime.shutdown(Shutdown::Drain).unwrap();
        assert_eq!(
            (report.stats.submitted, report.stats.completed),
            (2 * 49, 2 * 49),
            "{}: each job ran its 48 maps and one reduce",
            backend(&runtime)
        );
    }
}

#[test]
fn closures_registered_by_name_run_a_job_as_the_seed_map_reduce_does() {
    for (runtime, _dir) in runtimes() {
        let square = runtime
            .register_fn("square", |x: u64| Ok::<_, TaskError>(x * x))
            .unwrap();
        let sum = runtime
            .register_reduce_fn("sum", |squares: Vec<u64>| {
                Ok::<_, TaskError>(squares.iter().sum::<u64>())
            })
            .unwrap();
        let job = runtime.map_reduce(1..=100u64, &square, &sum).unwrap();
        // The closed form of 1² + 2² + ... + n².
        assert_eq!(runtime.wait_job(&job, WAIT).unwrap(), 100 * 101 * 201 / 6);

        // A reduce closure over NamedTask maps, and the maps' outputs in map order.
        let texts = corpus(3, 6, 20);
        let first_words = runtime
            .register_reduce_fn("first words", |counts: Vec<crate::wordcount::Counts>| {
                Ok::<_, TaskError>(
                    counts
                        .iter()
                        .map(|c| c.values().sum::<u64>())
                        .collect::<Vec<_>>(),
                )
            })
            .unwrap();
        runtime.register::<CountWords>().unwrap();
        let job = Job::with_reduce_fn(texts.iter().cloned().map(CountWords), &first_words);
        let per_chunk = runtime.wait_job(&runtime.submit_job(job).unwrap(), WAIT);
        assert_eq!(per_chunk.unwrap(), vec![20; 6], "{}", backend(&runtime));
    }
}

#[test]
fn a_job_of_closures_shares_the_names_of_its_handles() {
    let double = workmill::Call::<u64, u64>::new("math.double", 3);
    let map_name = workmill::Submission::task_name(&double);
    let sum = ReduceFn::<u64, u64>::named("math.sum");
    let job = Job::with_reduce_fn([double], &sum)
        .into_new_job(&quick_retry(1))
        .unwrap();
    assert_eq!(job.reduce.name, "math.sum");
    assert!(
        std::ptr::eq(job.reduce.name.as_str(), sum.name()),
        "the reduce task's name is the handle's string, not a copy"
    );
    assert!(std::ptr::eq(job.maps[0].name.as_str(), map_name.as_str()));
}

#[test]
fn a_map_that_exhausts_its_retries_fails_the_job_with_its_error() {
    for (runtime, _dir) in runtimes() {
        let parse = runtime
            .register_fn("parse", |text: String| {
                text.parse::<u64>()
                    .map_err(|error| TaskError::retryable(format!("{text:?}: {error}")))
            })
            .unwrap();
        let total = runtime
            .register_reduce_fn("total", |numbers: Vec<u64>| {
                Ok::<_, TaskError>(numbers.iter().sum::<u64>())
            })
            .unwrap();
        let inputs = ["1", "2", "three", "4"].map(String::from);
        let calls = inputs.into_iter().map(|text| parse.call(text));
        let job = Job::with_reduce_fn(calls, &total).retry(quick_retry(3));
        let job = runtime.submit_job(job).unwrap();
        let record = runtime.job_status(job.id()).unwrap();
        let bad_map = record.maps[2].clone();
        match runtime.wait_job(&job, WAIT) {
            Err(RuntimeError::JobFailed {
                id: failed,
                task,
                failure,
            }) => {
                assert_eq!(&failed, job.id());
                assert_eq!(task, bad_map, "the job names the map that failed it");
                assert_eq!(failure.kind, FailureKind::Error);
                assert!(failure.message.contains("\"three\""), "{failure}");
            }
            other => panic!("{}: {other:?}", backend(&runtime)),
        }
        let error = runtime.wait_job(&job, WAIT).unwrap_err().to_string();
        assert!(
            error.contains(job.id().as_str()) && error.contains(bad_map.as_str()),
            "{error}"
        );
        let map = runtime.status(&bad_map).unwrap();
        assert_eq!((map.status, map.attempts), (TaskStatus::Dead, 3));
        let record = runtime.job_status(job.id()).unwrap();
        assert_eq!(record.status, JobStatus::Failed);
        assert!(record.maps_done <= 3);
        assert!(
            matches!(
                runtime.status(&record.reduce),
                Err(RuntimeError::Queue(QueueError::NotFound { .. }))
            ),
            "the reduce never ran"
        );
    }
}

#[test]
fn a_reduce_that_fails_fails_its_job_until_it_is_requeued() {
    for (runtime, _dir) in runtimes() {
        let double = runtime
            .register_fn("double", |x: u64| Ok::<_, TaskError>(2 * x))
            .unwrap();
        let broken = Arc::new(AtomicBool::new(true));
        let reduce_broken = Arc::clone(&broken);
        let product = runtime
            .register_reduce_fn("product", move |numbers: Vec<u64>| {
                if reduce_broken.load(Ordering::SeqCst) {
                    return Err(TaskError::permanent("the multiplier is offline"));
                }
                Ok(numbers.iter().product::<u64>())
            })
            .unwrap();
        let job = runtime.map_reduce([1u64, 2, 3], &double, &product).unwrap();
        let reduce = runtime.job_status(job.id()).unwrap().reduce;
        match runtime.wait_job(&job, WAIT) {
            Err(RuntimeError::JobFailed { task, failure, .. }) => {
                assert_eq!(task, reduce);
                assert_eq!(failure.kind, FailureKind::Permanent);
                assert_eq!(failure.message, "the multiplier is offline");
            }
            other => panic!("{}: {other:?}", backend(&runtime)),
        }
        // The maps' results are kept: requeueing the dead reduce finishes the job.
        broken.store(false, Ordering::SeqCst);
        runtime.requeue(&reduce).unwrap();
        assert_eq!(runtime.wait_job(&job, WAIT).unwrap(), 2 * 4 * 6);
        assert_eq!(
            runtime.job_status(job.id()).unwrap().status,
            JobStatus::Completed
        );
    }
}

#[test]
fn a_job_that_does_not_finish_in_time_says_how_far_it_got() {
    let runtime = Runtime::builder().threads(2).paused().build().unwrap();
    let square = runtime
        .register_fn("square", |x: u64| Ok::<_, TaskError>(x * x))
        .unwrap();
    let sum: ReduceFn<u64, u64> = runtime
        .register_reduce_fn("sum", |squares: Vec<u64>| {
            Ok::<_, TaskError>(squares.iter().sum())
        })
        .unwrap();
    let job = runtime.map_reduce(1..=5u64, &square, &sum).unwrap();
    let error = runtime
        .wait_job(&job, Duration::from_millis(20))
        .unwrap_err();
    match &error {
        RuntimeError::JobTimeout {
            id,
            status,
            maps_done,
            maps_total,
            waited,
        } => {
            assert_eq!(id, job.id());
            assert_eq!(
                (*status, *maps_done, *maps_total),
                (JobStatus::Mapping, 0, 5)
            );
            assert!(*waited >= Duration::from_millis(20));
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("0 of 5 maps done"), "{error}");
    runtime.resume();
    assert_eq!(runtime.wait_job(&job, WAIT).unwrap(), 55);
}

#[test]
fn cancelling_a_map_cancels_the_job_and_a_result_evicted_is_reported_gone() {
    let runtime = Runtime::builder().threads(1).paused().build().unwrap();
    let square = runtime
        .register_fn("square", |x: u64| Ok::<_, TaskError>(x * x))
        .unwrap();
    let sum = runtime
        .register_reduce_fn("sum", |squares: Vec<u64>| {
            Ok::<_, TaskError>(squares.iter().sum::<u64>())
        })
        .unwrap();
    let job = runtime.map_reduce(1..=3u64, &square, &sum).unwrap();
    let record = runtime.job_status(job.id()).unwrap();
    runtime.cancel(&record.maps[1]).unwrap();
    match runtime.wait_job(&job, WAIT) {
        Err(RuntimeError::JobCancelled { id }) => assert_eq!(&id, job.id()),
        other => panic!("{other:?}"),
    }
    let cancelled = runtime.job_status(job.id()).unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    for map in &cancelled.maps {
        assert_eq!(runtime.status(map).unwrap().status, TaskStatus::Cancelled);
    }

    // A runtime that keeps no finished record loses a reduce's result the moment it is
    // recorded; a wait that starts later says so instead of waiting forever.
    let forgetful = Runtime::builder()
        .threads(1)
        .memory(MemoryConfig::default().retention(Some(0)))
        .build()
        .unwrap();
    let square = forgetful
        .register_fn("square", |x: u64| Ok::<_, TaskError>(x * x))
        .unwrap();
    let sum = forgetful
        .register_reduce_fn("sum", |squares: Vec<u64>| {
            Ok::<_, TaskError>(squares.iter().sum::<u64>())
        })
        .unwrap();
    let job = forgetful.map_reduce(1..=3u64, &square, &sum).unwrap();
    crate::support::wait_until(|| {
        forgetful.job_status(job.id()).unwrap().status == JobStatus::Completed
    });
    match forgetful.wait_job(&job, WAIT) {
        Err(RuntimeError::JobResultGone { id, reduce }) => {
            assert_eq!(&id, job.id());
            assert_eq!(reduce, forgetful.job_status(job.id()).unwrap().reduce);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_jobs_are_refused_whole_with_a_clear_error() {
    let runtime = Runtime::builder()
        .threads(1)
        .max_payload(Some(64))
        .build()
        .unwrap();
    let square = runtime
        .register_fn("square", |x: u64| Ok::<_, TaskError>(x * x))
        .unwrap();
    let echo = runtime
        .register_fn("echo", |text: String| Ok::<_, TaskError>(text))
        .unwrap();
    let sum = runtime
        .register_reduce_fn("sum", |squares: Vec<u64>| {
            Ok::<_, TaskError>(squares.iter().sum::<u64>())
        })
        .unwrap();
    match runtime.map_reduce(std::iter::empty::<u64>(), &square, &sum) {
        Err(RuntimeError::Queue(QueueError::InvalidJob { reason, .. })) => {
            assert!(reason.contains("no map tasks"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let calls = ["short".to_owned(), "x".repeat(100)].map(|text| echo.call(text));
    match runtime.submit_job(Job::with_reduce_fn(
        calls,
        &ReduceFn::<String, u64>::named("sum"),
    )) {
        Err(RuntimeError::Queue(QueueError::PayloadTooLarge { size, limit, .. })) => {
            assert!(size > limit && limit == 64)
        }
        other => panic!("{other:?}"),
    }
    let once = || Job::with_reduce_fn([square.call(2)], &sum).id(id("once"));
    runtime.submit_job(once()).unwrap();
    match runtime.submit_job(once()) {
        Err(RuntimeError::Queue(QueueError::DuplicateJob { id: taken })) => {
            assert_eq!(taken, id("once"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(runtime.get_job_result::<u64>(&id("once"), WAIT).unwrap(), 4);
    match runtime.get_job_result::<u64>(&id("never-submitted"), WAIT) {
        Err(RuntimeError::Queue(QueueError::JobNotFound { id: missing })) => {
            assert_eq!(missing, id("never-submitted"))
        }
        other => panic!("{other:?}"),
    }
    // Map outputs that the reduce cannot read as its input type fail the job at the reduce.
    let lengths = runtime
        .register_reduce_fn("lengths", |texts: Vec<String>| {
            Ok::<_, TaskError>(texts.iter().map(String::len).sum::<usize>())
        })
        .unwrap();
    let mismatched = Job::with_reduce_fn(
        [square.call(300)],
        &ReduceFn::<u64, usize>::named(lengths.name()),
    );
    match runtime.wait_job(&runtime.submit_job(mismatched).unwrap(), WAIT) {
        Err(RuntimeError::JobFailed { failure, .. }) => {
            assert_eq!(failure.kind, FailureKind::Decode, "{failure}");
            assert!(failure.message.contains("map 0"), "{failure}");
        }
        other => panic!("{other:?}"),
    }
    runtime.shutdown(Shutdown::Drain).unwrap();
    match runtime.map_reduce([1u64], &square, &sum) {
        Err(RuntimeError::ShutDown) => {}
        other => panic!("{other:?}"),
    }
}
