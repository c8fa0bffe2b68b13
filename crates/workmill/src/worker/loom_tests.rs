//! Loom model checks of the worker's primitives: `Control` (a paused loop always wakes for a
//! resume or a stop, a stop is final, a stop ends a timed wait), `StopHandle` (one cause, seen
//! with the stop) and `HeldLeases` (a settled lease is never brought back by a late heartbeat; a
//! waiting task is either started by its loop or handed back by the heartbeat, never both).

use std::time::{Duration, Instant};

use loom::sync::Arc;
use loom::thread;
use workmill_core::{Lease, TaskId, Timestamp};

use super::control::{Control, Mode};
use super::held::{HeldLeases, Released, Standing, TakeBack};
use super::stop::{StopCause, StopHandle};

/// Long enough never to pass; loom's timed waits never time out anyway, so a
/// missed wake-up shows as a deadlock.
const FOREVER: Duration = Duration::from_secs(3_600);

#[test]
fn loom_resume_wakes_a_paused_loop() {
    loom::model(|| {
        let control = Arc::new(Control::new(Mode::Pause));
        let paused = {
            let control = Arc::clone(&control);
            thread::spawn(move || control.wait_while_paused())
        };
        control.set(Mode::Run);
        assert_eq!(paused.join().unwrap(), Mode::Run);
    });
}

#[test]
fn loom_stop_wakes_a_paused_loop_and_wins_over_a_racing_resume() {
    loom::model(|| {
        let control = Arc::new(Control::new(Mode::Pause));
        let paused = {
            let control = Arc::clone(&control);
            thread::spawn(move || control.wait_while_paused())
        };
        let resumer = {
            let control = Arc::clone(&control);
            thread::spawn(move || control.set(Mode::Run))
        };
        control.set(Mode::Stop);
        resumer.join().unwrap();
        let seen = paused.join().unwrap();
        assert!(seen == Mode::Run || seen == Mode::Stop);
        assert_eq!(control.mode(), Mode::Stop, "a stop is final");
    });
}

#[test]
fn loom_a_stop_ends_a_timed_wait() {
    loom::model(|| {
        let control = Arc::new(Control::new(Mode::Run));
        let sleeper = {
            let control = Arc::clone(&control);
            thread::spawn(move || control.wait_for_stop(FOREVER))
        };
        control.set(Mode::Stop);
        assert!(sleeper.join().unwrap(), "the sleeper saw the stop");
    });
}

#[test]
fn loom_a_stop_handle_keeps_the_first_cause_and_shows_it_with_the_stop() {
    loom::model(|| {
        let stop = StopHandle::new();
        let waiter = {
            let stop = stop.clone();
            thread::spawn(move || {
                assert!(stop.wait(FOREVER));
                stop.cause().expect("a stopped handle has a cause")
            })
        };
        let signaller = {
            let stop = stop.clone();
            thread::spawn(move || stop.stop_because(StopCause::Signal(15)))
        };
        stop.stop();
        signaller.join().unwrap();
        let seen = waiter.join().unwrap();
        let kept = stop.cause().unwrap();
        assert!(kept == StopCause::Handle || kept == StopCause::Signal(15));
        assert_eq!(seen, kept, "the first cause is never replaced");
    });
}

fn lease(token: u64) -> Lease {
    Lease {
        task: TaskId::new("t").unwrap(),
        token,
        expires_at: Timestamp::from_micros(0),
    }
}

#[test]
fn loom_a_settled_lease_is_never_brought_back_by_a_late_heartbeat() {
    loom::model(|| {
        let held = Arc::new(HeldLeases::new());
        let start = Instant::now();
        held.hold([&lease(1), &lease(2)], start);
        let heartbeat = {
            let held = Arc::clone(&held);
            thread::spawn(move || {
                // One round: what was due when it looked, extended or refused afterwards.
                for due in held.due(start, Duration::ZERO) {
                    if due.token == 1 {
                        held.extended(&due, Instant::now());
                    } else {
                        // Refused: counts only if the loop has not settled it yet.
                        let _still_held = held.mark_lost(&due);
                    }
                }
            })
        };
        // The loop settles both outcomes meanwhile.
        held.forget(&lease(1));
        held.forget(&lease(2));
        heartbeat.join().unwrap();
        assert_eq!(held.len(), 0, "a forgotten lease stays forgotten");
        assert!(!held.is_lost(&lease(2)));
    });
}

