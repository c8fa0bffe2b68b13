//! Submitting: the `Submission` trait (named tasks and calls of registered closures), the `Submit`
//! builder with priority, retry, custom id and delay, and the typed `TaskHandle`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use workmill_core::{
    Codec, CodecError, NamedTask, NewTask, Payload, Postcard, Priority, RetryPolicy, TaskId,
    TaskName, Timestamp,
};

use crate::error::RuntimeError;
use crate::runtime::Runtime;

/// Something that can be submitted: a task name, an encodable input, and the type of its result.
///
/// Every [`NamedTask`] is a submission of itself; [`Call`] submits an input to
/// a closure registered under a name.
///
/// # Examples
///
/// A submission whose handler is chosen when the program runs keeps the name as a
/// [`TaskName`], so each submission clones a shared string instead of building one:
///
/// ```
/// use std::time::Duration;
/// use workmill::{
///     Codec, CodecError, Postcard, Runtime, Shutdown, Submission, TaskError, TaskName,
/// };
///
/// /// A thumbnail, made by whichever version of the handler this deployment runs.
/// struct Thumbnail {
///     handler: TaskName,
///     width: u32,
/// }
///
/// impl Submission for Thumbnail {
///     type Output = u32;
///
///     fn task_name(&self) -> TaskName {
///         self.handler.clone()
///     }
///
///     fn encode_input(&self) -> Result<Vec<u8>, CodecError> {
///         Postcard.encode(&self.width)
///     }
/// }
///
/// let runtime = Runtime::builder().threads(1).build()?;
/// runtime.register_fn("thumbnail.v2", |width: u32| Ok::<_, TaskError>(width / 4))?;
/// let handler = TaskName::from(format!("thumbnail.v{}", 2));
/// let small = runtime.submit(Thumbnail { handler: handler.clone(), width: 640 }).send()?;
/// let large = runtime.submit(Thumbnail { handler, width: 1920 }).send()?;
/// let wait = Duration::from_secs(10);
/// assert_eq!(runtime.wait_for(&small, wait)?, 160);
/// assert_eq!(runtime.wait_for(&large, wait)?, 480);
/// runtime.shutdown(Shutdown::Drain)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Submission {
    /// The type of the task's result.
    type Output: DeserializeOwned;

    /// The name workers look the handler up by (cheap to clone: a literal or a shared string).
    fn task_name(&self) -> TaskName;

    /// The input as bytes, with the default codec.
    fn encode_input(&self) -> Result<Vec<u8>, CodecError>;

    /// The input in its stored form: the bytes of [`encode_input`](Submission::encode_input).
    /// The runtime calls this one; the provided version wraps `encode_input`, and the
    /// implementations for [`NamedTask`] and [`Call`] encode a small input without a heap
    /// allocation.
    fn encode_payload(&self) -> Result<Payload, CodecError> {
        self.encode_input().map(Payload::from)
    }
}

impl<T: NamedTask> Submission for T {
    type Output = T::Output;

    fn task_name(&self) -> TaskName {
        TaskName::from_static(T::NAME)
    }

    fn encode_input(&self) -> Result<Vec<u8>, CodecError> {
        Postcard.encode(self)
    }

    fn encode_payload(&self) -> Result<Payload, CodecError> {
        Postcard.encode_payload(self)
    }
}

/// An input for the task registered under a name, typed with that task's input and output.
///
/// Get one from [`FnHandle::call`](crate::FnHandle::call), or build one with
/// [`Call::new`] in a producer that does not run the task itself.
pub struct Call<I, O> {
    name: Arc<str>,
    input: I,
    _output: PhantomData<fn() -> O>,
}

impl<I, O> Call<I, O> {
    /// A call of the task named `name` on `input`.
    pub fn new(name: impl Into<Arc<str>>, input: I) -> Call<I, O> {
        Call {
            name: name.into(),
            input,
            _output: PhantomData,
        }
    }
}

impl<I: fmt::Debug, O> fmt::Debug for Call<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("name", &self.name)
            .field("input", &self.input)
            .finish()
    }
}

impl<I: Serialize, O: DeserializeOwned> Submission for Call<I, O> {
    type Output = O;

    fn task_name(&self) -> TaskName {
        TaskName::from(Arc::clone(&self.name))
    }

    fn encode_input(&self) -> Result<Vec<u8>, CodecError> {
        Postcard.encode(&self.input)
    }

