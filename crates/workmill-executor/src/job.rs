//! Jobs: type-erased pointers to work that one thread hands to another, on the stack (`StackJob`), in a worker's block (`block.rs`) or on the heap (`HeapJob`).

use std::mem;

use crate::latch::Latch;
use crate::sync::UnsafeCell;
use crate::unwind::{self, AbortIfPanic, Panic};
use crate::worker::WorkerThread;

/// The first field of every [`StackJob`]: how to run it, given only its address.
///
/// A join frame is published to thieves as one pointer to this header, so
/// that a thief can claim it with a single compare-and-swap.
pub(crate) struct JobHeader {
    execute: unsafe fn(*const ()),
}

/// A job reduced to an address and the function that runs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JobRef {
    pointer: *const (),
    execute_fn: unsafe fn(*const ()),
}

// SAFETY: a `JobRef` is only created for jobs whose closures and results are
// `Send`, and the job it points to stays valid until it has been executed
// (each constructor states that obligation).
unsafe impl Send for JobRef {}
// SAFETY: as above; a `JobRef` is executed at most once, by whichever thread takes it.
unsafe impl Sync for JobRef {}

impl JobRef {
    /// The job at `pointer`, run by `execute_fn(pointer)`.
    ///
    /// # Safety
    ///
    /// `pointer` must stay valid for `execute_fn` until the job has been
    /// executed, and the job must be safe to run on any thread.
    pub(crate) unsafe fn new(pointer: *const (), execute_fn: unsafe fn(*const ())) -> JobRef {
        JobRef {
            pointer,
            execute_fn,
        }
    }

    /// The job whose header is at `header`.
    ///
    /// # Safety
    ///
    /// `header` must point to the header of a live job that the caller now
    /// owns (it claimed the job and nobody else will run it).
    pub(crate) unsafe fn from_header(header: *const JobHeader) -> JobRef {
        JobRef {
            pointer: header.cast(),
            // SAFETY: the caller guarantees `header` is live.
            execute_fn: unsafe { (*header).execute },
        }
    }

    /// Runs the job.
    ///
    /// # Safety
    ///
    /// The job must still be live and must not have run before; after this
    /// call it may be freed.
    #[inline]
    pub(crate) unsafe fn execute(self) {
        // SAFETY: forwarded to the caller.
        unsafe { (self.execute_fn)(self.pointer) }
    }
}

/// What a job produced: nothing yet, a value, or the panic it raised.
pub(crate) enum JobResult<R> {
    None,
    Ok(R),
    Panic(Panic),
}

impl<R> JobResult<R> {
    fn call(func: impl FnOnce() -> R) -> JobResult<R> {
        match unwind::halt_unwinding(func) {
            Ok(value) => JobResult::Ok(value),
            Err(payload) => JobResult::Panic(payload),
        }
    }

    /// The value, or the job's panic re-raised on this thread.
    fn into_return_value(self) -> R {
        self.into_outcome()
            .unwrap_or_else(|payload| unwind::resume_unwinding(payload))
    }

    /// The value, or the job's panic.
    fn into_outcome(self) -> Result<R, Panic> {
        match self {
            JobResult::Ok(value) => Ok(value),
            JobResult::Panic(payload) => Err(payload),
            JobResult::None => unreachable!("a job's result was read before the job ran"),
        }
    }
}

/// A job that lives in its creator's stack frame; the creator waits on `latch` before returning.
///
/// `repr(C)` keeps the header at offset 0, so a pointer to the job is a pointer to its header.
#[repr(C)]
pub(crate) struct StackJob<L, F, R> {
    header: JobHeader,
    pub(crate) latch: L,
    func: UnsafeCell<Option<F>>,
    result: UnsafeCell<JobResult<R>>,
}