#[test]
fn loom_a_lease_marked_lost_before_a_check_is_seen_by_it() {
    loom::model(|| {
        let held = Arc::new(HeldLeases::new());
        held.hold([&lease(1)], Instant::now());
        let marked = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let heartbeat = {
            let (held, marked) = (Arc::clone(&held), Arc::clone(&marked));
            thread::spawn(move || {
                assert!(held.mark_lost(&lease(1)), "nobody forgets it here");
                marked.store(true, loom::sync::atomic::Ordering::Release);
            })
        };
        if marked.load(loom::sync::atomic::Ordering::Acquire) {
            assert!(
                held.is_lost(&lease(1)),
                "a mark that happened before is seen"
            );
        }
        heartbeat.join().unwrap();
        assert!(held.is_lost(&lease(1)));
    });
}

fn task_lease(task: &str) -> Lease {
    Lease {
        task: TaskId::new(task).unwrap(),
        token: 1,
        expires_at: Timestamp::from_micros(0),
    }
}

/// The loop finishes the long task and comes to the next while a heartbeat round hands it
/// back and the store answers `outcome`: the task is started or handed back, never both, a
/// failed hand-back is the loop's to finish, and every lease is forgotten once.
fn waiting_task_race(outcome: Released) {
    let held = Arc::new(HeldLeases::new());
    let start = Instant::now();
    let (slow, waiting) = (task_lease("slow"), task_lease("waiting"));
    held.hold([&slow, &waiting], start);
    assert_eq!(held.begin(&slow, start, FOREVER), Standing::Current);
    let heartbeat = {
        let held = Arc::clone(&held);
        // The slow task has run long enough by any clock: `after` is zero. Returns what the
        // round took, and whether it called the store for it.
        thread::spawn(move || {
            let handed = held.hand_backs(start, Duration::ZERO);
            let mut called = false;
            for lease in &handed {
                if held.start_hand_back(lease) {
                    called = true;
                    held.hand_back_done(lease, outcome);
                }
            }
            (handed, called)
        })
    };
    // Meanwhile the loop finishes the slow task and comes to the next.
    held.finished(&slow);
    let standing = held.begin(&waiting, start, FOREVER);
    let taken_back = (standing == Standing::HandedBack).then(|| held.take_back(&waiting));
    let (handed, called) = heartbeat.join().unwrap();
    match standing {
        Standing::Current => {
            assert!(handed.is_empty(), "started, so not handed back");
            held.forget(&waiting);
        }
        Standing::HandedBack => {
            assert_eq!(handed, [waiting.clone()]);
            // Exactly one of the two hands it back: the heartbeat if its call went through,
            // the loop if it came first or the call failed.
            let expected = match (called, outcome) {
                (true, Released::Taken) => TakeBack::ByHeartbeat,
                (true, Released::Refused) => TakeBack::Gone,
                _ => TakeBack::ByLoop,
            };
            assert_eq!(taken_back, Some(expected));
            if expected == TakeBack::ByLoop {
                // The loop's own hand-back settles it, and forgets it.
                held.forget(&waiting);
            }
        }
        other => panic!("the lease is neither lost nor stale: {other:?}"),
    }
    held.forget(&slow);
    assert_eq!(held.len(), 0, "every lease is settled");
}

#[test]
fn loom_a_waiting_task_is_started_by_its_loop_or_handed_back_never_both() {
    loom::model(|| waiting_task_race(Released::Taken));
}

#[test]
fn loom_a_hand_back_the_store_failed_is_left_to_the_loop_never_lost() {
    loom::model(|| waiting_task_race(Released::Failed));
}

#[test]
fn loom_a_hand_back_the_store_refused_is_counted_gone_once() {
    loom::model(|| waiting_task_race(Released::Refused));
}
