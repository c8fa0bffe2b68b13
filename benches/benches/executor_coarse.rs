//! Group `executor`, coarse work: 2,000 scope tasks whose cost grows as i² (skew), and a parallel
//! quicksort of 10 million u32 with `join`, workmill against rayon and sequential code.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use workmill_benches::executor::{pools, skewed_work, timed};

const TASKS: u64 = 2_000;

fn skew(c: &mut Criterion) {
    let (ours, theirs) = pools();
    let mut group = c.benchmark_group("executor/skew2000");
    group.bench_function("workmill", |b| {
        b.iter_custom(|iters| {
            ours.install(|| {
                timed(iters, || {
                    workmill_executor::scope(|s| {
                        for i in 0..TASKS {
                            s.spawn(move |_| {
                                black_box(skewed_work(i));
                            });
                        }
                    })
                })
            })
        })
    });
    group.bench_function("rayon", |b| {
        b.iter_custom(|iters| {
            theirs.install(|| {
                timed(iters, || {
                    rayon::scope(|s| {
                        for i in 0..TASKS {
                            s.spawn(move |_| {
                                black_box(skewed_work(i));
                            });
                        }
                    })
                })
            })
        })
    });
    group.bench_function("sequential", |b| {
        b.iter(|| {
            for i in 0..TASKS {
                black_box(skewed_work(i));
            }
        })
    });
    group.finish();
}

const SORT_LEN: usize = 10_000_000;
/// Below this many elements a piece is sorted sequentially.
const SORT_CUTOFF: usize = 4_096;

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

fn sort(c: &mut Criterion) {
    let (ours, theirs) = pools();
    let data = input();
    let check = |v: &[u32]| assert!(v.windows(2).all(|w| w[0] <= w[1]));
    let mut group = c.benchmark_group("executor/quicksort10m");
    group.sample_size(10);
    group.bench_function("workmill", |b| {
        b.iter_batched_ref(
            || data.clone(),
            |v| ours.install(|| quicksort_workmill(v)),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("rayon", |b| {
        b.iter_batched_ref(
            || data.clone(),
            |v| theirs.install(|| quicksort_rayon(v)),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("sequential", |b| {
        b.iter_batched_ref(
            || data.clone(),
            |v: &mut Vec<u32>| quicksort_sequential(v),
            BatchSize::LargeInput,
        )
    });
    group.finish();
    let mut sorted = data.clone();
    ours.install(|| quicksort_workmill(&mut sorted));
    check(&sorted);
}

criterion_group!(benches, skew, sort);
criterion_main!(benches);
