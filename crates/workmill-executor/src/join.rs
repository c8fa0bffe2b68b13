//! `join` and `join_context`: run two closures, potentially in parallel, and return both results.

use std::mem;

use crate::frames::{Popped, Pushed};
use crate::global;
use crate::job::StackJob;
use crate::latch::SpinLatch;
use crate::registry::Registry;
use crate::worker::WorkerThread;

/// What a closure passed to [`join_context`] learns about how it runs.
///
/// # Examples
///
/// ```
/// let (a, _) = workmill_executor::join_context(|ctx| ctx.migrated(), |_| ());
/// assert!(!a);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct FnContext {
    migrated: bool,
}

impl FnContext {
    #[inline]
    fn new(migrated: bool) -> FnContext {
        FnContext { migrated }
    }

    /// True when this closure did not run right after the first closure on
    /// the thread that called `join`: another worker took it (stolen), or the
    /// calling worker took it up itself while it waited for other work (in a
    /// `join`, `scope` or `JoinHandle::join` further down its stack, or in
    /// [`yield_now`](crate::yield_now)), possibly before the first closure ended.
    ///
    /// Always false for the first closure. A closure taken up so means a
    /// worker had nothing else to do: that is the signal of demand that
    /// adaptive splitting keys on (see [`join_context`]).
    #[inline]
    pub fn migrated(&self) -> bool {
        self.migrated
    }
}

/// Runs `oper_a` and `oper_b`, potentially in parallel, and returns both results.
///
/// Inside a pool, `oper_a` runs on the calling worker; `oper_b` waits in the
/// worker's join frames, where an idle worker may steal it. If nobody does,
/// the caller runs it right after `oper_a`, at the cost of a few plain loads
/// and stores: no allocation, no atomic read-modify-write and no wake-up for
/// a join nested inside another join on the same worker. So recursive
/// divide-and-conquer may split fine: idle workers take the oldest (largest)
/// pending halves. Outside every pool, `join` runs on the global pool and
/// blocks until both closures are done.
///
/// # Panics
///
/// If either closure panics, `join` panics with that payload, but only after
/// the other closure has finished if it started (so nothing it borrows
/// dangles). When `oper_a` panics, `oper_b` may or may not run: a thief may
/// take it up to the moment the unwinding reaches `join`, which then waits for
/// it; if none has, it never runs. When both panic, `oper_a`'s panic is the one
/// propagated.
///
/// # Examples
///
/// ```
/// fn fib(n: u64) -> u64 {
///     if n < 2 {
///         return n;
///     }
///     let (a, b) = workmill_executor::join(|| fib(n - 1), || fib(n - 2));
///     a + b
/// }
/// assert_eq!(fib(20), 6765);
/// ```
///
/// Both closures may borrow from the caller's stack:
///
/// ```
/// let mut left = vec![3, 1, 2];
/// let mut right = vec![9, 7, 8];
/// workmill_executor::join(|| left.sort(), || right.sort());
/// assert_eq!((left, right), (vec![1, 2, 3], vec![7, 8, 9]));
/// ```
#[inline]
pub fn join<A, B, RA, RB>(oper_a: A, oper_b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    join_context(|_| oper_a(), |_| oper_b())
}

