//! Map-reduce jobs across workers and processes: a job's maps are ordinary queue tasks, and its
//! reduce, which receives their outputs, is enqueued by the backend when the last map completes.
//!
//! - Build a job with [`Job::map_reduce`] (maps of a [`NamedTask`](crate::NamedTask) type and
//!   a [`ReduceTask`] over their outputs) or [`Job::with_reduce_fn`] (maps of any submission,
//!   such as calls of a closure registered with
//!   [`Runtime::register_fn`](crate::Runtime::register_fn), and a closure registered with
//!   [`Runtime::register_reduce_fn`](crate::Runtime::register_reduce_fn)), then submit it with
//!   [`Runtime::submit_job`](crate::Runtime::submit_job), or
//!   [`Runtime::map_reduce`](crate::Runtime::map_reduce) in one call, as the seed's
//!   `map_reduce(data_chunks, map_function, reduce_function)` does.
//! - Watch it with [`Runtime::job_status`](crate::Runtime::job_status): a
//!   [`JobRecord`](crate::JobRecord) with its status and maps done out of total.
//! - Block for its typed result with [`Runtime::wait_job`](crate::Runtime::wait_job) (or
//!   [`wait_result`], given only a queue). A map that exhausts its retries fails the job with
//!   that map's id and error ([`RuntimeError::JobFailed`]).
//!
//! The backend keeps the job: its bookkeeping runs in the same lock, transaction or script as
//! the completion of each map, so no thread watches a job, and a job submitted by one process
//! is run by the worker processes that share its backend (see `Queue` in workmill-core, under
//! "Jobs", for the rules every backend keeps).
//!
//! **Stragglers are not re-run speculatively.** A slow map holds its job back until it
//! finishes, fails (and is retried by its policy), or its worker dies and its lease lapses.
//! Running a second copy of a slow map would need the backend to accept the first of two
//! completions of one map and drop the other's result, which the lease protocol does not
//! provide: each reservation of a task is the only one that may complete it. Keep maps small
//! and many, so one slow map is a small share of a job.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use workmill::job::{Job, ReduceTask};
//! use workmill::{JobStatus, NamedTask, Runtime, TaskContext, TaskError};
//!
//! /// Counts the words of one chunk of text.
//! #[derive(Serialize, Deserialize)]
//! struct CountWords(String);
//!
//! impl NamedTask for CountWords {
//!     const NAME: &'static str = "words.count";
//!     type Output = u64;
//!     fn run(self, _ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
//!         Ok(self.0.split_whitespace().count() as u64)
//!     }
//! }
//!
//! /// Adds the chunks' counts.
//! #[derive(Serialize, Deserialize)]
//! struct Total;
//!
//! impl ReduceTask for Total {
//!     const NAME: &'static str = "words.total";
//!     type Map = CountWords;
//!     type Output = u64;
//!     fn reduce(self, counts: Vec<u64>, _ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
//!         Ok(counts.iter().sum())
//!     }
//! }
//!
//! let runtime = Runtime::builder().threads(2).build()?;
//! runtime.register::<CountWords>()?;
//! runtime.register_reduce::<Total>()?;
//! let chunks = ["the quick brown fox", "jumps over", "the lazy dog"];
//! let job = runtime.submit_job(Job::map_reduce(
//!     chunks.map(|chunk| CountWords(chunk.to_owned())),
//!     Total,
//! ))?;
//! assert_eq!(runtime.wait_job(&job, Duration::from_secs(10))?, 9);
//! let record = runtime.job_status(job.id())?;
//! assert_eq!((record.status, record.maps_done, record.maps_total()), (JobStatus::Completed, 3, 3));
//!
//! // The same with closures registered by name, as the seed's `map_reduce` takes them.
//! let square = runtime.register_fn("math.square", |x: u64| Ok::<_, TaskError>(x * x))?;
//! let sum = runtime.register_reduce_fn("math.sum", |squares: Vec<u64>| {
//!     Ok::<_, TaskError>(squares.iter().sum::<u64>())
//! })?;
//! let job = runtime.map_reduce(1..=10u64, &square, &sum)?;
//! assert_eq!(runtime.wait_job(&job, Duration::from_secs(10))?, 385);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod reduce;
mod wait;

use std::fmt;
use std::marker::PhantomData;

use workmill_core::{Codec, NewJob, NewTask, Postcard, Priority, RetryPolicy, TaskId, TaskName};

use crate::error::RuntimeError;
use crate::submit::Submission;

pub use reduce::{ReduceFn, ReduceTask};
pub(crate) use reduce::{ReduceInput, map_outputs};
pub use wait::wait_result;
pub(crate) use wait::wait_result_with;

/// A map-reduce job on its way to a queue: its maps' inputs, its reduce, and their options.
///
/// Build one with [`Job::map_reduce`] or [`Job::with_reduce_fn`], set options, and submit it
/// with [`Runtime::submit_job`](crate::Runtime::submit_job). `O` is the job's result type.
/// An input that cannot be encoded is reported when the job is submitted.
#[must_use = "a job does nothing until it is submitted"]
pub struct Job<O> {
    id: Option<TaskId>,
    maps: Result<Vec<(TaskName, Vec<u8>)>, RuntimeError>,
    reduce: Result<(TaskName, Vec<u8>), RuntimeError>,
    priority: Priority,
    reduce_priority: Priority,
    retry: Option<RetryPolicy>,
    reduce_retry: Option<RetryPolicy>,
    _output: PhantomData<fn() -> O>,
}

