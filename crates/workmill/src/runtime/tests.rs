//! Unit tests of the runtime's waits, with hooks into them that integration tests cannot reach.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use workmill_core::TaskError;
use workmill_queue::MemoryConfig;

use super::Runtime;
use crate::Priority;
use crate::job::Job;

/// Points of a wait for a result, or for room, where a test steps in, on the waiting thread.
pub(super) mod hooks {
    use std::cell::Cell;

    thread_local! {
        static WAITING: Cell<Option<fn()>> = const { Cell::new(None) };
        static BETWEEN_WAITS: Cell<Option<fn()>> = const { Cell::new(None) };
        static WAITING_FOR_ROOM: Cell<Option<fn()>> = const { Cell::new(None) };
    }

    /// Called as a wait through the runtime looks at its unfinished task on the memory queue:
    /// under the queue's lock, which it holds until it is registered on the task and asleep.
    pub(crate) fn waiting() {
        if let Some(hook) = WAITING.get() {
            hook();
        }
    }

    /// Called between two waits on the backend of a wait in slices, where nobody is
    /// registered on the task.
    pub(crate) fn between_waits() {
        if let Some(hook) = BETWEEN_WAITS.get() {
            hook();
        }
    }

    /// Called as a submission through the runtime finds the memory queue full: under the
    /// queue's lock, which it holds until it is registered as a producer and asleep.
    pub(crate) fn waiting_for_room() {
        if let Some(hook) = WAITING_FOR_ROOM.get() {
            hook();
        }
    }

    /// Sets the hooks of the calling thread.
    pub(super) fn set(waiting: Option<fn()>, between_waits: Option<fn()>) {
        WAITING.set(waiting);
        BETWEEN_WAITS.set(between_waits);
    }

    /// Sets the hook of the calling thread's waits for room.
    pub(super) fn set_waiting_for_room(waiting_for_room: Option<fn()>) {
        WAITING_FOR_ROOM.set(waiting_for_room);
    }
}

/// Task `i` of a test finishes once the gate's count passes `i`.
#[derive(Default)]
struct Gate {
    opened: Mutex<u64>,
    changed: Condvar,
}

impl Gate {
    /// Lets the tasks below `count` finish.
    fn open(&self, count: u64) {
        *self.opened.lock().unwrap() = count;
        self.changed.notify_all();
    }

    /// Blocks until task `i` may finish.
    fn pass(&self, i: u64) {
        let mut opened = self.opened.lock().unwrap();
        while *opened <= i {
            opened = self.changed.wait(opened).unwrap();
        }
    }

    /// Waits until `registered` counts `waiters`, then opens the gate to `count` tasks one by
    /// one over a few hundred milliseconds; returns whether every waiter waited first (a
    /// record evicted before anyone waited on it is gone by design).
    fn open_once_waited(&self, registered: &AtomicUsize, waiters: usize, count: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while registered.load(Ordering::SeqCst) < waiters && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let all_waiting = registered.load(Ordering::SeqCst) >= waiters;
        for opened in 1..=count {
            std::thread::sleep(Duration::from_millis(fastrand::u64(0..=15)));
            self.open(opened);
        }
        all_waiting
    }
}

/// Counts, once per thread, the threads whose wait looked at what it waits for.
fn count_once(registered: &AtomicUsize) {
    thread_local! {
        static ONCE: Cell<bool> = const { Cell::new(false) };
    }
    if !ONCE.replace(true) {
        registered.fetch_add(1, Ordering::SeqCst);
    }
}

fn widen_the_gap() {
    std::thread::sleep(Duration::from_millis(20));
}

/// Polls `done` every millisecond until it holds or `deadline` passes; true if it held.
fn poll_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Registers `slow`, a task that says on the returned receiver that it started, and returns
/// its input plus `add` once the returned sender lets it.
fn slow_task(
    runtime: &Runtime,
    add: u32,
) -> (
    crate::FnHandle<u32, u32>,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    let (started_tx, started) = std::sync::mpsc::channel();
    let started_tx = Mutex::new(started_tx);
    let (finish_tx, finish) = std::sync::mpsc::channel::<()>();
    let finish = Mutex::new(finish);
    let slow = runtime
        .register_fn("slow", move |x: u32| {
            started_tx.lock().unwrap().send(()).unwrap();
            finish.lock().unwrap().recv().unwrap();
            Ok::<_, TaskError>(x + add)
        })
        .unwrap();
    (slow, started, finish_tx)
}

