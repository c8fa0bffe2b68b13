//! The work queues: crossbeam-deque's `Worker`, `Stealer` and `Injector`, or, under loom and
//! Miri, a small mutex-protected queue with the same API.
//!
//! crossbeam-deque is not instrumented for loom, so a model check that ran it
//! would miss its synchronisation and report nonsense. Under `--cfg
//! workmill_loom` the executor uses [`mutex_queue`] instead: a mutex around a
//! `VecDeque`, linearizable and therefore a faithful stand-in for what the
//! rest of the executor relies on (a push is visible to every later steal).
//!
//! Miri uses it too. crossbeam-deque's work-stealing buffer lets a thief read
//! a slot that its owner may be writing, and keeps the value only if the
//! thief's CAS then succeeds. By the Rust memory model that is a data race, as
//! crossbeam-deque 0.8's own comments on `Buffer::read` and `Buffer::write`
//! say, and Miri stops at it as soon as a steal meets a push. crossbeam runs
//! Miri on its deque with preemption off to get past it; for our suite that
//! would leave Miri interleaving threads only where they yield, and the races
//! in our own code are what it is here to find.

pub(crate) use crossbeam_deque::Steal;

#[cfg(not(any(workmill_loom, miri)))]
pub(crate) use crossbeam_deque::{Injector, Stealer, Worker};

#[cfg(any(workmill_loom, miri))]
pub(crate) use mutex_queue::{Injector, Stealer, Worker};

#[cfg(any(workmill_loom, miri))]
mod mutex_queue {
    use std::collections::VecDeque;

    use super::Steal;
    use crate::sync::{Arc, Mutex, lock};

    /// The owner's end: pushes and pops at the back (LIFO).
    pub(crate) struct Worker<T> {
        items: Arc<Mutex<VecDeque<T>>>,
    }

    /// A thief's end: steals from the front (FIFO).
    pub(crate) struct Stealer<T> {
        items: Arc<Mutex<VecDeque<T>>>,
    }

    /// A shared FIFO queue.
    pub(crate) struct Injector<T> {
        items: Mutex<VecDeque<T>>,
    }

    impl<T> Worker<T> {
        pub(crate) fn new_lifo() -> Worker<T> {
            Worker {
                items: Arc::new(Mutex::new(VecDeque::new())),
            }
        }

        pub(crate) fn stealer(&self) -> Stealer<T> {
            Stealer {
                items: Arc::clone(&self.items),
            }
        }

        pub(crate) fn push(&self, item: T) {
            lock(&self.items).push_back(item);
        }

        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.items).is_empty()
        }

        pub(crate) fn pop(&self) -> Option<T> {
            lock(&self.items).pop_back()
        }
    }

    impl<T> Stealer<T> {
        pub(crate) fn steal(&self) -> Steal<T> {
            lock(&self.items)
                .pop_front()
                .map_or(Steal::Empty, Steal::Success)
        }

        /// Takes one item; the real stealer also moves a batch into `dest`.
        pub(crate) fn steal_batch_and_pop(&self, _dest: &Worker<T>) -> Steal<T> {
            self.steal()
        }

        pub(crate) fn len(&self) -> usize {
            lock(&self.items).len()
        }
    }

    impl<T> Injector<T> {
        pub(crate) fn new() -> Injector<T> {
            Injector {
                items: Mutex::new(VecDeque::new()),
            }
        }

        pub(crate) fn push(&self, item: T) {
            lock(&self.items).push_back(item);
        }

        pub(crate) fn steal(&self) -> Steal<T> {
            lock(&self.items)
                .pop_front()
                .map_or(Steal::Empty, Steal::Success)
        }

        /// Takes one item; the real injector also moves a batch into `dest`,
        /// which changes no ordering promise the executor makes.
        pub(crate) fn steal_batch_and_pop(&self, _dest: &Worker<T>) -> Steal<T> {
            self.steal()
        }

        pub(crate) fn is_empty(&self) -> bool {
            lock(&self.items).is_empty()
        }

        pub(crate) fn len(&self) -> usize {
            lock(&self.items).len()
        }
    }
}
