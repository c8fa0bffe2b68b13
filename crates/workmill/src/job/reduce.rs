//! The reduce side of a job: `ReduceTask` (a named reduce over a `NamedTask` map's outputs),
//! `ReduceFn` (a reduce closure registered by name), the reduce's payload, and how its handler
//! reads the maps' outputs from the queue.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use workmill_core::{
    Codec, Failure, FailureKind, NamedTask, Postcard, Queue, QueueError, TaskContext, TaskError,
    TaskId, TaskName,
};

/// The reduce of a map-reduce job whose maps are [`Map`](ReduceTask::Map) tasks: it receives
/// their outputs, decoded, in map order.
///
/// The value itself is the reduce's argument, given when the job is built
/// ([`Job::map_reduce`](crate::job::Job::map_reduce)); a unit struct is a reduce without one.
/// Like a [`NamedTask`], it crosses processes by its stable [`NAME`](ReduceTask::NAME):
/// register it in every worker with [`Registry::register_reduce`](crate::Registry::register_reduce)
/// or [`Runtime::register_reduce`](crate::Runtime::register_reduce), beside its map.
///
/// # Examples
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use workmill::job::ReduceTask;
/// use workmill::{NamedTask, TaskContext, TaskError};
///
/// #[derive(Serialize, Deserialize)]
/// struct Square(u64);
///
/// impl NamedTask for Square {
///     const NAME: &'static str = "math.square";
///     type Output = u64;
///     fn run(self, _ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
///         Ok(self.0 * self.0)
///     }
/// }
///
/// /// Sums the squares, then adds an offset given with the job.
/// #[derive(Serialize, Deserialize)]
/// struct SumPlus(u64);
///
/// impl ReduceTask for SumPlus {
///     const NAME: &'static str = "math.sum_plus";
///     type Map = Square;
///     type Output = u64;
///     fn reduce(self, squares: Vec<u64>, _ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
///         Ok(squares.iter().sum::<u64>() + self.0)
///     }
/// }
///
/// assert_eq!(SumPlus(1).reduce(vec![1, 4, 9], &TaskContext::new(1)).unwrap(), 15);
/// ```
pub trait ReduceTask: Serialize + DeserializeOwned + Send + 'static {
    /// The name under which workers find the handler; keep it stable across releases.
    const NAME: &'static str;
    /// The job's map task; the reduce receives its outputs.
    type Map: NamedTask;
    /// What the reduce, and so the job, returns.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Runs one attempt of the reduce on the maps' outputs, in map order.
    fn reduce(
        self,
        outputs: Vec<<Self::Map as NamedTask>::Output>,
        ctx: &TaskContext<'_>,
    ) -> Result<Self::Output, TaskError>;
}

/// A typed handle on a reduce closure registered with
/// [`Runtime::register_reduce_fn`](crate::Runtime::register_reduce_fn) or
/// [`Registry::register_reduce_fn`](crate::Registry::register_reduce_fn): it reduces map
/// outputs of type `MO` into an `O`, and builds jobs with
/// [`Job::with_reduce_fn`](crate::job::Job::with_reduce_fn).
pub struct ReduceFn<MO, O> {
    name: Arc<str>,
    _types: PhantomData<fn(Vec<MO>) -> O>,
}

impl<MO, O> ReduceFn<MO, O> {
    pub(crate) fn new(name: Arc<str>) -> ReduceFn<MO, O> {
        ReduceFn {
            name,
            _types: PhantomData,
        }
    }

    /// A handle on the reduce closure registered under `name` in another process, for a
    /// producer that builds jobs without running them.
    pub fn named(name: impl Into<Arc<str>>) -> ReduceFn<MO, O> {
        ReduceFn::new(name.into())
    }

    /// The name the closure is registered under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name for the reduce task, sharing this handle's string rather than copying it.
    pub(crate) fn task_name(&self) -> TaskName {
        TaskName::from(Arc::clone(&self.name))
    }
}

impl<MO, O> Clone for ReduceFn<MO, O> {
    fn clone(&self) -> ReduceFn<MO, O> {
        ReduceFn::new(Arc::clone(&self.name))
    }
}

impl<MO, O> fmt::Debug for ReduceFn<MO, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReduceFn").field(&self.name).finish()
    }
}

/// The payload of a job's reduce task: which job it reduces, and the reduce's own argument
/// (the encoded [`ReduceTask`] value; empty for a [`ReduceFn`]).
#[derive(Serialize, Deserialize)]
pub(crate) struct ReduceInput {
    pub(crate) job: String,
    pub(crate) arg: Vec<u8>,
}

/// The outputs of job `job`'s maps, read from `queue` and decoded as `T`, in map order; or the
/// failure the reduce's attempt ends with.
///
/// A store that fails is a retryable failure (the next attempt reads again); a job that is
/// gone or not ready, or an output that does not decode, cannot be helped by retrying.
pub(crate) fn map_outputs<T: DeserializeOwned>(
    queue: Option<&dyn Queue>,
    job: &str,
) -> Result<Vec<T>, Failure> {
    let Some(queue) = queue else {
        return Err(Failure::new(
            FailureKind::Permanent,
            format!(
                "the reduce of job {job} was run without its queue, so it cannot read the maps' \
                 results; run it from a worker loop (Registry::run_from)"
            ),
        ));
    };
    let id = TaskId::new(job).map_err(|error| {
        Failure::new(
            FailureKind::Decode,
            format!("the reduce's payload names job {job:?}, which is not a valid id: {error}"),
        )
    })?;
    let results = queue.job_results(&id).map_err(|error| {
        let kind = match error {
            QueueError::Backend { .. } => FailureKind::Error,
            _ => FailureKind::Permanent,
        };
        Failure::new(
            kind,
            format!("could not read the results of job {id}'s maps: {error}"),
        )
    })?;
    results
        .iter()
        .enumerate()
        .map(|(position, bytes)| {
            Postcard.decode(bytes).map_err(|error| {
                Failure::new(
                    FailureKind::Decode,
                    format!(
                        "the result of map {position} of job {id} is not a valid {}: {error}",
                        std::any::type_name::<T>()
                    ),
                )
            })
        })
        .collect()
}