/// A runtime that evicts every finished record at once (a retention bound of 0), on two loops
/// taking one task at a time, with a task `gated` that returns its input once `gate` lets it.
fn evicting_runtime() -> (Runtime, Arc<Gate>, crate::FnHandle<u64, u64>) {
    let runtime = Runtime::builder()
        .memory(MemoryConfig::default().retention(Some(0)))
        .threads(2)
        .max_batch(1)
        .build()
        .unwrap();
    let gate = Arc::new(Gate::default());
    let gated = {
        let gate = Arc::clone(&gate);
        runtime
            .register_fn("gated", move |i: u64| {
                gate.pass(i);
                Ok::<_, TaskError>(i)
            })
            .unwrap()
    };
    (runtime, gate, gated)
}

/// Runs `wait` for each of `items` on a thread of its own, with the hooks that count the
/// waiters as they first look (`registered`, into `counter`) and widen the gap between two
/// waits; opens `gate` to all once every waiter looked, and returns the waits' outcomes.
fn wait_all_at_once<I: Sync, R: Send>(
    gate: &Gate,
    items: &[I],
    counter: &'static AtomicUsize,
    registered: fn(),
    wait: impl Fn(&I) -> R + Sync,
) -> Vec<R> {
    std::thread::scope(|s| {
        let waiters: Vec<_> = items
            .iter()
            .map(|item| {
                let wait = &wait;
                s.spawn(move || {
                    hooks::set(Some(registered), Some(widen_the_gap));
                    wait(item)
                })
            })
            .collect();
        let count = items.len();
        let all_waiting = gate.open_once_waited(counter, count, count as u64);
        assert!(all_waiting, "the waiters did not all wait");
        waiters
            .into_iter()
            .map(|waiter| waiter.join().unwrap())
            .collect()
    })
}

/// With a retention bound of 0, a task's record is evicted as it finishes unless someone waits
/// on it then. Waits for results through the runtime, racing completions that come at random
/// moments over several of the memory queue's 50 ms stop checks, all get their results:
/// a wait on the memory queue is one wait, registered on its task throughout. (Waiting in
/// slices, a task finishing between two slices was evicted before the next looked, and the
/// wait failed with `NotFound`; the hook between waits widens that gap, should it come back.)
#[test]
fn result_waits_get_every_result_however_small_the_retention() {
    const TASKS: usize = 40;
    static REGISTERED: AtomicUsize = AtomicUsize::new(0);
    fn registered() {
        count_once(&REGISTERED);
    }

    let (runtime, gate, gated) = evicting_runtime();
    let tasks: Vec<_> = (0..TASKS as u64)
        .map(|i| runtime.submit(gated.call(i)).send().unwrap())
        .collect();
    let results = wait_all_at_once(&gate, &tasks, &REGISTERED, registered, |task| {
        runtime.wait_for(task, Duration::from_secs(120))
    });
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.unwrap(), i as u64, "task {i}");
    }
}

