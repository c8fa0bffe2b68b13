//! `Registry`: task names mapped to handlers that decode the payload, run the task and encode its output.
//!
//! A worker, whether a `Runtime` thread or a worker process, runs a reserved
//! task by looking up its name here. Every way an attempt can go wrong comes
//! back as a [`Failure`] of the right kind, so the backend's retry policy can
//! decide: an unknown name is [`FailureKind::UnknownTask`] (retried), an undecodable
//! payload [`FailureKind::Decode`], a panic [`FailureKind::Panic`] with its
//! message, and a [`TaskError`] keeps its retryable or permanent kind.

mod handler;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use workmill_core::{Failure, FailureKind, NamedTask, Payload, Queue, TaskContext, TaskError};

use crate::error::RegistryError;
use crate::job::{ReduceFn, ReduceTask};
use crate::submit::Call;
use handler::{Handler, HandlerContext};

/// Handlers by task name.
///
/// # Examples
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use workmill::{NamedTask, Registry, TaskContext, TaskError};
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
/// let mut registry = Registry::new();
/// registry.register::<Square>()?;
/// let double = registry.register_fn("math.double", |x: u64| Ok::<_, TaskError>(x * 2))?;
/// assert!(registry.contains("math.square") && registry.contains(double.name()));
/// assert!(registry.register::<Square>().is_err(), "names are unique");
/// # Ok::<(), workmill::RegistryError>(())
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<Arc<str>, Handler, BuildHasherDefault<NameHasher>>,
}

/// FNV-1a over a task name: a worker looks one up for every task it runs,
/// and the names are the application's own (registered by its code), so a
/// keyed hash would buy no protection for its cost.
struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> NameHasher {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers the named task `T` under [`T::NAME`](NamedTask::NAME).
    pub fn register<T: NamedTask>(&mut self) -> Result<&mut Registry, RegistryError> {
        self.insert(T::NAME, handler::named::<T>())?;
        Ok(self)
    }

    /// Registers a closure under `name`, as the seed's `register_function` does, and
    /// returns a typed handle for submitting calls to it.
    pub fn register_fn<I, O, F>(
        &mut self,
        name: impl Into<String>,
        f: F,
    ) -> Result<FnHandle<I, O>, RegistryError>
    where
        I: Serialize + DeserializeOwned + Send + 'static,
        O: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(I) -> Result<O, TaskError> + Send + Sync + 'static,
    {
        let name: Arc<str> = Arc::from(name.into());
        self.insert(&name, handler::function(f))?;
        Ok(FnHandle {
            name,
            _types: PhantomData,
        })
    }

    /// Registers the reduce of a map-reduce job, [`R::NAME`](ReduceTask::NAME); register
    /// its map, [`R::Map`](ReduceTask::Map), with [`register`](Registry::register) too.
    pub fn register_reduce<R: ReduceTask>(&mut self) -> Result<&mut Registry, RegistryError> {
        self.insert(R::NAME, handler::reduce::<R>())?;
        Ok(self)
    }

    /// Registers a closure that reduces the outputs of a job's maps (in map order) under
    /// `name`, and returns a typed handle for building jobs with it
    /// ([`Job::with_reduce_fn`](crate::job::Job::with_reduce_fn)).
    pub fn register_reduce_fn<MO, O, F>(
        &mut self,
        name: impl Into<String>,
        f: F,
    ) -> Result<ReduceFn<MO, O>, RegistryError>
    where
        MO: DeserializeOwned + Send + 'static,
        O: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(Vec<MO>) -> Result<O, TaskError> + Send + Sync + 'static,
    {
        let name: Arc<str> = Arc::from(name.into());
        self.insert(&name, handler::reduce_function(Arc::clone(&name), f))?;
        Ok(ReduceFn::new(name))
    }

    fn insert(&mut self, name: &str, handler: Handler) -> Result<(), RegistryError> {
        if name.is_empty() {
            return Err(RegistryError::EmptyName);
        }
        if self.handlers.contains_key(name) {
            return Err(RegistryError::DuplicateName {
                name: name.to_owned(),
            });
        }
        self.handlers.insert(Arc::from(name), handler);
        Ok(())
    }

    /// True if a handler is registered under `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.handlers.contains_key(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.handlers.keys().map(|name| &**name).collect();
        names.sort_unstable();
        names
    }

    /// Runs one attempt of the task `name` on `payload`: the encoded output (a [`Payload`],
    /// inline when it is small), or why it failed.
    ///
    /// Never panics and never lets a handler's panic escape: a panic is a
    /// [`FailureKind::Panic`] failure carrying the panic message. The reduce of a
    /// map-reduce job needs the queue its job lives in: run it with
    /// [`run_from`](Registry::run_from), or it fails permanently saying so.
    pub fn run(
        &self,
        name: &str,
        payload: &[u8],
        ctx: &TaskContext<'_>,
    ) -> Result<Payload, Failure> {
        self.run_in(
            name,
            payload,
            HandlerContext {
                task: *ctx,
                queue: None,
            },
        )
    }

    /// [`run`](Registry::run) for a task reserved from `queue`, which a job's reduce reads
    /// its maps' results from: what a worker loop calls.
    pub fn run_from(
        &self,
        queue: &dyn Queue,
        name: &str,
        payload: &[u8],
        ctx: &TaskContext<'_>,
    ) -> Result<Payload, Failure> {
        self.run_in(
            name,
            payload,
            HandlerContext {
                task: *ctx,
                queue: Some(queue),
            },
        )
    }

    fn run_in(
        &self,
        name: &str,
        payload: &[u8],
        ctx: HandlerContext<'_>,
    ) -> Result<Payload, Failure> {
        match self.handlers.get(name) {
            Some(handler) => handler::call(handler, payload, &ctx),
            None => Err(Failure::new(
                FailureKind::UnknownTask,
                format!(
                    "no handler is registered under {name:?}; register it in every worker that may \
                     reserve such tasks (known: {})",
                    self.names().join(", ")
                ),
            )),
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names())
            .finish()
    }
}