/// Like [`join`], but each closure receives an [`FnContext`] telling whether it was stolen.
///
/// This is the hook for adaptive ("thief") splitting in parallel iterators
/// and map-reduce: split a range into pieces while there is demand for work,
/// and treat `ctx.migrated() == true` in the second closure as fresh demand
/// (an idle worker just took that half), for example by resetting a split
/// budget to [`current_num_threads`](crate::current_num_threads). Because a
/// join that nobody steals costs only a few nanoseconds here, splitting down
/// to pieces of a microsecond or so of work is cheap; the budget mainly
/// avoids splitting much finer than that.
///
/// # Examples
///
/// Summing a slice with a split budget that is refilled whenever a half migrates:
///
/// ```
/// use workmill_executor::{current_num_threads, join_context};
///
/// fn sum(data: &[u64], budget: usize) -> u64 {
///     if data.len() <= 1024 || budget == 0 {
///         return data.iter().sum();
///     }
///     let (left, right) = data.split_at(data.len() / 2);
///     let (a, b) = join_context(
///         |_| sum(left, budget / 2),
///         |ctx| {
///             let budget = if ctx.migrated() { current_num_threads() * 4 } else { budget / 2 };
///             sum(right, budget)
///         },
///     );
///     a + b
/// }
///
/// let data: Vec<u64> = (1..=100_000).collect();
/// assert_eq!(sum(&data, current_num_threads() * 4), 100_000 * 100_001 / 2);
/// ```
///
/// # Panics
///
/// As [`join`].
#[inline]
pub fn join_context<A, B, RA, RB>(oper_a: A, oper_b: B) -> (RA, RB)
where
    A: FnOnce(FnContext) -> RA + Send,
    B: FnOnce(FnContext) -> RB + Send,
    RA: Send,
    RB: Send,
{
    let worker = WorkerThread::current();
    if worker.is_null() {
        return Registry::in_worker(global::registry(), |worker, _| {
            join_on_worker(worker, oper_a, oper_b)
        });
    }
    // SAFETY: a non-null current worker is alive on this thread.
    join_on_worker(unsafe { &*worker }, oper_a, oper_b)
}

/// The join proper, on the calling worker.
#[inline]
pub(crate) fn join_on_worker<A, B, RA, RB>(worker: &WorkerThread, oper_a: A, oper_b: B) -> (RA, RB)
where
    A: FnOnce(FnContext) -> RA + Send,
    B: FnOnce(FnContext) -> RB + Send,
    RA: Send,
    RB: Send,
{
    let job_b = StackJob::new(
        move |migrated| oper_b(FnContext::new(migrated)),
        SpinLatch::new(worker.registry(), worker.index()),
    );
    let frames = worker.local_frames();
    // SAFETY: `job_b` stays in this stack frame until `pop` below, and, if it
    // was claimed, until its latch is set (`wait_until`).
    match unsafe { frames.push(job_b.header()) } {
        Some(Pushed::Private) => {}
        Some(Pushed::Fresh) => worker.fresh_frame_shared(),
        Some(Pushed::Replacement) => worker.registry().sleep.new_jobs(),
        None => {
            // Too deeply nested to share: run both here, in order.
            let result_a = oper_a(FnContext::new(false));
            return (result_a, job_b.run_inline(false));
        }
    }
    // If `oper_a` unwinds, the guard takes the frame back and, if a thief
    // claimed `oper_b`, waits for it before the unwinding leaves this frame.
    // A guard instead of `catch_unwind` keeps `oper_a` inlinable.
    let guard = UnwindGuard {
        worker,
        job: &job_b,
    };
    let result_a = oper_a(FnContext::new(false));
    mem::forget(guard);
    match frames.pop() {
        Popped::Inline => (result_a, job_b.run_inline(false)),
        Popped::Claimed => {
            worker.wait_until(&job_b.latch.core);
            // SAFETY: the latch is set.
            (result_a, unsafe { job_b.into_result() })
        }
    }
}

/// Cleans up a join frame when its first closure panics.
struct UnwindGuard<'a, F, R> {
    worker: &'a WorkerThread,
    job: &'a StackJob<SpinLatch<'a>, F, R>,
}

impl<F, R> Drop for UnwindGuard<'_, F, R> {
    #[cold]
    fn drop(&mut self) {
        // Only reached while unwinding out of `oper_a`. If nobody claimed
        // `oper_b`, it never runs; otherwise it borrows from the frame being
        // unwound, so wait until it is done. Jobs run while waiting catch
        // their own panics, so nothing here unwinds again. Nor does dropping
        // `oper_b`'s result, which nobody will read: a panic payload (or a
        // value) whose `Drop` panics would abort the process, this thread
        // being already unwinding.
        if self.worker.local_frames().pop() == Popped::Claimed {
            self.worker.wait_until(&self.job.latch.core);
            // SAFETY: the latch is set.
            unsafe { self.job.drop_result_quietly() };
        }
    }
}