/// The same for jobs: with a retention bound of 0, a job's reduce record, which holds the
/// job's result, is evicted as the reduce completes unless someone waits on it then. Waits
/// for jobs through the runtime, racing reduces that complete at random moments (each as soon
/// as its job's map does, ahead of the maps still queued) over several of the memory queue's
/// 50 ms stop checks, all get their results: a job wait on the memory queue is one wait,
/// registered with the queue from its first look at the job to its last. (Looking at the job
/// every few milliseconds, a job whose reduce completed between two looks had lost its result
/// by the next, and the wait failed with `JobResultGone`.)
#[test]
fn job_waits_get_every_result_however_small_the_retention() {
    const JOBS: usize = 40;
    static REGISTERED: AtomicUsize = AtomicUsize::new(0);
    fn registered() {
        count_once(&REGISTERED);
    }

    let (runtime, gate, gated) = evicting_runtime();
    let sum = runtime
        .register_reduce_fn("sum", |outputs: Vec<u64>| {
            Ok::<_, TaskError>(outputs.iter().sum::<u64>())
        })
        .unwrap();
    // Job `i` maps `i` twice: its result is `2 * i`.
    let jobs: Vec<_> = (0..JOBS as u64)
        .map(|i| {
            let maps = [gated.call(i), gated.call(i)];
            let job = Job::with_reduce_fn(maps, &sum).reduce_priority(Priority::HIGH);
            runtime.submit_job(job).unwrap()
        })
        .collect();
    let results = wait_all_at_once(&gate, &jobs, &REGISTERED, registered, |job| {
        runtime.wait_job(job, Duration::from_secs(120))
    });
    let lost: Vec<_> = results
        .iter()
        .enumerate()
        .filter(|(i, result)| result.as_ref().ok() != Some(&(2 * *i as u64)))
        .collect();
    assert!(lost.is_empty(), "{} of {JOBS} waits: {lost:?}", lost.len());
    let stats = runtime.stats().unwrap();
    assert_eq!((stats.completed, stats.dead), (3 * JOBS as u64, 0));
}

/// Stopping the loops interrupts the waits for results on the memory queue; a wait for a
/// task still running keeps waiting (its loop finishes it) and gets the result, even with a
/// retention bound of 0, while the shutdown waits for that loop.
#[test]
fn a_wait_for_a_running_task_outlives_the_stop_and_gets_the_result() {
    static WAITING: AtomicUsize = AtomicUsize::new(0);
    fn waiting() {
        WAITING.fetch_add(1, Ordering::SeqCst);
    }

    let runtime = Runtime::builder()
        .memory(MemoryConfig::default().retention(Some(0)))
        .threads(1)
        .build()
        .unwrap();
    let (slow, started, finish_tx) = slow_task(&runtime, 1);
    let task = runtime.submit(slow.call(41)).send().unwrap();
    started.recv().unwrap();
    // The abandon stops the loops, interrupts the wait, then waits for the running task.
    let (outcome, report, _) =
        abandon_during_a_wait(&runtime, &WAITING, waiting, finish_tx, || {
            runtime.wait_for(&task, Duration::from_secs(120))
        });
    assert_eq!(outcome.unwrap(), 42);
    assert_eq!(report.stats.completed, 1);
}

/// A task reserved in a loop's batch but not started is running to the queue; a stop makes the
/// loop hand it back unstarted. A wait for it on the memory queue, which kept waiting through
/// the stop while the task was running, then ends with `ShutDown` as the hand-back wakes it to
/// look again, not at its timeout. (A job wait waiting on its reduce is woken so too.)
#[test]
fn a_wait_for_a_task_a_stopping_loop_hands_back_ends_with_shutdown() {
    static WAITING: AtomicUsize = AtomicUsize::new(0);
    fn waiting() {
        WAITING.fetch_add(1, Ordering::SeqCst);
    }

    let runtime = Runtime::builder()
        .threads(1)
        .max_batch(2)
        .paused()
        .build()
        .unwrap();
    let (slow, started, finish_tx) = slow_task(&runtime, 0);
    let echo = runtime
        .register_fn("echo", |x: u32| Ok::<_, TaskError>(x))
        .unwrap();
    // A loop's first batch is one task; run fast and full, it doubles the next: `slow` and
    // the task held behind it.
    runtime.submit(echo.call(0)).send().unwrap();
    runtime.submit(slow.call(1)).send().unwrap();
    let held = runtime.submit(echo.call(2)).send().unwrap();
    runtime.resume();
    started.recv().unwrap();
    let status = runtime.status(held.id()).unwrap().status;
    assert_eq!(
        status,
        workmill_core::TaskStatus::Running,
        "held in the batch"
    );
    // The stop interrupts the wait, which finds its task running and waits on.
    let (outcome, report, stopped_looks) =
        abandon_during_a_wait(&runtime, &WAITING, waiting, finish_tx, || {
            runtime.wait_for(&held, Duration::from_secs(20))
        });
    assert!(
        matches!(outcome, Err(crate::RuntimeError::ShutDown)),
        "{outcome:?}"
    );
    // It gave up as it looked at the task handed back; a wait that ran to its timeout
    // (which it would end with `ShutDown` too) makes no last look.
    assert!(
        WAITING.load(Ordering::SeqCst) > stopped_looks,
        "the hand-back did not wake the wait"
    );
    assert_eq!((report.stats.completed, report.left_waiting), (2, 1));
}