impl<O> Job<O> {
    /// A job that runs a map task for each input and reduces their outputs with `reduce`
    /// (whose value is the reduce's argument).
    pub fn map_reduce<R>(inputs: impl IntoIterator<Item = R::Map>, reduce: R) -> Job<O>
    where
        R: ReduceTask<Output = O>,
    {
        let arg = Postcard
            .encode(&reduce)
            .map(|arg| (TaskName::from_static(R::NAME), arg))
            .map_err(|source| RuntimeError::Encode {
                name: R::NAME.to_owned(),
                source,
            });
        Job::new(encode_all(inputs), arg)
    }

    /// A job of `maps` (any submissions whose output is `MO`, such as
    /// [`FnHandle::call`](crate::FnHandle::call)s or [`NamedTask`](crate::NamedTask) values)
    /// whose outputs the closure behind `reduce` receives.
    pub fn with_reduce_fn<S, MO>(
        maps: impl IntoIterator<Item = S>,
        reduce: &ReduceFn<MO, O>,
    ) -> Job<O>
    where
        S: Submission<Output = MO>,
    {
        Job::new(encode_all(maps), Ok((reduce.task_name(), Vec::new())))
    }

    fn new(
        maps: Result<Vec<(TaskName, Vec<u8>)>, RuntimeError>,
        reduce: Result<(TaskName, Vec<u8>), RuntimeError>,
    ) -> Job<O> {
        Job {
            id: None,
            maps,
            reduce,
            priority: Priority::default(),
            reduce_priority: Priority::default(),
            retry: None,
            reduce_retry: None,
            _output: PhantomData,
        }
    }

    /// Uses the caller's job id; a second job with the same id is refused with
    /// [`QueueError::DuplicateJob`](crate::QueueError::DuplicateJob). Job ids are a namespace
    /// of their own, apart from task ids.
    pub fn id(mut self, id: TaskId) -> Job<O> {
        self.id = Some(id);
        self
    }

    /// The priority of the map tasks; lower runs first (the default is [`Priority::NORMAL`]).
    pub fn priority(mut self, priority: impl Into<Priority>) -> Job<O> {
        self.priority = priority.into();
        self
    }

    /// The priority of the reduce task (the default is [`Priority::NORMAL`]).
    pub fn reduce_priority(mut self, priority: impl Into<Priority>) -> Job<O> {
        self.reduce_priority = priority.into();
        self
    }

    /// How failed map attempts are retried (the default is the runtime's); a map that
    /// exhausts its attempts fails the job.
    pub fn retry(mut self, policy: RetryPolicy) -> Job<O> {
        self.retry = Some(policy);
        self
    }

    /// How failed reduce attempts are retried (the default is the runtime's).
    pub fn reduce_retry(mut self, policy: RetryPolicy) -> Job<O> {
        self.reduce_retry = Some(policy);
        self
    }

    /// The job as a backend takes it ([`Queue::submit_job`](crate::Queue::submit_job)), with
    /// `default_retry` for the tasks whose policy was not set; for producers that hold a
    /// queue rather than a runtime.
    pub fn into_new_job(self, default_retry: &RetryPolicy) -> Result<NewJob, RuntimeError> {
        let id = self.id.unwrap_or_else(TaskId::generate);
        let map_retry = self.retry.unwrap_or_else(|| default_retry.clone());
        let maps = self
            .maps?
            .into_iter()
            .map(|(name, payload)| {
                NewTask::new(name, payload)
                    .priority(self.priority)
                    .retry(map_retry.clone())
            })
            .collect();
        let (name, arg) = self.reduce?;
        let input = ReduceInput {
            job: id.as_str().to_owned(),
            arg,
        };
        let payload = Postcard
            .encode(&input)
            .map_err(|source| RuntimeError::Encode {
                name: name.to_string(),
                source,
            })?;
        let reduce = NewTask::new(name, payload)
            .priority(self.reduce_priority)
            .retry(self.reduce_retry.unwrap_or_else(|| default_retry.clone()));
        Ok(NewJob::new(maps, reduce).with_id(id))
    }
}

impl<O> fmt::Debug for Job<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("maps", &self.maps.as_ref().map(Vec::len))
            .field("reduce", &self.reduce.as_ref().map(|(name, _)| name))
            .finish_non_exhaustive()
    }
}

/// Each submission's task name and encoded input, or the first that cannot be encoded.
fn encode_all<S: Submission>(
    maps: impl IntoIterator<Item = S>,
) -> Result<Vec<(TaskName, Vec<u8>)>, RuntimeError> {
    maps.into_iter()
        .map(|map| {
            let name = map.task_name();
            match map.encode_input() {
                Ok(payload) => Ok((name, payload)),
                Err(source) => Err(RuntimeError::Encode {
                    name: name.into(),
                    source,
                }),
            }
        })
        .collect()
}

/// A submitted job, typed with its result: pass it to
/// [`Runtime::wait_job`](crate::Runtime::wait_job), or its [`id`](JobHandle::id) to
/// [`Runtime::job_status`](crate::Runtime::job_status).
pub struct JobHandle<O> {
    id: TaskId,
    _result: PhantomData<fn() -> O>,
}

impl<O> JobHandle<O> {
    /// A handle on job `id` whose result is an `O`, for a process that did not submit it.
    pub fn new(id: TaskId) -> JobHandle<O> {
        JobHandle {
            id,
            _result: PhantomData,
        }
    }

    /// The job's id.
    pub fn id(&self) -> &TaskId {
        &self.id
    }

    /// The job's id, dropping the type.
    pub fn into_id(self) -> TaskId {
        self.id
    }
}

impl<O> Clone for JobHandle<O> {
    fn clone(&self) -> JobHandle<O> {
        JobHandle::new(self.id.clone())
    }
}

impl<O> fmt::Debug for JobHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JobHandle").field(&self.id).finish()
    }
}
