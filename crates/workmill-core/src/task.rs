//! `Task` and `NamedTask`: units of work that run once per attempt, and `TaskError`, the way they fail.

use std::error::Error as StdError;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::id::{TaskId, WorkerId};
use crate::record::{Failure, FailureKind};

/// What a task may know about the attempt it is running in.
#[derive(Clone, Copy, Debug)]
pub struct TaskContext<'a> {
    attempt: u32,
    task: Option<&'a TaskId>,
    worker: Option<&'a WorkerId>,
}

impl<'a> TaskContext<'a> {
    /// A context for attempt number `attempt` (1 for the first run).
    pub fn new(attempt: u32) -> TaskContext<'a> {
        TaskContext {
            attempt,
            task: None,
            worker: None,
        }
    }

    /// Adds the id of the task being run.
    #[must_use]
    pub fn with_task(mut self, id: &'a TaskId) -> TaskContext<'a> {
        self.task = Some(id);
        self
    }

    /// Adds the id of the worker running it.
    #[must_use]
    pub fn with_worker(mut self, worker: &'a WorkerId) -> TaskContext<'a> {
        self.worker = Some(worker);
        self
    }

    /// The attempt number, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The task's id, when it has one (queued tasks do; in-process closures may not).
    pub fn task_id(&self) -> Option<&'a TaskId> {
        self.task
    }

    /// The worker running the attempt, when known.
    pub fn worker(&self) -> Option<&'a WorkerId> {
        self.worker
    }
}

/// A unit of work that runs once per attempt and returns an output or a [`TaskError`].
///
/// It takes `&mut self` so that a failed attempt can be run again, on the same
/// worker or on another one. Closures `FnMut() -> Result<T, TaskError>` are
/// tasks; wrap a closure with [`task_fn`] when it needs the [`TaskContext`].
///
/// # Examples
///
/// ```
/// use workmill_core::{Task, TaskContext, TaskError, task_fn};
///
/// fn run_twice<T: Task>(mut task: T) -> Vec<Result<T::Output, TaskError>> {
///     (1..=2).map(|n| task.run(&TaskContext::new(n))).collect()
/// }
///
/// let mut calls = 0;
/// let results = run_twice(move || {
///     calls += 1;
///     if calls == 1 { Err(TaskError::retryable("flaky")) } else { Ok(calls) }
/// });
/// assert!(results[0].is_err());
/// assert_eq!(results[1].as_ref().unwrap(), &2);
///
/// let results = run_twice(task_fn(|ctx: &TaskContext<'_>| Ok::<_, TaskError>(ctx.attempt() * 10)));
/// assert_eq!(results[1].as_ref().unwrap(), &20);
/// ```
pub trait Task: Send {
    /// What a successful attempt produces.
    type Output: Send;