/// Runs `wait` on a thread whose waits count their looks in `looks` (with `count_look`); once
/// it waits, abandons `runtime` and sees the stop make the wait look again, then lets the slow
/// task finish through `finish`. Returns the wait's outcome, the abandon's report, and the
/// looks counted once the stop had interrupted the wait.
fn abandon_during_a_wait<R: Send>(
    runtime: &Runtime,
    looks: &'static AtomicUsize,
    count_look: fn(),
    finish: std::sync::mpsc::Sender<()>,
    wait: impl FnOnce() -> R + Send,
) -> (R, super::ShutdownReport, usize) {
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            hooks::set(Some(count_look), None);
            wait()
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        poll_until(deadline, || looks.load(Ordering::SeqCst) > 0);
        let before = looks.load(Ordering::SeqCst);
        let stopping = s.spawn(|| runtime.shutdown(super::Shutdown::Abandon));
        poll_until(deadline, || {
            looks.load(Ordering::SeqCst) != before || stopping.is_finished()
        });
        let stopped = looks.load(Ordering::SeqCst);
        finish.send(()).unwrap();
        assert!(before > 0, "the waiter did not wait");
        assert!(stopped > before, "the stop did not interrupt the wait");
        let outcome = waiter.join().unwrap();
        let report = stopping.join().unwrap().unwrap();
        (outcome, report, stopped)
    })
}

/// How long a producer may wait for room in the tests below: far longer than they may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// Within this, an abandon that does not wait for a submission's patience has returned.
const PROMPTLY: Duration = Duration::from_secs(10);

/// A runtime on a memory queue of capacity 1 whose submitters wait for room for up to
/// [`PATIENCE`], on `threads` loops taking one task at a time, paused if `paused`, with a task
/// `echo` that returns its input.
fn one_slot_runtime(threads: usize, paused: bool) -> (Arc<Runtime>, crate::FnHandle<u64, u64>) {
    let mut builder = Runtime::builder()
        .memory(
            MemoryConfig::default()
                .capacity(1)
                .on_full(workmill_queue::OnFull::Wait(PATIENCE)),
        )
        .threads(threads)
        .max_batch(1);
    if paused {
        builder = builder.paused();
    }
    let runtime = Arc::new(builder.build().unwrap());
    let echo = runtime
        .register_fn("echo", |x: u64| Ok::<_, TaskError>(x))
        .unwrap();
    (runtime, echo)
}

