//! Stress: 8 threads submit 200,000 tasks with random priorities, 10% of them failing once; every task
//! ends exactly once in a final state with the right result, and the stats add up throughout.

use std::sync::{Arc, Mutex};
use std::thread;

use workmill::{
    Call, ListFilter, MemoryConfig, Priority, QueueStats, Runtime, Shutdown, TaskError, TaskStatus,
};

use crate::support::{WAIT, quick_retry};

const SUBMITTERS: usize = 8;
const PER_SUBMITTER: usize = 25_000;
const TASKS: usize = SUBMITTERS * PER_SUBMITTER;

#[test]
fn two_hundred_thousand_tasks_from_eight_threads_each_end_exactly_once() {
    let runtime = Runtime::builder()
        .memory(MemoryConfig::default().retention(None))
        .threads(3)
        .default_retry(quick_retry(3))
        .build()
        .unwrap();
    // Runs per task, counted by the handler itself.
    let runs = Arc::new(Mutex::new(vec![0u8; TASKS]));
    {
        let runs = runs.clone();
        runtime
            .register_fn("work", move |(index, fail_once): (u32, bool)| {
                let mut runs = runs.lock().unwrap();
                let count = &mut runs[index as usize];
                *count += 1;
                if fail_once && *count == 1 {
                    return Err(TaskError::retryable("fails on its first run"));
                }
                Ok(u64::from(index) * 2 + 1)
            })
            .unwrap();
    }

    let done = Arc::new(Mutex::new(false));
    let monitor = {
        let queue = runtime.queue();
        let done = done.clone();
        thread::spawn(move || {
            let mut samples = 0u64;
            let mut last = QueueStats::default();
            while !*done.lock().unwrap() {
                let stats = queue.stats().unwrap();
                assert!(stats.is_consistent(), "{stats:?}");
                assert!(stats.submitted >= last.submitted && stats.finished() >= last.finished());
                last = stats;
                samples += 1;
                thread::yield_now();
            }
            samples
        })
    };

    let submitted: Vec<Vec<(workmill::TaskId, bool)>> = thread::scope(|scope| {
        let submitters: Vec<_> = (0..SUBMITTERS)
            .map(|s| {
                let runtime = &runtime;
                scope.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(0x5EED + s as u64);
                    (0..PER_SUBMITTER)
                        .map(|i| {
                            let index = (s * PER_SUBMITTER + i) as u32;
                            let fail_once = rng.u8(0..10) == 0;
                            let call = Call::<(u32, bool), u64>::new("work", (index, fail_once));
                            let task = runtime
                                .submit(call)
                                .priority(Priority::new(rng.u16(0..10)))
                                .send()
                                .unwrap();
                            (task.into_id(), fail_once)
                        })
                        .collect()
                })
            })
            .collect();
        submitters.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let stats = runtime.wait_idle(WAIT).unwrap();
    *done.lock().unwrap() = true;
    assert!(monitor.join().unwrap() > 0);

    let tasks: Vec<(workmill::TaskId, bool)> = submitted.into_iter().flatten().collect();
    let flagged = tasks.iter().filter(|(_, fail_once)| *fail_once).count() as u64;
    assert!(
        (15_000..25_000).contains(&flagged),
        "about 10% fail once: {flagged}"
    );

    let runs = runs.lock().unwrap();
    for (index, (id, fail_once)) in tasks.iter().enumerate() {
        let expected_runs = 1 + u8::from(*fail_once);
        assert_eq!(runs[index], expected_runs, "task {id} (index {index})");
        let record = runtime.status(id).unwrap();
        assert_eq!(record.status, TaskStatus::Completed, "{id}");
        assert_eq!(record.attempts, u32::from(expected_runs), "{id}");
        let result: u64 = runtime.get_result(id, WAIT).unwrap();
        assert_eq!(result, index as u64 * 2 + 1);
    }

    assert!(stats.is_consistent());
    assert_eq!(stats.submitted, TASKS as u64);
    assert_eq!(stats.completed, TASKS as u64);
    assert_eq!((stats.dead, stats.cancelled), (0, 0));
    assert_eq!((stats.pending, stats.retrying, stats.running), (0, 0, 0));
    assert_eq!(stats.failed_attempts, flagged);
    assert_eq!(stats.retried, flagged);
    let completed = runtime
        .queue()
        .list(&ListFilter {
            status: Some(TaskStatus::Completed),
            limit: usize::MAX,
        })
        .unwrap();
    assert_eq!(
        completed.len(),
        TASKS,
        "each task is in exactly one final record"
    );

    let report = runtime.shutdown(Shutdown::Drain).unwrap();
    assert_eq!(report.loops.completed, TASKS as u64);
    assert_eq!(report.loops.failed, flagged);
    assert_eq!(report.loops.attempts, TASKS as u64 + flagged);
}
