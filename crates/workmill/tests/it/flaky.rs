//! `Flaky`: a memory queue behind a store that fails when told to, for the tests of how workers ride out store failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use workmill::Codec as _;
use workmill::{
    FailOutcome, Failure, JobRecord, Lease, ListFilter, MemoryQueue, NewJob, NewTask, Queue,
    QueueError, QueueStats, Reservation, TaskId, TaskRecord, TaskStatus, WorkerId,
};

/// Which operations fail, and how often.
#[derive(Debug, Default)]
pub(crate) struct Script {
    /// Failures still to come, by operation name.
    pending: HashMap<&'static str, u32>,
    /// Refusals still to come (errors no retry mends), by operation name.
    refusals: HashMap<&'static str, u32>,
    /// Every operation fails while this is set.
    down: bool,
    /// Failures served, by operation name.
    pub(crate) served: HashMap<&'static str, u32>,
    /// Connections opened.
    pub(crate) connects: u32,
}

/// Run after every reserve that handed out tasks, before the worker sees them.
type Hook = Arc<dyn Fn() + Send + Sync>;

/// A store shared by every connection a test opens: one memory queue, one failure script.
#[derive(Clone)]
pub(crate) struct Store {
    pub(crate) memory: Arc<MemoryQueue>,
    pub(crate) script: Arc<Mutex<Script>>,
    after_reserve: Arc<Mutex<Option<Hook>>>,
}

impl Store {
    pub(crate) fn new() -> Store {
        Store {
            memory: Arc::new(MemoryQueue::new()),
            script: Arc::new(Mutex::new(Script::default())),
            after_reserve: Arc::default(),
        }
    }

    /// Runs `hook` after each reserve that hands out tasks: something that happens while a
    /// worker's reserve is in flight.
    pub(crate) fn after_reserve(&self, hook: impl Fn() + Send + Sync + 'static) {
        *self.after_reserve.lock().unwrap() = Some(Arc::new(hook));
    }

    /// Makes the next `times` calls of `operation` fail as a broken store would.
    pub(crate) fn fail_next(&self, operation: &'static str, times: u32) {
        *self
            .script
            .lock()
            .unwrap()
            .pending
            .entry(operation)
            .or_default() += times;
    }

    /// Makes the next call of `operation` fail with an error no retry mends.
    pub(crate) fn refuse_next(&self, operation: &'static str) {
        *self
            .script
            .lock()
            .unwrap()
            .refusals
            .entry(operation)
            .or_default() += 1;
    }

    /// Takes the whole store down, or brings it back.
    pub(crate) fn set_down(&self, down: bool) {
        self.script.lock().unwrap().down = down;
    }

    /// Failures served for `operation` so far.
    pub(crate) fn served(&self, operation: &str) -> u32 {
        self.script
            .lock()
            .unwrap()
            .served
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn connects(&self) -> u32 {
        self.script.lock().unwrap().connects
    }

    /// Opens a connection, as a worker's `connect` does; fails while the store is down.
    pub(crate) fn connect(&self) -> Result<Arc<dyn Queue>, QueueError> {
        self.check("connect")?;
        self.script.lock().unwrap().connects += 1;
        Ok(Arc::new(Flaky {
            store: self.clone(),
        }))
    }

    fn check(&self, operation: &'static str) -> Result<(), QueueError> {
        let mut script = self.script.lock().unwrap();
        if let Some(left) = script.refusals.get_mut(operation)
            && *left > 0
        {
            *left -= 1;
            *script.served.entry(operation).or_default() += 1;
            return Err(QueueError::Incompatible {
                backend: "flaky",
                reason: format!("{operation} is refused"),
            });
        }
        let fail = script.down
            || match script.pending.get_mut(operation) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            };
        if fail {
            *script.served.entry(operation).or_default() += 1;
            return Err(QueueError::backend("flaky", operation, "the store is down"));
        }
        Ok(())
    }
}

/// One connection to a [`Store`].
pub(crate) struct Flaky {
    store: Store,
}

impl Flaky {
    fn queue(&self, operation: &'static str) -> Result<&MemoryQueue, QueueError> {
        self.store.check(operation)?;
        Ok(&self.store.memory)
    }
}

impl Queue for Flaky {
    fn backend_name(&self) -> &'static str {
        "flaky"
    }
    fn enqueue(&self, task: NewTask) -> Result<TaskId, QueueError> {
        self.queue("enqueue")?.enqueue(task)
    }
    fn reserve(
        &self,
        worker: &WorkerId,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<Reservation>, QueueError> {
        let batch = self.queue("reserve")?.reserve(worker, max, lease)?;
        let hook = self.store.after_reserve.lock().unwrap().clone();
        if let Some(hook) = hook.filter(|_| !batch.is_empty()) {
            hook();
        }
        Ok(batch)
    }
    fn await_work(&self, timeout: Duration) -> Result<(), QueueError> {
        self.queue("await_work")?.await_work(timeout)
    }
    fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Lease, QueueError> {
        self.queue("heartbeat")?.heartbeat(lease, extend)
    }
    fn complete(&self, lease: &Lease, result: Vec<u8>) -> Result<(), QueueError> {
        self.queue("complete")?.complete(lease, result)
    }
    fn complete_batch(
        &self,
        done: Vec<(Lease, Vec<u8>)>,
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        self.queue("complete_batch")?.complete_batch(done)
    }
    fn fail(&self, lease: &Lease, failure: Failure) -> Result<FailOutcome, QueueError> {
        self.queue("fail")?.fail(lease, failure)
    }
    fn release(&self, lease: &Lease) -> Result<(), QueueError> {
        self.queue("release")?.release(lease)
    }
    fn cancel(&self, id: &TaskId) -> Result<(), QueueError> {
        self.queue("cancel")?.cancel(id)
    }
    fn requeue(&self, id: &TaskId) -> Result<(), QueueError> {
        self.queue("requeue")?.requeue(id)
    }
    fn status(&self, id: &TaskId) -> Result<TaskRecord, QueueError> {
        self.queue("status")?.status(id)
    }
    fn list(&self, filter: &ListFilter) -> Result<Vec<TaskRecord>, QueueError> {
        self.queue("list")?.list(filter)
    }
    fn stats(&self) -> Result<QueueStats, QueueError> {
        self.queue("stats")?.stats()
    }
    fn purge(&self, statuses: &[TaskStatus]) -> Result<u64, QueueError> {
        self.queue("purge")?.purge(statuses)
    }
    fn submit_job(&self, job: NewJob) -> Result<TaskId, QueueError> {
        self.queue("submit_job")?.submit_job(job)
    }
    fn job(&self, id: &TaskId) -> Result<JobRecord, QueueError> {
        self.queue("job")?.job(id)
    }
    fn job_results(&self, id: &TaskId) -> Result<Vec<Vec<u8>>, QueueError> {
        self.queue("job_results")?.job_results(id)
    }
    fn rescue_expired(&self) -> Result<u64, QueueError> {
        self.queue("rescue_expired")?.rescue_expired()
    }
}

/// Decodes a completed task's result.
pub(crate) fn result_of<T: serde::de::DeserializeOwned>(record: &TaskRecord) -> T {
    workmill::Postcard
        .decode(
            record
                .result
                .as_deref()
                .expect("a completed task has a result"),
        )
        .expect("the result decodes")
}
