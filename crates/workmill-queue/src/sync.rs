//! The synchronization types the queue uses: std's normally, loom's under `--cfg workmill_loom`.
//!
//! Every lock, condition variable and atomic in this crate comes from here, so
//! that `cargo xtask loom` model-checks the wake-up protocols with the very code
//! that runs in production.

#[cfg(workmill_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard, atomic};
#[cfg(workmill_loom)]
use loom::thread;
#[cfg(not(workmill_loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, atomic};
#[cfg(not(workmill_loom))]
use std::thread;

use std::sync::TryLockError;

/// How many times [`lock`] tries the lock before it blocks; the loom build tries once.
#[cfg(not(workmill_loom))]
const LOCK_TRIES: u32 = 200;
#[cfg(workmill_loom)]
const LOCK_TRIES: u32 = 1;

/// Between tries, [`lock`] spins this many times, and every [`YIELD_EVERY`]th time it yields
/// the processor instead; 200 tries come to roughly 100 µs.
///
/// Yielding every other try rather than every 16th took the queue bench from 640 to 588 ns
/// per task (means of 8 alternating runs, 7 of 8 pairs faster): with more threads than
/// cores, a waiter that spins keeps the thread that holds the lock, or the producer that
/// would fill the queue, off its core.
const SPINS: u32 = 32;
const YIELD_EVERY: u32 = 2;

/// Locks `mutex`, trying for a moment before blocking, and ignores poisoning.
///
/// The queue never runs user code while it holds its lock, and every update
/// of its state completes before the guard drops, so a poisoned lock (a panic
/// elsewhere on the thread that held it) still guards consistent state.
///
/// Why it tries before blocking: the memory queue's critical sections are short but many (a
/// producer inserting a chunk and workers reserving and completing batches take turns at one
/// lock, each for some microseconds), and a thread that std's `Mutex` puts to sleep in the
/// kernel takes longer to wake than most of them last; meanwhile the lock may sit free. Trying
/// again for up to about 100 µs took the queue bench from about 670 to 530 ns per task on two
/// cores; the yields between tries (see [`YIELD_EVERY`]) let a holder preempted on this core
/// run. A short exponential backoff (`crossbeam_utils::Backoff`) gave no gain. What the lock
/// protects, and every wake-up protocol, are unchanged: the loom build (`cargo xtask loom`)
/// runs this same function with one try.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    for attempt in 1..=LOCK_TRIES {
        match mutex.try_lock() {
            Ok(guard) => return guard,
            Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
            Err(TryLockError::WouldBlock) if attempt == LOCK_TRIES => {}
            Err(TryLockError::WouldBlock) if attempt % YIELD_EVERY == 0 => thread::yield_now(),
            Err(TryLockError::WouldBlock) => {
                for _ in 0..SPINS {
                    std::hint::spin_loop();
                }
            }
        }
    }
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_waiter_gets_the_lock_whether_it_is_freed_while_it_tries_or_after_it_blocks() {
        for hold in [Duration::from_micros(20), Duration::from_millis(200)] {
            let mutex = Arc::new(Mutex::new(0u32));
            let barrier = Arc::new(Barrier::new(2));
            let holder = {
                let (mutex, barrier) = (Arc::clone(&mutex), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    let mut guard = lock(&mutex);
                    barrier.wait();
                    let start = Instant::now();
                    while start.elapsed() < hold {
                        std::hint::spin_loop();
                    }
                    *guard += 1;
                })
            };
            barrier.wait();
            *lock(&mutex) += 1;
            holder.join().unwrap();
            // The waiter's increment came after the holder's, whichever way it waited.
            assert_eq!(*lock(&mutex), 2, "held for {hold:?}");
        }
    }

    #[test]
    fn a_poisoned_lock_still_hands_out_its_state() {
        let mutex = Arc::new(Mutex::new(7u32));
        let poisoner = Arc::clone(&mutex);
        let _ = std::thread::spawn(move || {
            let _guard = lock(&poisoner);
            panic!("poison the lock");
        })
        .join();
        assert!(mutex.is_poisoned());
        assert_eq!(*lock(&mutex), 7);
    }
}