/// A task of a runtime on a full memory queue (`OnFull::Wait`) submits through `submit`, and
/// waits for room that only the runtime's loops make; another task then abandons the runtime.
/// The abandon stops the loops, so no room comes: the submission must give up with `ShutDown`,
/// enqueuing nothing, rather than hold the abandon (which joins the submitter's loop) for its
/// whole patience.
fn abandon_ends_a_submission_waiting_for_room(
    submit: fn(&Runtime, &crate::FnHandle<u64, u64>) -> Result<(), crate::RuntimeError>,
    waiting: &'static AtomicUsize,
    count_wait: fn(),
) {
    let (runtime, echo) = one_slot_runtime(2, false);
    // Task 0 submits, task 1 abandons, each once the gate lets it.
    let gate = Arc::new(Gate::default());
    let (started_tx, started) = std::sync::mpsc::channel();
    let started_tx = Mutex::new(started_tx);
    let act = {
        let (weak, gate, echo) = (Arc::downgrade(&runtime), Arc::clone(&gate), echo.clone());
        runtime
            .register_fn("act", move |i: u64| {
                started_tx.lock().unwrap().send(()).unwrap();
                gate.pass(i);
                let runtime = weak.upgrade().expect("alive while its tasks run");
                let outcome = if i == 0 {
                    hooks::set_waiting_for_room(Some(count_wait));
                    submit(&runtime, &echo)
                } else {
                    runtime.shutdown(super::Shutdown::Abandon).map(drop)
                };
                Ok::<_, TaskError>(format!("{outcome:?}"))
            })
            .unwrap()
    };
    let submitter = runtime.submit(act.call(0)).send().unwrap();
    started.recv().unwrap();
    let stopper = runtime.submit(act.call(1)).send().unwrap();
    started.recv().unwrap();
    // Both loops are busy: this task fills the queue.
    runtime.submit(echo.call(7)).send().unwrap();
    gate.open(1);
    // The submitter looked at the full queue under its lock, and sleeps on it from then on.
    let deadline = Instant::now() + PATIENCE;
    poll_until(deadline, || waiting.load(Ordering::SeqCst) > 0);
    assert!(
        waiting.load(Ordering::SeqCst) > 0,
        "the submission did not wait for room"
    );
    gate.open(2);
    let abandoned = runtime.get_result::<String>(stopper.id(), PROMPTLY);
    assert_eq!(
        abandoned.as_deref().ok(),
        Some("Ok(())"),
        "the abandon did not return within {PROMPTLY:?} ({PATIENCE:?} of patience): {abandoned:?}"
    );
    let submitted = runtime.get_result::<String>(submitter.id(), PROMPTLY);
    assert_eq!(submitted.unwrap(), "Err(ShutDown)");
    // The submission that gave up enqueued nothing: only the task that filled the queue waits.
    let stats = runtime.stats().unwrap();
    assert_eq!((stats.pending, stats.completed), (1, 2), "{stats:?}");
}

#[test]
fn an_abandon_from_inside_a_task_ends_a_submission_waiting_for_room() {
    static WAITING: AtomicUsize = AtomicUsize::new(0);
    abandon_ends_a_submission_waiting_for_room(
        |runtime, echo| runtime.submit(echo.call(1)).send().map(drop),
        &WAITING,
        || {
            WAITING.fetch_add(1, Ordering::SeqCst);
        },
    );
}

#[test]
fn an_abandon_from_inside_a_task_ends_a_job_submission_waiting_for_room() {
    static WAITING: AtomicUsize = AtomicUsize::new(0);
    abandon_ends_a_submission_waiting_for_room(
        |runtime, echo| {
            let sum = runtime.register_reduce_fn("sum", |xs: Vec<u64>| {
                Ok::<_, TaskError>(xs.into_iter().sum::<u64>())
            })?;
            let job = Job::with_reduce_fn([echo.call(1)], &sum);
            runtime.submit_job(job).map(drop)
        },
        &WAITING,
        || {
            WAITING.fetch_add(1, Ordering::SeqCst);
        },
    );
}

/// A submission waiting for room in a paused runtime's full queue when a drain begins is not
/// refused: the drain resumes the loops before it closes, they make room, the submission goes
/// in, and the drain runs it. (Only an abandon, or a runtime paused for good, ends it.)
#[test]
fn a_submission_waiting_for_room_when_a_drain_begins_goes_in_and_runs() {
    static WAITING: AtomicUsize = AtomicUsize::new(0);
    let (runtime, echo) = one_slot_runtime(1, true);
    runtime.submit(echo.call(1)).send().unwrap();
    let submitter = {
        let (runtime, echo) = (Arc::clone(&runtime), echo.clone());
        std::thread::spawn(move || {
            hooks::set_waiting_for_room(Some(|| {
                WAITING.fetch_add(1, Ordering::SeqCst);
            }));
            runtime.submit(echo.call(2)).send().map(drop)
        })
    };
    let deadline = Instant::now() + PATIENCE;
    poll_until(deadline, || WAITING.load(Ordering::SeqCst) > 0);
    assert!(
        WAITING.load(Ordering::SeqCst) > 0,
        "the submission did not wait for room"
    );
    let report = runtime.shutdown(super::Shutdown::Drain).unwrap();
    let submitted = submitter.join().unwrap();
    assert!(submitted.is_ok(), "{submitted:?}");
    assert_eq!(
        (report.mode, report.stats.completed, report.left_waiting),
        (super::Shutdown::Drain, 2, 0)
    );
}

