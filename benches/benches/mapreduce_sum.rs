//! Group `mapreduce`, sums: a memory-bound sum of 50 million u64 (with a plain two-thread
//! `std::thread::scope` sum as the bandwidth ceiling) and a compute-bound sum of squares over
//! 0..10^9, workmill against rayon and a sequential loop, each timed inside its pool and
//! interleaved round by round (`interleaved`); rows are per element.

use std::hint::black_box;

use rayon::prelude::*;
use workmill_benches::executor::{pools, timed};
use workmill_benches::interleaved::{self, Comparison, Contender, Settings};
use workmill_executor::ThreadPool;

const GROUP: &str = "mapreduce";
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

fn sum_vec(settings: &Settings, ours: &ThreadPool, theirs: &rayon::ThreadPool) -> Comparison {
    let data: Vec<u64> = (0..VEC_LEN as u64).collect();
    let data = &data;
    let expected = VEC_LEN as u64 * (VEC_LEN as u64 - 1) / 2;
    interleaved::measure(
        settings,
        GROUP,
        "sum_vec",
        vec![
            Contender::new("workmill", || {
                ours.install(|| {
                    timed(1, || {
                        let sum = workmill_mapreduce::fold(
                            black_box(data),
                            || 0u64,
                            |a, &x| a + x,
                            |a, b| a + b,
                        );
                        assert_eq!(sum, expected);
                    })
                })
            }),
            Contender::new("rayon", || {
                theirs.install(|| {
                    timed(1, || {
                        assert_eq!(black_box(data).par_iter().sum::<u64>(), expected)
                    })
                })
            }),
            Contender::new("std_scope_2", || {
                timed(1, || assert_eq!(sum_std_scope_2(black_box(data)), expected))
            }),
            Contender::new("sequential", || {
                timed(1, || {
                    assert_eq!(black_box(data).iter().sum::<u64>(), expected)
                })
            }),
        ],
    )
    .per_element(VEC_LEN as u64)
}

/// `x * x`, behind a barrier the optimizer cannot see through: without it,
/// LLVM replaces the whole loop with the closed form n(n+1)(2n+1)/6.
#[inline(always)]
fn square(x: u64) -> u64 {
    let x = black_box(x);
    x.wrapping_mul(x)
}

fn sum_squares(settings: &Settings, ours: &ThreadPool, theirs: &rayon::ThreadPool) -> Comparison {
    // n(n+1)(2n+1)/6 for n = 10^9 - 1, wrapped to 64 bits.
    let n = u128::from(SQUARES_END - 1);
    let expected = (n * (n + 1) * (2 * n + 1) / 6) as u64;
    interleaved::measure(
        settings,
        GROUP,
        "sum_squares",
        vec![
            Contender::new("workmill", || {
                ours.install(|| {
                    timed(1, || {
                        let sum = workmill_mapreduce::map_reduce(
                            0..black_box(SQUARES_END),
                            square,
                            u64::wrapping_add,
                        );
                        assert_eq!(sum, Some(expected));
                    })
                })
            }),
            Contender::new("rayon", || {
                theirs.install(|| {
                    timed(1, || {
                        let sum = (0..black_box(SQUARES_END))
                            .into_par_iter()
                            .map(square)
                            .reduce(|| 0, u64::wrapping_add);
                        assert_eq!(sum, expected);
                    })
                })
            }),
            Contender::new("sequential", || {
                timed(1, || {
                    let sum = (0..black_box(SQUARES_END))
                        .map(square)
                        .fold(0, u64::wrapping_add);
                    assert_eq!(sum, expected);
                })
            }),
        ],
    )
    .per_element(SQUARES_END)
}

fn main() {
    let (ours, theirs) = pools();
    let (ours, theirs) = (&ours, &theirs);
    interleaved::run_cases(
        "mapreduce_sum",
        GROUP,
        vec![
            (
                "sum_vec",
                Box::new(|settings| sum_vec(settings, ours, theirs)),
            ),
            (
                "sum_squares",
                Box::new(|settings| sum_squares(settings, ours, theirs)),
            ),
        ],
    );
}
