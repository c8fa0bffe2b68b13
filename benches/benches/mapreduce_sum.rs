//! Group `mapreduce`, sums: a memory-bound sum of 50 million u64 (with a plain two-thread
//! `std::thread::scope` sum as the bandwidth ceiling) and a compute-bound sum of squares over
//! 0..10^9, workmill against rayon and a sequential loop, each measured inside its pool.

use std::hint::black_box;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use workmill_benches::executor::{pools, timed};

const VEC_LEN: usize = 50_000_000;
const SQUARES_END: u64 = 1_000_000_000;

fn sum_std_scope_2(data: &[u64]) -> u64 {
    let (left, right) = data.split_at(data.len() / 2);
    std::thread::scope(|s| {
        let other = s.spawn(|| left.iter().sum::<u64>());
        let mine = right.iter().sum::<u64>();
        other.join().expect("the summing thread does not panic") + mine
    })
}

fn sum_vec(c: &mut Criterion) {
    let (ours, theirs) = pools();
    let data: Vec<u64> = (0..VEC_LEN as u64).collect();
    let expected = VEC_LEN as u64 * (VEC_LEN as u64 - 1) / 2;
    let mut group = c.benchmark_group("mapreduce/sum_vec");
    group.throughput(Throughput::Elements(VEC_LEN as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("workmill", |b| {
        b.iter_custom(|iters| {
            ours.install(|| {
                timed(iters, || {
                    let sum = workmill_mapreduce::fold(
                        black_box(&data),
                        || 0u64,
                        |a, &x| a + x,
                        |a, b| a + b,
                    );
                    assert_eq!(sum, expected);
                })
            })
        })
    });
    group.bench_function("rayon", |b| {
        b.iter_custom(|iters| {
            theirs.install(|| {
                timed(iters, || {
                    assert_eq!(black_box(&data).par_iter().sum::<u64>(), expected)
                })
            })
        })
    });
    group.bench_function("std_scope_2", |b| {
        b.iter(|| assert_eq!(sum_std_scope_2(black_box(&data)), expected))
    });
    group.bench_function("sequential", |b| {
        b.iter(|| assert_eq!(black_box(&data).iter().sum::<u64>(), expected))
    });
    group.finish();
}

/// `x * x`, behind a barrier the optimizer cannot see through: without it,
/// LLVM replaces the whole loop with the closed form n(n+1)(2n+1)/6.
#[inline(always)]
fn square(x: u64) -> u64 {
    let x = black_box(x);
    x.wrapping_mul(x)
}

fn sum_squares(c: &mut Criterion) {
    let (ours, theirs) = pools();
    // n(n+1)(2n+1)/6 for n = 10^9 - 1, wrapped to 64 bits.
    let n = u128::from(SQUARES_END - 1);
    let expected = (n * (n + 1) * (2 * n + 1) / 6) as u64;
    let mut group = c.benchmark_group("mapreduce/sum_squares");
    group.throughput(Throughput::Elements(SQUARES_END));
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("workmill", |b| {
        b.iter_custom(|iters| {
            ours.install(|| {
                timed(iters, || {
                    let sum = workmill_mapreduce::map_reduce(
                        0..black_box(SQUARES_END),
                        square,
                        u64::wrapping_add,
                    );
                    assert_eq!(sum, Some(expected));
                })
            })
        })
    });
    group.bench_function("rayon", |b| {
        b.iter_custom(|iters| {
            theirs.install(|| {
                timed(iters, || {
                    let sum = (0..black_box(SQUARES_END))
                        .into_par_iter()
                        .map(square)
                        .reduce(|| 0, u64::wrapping_add);
                    assert_eq!(sum, expected);
                })
            })
        })
    });
    group.bench_function("sequential", |b| {
        b.iter(|| {
            let sum = (0..black_box(SQUARES_END))
                .map(square)
                .fold(0, u64::wrapping_add);
            assert_eq!(sum, expected);
        })
    });
    group.finish();
}

criterion_group!(benches, sum_vec, sum_squares);
criterion_main!(benches);