/// A submission waiting for room gives up only once the runtime is closed and no loop will make
/// room (an abandon began, or the loops do not run): while a drain runs them, room will come.
#[test]
fn a_wait_for_room_gives_up_only_when_closed_and_no_loop_runs() {
    use crate::worker::Mode;
    let runtime = Runtime::builder().threads(1).paused().build().unwrap();
    let shared = &runtime.shared;
    // (closed, abandoning, mode, keeps waiting)
    let cases = [
        (false, false, Mode::Pause, true),
        (false, false, Mode::Run, true),
        (true, false, Mode::Run, true),
        (true, true, Mode::Run, false),
        (true, false, Mode::Pause, false),
        (true, false, Mode::Stop, false),
    ];
    for (closed, abandoning, mode, keeps_waiting) in cases {
        shared.closed.store(closed, Ordering::SeqCst);
        shared.abandoning.store(abandoning, Ordering::SeqCst);
        shared.control.set(mode);
        assert_eq!(
            runtime.keeps_waiting_for_room(),
            keeps_waiting,
            "closed {closed}, abandoning {abandoning}, {mode:?}"
        );
    }
    shared.closed.store(false, Ordering::SeqCst);
    shared.abandoning.store(false, Ordering::SeqCst);
    runtime.shutdown(super::Shutdown::Abandon).unwrap();
}

/// An abandon called from outside the runtime, while one of its tasks waits for room in the
/// full memory queue, ends that wait rather than waiting out its patience for the submission
/// in flight. (Only an abandon from inside a task did; this one waited the full 60 s.)
#[test]
fn an_abandon_from_outside_ends_a_task_submission_waiting_for_room() {
    static WAITING: AtomicUsize = AtomicUsize::new(0);
    let (runtime, echo) = one_slot_runtime(1, false);
    let gate = Arc::new(Gate::default());
    let submit = {
        let (weak, gate, echo) = (Arc::downgrade(&runtime), Arc::clone(&gate), echo.clone());
        runtime
            .register_fn("submit", move |_: u64| {
                gate.pass(0);
                let runtime = weak.upgrade().expect("alive while its tasks run");
                hooks::set_waiting_for_room(Some(|| {
                    WAITING.fetch_add(1, Ordering::SeqCst);
                }));
                let outcome = runtime.submit(echo.call(2)).send().map(drop);
                Ok::<_, TaskError>(format!("{outcome:?}"))
            })
            .unwrap()
    };
    let submitter = runtime.submit(submit.call(0)).send().unwrap();
    // The loop holds the submitter; this task fills the queue, then the submitter may go.
    while runtime.status(submitter.id()).unwrap().status != workmill_core::TaskStatus::Running {
        std::thread::sleep(Duration::from_millis(1));
    }
    runtime.submit(echo.call(1)).send().unwrap();
    gate.open(1);
    let deadline = Instant::now() + PATIENCE;
    poll_until(deadline, || WAITING.load(Ordering::SeqCst) > 0);
    assert!(
        WAITING.load(Ordering::SeqCst) > 0,
        "the submission did not wait for room"
    );
    let stopping = Arc::clone(&runtime);
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(stopping.shutdown(super::Shutdown::Abandon).map(drop));
    });
    let abandoned = done.recv_timeout(PROMPTLY);
    assert!(
        matches!(abandoned, Ok(Ok(()))),
        "the abandon did not return within {PROMPTLY:?}: {abandoned:?}"
    );
    let record = runtime.status(submitter.id()).unwrap();
    let said: String = workmill_core::Codec::decode(
        &workmill_core::Postcard,
        record.result.as_deref().unwrap_or_default(),
    )
    .unwrap();
    assert_eq!(said, "Err(ShutDown)");
}
