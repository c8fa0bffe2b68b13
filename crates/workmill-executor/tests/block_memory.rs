//! Every job block is freed: a counting allocator watches allocations of a block's size and
//! alignment while pools run scopes, and finds none left once the pools have shut down.
//!
//! A binary of its own, with one test, so that no other test's pool allocates blocks meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use workmill_executor::ThreadPoolBuilder;

/// A job block's size and alignment (`block.rs`).
const BLOCK: (usize, usize) = (32 * 1024, 64);

static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
static BLOCKS_EVER: AtomicUsize = AtomicUsize::new(0);

struct Counting;

// SAFETY: forwards every call to `System`, only counting some of them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let block = unsafe { System.alloc(layout) };
        if !block.is_null() && (layout.size(), layout.align()) == BLOCK {
            LIVE_BLOCKS.fetch_add(1, Ordering::SeqCst);
            BLOCKS_EVER.fetch_add(1, Ordering::SeqCst);
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if (layout.size(), layout.align()) == BLOCK {
            LIVE_BLOCKS.fetch_sub(1, Ordering::SeqCst);
        }
        // SAFETY: forwarded as given.
        unsafe { System.dealloc(block, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn every_block_is_freed_once_its_pool_has_shut_down() {
    // Scope jobs here take 32 bytes, a thousand to a block: Miri's sizes still
    // fill two blocks from inside the pool and part of one from outside.
    let (inside, outside) = if cfg!(miri) {
        (2_000, 500)
    } else {
        (20_000, 5_000)
    };
    for threads in [1, 2, 3] {
        let pool = ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let total = AtomicUsize::new(0);
        // From a worker: the scope's jobs go in that worker's blocks; jobs that
        // spawn more spread blocks over every worker.
        pool.install(|| {
            workmill_executor::scope(|s| {
                for i in 0..inside {
                    let total = &total;
                    s.spawn(move |s| {
                        total.fetch_add(i, Ordering::Relaxed);
                        if i % 1_000 == 0 {
                            for j in 0..100 {
                                s.spawn(move |_| {
                                    total.fetch_add(j, Ordering::Relaxed);
                                });
                            }
                        }
                    });
                }
            });
        });
        // A scope entered from outside runs its body on a worker too.
        pool.scope(|s| {
            for i in 0..outside {
                let total = &total;
                s.spawn(move |_| {
                    total.fetch_add(i, Ordering::Relaxed);
                });
            }
        });
        assert_eq!(
            total.into_inner(),
            (0..inside).sum::<usize>()
                + inside / 1_000 * (0..100).sum::<usize>()
                + (0..outside).sum::<usize>()
        );
        assert!(
            LIVE_BLOCKS.load(Ordering::SeqCst) >= 1,
            "the workers hold the blocks they are filling"
        );
        pool.shutdown();
        assert_eq!(
            LIVE_BLOCKS.load(Ordering::SeqCst),
            0,
            "blocks left after a pool of {threads} shut down"
        );
    }
    assert!(
        BLOCKS_EVER.load(Ordering::SeqCst) >= 3,
        "the scopes' jobs went in blocks"
    );
}