    /// Runs one attempt.
    fn run(&mut self, ctx: &TaskContext<'_>) -> Result<Self::Output, TaskError>;
}

impl<F, T> Task for F
where
    F: FnMut() -> Result<T, TaskError> + Send,
    T: Send,
{
    type Output = T;

    fn run(&mut self, _ctx: &TaskContext<'_>) -> Result<T, TaskError> {
        self()
    }
}

/// A task made from a closure that reads its [`TaskContext`]; see [`task_fn`].
#[derive(Clone, Debug)]
pub struct FnTask<F>(F);

/// Makes a task of a closure that takes the attempt's [`TaskContext`].
pub fn task_fn<F, T>(f: F) -> FnTask<F>
where
    F: FnMut(&TaskContext<'_>) -> Result<T, TaskError> + Send,
    T: Send,
{
    FnTask(f)
}

impl<F, T> Task for FnTask<F>
where
    F: FnMut(&TaskContext<'_>) -> Result<T, TaskError> + Send,
    T: Send,
{
    type Output = T;

    fn run(&mut self, ctx: &TaskContext<'_>) -> Result<T, TaskError> {
        (self.0)(ctx)
    }
}

/// A task that crosses process boundaries: a stable name and a serde input and output.
///
/// The value itself is the input. A worker process finds the handler by
/// [`NAME`](NamedTask::NAME), decodes the input, runs it, and stores the
/// encoded output as the result. Keep `NAME` stable across releases: queued
/// tasks refer to it.
///
/// # Examples
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use workmill_core::{NamedTask, TaskContext, TaskError};
///
/// #[derive(Serialize, Deserialize)]
/// struct Resize { width: u32, height: u32 }
///
/// impl NamedTask for Resize {
///     const NAME: &'static str = "image.resize";
///     type Output = u64;
///     fn run(self, _ctx: &TaskContext<'_>) -> Result<u64, TaskError> {
///         if self.width == 0 {
///             return Err(TaskError::permanent("width must be positive"));
///         }
///         Ok(u64::from(self.width) * u64::from(self.height))
///     }
/// }
///
/// assert_eq!(Resize { width: 4, height: 3 }.run(&TaskContext::new(1)).unwrap(), 12);
/// ```
pub trait NamedTask: Serialize + DeserializeOwned + Send + 'static {
    /// The name under which workers find the handler.
    const NAME: &'static str;
    /// What the task returns; stored encoded as the task's result.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Runs one attempt on this input.
    fn run(self, ctx: &TaskContext<'_>) -> Result<Self::Output, TaskError>;
}

/// Why an attempt failed: retryable (the default) or permanent.
///
/// Any `std::error::Error` converts into a retryable `TaskError`, so `?` works
/// inside tasks. `TaskError` deliberately does not implement `Error` itself,
/// which is what makes that blanket conversion possible (as with `anyhow`).
pub struct TaskError {
    permanent: bool,
    message: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl TaskError {
    /// An error after which the task may be retried.
    pub fn retryable(message: impl Into<String>) -> TaskError {
        TaskError {
            permanent: false,
            message: message.into(),
            source: None,
        }
    }

    /// An error that retrying cannot fix: the task is dead-lettered at once.
    pub fn permanent(message: impl Into<String>) -> TaskError {
        TaskError {
            permanent: true,
            message: message.into(),
            source: None,
        }
    }

    /// Marks this error permanent.
    #[must_use]
    pub fn into_permanent(mut self) -> TaskError {
        self.permanent = true;
        self
    }

    /// True if retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The underlying error, if the task error was converted from one.
    pub fn source(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// The stored form: kind and message.
    pub fn to_failure(&self) -> Failure {
        let kind = if self.permanent {
            FailureKind::Permanent
        } else {
            FailureKind::Error
        };
        Failure::new(kind, self.message.clone())
    }
}

impl<E> From<E> for TaskError
where
    E: StdError + Send + Sync + 'static,
{
    fn from(error: E) -> TaskError {
        TaskError {
            permanent: false,
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.permanent {
            write!(f, "permanent error: {}", self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("permanent", &self.permanent)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<u32, TaskError> {
        Ok(s.parse::<u32>()?)
    }

    #[test]
    fn question_mark_converts_errors_to_retryable() {
        let err = parse("x").unwrap_err();
        assert!(!err.is_permanent());
        assert!(err.message().contains("invalid digit"));
        assert!(err.source().is_some());
        assert_eq!(err.to_failure().kind, FailureKind::Error);
        let err = err.into_permanent();
        assert!(err.is_permanent());
        assert_eq!(err.to_failure().kind, FailureKind::Permanent);
        assert!(err.to_string().starts_with("permanent error"));
    }

    #[test]
    fn context_carries_attempt_task_and_worker() {
        let id = TaskId::new("t-1").unwrap();
        let worker = WorkerId::new("w-1").unwrap();
        let ctx = TaskContext::new(3).with_task(&id).with_worker(&worker);
        assert_eq!(ctx.attempt(), 3);
        assert_eq!(ctx.task_id(), Some(&id));
        assert_eq!(ctx.worker(), Some(&worker));
    }
}
