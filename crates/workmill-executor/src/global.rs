//! The global pool, built lazily on first use (or by `ThreadPoolBuilder::build_global`), and the free functions' notion of "the current pool".

use std::sync::OnceLock;

use crate::builder::{BuildError, ThreadPoolBuilder};
use crate::pool::ThreadPool;
use crate::registry::Registry;
use crate::sync::Arc;
use crate::worker::{Search, WorkerThread};

/// Never dropped: its threads live as long as the process.
static GLOBAL: OnceLock<ThreadPool> = OnceLock::new();

/// The global pool's registry, building the pool on first use.
///
/// # Panics
///
/// If the operating system refuses to start the global pool's threads; there
/// is no caller to return an error to. Use `build_global` to handle that case.
pub(crate) fn registry() -> &'static Arc<Registry> {
    GLOBAL
        .get_or_init(|| match ThreadPoolBuilder::new().build() {
            Ok(pool) => pool,
            Err(error) => panic!("workmill-executor: cannot start the global pool: {error}"),
        })
        .registry()
}

pub(crate) fn set(builder: ThreadPoolBuilder) -> Result<(), BuildError> {
    if GLOBAL.get().is_some() {
        return Err(BuildError::GlobalAlreadyInitialized);
    }
    let pool = builder.build()?;
    // A racing first use may have won; then this pool is dropped (and shut down).
    GLOBAL
        .set(pool)
        .map_err(|_| BuildError::GlobalAlreadyInitialized)
}

/// The index of the current worker thread in its pool, or `None` outside every pool.
///
/// # Examples
///
/// ```
/// use workmill_executor::{ThreadPool, current_thread_index};
///
/// assert_eq!(current_thread_index(), None);
/// let pool = ThreadPool::builder().num_threads(2).build()?;
/// let index = pool.install(current_thread_index).unwrap();
/// assert!(index < 2);
/// # Ok::<(), workmill_executor::BuildError>(())
/// ```
pub fn current_thread_index() -> Option<usize> {
    let worker = WorkerThread::current();
    // SAFETY: a non-null current worker is alive on this thread.
    unsafe { worker.as_ref() }.map(WorkerThread::index)
}

/// The number of threads of the current pool, or of the global pool outside every pool.
///
/// # Examples
///
/// ```
/// use workmill_executor::{ThreadPool, current_num_threads};
///
/// let pool = ThreadPool::builder().num_threads(3).build()?;
/// assert_eq!(pool.install(current_num_threads), 3);
/// assert!(current_num_threads() >= 1);
/// # Ok::<(), workmill_executor::BuildError>(())
/// ```
pub fn current_num_threads() -> usize {
    let worker = WorkerThread::current();
    // SAFETY: a non-null current worker is alive on this thread.
    match unsafe { worker.as_ref() } {
        Some(worker) => worker.registry().num_threads(),
        None => registry().num_threads(),
    }
}

/// What [`yield_now`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Yield {
    /// It ran one queued job.
    Executed,
    /// There was nothing to run.
    Idle,
}

/// Runs one queued job of the current pool, if there is one, and returns.
///
/// Useful in a loop that waits for something and would otherwise spin.
/// Returns `None` when called outside every pool.
///
/// # Examples
///
/// ```
/// use workmill_executor::{ThreadPool, Yield, yield_now};
///
/// assert_eq!(yield_now(), None);
/// let pool = ThreadPool::builder().num_threads(1).build()?;
/// let outcome = pool.install(|| {
///     let queued = workmill_executor::spawn(|| 7);
///     let outcome = yield_now();
///     assert!(queued.is_finished());
///     outcome
/// });
/// assert_eq!(outcome, Some(Yield::Executed));
/// # Ok::<(), workmill_executor::BuildError>(())
/// ```
pub fn yield_now() -> Option<Yield> {
    let worker = WorkerThread::current();
    // SAFETY: a non-null current worker is alive on this thread.
    let worker = unsafe { worker.as_ref() }?;
    // Impatient: the caller asked to run pending work now.
    Some(match worker.find_work(Search::Now) {
        Some(job) => {
            worker.execute(job);
            Yield::Executed
        }
        None => Yield::Idle,
    })
}
