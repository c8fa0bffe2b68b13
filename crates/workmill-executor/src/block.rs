//! Job blocks: a worker places the jobs it spawns side by side in a block it
//! owns, instead of allocating each one; the block is freed by whichever thread
//! finishes with it last.
//!
//! A million scope spawns spent more than half their time in `malloc` and
//! `free`: the spawning worker allocated every job and the thief that ran it
//! freed it, so each job crossed from one thread's allocator cache to another's
//! and through the allocator's shared lists. A block is one allocation for
//! hundreds of small jobs: placing a job moves an offset on the spawning
//! thread, and running it decrements the block's counter, a cache line that
//! stays with the thread running the block's jobs.
//!
//! # Counting
//!
//! A block's `unfinished` counter starts at zero. Each job that runs subtracts
//! one (the counter wraps below zero while the block's owner is still filling
//! it). When the owner retires the block (it is full, or the owner's thread
//! exits), it adds the number of jobs it placed. The thread that brings the
//! counter to zero frees the block: the owner, at retirement, if every job has
//! already run; otherwise the thread that runs the last one. Before retirement
//! the counter is zero or wrapped, so no job's decrement finds one there and
//! nobody frees a block its owner is still filling. A job reads itself out of
//! the block before it decrements, so the block may go while its body runs.
//!
//! Only a scope's jobs go in blocks. A block lives as long as its longest
//! job, so a job that waits or runs for a long time keeps 32 KiB alive; a
//! scope bounds that (it ends only when its jobs have run), but a `'static`
//! spawn may run forever, so those stay on the heap. So do jobs that do not
//! suit a block (over [`MAX_JOB_BYTES`] with the block pointer, or aligned to
//! more than a cache line) and jobs spawned from outside every pool's
//! workers, each as a [`HeapJob`](crate::job::HeapJob).

use std::alloc::Layout;
use std::cell::Cell;
use std::ptr::{self, NonNull};

use crate::job::JobRef;
use crate::sync::{AtomicUsize, Ordering, alloc, dealloc};

/// The size of one block.
const BLOCK_BYTES: usize = 32 * 1024;

/// The block's alignment, and the largest job alignment it serves.
const BLOCK_ALIGN: usize = 64;

/// Where the first job goes: the counter has the first cache line to itself,
/// so the threads running jobs do not contend with the owner writing new ones.
const FIRST_JOB: usize = BLOCK_ALIGN;

/// The largest job placed in a block, counting the 8-byte block pointer it
/// carries; larger ones go to the heap.
pub(crate) const MAX_JOB_BYTES: usize = 1024;

/// The start of every block.
struct BlockHeader {
    /// Jobs not yet run, less the jobs placed but not yet declared at retirement (see the module docs).
    unfinished: AtomicUsize,
    /// Under loom, stands for the block's bytes: a job reads it before it reads
    /// itself out, and `free` writes it, so that loom reports a block freed while
    /// a job in it may still be read (a wrong ordering, or a release before the read).
    #[cfg(workmill_loom)]
    bytes: crate::sync::UnsafeCell<()>,
}

/// A job in a block: the block it must release, and its closure.
struct BlockJob<BODY> {
    block: NonNull<BlockHeader>,
    body: BODY,
}

fn block_layout() -> Layout {
    match Layout::from_size_align(BLOCK_BYTES, BLOCK_ALIGN) {
        Ok(layout) => layout,
        Err(_) => unreachable!("the block's size and alignment are valid constants"),
    }
}

/// The block a worker is filling, owned by the worker's thread.
pub(crate) struct JobBlocks {
    /// The current block, or null before the first job and after a failed allocation.
    block: Cell<*mut u8>,
    /// The offset of the first free byte in the current block.
    next: Cell<usize>,
    /// How many jobs the current block holds.
    placed: Cell<usize>,
}

impl JobBlocks {
    pub(crate) fn new() -> JobBlocks {
        JobBlocks {
            block: Cell::new(ptr::null_mut()),
            next: Cell::new(BLOCK_BYTES),
            placed: Cell::new(0),
        }
    }