/// A typed handle on a closure registered with [`Registry::register_fn`] or
/// [`Runtime::register_fn`](crate::Runtime::register_fn): makes calls that submit with the right types.
pub struct FnHandle<I, O> {
    name: Arc<str>,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O> FnHandle<I, O> {
    /// The name the closure is registered under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A call of the closure on `input`, to pass to [`Runtime::submit`](crate::Runtime::submit).
    pub fn call(&self, input: I) -> Call<I, O> {
        Call::new(Arc::clone(&self.name), input)
    }
}

impl<I, O> Clone for FnHandle<I, O> {
    fn clone(&self) -> FnHandle<I, O> {
        FnHandle {
            name: Arc::clone(&self.name),
            _types: PhantomData,
        }
    }
}

impl<I, O> fmt::Debug for FnHandle<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FnHandle").field(&self.name).finish()
    }
}

/// A registry that may grow while workers use it: workers take a snapshot
/// per batch, registering replaces the snapshot (copy on write).
///
/// A worker snapshots after it reserved its batch, so a task the runtime
/// submits after registering its handler always finds that handler. A store
/// that already holds tasks (a durable backend, a shared memory queue, another
/// producer) can hand a loop a task before its handler is registered, when
/// handlers are registered after [`build`](crate::RuntimeBuilder::build): that
/// attempt fails with [`FailureKind::UnknownTask`], which is retried under the
/// task's policy, so the task runs once the handler is there (unless its policy
/// allows no retry). To spend no attempt, give the builder its handlers
/// ([`registry`](crate::RuntimeBuilder::registry)) or build it
/// [`paused`](crate::RuntimeBuilder::paused), register, then
/// [`resume`](crate::Runtime::resume).
#[derive(Debug, Default)]
pub struct SharedRegistry {
    current: Mutex<Arc<Registry>>,
}

impl SharedRegistry {
    /// A shared registry starting with `registry`.
    pub fn new(registry: Registry) -> SharedRegistry {
        SharedRegistry {
            current: Mutex::new(Arc::new(registry)),
        }
    }

    /// The registry as it is now.
    pub fn snapshot(&self) -> Arc<Registry> {
        Arc::clone(&self.current.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Changes the registry with `change`, which sees a copy; the copy replaces it if `change` succeeds.
    pub fn update<R>(
        &self,
        change: impl FnOnce(&mut Registry) -> Result<R, RegistryError>,
    ) -> Result<R, RegistryError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = Registry::clone(&current);
        let out = change(&mut next)?;
        *current = Arc::new(next);
        Ok(out)
    }
}
