//! Group `mapreduce`, items of skewed cost: 2,000 items whose cost grows as i², mapped and
//! reduced by workmill (adaptive and per-worker chunking) against rayon and a sequential loop.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rayon::prelude::*;
use workmill_benches::executor::{pools, skewed_work, timed};
use workmill_mapreduce::{Chunking, MapReduce};

const ITEMS: u64 = 2_000;

fn skew(c: &mut Criterion) {
    let (ours, theirs) = pools();
    let expected = (0..ITEMS).map(skewed_work).fold(0, |a, b| a ^ b);
    let mut group = c.benchmark_group("mapreduce/skew2000");
    for (name, chunking) in [
        ("workmill", Chunking::Adaptive),
        ("workmill-per_worker", Chunking::PER_WORKER),
    ] {
        let run = MapReduce::new().chunking(chunking);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                ours.install(|| {
                    timed(iters, || {
                        let x = run.map_reduce(0..black_box(ITEMS), skewed_work, |a, b| a ^ b);
                        assert_eq!(x, Some(expected));
                    })
                })
            })
        });
    }
    group.bench_function("rayon", |b| {
        b.iter_custom(|iters| {
            theirs.install(|| {
                timed(iters, || {
                    let x = (0..black_box(ITEMS))
                        .into_par_iter()
                        .map(skewed_work)
                        .reduce(|| 0, |a, b| a ^ b);
                    assert_eq!(x, expected);
                })
            })
        })
    });
    group.bench_function("sequential", |b| {
        b.iter(|| {
            let x = (0..black_box(ITEMS)).map(skewed_work).fold(0, |a, b| a ^ b);
            assert_eq!(x, expected);
        })
    });
    group.finish();
}

criterion_group!(benches, skew);
criterion_main!(benches);