impl<L, F, R> StackJob<L, F, R>
where
    L: Latch,
    F: FnOnce(bool) -> R,
{
    /// A job that will call `func(migrated)`; `migrated` is true when it ran as a stolen job.
    #[inline]
    pub(crate) fn new(func: F, latch: L) -> StackJob<L, F, R> {
        StackJob {
            header: JobHeader {
                execute: Self::execute,
            },
            latch,
            func: UnsafeCell::new(Some(func)),
            result: UnsafeCell::new(JobResult::None),
        }
    }

    /// The job's header, to publish as a join frame.
    ///
    /// The pointer is derived from the whole job, not from the `header`
    /// field, so that a thief may use it to reach the rest of the job (the
    /// header is at offset 0 by `repr(C)`).
    #[inline]
    pub(crate) fn header(&self) -> *const JobHeader {
        (self as *const Self).cast()
    }

    /// The job as a reference to queue.
    ///
    /// # Safety
    ///
    /// The caller must keep `self` in place and alive until the latch is set.
    pub(crate) unsafe fn as_job_ref(&self) -> JobRef {
        JobRef {
            pointer: (self as *const Self).cast(),
            execute_fn: Self::execute,
        }
    }

    /// Runs the closure here, because no other thread took the job.
    #[inline]
    pub(crate) fn run_inline(&self, migrated: bool) -> R {
        // SAFETY: nobody else claimed the job, so its closure is ours alone.
        let func = self.func.with_mut(|func| unsafe { (*func).take() });
        match func {
            Some(func) => func(migrated),
            None => unreachable!("a join's second closure ran twice"),
        }
    }

    /// The result of a job that another thread executed; re-raises its panic.
    ///
    /// # Safety
    ///
    /// The latch must have been observed set.
    pub(crate) unsafe fn into_result(self) -> R {
        self.result.into_inner().into_return_value()
    }

    /// The value of a job that another thread executed, or the panic it raised.
    ///
    /// # Safety
    ///
    /// The latch must have been observed set.
    pub(crate) unsafe fn into_outcome(self) -> Result<R, Panic> {
        self.result.into_inner().into_outcome()
    }

    /// # Safety
    ///
    /// `this` points to a live `StackJob` of this type that has not run yet.
    unsafe fn execute(this: *const ()) {
        // SAFETY: the caller guarantees that `this` is such a job.
        let this = unsafe { &*this.cast::<Self>() };
        // Taking the closure and storing the result must not unwind: the
        // creator is waiting on the latch and would never wake up.
        let abort = AbortIfPanic;
        // SAFETY: only the thread that claimed the job touches `func`.
        let func = this.func.with_mut(|func| unsafe { (*func).take() });
        let Some(func) = func else {
            unreachable!("a stolen job ran twice")
        };
        let result = JobResult::call(|| func(true));
        // SAFETY: the creator reads `result` only after the latch is set below.
        this.result.with_mut(|slot| unsafe { *slot = result });
        mem::forget(abort);
        // SAFETY: `this` is live until the latch is set, which is the last use.
        unsafe { L::set(&this.latch) };
    }
}

impl<L, F, R> StackJob<L, F, R> {
    /// Drops the result of a job that another thread executed, value or panic payload,
    /// where a panic in its `Drop` must not escape (see [`unwind::drop_quietly`]): the
    /// caller is unwinding already, and a second panic would abort the process.
    ///
    /// # Safety
    ///
    /// The latch must have been observed set.
    pub(crate) unsafe fn drop_result_quietly(&self) {
        // SAFETY: the latch is set, so the thread that executed the job is done with
        // `result`, and the caller is the only one left to touch it.
        let result = self
            .result
            .with_mut(|slot| unsafe { mem::replace(&mut *slot, JobResult::None) });
        unwind::drop_quietly(result, |_| {});
    }
}

/// A job for a scope's spawned work: in `worker`'s block when this thread is a
/// worker of any pool (`worker` is [`WorkerThread::current`]) and the job suits
/// a block (see [`block`](crate::block)), else on the heap.
///
/// # Safety
///
/// Everything `body` borrows must outlive the job's execution (the scope
/// waits for its jobs), and the job must be executed exactly once.
pub(crate) unsafe fn scope_job<BODY>(worker: Option<&WorkerThread>, body: BODY) -> JobRef
where
    BODY: FnOnce() + Send,
{
    let body = match worker {
        // SAFETY: forwarded to the caller.
        Some(worker) => match unsafe { worker.blocks().place(body) } {
            Ok(job) => return job,
            Err(body) => body,
        },
        None => body,
    };
    // SAFETY: forwarded to the caller.
    unsafe { HeapJob::new(body).into_job_ref() }
}

/// A job on the heap: a `'static` spawn, or a scope's job that does not go in a block.
pub(crate) struct HeapJob<BODY> {
    body: BODY,
}

impl<BODY> HeapJob<BODY>
where
    BODY: FnOnce() + Send,
{
    pub(crate) fn new(body: BODY) -> Box<HeapJob<BODY>> {
        Box::new(HeapJob { body })
    }

    /// Leaks the box into a job reference that frees it when executed.
    ///
    /// # Safety
    ///
    /// Everything `BODY` borrows must outlive the job's execution (scopes wait
    /// for their jobs; `'static` spawns borrow nothing).
    pub(crate) unsafe fn into_job_ref(self: Box<Self>) -> JobRef {
        JobRef {
            pointer: Box::into_raw(self).cast_const().cast(),
            execute_fn: Self::execute,
        }
    }

    /// # Safety
    ///
    /// `this` came from `into_job_ref` and has not been executed.
    unsafe fn execute(this: *const ()) {
        // SAFETY: `this` is the leaked box, reclaimed exactly once here.
        let this = unsafe { Box::from_raw(this.cast::<Self>().cast_mut()) };
        (this.body)();
    }
}
