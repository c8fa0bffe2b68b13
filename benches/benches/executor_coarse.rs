//! Group `executor`, coarse work: 2,000 scope tasks whose cost grows as i² (skew), and a parallel
//! quicksort of 10 million u32 with `join`, workmill against rayon and sequential code, and the
//! quicksort against an estimate of the least time its workers could take (`work-span-bound`).
//!
//! An iteration here takes tens to hundreds of milliseconds, so a run measures few of them, and
//! criterion's one-function-after-another order let a slow stretch of the machine fall on one
//! side. These cases interleave the contenders round by round instead (`interleaved`), and write
//! their rows to `rows/executor_coarse.json`.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::Duration;

use workmill_benches::executor::{pools, skewed_work, timed};
use workmill_benches::interleaved::{self, Comparison, Contender, Settings};
use workmill_executor::ThreadPool;

const GROUP: &str = "executor";
const TASKS: u64 = 2_000;

/// Defines a function that spawns the [`TASKS`] skewed tasks into the given `scope`, so that
/// every scheduler runs the same code.
macro_rules! skew_with {
    ($name:ident, $scope:path) => {
        fn $name() {
            $scope(|s| {
                for i in 0..TASKS {
                    s.spawn(move |_| {
                        black_box(skewed_work(i));
                    });
                }
            });
        }
    };
}

skew_with!(skew_workmill, workmill_executor::scope);
skew_with!(skew_rayon, rayon::scope);

fn skew_sequential() {
    for i in 0..TASKS {
        black_box(skewed_work(i));
    }
}

/// Skew: the scope's spawns run in the pool, timed from inside it so that entering the pool is
/// not counted.
fn skew(settings: &Settings, ours: &ThreadPool, theirs: &rayon::ThreadPool) -> Comparison {
    interleaved::measure(
        settings,
        GROUP,
        "skew2000",
        vec![
            Contender::new("workmill", || ours.install(|| timed(1, skew_workmill))),
            Contender::new("rayon", || theirs.install(|| timed(1, skew_rayon))),
            Contender::new("sequential", || timed(1, skew_sequential)),
        ],
    )
}

const SORT_LEN: usize = 10_000_000;
/// Below this many elements a piece is sorted sequentially.
const SORT_CUTOFF: usize = 4_096;
/// Fewest rounds the quicksort measures.
const SORT_ROUNDS: usize = 30;

/// Hoare-style partition around the median of three; returns the split point.
fn partition(v: &mut [u32]) -> usize {
    let last = v.len() - 1;
    let mid = v.len() / 2;
    if v[mid] < v[0] {
        v.swap(mid, 0);
    }
    if v[last] < v[0] {
        v.swap(last, 0);
    }
    if v[last] < v[mid] {
        v.swap(last, mid);
    }
    let pivot = v[mid];
    let (mut i, mut j) = (0, last);
    loop {
        while v[i] < pivot {
            i += 1;
        }
        while v[j] > pivot {
            j -= 1;
        }
        if i >= j {
            return j + 1;
        }
        v.swap(i, j);
        i += 1;
        j -= 1;
    }
}

/// Defines a quicksort that splits with the given `join`, so that every
/// scheduler runs the same code.
macro_rules! quicksort_with {
    ($name:ident, $join:path) => {
        fn $name(v: &mut [u32]) {
            if v.len() <= SORT_CUTOFF {
                v.sort_unstable();
                return;
            }
            let split = partition(v);
            let (lo, hi) = v.split_at_mut(split);
            $join(|| $name(lo), || $name(hi));
        }
    };
}

fn sequential_join(a: impl FnOnce(), b: impl FnOnce()) {
    a();
    b();
}

quicksort_with!(quicksort_workmill, workmill_executor::join);
quicksort_with!(quicksort_rayon, rayon::join);
quicksort_with!(quicksort_sequential, sequential_join);

fn input() -> Vec<u32> {
    let mut x = 0x2545_f491_u32;
    (0..SORT_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        })
        .collect()
}

/// Sorts a fresh copy of `data` in `buffer` and returns the time of the sort alone, after
/// checking that the copy came out sorted.
fn timed_sort(data: &[u32], buffer: &RefCell<Vec<u32>>, sort: impl Fn(&mut [u32])) -> Duration {
    let mut buffer = buffer.borrow_mut();
    buffer.clear();
    buffer.extend_from_slice(data);
    let elapsed = timed(1, || sort(&mut buffer));
    assert!(buffer.is_sorted(), "the quicksort left its input unsorted");
    elapsed
}

/// An estimate of the least time `workers` threads could sort a fresh copy of `data` in with
/// this quicksort: its first partition, which nothing can run beside, then the rest of the
/// sequential sort shared evenly among the workers. Both halves are sorted here one after the
/// other, and the sort is checked like the others'.
///
/// Not a strict floor: in the parallel sorts each worker has its own caches, which can make
/// the shared part a little faster than its sequential time divided. Both schedulers come
/// within a fraction of a percent of it on two cores, so a ratio against rayon near 1.00
/// reads as both near the work-span limit, not as a slow scheduler.
fn work_span_bound(data: &[u32], buffer: &RefCell<Vec<u32>>, workers: usize) -> Duration {
    let mut buffer = buffer.borrow_mut();
    buffer.clear();
    buffer.extend_from_slice(data);
    let (serial, rest) = {
        let start = std::time::Instant::now();
        let split = partition(&mut buffer);
        let serial = start.elapsed();
        let (lo, hi) = buffer.split_at_mut(split);
        let rest = timed(1, || {
            quicksort_sequential(lo);
            quicksort_sequential(hi);
        });
        (serial, rest)
    };
    assert!(buffer.is_sorted(), "the quicksort left its input unsorted");
    let workers = u32::try_from(workers.max(1)).unwrap_or(u32::MAX);
    serial + rest / workers
}

/// Quicksort: each iteration sorts a fresh copy of the same input; the copy is not timed.
///
/// Every contender sorts in the same buffer, so that no side draws better-placed pages than
/// another. A round takes most of a second, so the case measures at least [`SORT_ROUNDS`]
/// rounds whatever the time budget: at `--quick`'s 10, the median ratio moved by a percent
/// from run to run.
fn sort(settings: &Settings, ours: &ThreadPool, theirs: &rayon::ThreadPool) -> Comparison {
    let settings = &settings.at_least(SORT_ROUNDS);
    let data = input();
    let buffer = RefCell::new(Vec::with_capacity(SORT_LEN));
    interleaved::measure(
        settings,
        GROUP,
        "quicksort10m",
        vec![
            Contender::new("workmill", || {
                timed_sort(&data, &buffer, |v| ours.install(|| quicksort_workmill(v)))
            }),
            Contender::new("rayon", || {
                timed_sort(&data, &buffer, |v| theirs.install(|| quicksort_rayon(v)))
            }),
            Contender::new("sequential", || {
                timed_sort(&data, &buffer, quicksort_sequential)
            }),
            Contender::new("work-span-bound", || {
                work_span_bound(&data, &buffer, ours.current_num_threads())
            }),
        ],
    )
}

fn main() {
    let (ours, theirs) = pools();
    let (ours, theirs) = (&ours, &theirs);
    interleaved::run_cases(
        "executor_coarse",
        GROUP,
        vec![
            (
                "skew2000",
                Box::new(|settings| skew(settings, ours, theirs)),
            ),
            (
                "quicksort10m",
                Box::new(|settings| sort(settings, ours, theirs)),
            ),
        ],
    );
}
