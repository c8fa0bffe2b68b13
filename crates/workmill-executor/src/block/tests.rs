//! Tests of job blocks: jobs run once wherever they run, unsuitable jobs are given back, and loom
//! checks that a block is freed exactly once whoever finishes with it last.

use super::*;
use crate::sync::{Arc, thread};

/// Places a job that adds `amount` to `total`.
fn adding(blocks: &JobBlocks, total: &Arc<AtomicUsize>, amount: usize) -> JobRef {
    let total = Arc::clone(total);
    // SAFETY: the job owns what it uses; every test runs each job once.
    let placed = unsafe {
        blocks.place(move || {
            total.fetch_add(amount, Ordering::Relaxed);
        })
    };
    match placed {
        Ok(job) => job,
        Err(_) => panic!("a small job fits in a block"),
    }
}

#[cfg(not(workmill_loom))]
mod std_tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn jobs_over_many_blocks_run_once_on_other_threads_whenever_the_owner_retires() {
        // A job here takes 72 bytes, so a block holds 454 of them: Miri's 1,500
        // still fill three blocks and start a fourth.
        let jobs: usize = if cfg!(miri) { 1_500 } else { 20_000 };
        let total = Arc::new(AtomicUsize::new(0));
        let runs: Arc<Vec<AtomicUsize>> =
            Arc::new((0..jobs).map(|_| AtomicUsize::new(0)).collect());
        let blocks = JobBlocks::new();
        let (tx, rx) = mpsc::channel::<JobRef>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let runners: Vec<_> = (0..2)
            .map(|_| {
                let rx = Arc::clone(&rx);
                thread::spawn(move || {
                    loop {
                        let next = rx.lock().unwrap().recv();
                        match next {
                            // SAFETY: each job is sent once and run once.
                            Ok(job) => unsafe { job.execute() },
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        for i in 0..jobs {
            let (total, runs) = (Arc::clone(&total), Arc::clone(&runs));
            let padding = [i as u8; 40];
            // SAFETY: the job owns what it uses and is run once.
            let job = unsafe {
                blocks.place(move || {
                    runs[i].fetch_add(1, Ordering::Relaxed);
                    total.fetch_add(
                        i + usize::from(padding[i % 40] != i as u8),
                        Ordering::Relaxed,
                    );
                })
            };
            tx.send(job.ok().expect("fits")).unwrap();
        }
        // Retired while the runners may still be at work on its jobs.
        drop(blocks);
        drop(tx);
        for runner in runners {
            runner.join().unwrap();
        }
        assert_eq!(total.load(Ordering::Relaxed), jobs * (jobs - 1) / 2);
        assert!(
            runs.iter().all(|r| r.load(Ordering::Relaxed) == 1),
            "every job ran exactly once"
        );
    }

    #[test]
    fn jobs_of_mixed_sizes_and_alignments_keep_their_contents() {
        /// A cache line's alignment, the largest a block serves.
        #[repr(align(64))]
        struct Line([u8; 64]);

        /// The largest job: with the tag, the `Arc` and the block pointer, exactly `MAX_JOB_BYTES`.
        const FILL: usize = MAX_JOB_BYTES - 24;

        // Every third job takes a whole KiB: Miri's 300 still spread over four blocks.
        let count: usize = if cfg!(miri) { 300 } else { 3_000 };
        let total = Arc::new(AtomicUsize::new(0));
        let blocks = JobBlocks::new();
        let mut jobs = Vec::new();
        for i in 0..count {
            let tag = (i % 251) as u8;
            let sum = Arc::clone(&total);
            let placed = match i % 3 {
                // SAFETY: the job owns what it uses and is run once below.
                0 => unsafe {
                    blocks.place(move || {
                        sum.fetch_add(usize::from(tag), Ordering::Relaxed);
                    })
                }
                .ok(),
                1 => {
                    let line = Line([tag; 64]);
                    // SAFETY: as above.
                    unsafe {
                        blocks.place(move || {
                            let line = line;
                            assert_eq!(std::ptr::from_ref(&line) as usize % 64, 0);
                            assert!(line.0.iter().all(|&b| b == tag), "a line job intact");
                            sum.fetch_add(usize::from(tag), Ordering::Relaxed);
                        })
                    }
                    .ok()
                }
                _ => {
                    let fill = [tag; FILL];
                    let body = move || {
                        assert!(fill.iter().all(|&b| b == tag), "a full-size job intact");
                        sum.fetch_add(usize::from(tag), Ordering::Relaxed);
                    };
                    assert_eq!(std::mem::size_of_val(&body) + 8, MAX_JOB_BYTES);
                    // SAFETY: as above.
                    unsafe { blocks.place(body) }.ok()
                }
            };
            jobs.push(placed.expect("every one of these suits a block"));
        }
        let expected: usize = (0..count).map(|i| i % 251).sum();
        drop(blocks);
        // Run in an order unlike the one they were placed in.
        let (evens, odds): (Vec<_>, Vec<_>) =
            jobs.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        for (_, job) in odds.into_iter().rev().chain(evens) {
            // SAFETY: run once.
            unsafe { job.execute() };
        }
        assert_eq!(total.load(Ordering::Relaxed), expected);
    }

    #[test]
    fn a_job_drops_what_it_captured_once() {
        let captured = Arc::new(());
        let blocks = JobBlocks::new();
        let jobs: Vec<JobRef> = (0..100)
            .map(|_| {
                let held = Arc::clone(&captured);
                // SAFETY: the job owns what it uses and is run once below.
                unsafe { blocks.place(move || drop(held)) }
                    .ok()
                    .expect("fits")
            })
            .collect();
        assert_eq!(Arc::strong_count(&captured), 101);
        drop(blocks);
        for job in jobs {
            // SAFETY: run once.
            unsafe { job.execute() };
        }
        assert_eq!(Arc::strong_count(&captured), 1);
    }

    #[test]
    fn a_job_too_large_or_too_aligned_is_given_back_intact() {
        #[repr(align(128))]
        struct Aligned(u8);

        let blocks = JobBlocks::new();
        let large = [7u8; MAX_JOB_BYTES];
        let total = Arc::new(AtomicUsize::new(0));
        let sum = Arc::clone(&total);
        // SAFETY: nothing is placed; the body comes back.
        let given_back = unsafe {
            blocks.place(move || {
                sum.fetch_add(
                    large.iter().map(|&b| usize::from(b)).sum(),
                    Ordering::Relaxed,
                );
            })
        };
        let Err(body) = given_back else {
            panic!("a job larger than MAX_JOB_BYTES is not placed")
        };
        body();
        assert_eq!(total.load(Ordering::Relaxed), 7 * MAX_JOB_BYTES);

        let aligned = Aligned(3);
        let sum = Arc::clone(&total);
        // SAFETY: as above.
        let given_back = unsafe {
            blocks.place(move || {
                // The whole value, not just its field, is captured.
                let aligned = aligned;
                sum.fetch_add(usize::from(aligned.0), Ordering::Relaxed);
            })
        };
        let Err(body) = given_back else {
            panic!("a job aligned past a cache line is not placed")
        };
        body();
        assert_eq!(total.load(Ordering::Relaxed), 7 * MAX_JOB_BYTES + 3);

        // The blocks still take small jobs afterwards.
        let job = adding(&blocks, &total, 1);
        // SAFETY: run once.
        unsafe { job.execute() };
        assert_eq!(total.load(Ordering::Relaxed), 7 * MAX_JOB_BYTES + 4);
    }

    #[test]
    fn a_pool_scope_mixes_block_and_heap_jobs() {
        let jobs: usize = if cfg!(miri) { 1_000 } else { 10_000 };
        let pool = crate::ThreadPool::builder().num_threads(2).build().unwrap();
        let total = AtomicUsize::new(0);
        pool.scope(|s| {
            for i in 0..jobs {
                if i % 100 == 0 {
                    // Too large for a block: goes to the heap.
                    let large = [1u8; 2 * MAX_JOB_BYTES];
                    let total = &total;
                    s.spawn(move |_| {
                        total.fetch_add(
                            large.iter().map(|&b| usize::from(b)).sum(),
                            Ordering::Relaxed,
                        );
                    });
                } else {
                    let total = &total;
                    s.spawn(move |_| {
                        total.fetch_add(1, Ordering::Relaxed);
                    });
                }
            }
        });
        let large = jobs / 100;
        assert_eq!(
            total.into_inner(),
            large * 2 * MAX_JOB_BYTES + (jobs - large)
        );
    }
}

#[cfg(workmill_loom)]
mod loom_tests {
    use super::*;

    /// The owner retires the block while another thread runs one of its jobs:
    /// whichever finishes last frees it, exactly once (loom reports a leak, or
    /// an untracked pointer on a second free).
    #[test]
    fn loom_block_freed_once_by_owner_or_runner() {
        loom::model(|| {
            let total = Arc::new(AtomicUsize::new(0));
            let blocks = JobBlocks::new();
            let first = adding(&blocks, &total, 1);
            let second = adding(&blocks, &total, 2);
            // SAFETY: each job is run once.
            let runner = thread::spawn(move || unsafe { first.execute() });
            // SAFETY: as above.
            unsafe { second.execute() };
            drop(blocks);
            runner.join().unwrap();
            assert_eq!(total.load(Ordering::Relaxed), 3);
        });
    }

    /// The block is retired before any job runs; two runners race to finish it.
    #[test]
    fn loom_block_freed_once_by_the_last_of_two_runners() {
        loom::model(|| {
            let total = Arc::new(AtomicUsize::new(0));
            let blocks = JobBlocks::new();
            let jobs = [adding(&blocks, &total, 1), adding(&blocks, &total, 2)];
            drop(blocks);
            let runners = jobs.map(|job| {
                // SAFETY: each job is run once.
                thread::spawn(move || unsafe { job.execute() })
            });
            for runner in runners {
                runner.join().unwrap();
            }
            assert_eq!(total.load(Ordering::Relaxed), 3);
        });
    }
}