    /// Places `body` in the current block (starting a new one when it is
    /// full) and returns the job; gives `body` back when the job does not
    /// suit a block or no block could be allocated.
    ///
    /// # Safety
    ///
    /// Everything `body` borrows must outlive the job's execution, and the
    /// returned job must be executed exactly once (dropping it unexecuted
    /// leaks its block).
    pub(crate) unsafe fn place<BODY>(&self, body: BODY) -> Result<JobRef, BODY>
    where
        BODY: FnOnce() + Send,
    {
        let layout = Layout::new::<BlockJob<BODY>>();
        if layout.size() > MAX_JOB_BYTES || layout.align() > BLOCK_ALIGN {
            return Err(body);
        }
        let mut start = self.next.get().next_multiple_of(layout.align());
        if self.block.get().is_null() || start + layout.size() > BLOCK_BYTES {
            self.retire();
            if !self.start_block() {
                return Err(body);
            }
            start = FIRST_JOB;
        }
        let block = self.block.get();
        self.next.set(start + layout.size());
        self.placed.set(self.placed.get() + 1);
        // SAFETY: `block` is a live allocation of `BLOCK_BYTES` aligned to
        // `BLOCK_ALIGN`; `start` is a multiple of the job's alignment (at most
        // `BLOCK_ALIGN`) with the job's size still inside the block, past the
        // header, in bytes no other job uses.
        let job = unsafe { block.add(start) }.cast::<BlockJob<BODY>>();
        // SAFETY: as above; the header was written when the block started.
        let header = unsafe { NonNull::new_unchecked(block.cast::<BlockHeader>()) };
        // SAFETY: `job` is valid for writes and suitably aligned (as above).
        unsafe {
            ptr::write(
                job,
                BlockJob {
                    block: header,
                    body,
                },
            );
        }
        // SAFETY: the job was just written; the caller runs it exactly once,
        // and the block stays allocated until it has (it is counted in `placed`).
        Ok(unsafe { JobRef::new(job.cast_const().cast(), execute::<BODY>) })
    }

    /// Allocates a new current block; false if the allocator refused.
    ///
    /// A global allocator that spawned scope jobs from inside `alloc` would
    /// reach here again before the first call set its block, and the inner
    /// block would leak; nothing else runs code during [`JobBlocks::place`].
    fn start_block(&self) -> bool {
        // SAFETY: the layout has a non-zero size.
        let block = unsafe { alloc(block_layout()) };
        if block.is_null() {
            return false;
        }
        // SAFETY: a fresh allocation, aligned for the header.
        unsafe {
            ptr::write(
                block.cast::<BlockHeader>(),
                BlockHeader {
                    unfinished: AtomicUsize::new(0),
                    #[cfg(workmill_loom)]
                    bytes: crate::sync::UnsafeCell::new(()),
                },
            );
        }
        self.block.set(block);
        self.next.set(FIRST_JOB);
        self.placed.set(0);
        true
    }

    /// Gives up the current block: declares its jobs, and frees it if they have all run.
    fn retire(&self) {
        let block = self.block.replace(ptr::null_mut());
        let Some(header) = NonNull::new(block.cast::<BlockHeader>()) else {
            return;
        };
        let placed = self.placed.replace(0);
        // SAFETY: the block is live: it is only freed once its owner has
        // retired it (here) and all of its jobs have run.
        let before = unsafe { header.as_ref() }
            .unfinished
            .fetch_add(placed, Ordering::AcqRel);
        if before.wrapping_add(placed) == 0 {
            // SAFETY: every job has run and the owner is done: nobody else uses the block.
            unsafe { free(header) };
        }
    }
}

impl Drop for JobBlocks {
    fn drop(&mut self) {
        self.retire();
    }
}

/// Runs a job placed by [`JobBlocks::place`].
///
/// # Safety
///
/// `this` points to a `BlockJob<BODY>` that has not run.
unsafe fn execute<BODY>(this: *const ())
where
    BODY: FnOnce() + Send,
{
    #[cfg(workmill_loom)]
    {
        // SAFETY: the block is live until this job's decrement below.
        let header = unsafe { &*this.cast::<BlockJob<BODY>>() }.block;
        // SAFETY: as above.
        unsafe { header.as_ref() }.bytes.with(|_| ());
    }
    // SAFETY: the job is live and ours alone; reading it out leaves its bytes
    // unused, so the block may be freed before the body runs.
    let job = unsafe { ptr::read(this.cast::<BlockJob<BODY>>()) };
    // SAFETY: the block is live until this job's decrement.
    unsafe { release(job.block) };
    (job.body)();
}

/// Counts one job of `header`'s block as run, freeing the block if it was the last.
///
/// # Safety
///
/// The block is live and the job has not been counted before.
unsafe fn release(header: NonNull<BlockHeader>) {
    // SAFETY: live, per the contract.
    let before = unsafe { header.as_ref() }
        .unfinished
        .fetch_sub(1, Ordering::AcqRel);
    if before == 1 {
        // SAFETY: the owner has retired the block and this was its last job.
        unsafe { free(header) };
    }
}

/// Frees a block.
///
/// # Safety
///
/// Nobody uses the block any more.
unsafe fn free(header: NonNull<BlockHeader>) {
    #[cfg(workmill_loom)]
    // SAFETY: the header is live until it is dropped below.
    unsafe { header.as_ref() }.bytes.with_mut(|_| ());
    // SAFETY: the header was written when the block started and is dropped once, here.
    unsafe { ptr::drop_in_place(header.as_ptr()) };
    // SAFETY: allocated by `start_block` with this layout.
    unsafe { dealloc(header.as_ptr().cast::<u8>(), block_layout()) };
}

#[cfg(test)]
mod tests;
