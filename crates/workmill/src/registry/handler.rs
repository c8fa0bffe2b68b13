//! Handlers: the type-erased closures that decode a payload, run a task, and encode its output, with panics caught.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use workmill_core::{
    Codec, Failure, FailureKind, NamedTask, Payload, Postcard, Queue, TaskContext, TaskError,
};

use crate::job::{ReduceInput, ReduceTask, map_outputs};

/// What a handler runs with besides its payload.
#[derive(Clone, Copy)]
pub(crate) struct HandlerContext<'a> {
    /// The attempt, as the task sees it.
    pub(crate) task: TaskContext<'a>,
    /// The queue the task was reserved from, when a worker loop runs it: the reduce of a
    /// map-reduce job reads its maps' results from there.
    pub(crate) queue: Option<&'a dyn Queue>,
}

/// One registered task: bytes in, bytes or a failure out.
pub(super) type Handler =
    Arc<dyn Fn(&[u8], &HandlerContext<'_>) -> Result<Payload, Failure> + Send + Sync>;

/// The handler of a [`NamedTask`]: the value itself is the input.
pub(super) fn named<T: NamedTask>() -> Handler {
    Arc::new(|payload, ctx| {
        let input: T = decode(payload, T::NAME)?;
        encode(&run(|| input.run(&ctx.task))?, T::NAME)
    })
}

/// The handler of a [`ReduceTask`]: its payload names the job and carries the reduce value;
/// the maps' outputs come from the queue, decoded as the map's output type.
pub(super) fn reduce<R: ReduceTask>() -> Handler {
    Arc::new(|payload, ctx| {
        let input: ReduceInput = decode(payload, R::NAME)?;
        let reduce: R = decode(&input.arg, R::NAME)?;
        let outputs = map_outputs::<<R::Map as NamedTask>::Output>(ctx.queue, &input.job)?;
        encode(&run(|| reduce.reduce(outputs, &ctx.task))?, R::NAME)
    })
}

/// The handler of a closure that reduces the maps' outputs of a job.
pub(super) fn reduce_function<MO, O, F>(name: Arc<str>, f: F) -> Handler
where
    MO: DeserializeOwned,
    O: Serialize,
    F: Fn(Vec<MO>) -> Result<O, TaskError> + Send + Sync + 'static,
{
    Arc::new(move |payload, ctx| {
        let input: ReduceInput = decode(payload, &name)?;
        let outputs = map_outputs::<MO>(ctx.queue, &input.job)?;
        encode(&run(|| f(outputs))?, std::any::type_name::<O>())
    })
}

/// The handler of a closure taking its input by value.
pub(super) fn function<I, O, F>(f: F) -> Handler
where
    I: DeserializeOwned,
    O: Serialize,
    F: Fn(I) -> Result<O, TaskError> + Send + Sync + 'static,
{
    Arc::new(move |payload, _ctx| {
        let input: I = decode(payload, std::any::type_name::<I>())?;
        encode(&run(|| f(input))?, std::any::type_name::<O>())
    })
}

/// Calls `handler`, turning a panic anywhere in it (decoding included) into a failure.
pub(super) fn call(
    handler: &Handler,
    payload: &[u8],
    ctx: &HandlerContext<'_>,
) -> Result<Payload, Failure> {
    // The handler's captured state is the user's; a panic leaves it as a
    // panicking thread pool would, and the worker thread carries on.
    catch_unwind(AssertUnwindSafe(|| handler(payload, ctx)))
        .unwrap_or_else(|panic| Err(panic_failure(panic.as_ref())))
}

fn run<O>(attempt: impl FnOnce() -> Result<O, TaskError>) -> Result<O, Failure> {
    attempt().map_err(|error| error.to_failure())
}

fn decode<I: DeserializeOwned>(payload: &[u8], what: &str) -> Result<I, Failure> {
    Postcard.decode(payload).map_err(|error| {
        Failure::new(
            FailureKind::Decode,
            format!("the payload is not a valid input for {what}: {error}"),
        )
    })
}

/// Encodes a handler's output straight into its stored form (small ones inline, with no
/// heap allocation), which the worker loop hands to the queue as it is.
fn encode<O: Serialize>(output: &O, what: &str) -> Result<Payload, Failure> {
    Postcard.encode_payload(output).map_err(|error| {
        Failure::new(
            FailureKind::Permanent,
            format!("the output of {what} could not be encoded: {error}"),
        )
    })
}

/// A failure carrying the panic's message, when it has one.
fn panic_failure(panic: &(dyn Any + Send)) -> Failure {
    let message = workmill_executor::panic_message(panic);
    Failure::new(
        FailureKind::Panic,
        format!("the handler panicked: {message}"),
    )
}
