//! `ThreadWorker`: a worker of its own threads with a bounded queue, the pool's worker out of the box.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, unbounded};
use workmill_core::{Load, RejectReason, Rejected, Worker};

use super::gate::Gate;
use super::job::Job;
use crate::sync::{AtomicUsize, Ordering};

/// A worker with `threads` threads that holds at most `capacity` jobs,
/// running or queued (the seed's `max_capacity`).
///
/// [`submit`](Worker::submit) never blocks: past the capacity it hands the
/// job back as [`RejectReason::Full`]. A job that panics does not take its
/// thread down. Dropping the worker lets the queued jobs run, then joins the
/// threads (except a thread dropping its own worker, which is left to finish).
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use workmill_balance::{Job, ThreadWorker};
/// use workmill_core::{RejectReason, Worker};
///
/// let worker = ThreadWorker::new(1, 2)?;
/// let (tx, rx) = mpsc::channel();
/// worker.submit(Job::new(move || tx.send(6 * 7).unwrap())).unwrap();
/// assert_eq!(rx.recv().unwrap(), 42);
/// assert_eq!(worker.load().capacity, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ThreadWorker {
    sender: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    gate: Gate,
    running: AtomicUsize,
}

impl ThreadWorker {
    /// Starts `threads` threads (at least one) holding at most `capacity` jobs
    /// (at least one per thread). Fails only if the OS cannot start a thread.
    pub fn new(threads: usize, capacity: usize) -> io::Result<ThreadWorker> {
        let threads = threads.max(1);
        let state = Arc::new(State {
            gate: Gate::new(capacity.max(threads)),
            running: AtomicUsize::new(0),
        });
        let (sender, receiver) = unbounded::<Job>();
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads {
            let receiver = receiver.clone();
            let state = Arc::clone(&state);
            let spawned = thread::Builder::new()
                .name(format!("workmill-worker-{n}"))
                .spawn(move || work(&receiver, &state));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    // Stop the threads already started before reporting.
                    drop(sender);
                    for handle in handles {
                        let _ = handle.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(ThreadWorker {
            sender: Some(sender),
            threads: handles,
            state,
        })
    }

    /// Stops taking jobs, lets the queued ones run, and joins the threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        drop(self.sender.take());
        let me = thread::current().id();
        for handle in self.threads.drain(..) {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

fn work(receiver: &Receiver<Job>, state: &State) {
    for job in receiver {
        state.running.fetch_add(1, Ordering::AcqRel);
        // The pool's jobs catch their own panics; this guards jobs built by hand.
        let deferred = catch_unwind(AssertUnwindSafe(|| job.run_deferred()));
        state.running.fetch_sub(1, Ordering::AcqRel);
        state.gate.release();
        // Now that this job's place is free, the pool may place a waiting retry here.
        if let Ok(deferred) = deferred {
            let _ = catch_unwind(AssertUnwindSafe(|| deferred.run()));
        }
    }
}

impl Worker for ThreadWorker {
    type Job = Job;

    fn submit(&self, job: Job) -> Result<(), Rejected<Job>> {
        let Some(sender) = &self.sender else {
            return Err(Rejected {
                job,
                reason: RejectReason::ShutDown,
            });
        };
        if !self.state.gate.try_acquire() {
            return Err(Rejected {
                job,
                reason: RejectReason::Full,
            });
        }
        sender.send(job).map_err(|returned| {
            self.state.gate.release();
            Rejected {
                job: returned.into_inner(),
                reason: RejectReason::ShutDown,
            }
        })
    }

    fn load(&self) -> Load {
        let held = self.state.gate.held();
        let running = self.state.running.load(Ordering::Acquire).min(held);
        Load {
            running,
            queued: held - running,
            capacity: self.state.gate.capacity(),
            ..Load::default()
        }
    }
}

impl Drop for ThreadWorker {
    fn drop(&mut self) {
        self.stop();
    }
}
