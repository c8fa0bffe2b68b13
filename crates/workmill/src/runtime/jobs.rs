//! The runtime's map-reduce jobs: registering reduces, submitting jobs, watching them, and
//! blocking for their typed results (see the `job` module for the model).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use workmill_core::{JobRecord, TaskError, TaskId};

use super::Runtime;
use crate::error::RuntimeError;
use crate::job::{self, Job, JobHandle, ReduceFn, ReduceTask};
use crate::registry::FnHandle;

impl Runtime {
    /// Registers the reduce `R` of map-reduce jobs, so that workers can run it; register its
    /// map, [`R::Map`](ReduceTask::Map), with [`register`](Runtime::register) too.
    pub fn register_reduce<R: ReduceTask>(&self) -> Result<(), RuntimeError> {
        self.shared
            .registry
            .update(|registry| registry.register_reduce::<R>().map(|_| ()))?;
        Ok(())
    }

    /// Registers a closure that reduces a job's map outputs (in map order) under `name`, and
    /// returns a typed handle for building jobs with it ([`Job::with_reduce_fn`],
    /// [`map_reduce`](Runtime::map_reduce)). A panic in it is a failed attempt.
    pub fn register_reduce_fn<MO, O, F>(
        &self,
        name: impl Into<String>,
        f: F,
    ) -> Result<ReduceFn<MO, O>, RuntimeError>
    where
        MO: DeserializeOwned + Send + 'static,
        O: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(Vec<MO>) -> Result<O, TaskError> + Send + Sync + 'static,
    {
        let name = name.into();
        Ok(self
            .shared
            .registry
            .update(move |registry| registry.register_reduce_fn(name, f))?)
    }

    /// Submits a map-reduce job: every map is enqueued and the job recorded, or nothing is.
    ///
    /// Tasks whose retry policy the job does not set get the runtime's default. Refused like
    /// a task: a payload over the runtime's limit, a taken id, or a runtime shutting down;
    /// and a job without maps ([`QueueError::InvalidJob`](crate::QueueError::InvalidJob)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use workmill::{Job, JobStatus, Runtime, RuntimeError, TaskError};
    ///
    /// let runtime = Runtime::builder().threads(2).build()?;
    /// let length = runtime.register_fn("text.length", |text: String| {
    ///     if text.is_empty() {
    ///         return Err(TaskError::permanent("an empty line"));
    ///     }
    ///     Ok(text.len() as u64)
    /// })?;
    /// let longest = runtime.register_reduce_fn("text.longest", |lengths: Vec<u64>| {
    ///     Ok::<_, TaskError>(lengths.into_iter().max().unwrap_or(0))
    /// })?;
    ///
    /// let lines = ["a map", "and a reduce", "per job"].map(String::from);
    /// let job = runtime.submit_job(Job::with_reduce_fn(lines.map(|l| length.call(l)), &longest))?;
    /// assert_eq!(runtime.wait_job(&job, Duration::from_secs(10))?, 12);
    ///
    /// // A map that fails fails its job, and the error names that map.
    /// let lines = ["fine", ""].map(String::from);
    /// let job = runtime.submit_job(Job::with_reduce_fn(lines.map(|l| length.call(l)), &longest))?;
    /// let empty_line = runtime.job_status(job.id())?.maps[1].clone();
    /// match runtime.wait_job(&job, Duration::from_secs(10)) {
    ///     Err(RuntimeError::JobFailed { task, failure, .. }) => {
    ///         assert_eq!(task, empty_line);
    ///         assert_eq!(failure.message, "an empty line");
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// assert_eq!(runtime.job_status(job.id())?.status, JobStatus::Failed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_job<O>(&self, job: Job<O>) -> Result<JobHandle<O>, RuntimeError> {
        let job = job.into_new_job(&self.shared.default_retry)?;
        for task in job.maps.iter().chain(std::iter::once(&job.reduce)) {
            self.check_payload(task)?;
        }
        let _submitting = self.open_for_submissions()?;
        let id = match &self.shared.memory {
            Some(memory) => {
                self.submit_to_memory(|keep_waiting| memory.submit_job_while(job, keep_waiting))?
            }
            None => self.shared.queue.submit_job(job)?,
        };
        Ok(JobHandle::new(id))
    }

    /// Submits a job that calls the closure behind `map` on each input and reduces the
    /// outputs with the closure behind `reduce`: the seed's
    /// `map_reduce(data_chunks, map_function, reduce_function)`.
    pub fn map_reduce<I, MO, O>(
        &self,
        inputs: impl IntoIterator<Item = I>,
        map: &FnHandle<I, MO>,
        reduce: &ReduceFn<MO, O>,
    ) -> Result<JobHandle<O>, RuntimeError>
    where
        I: Serialize,
        MO: DeserializeOwned,
    {
        let calls = inputs.into_iter().map(|input| map.call(input));
        self.submit_job(Job::with_reduce_fn(calls, reduce))
    }

    /// The job's record: its status, its maps done out of total
    /// ([`JobRecord::maps_total`]), and what failed it, if something did.
    pub fn job_status(&self, id: &TaskId) -> Result<JobRecord, RuntimeError> {
        Ok(self.shared.queue.job(id)?)
    }

    /// Blocks until the job ends, then returns its reduce's result; see [`job::wait_result`]
    /// for how it waits and the errors of a failed, cancelled or unfinished job.
    ///
    /// Once the runtime has stopped its worker loops, a job still mapping, or whose reduce
    /// waits to run, fails with [`RuntimeError::ShutDown`], as
    /// [`get_result`](Runtime::get_result) does for a task. On the memory queue the wait is
    /// one wait, registered with the queue from its first look at the job to its last
    /// ([`MemoryQueue::wait_job_while`](crate::MemoryQueue::wait_job_while)), which sees the
    /// stop at once, and which gets the result however small the retention bound.
    pub fn wait_job<O: DeserializeOwned>(
        &self,
        job: &JobHandle<O>,
        timeout: Duration,
    ) -> Result<O, RuntimeError> {
        self.get_job_result(job.id(), timeout)
    }

    /// [`wait_job`](Runtime::wait_job) by the job's id, decoding the result as `O`.
    pub fn get_job_result<O: DeserializeOwned>(
        &self,
        id: &TaskId,
        timeout: Duration,
    ) -> Result<O, RuntimeError> {
        job::wait_result_with(self.waits(), id, timeout)
    }
}