    fn encode_payload(&self) -> Result<Payload, CodecError> {
        Postcard.encode_payload(&self.input)
    }
}

/// A submitted task, typed with its result: pass [`id`](TaskHandle::id) to
/// [`Runtime::get_result`], or the handle to [`Runtime::wait_for`].
pub struct TaskHandle<R> {
    id: TaskId,
    _result: PhantomData<fn() -> R>,
}

impl<R> TaskHandle<R> {
    pub(crate) fn new(id: TaskId) -> TaskHandle<R> {
        TaskHandle {
            id,
            _result: PhantomData,
        }
    }

    /// The task's id.
    pub fn id(&self) -> &TaskId {
        &self.id
    }

    /// The task's id, dropping the type.
    pub fn into_id(self) -> TaskId {
        self.id
    }
}

impl<R> Clone for TaskHandle<R> {
    fn clone(&self) -> TaskHandle<R> {
        TaskHandle::new(self.id.clone())
    }
}

impl<R> fmt::Debug for TaskHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskHandle").field(&self.id).finish()
    }
}

/// A task being submitted: set its options, then [`send`](Submit::send) it.
///
/// Made by [`Runtime::submit`]. Nothing reaches the queue until `send`.
#[must_use = "a task is submitted only when `send` is called"]
pub struct Submit<'rt, R> {
    runtime: &'rt Runtime,
    task: Result<NewTask, RuntimeError>,
    _result: PhantomData<fn() -> R>,
}

impl<'rt, R> Submit<'rt, R> {
    pub(crate) fn new(
        runtime: &'rt Runtime,
        task: Result<NewTask, RuntimeError>,
    ) -> Submit<'rt, R> {
        Submit {
            runtime,
            task,
            _result: PhantomData,
        }
    }

    fn map(mut self, change: impl FnOnce(NewTask) -> NewTask) -> Submit<'rt, R> {
        self.task = self.task.map(change);
        self
    }

    /// Sets the priority; lower runs first (the default is [`Priority::NORMAL`]).
    pub fn priority(self, priority: impl Into<Priority>) -> Submit<'rt, R> {
        let priority = priority.into();
        self.map(|task| task.priority(priority))
    }

    /// Sets how failed attempts are retried (the default is the runtime's).
    pub fn retry(self, policy: RetryPolicy) -> Submit<'rt, R> {
        self.map(|task| task.retry(policy))
    }

    /// Uses the caller's id. While the backend keeps a task with this id, a second
    /// submission with the same id is refused with
    /// [`QueueError::DuplicateTask`](workmill_core::QueueError::DuplicateTask), so an id
    /// doubles as an idempotency key for that long: from submission until the task's
    /// finished record is evicted by the backend's retention bound (for the memory queue,
    /// [`MemoryConfig::retention`](workmill_queue::MemoryConfig::retention)) or removed by a
    /// [`purge`](workmill_core::Queue::purge). After that the id is free, and a submission
    /// under it is a new task. To refuse repeats for longer, keep more finished records, or
    /// remember the ids elsewhere.
    pub fn id(self, id: TaskId) -> Submit<'rt, R> {
        self.map(|task| task.with_id(id))
    }

    /// Keeps the task from running for `delay` from now.
    pub fn delay(self, delay: Duration) -> Submit<'rt, R> {
        self.map(|task| task.delay(delay))
    }

    /// Keeps the task from running before `at`.
    pub fn run_at(self, at: Timestamp) -> Submit<'rt, R> {
        self.map(|task| task.run_at(at))
    }

    /// Submits the task.
    pub fn send(self) -> Result<TaskHandle<R>, RuntimeError> {
        let id = self.runtime.enqueue(self.task?)?;
        Ok(TaskHandle::new(id))
    }
}

/// The queue entry for `submission` with the runtime's defaults and the id `id`.
pub(crate) fn new_task<S: Submission + ?Sized>(
    submission: &S,
    id: TaskId,
    default_retry: &RetryPolicy,
) -> Result<NewTask, RuntimeError> {
    let payload = submission
        .encode_payload()
        .map_err(|source| RuntimeError::Encode {
            name: submission.task_name().into(),
            source,
        })?;
    Ok(NewTask::new_with_id(id, submission.task_name(), payload).retry(default_retry.clone()))
}
