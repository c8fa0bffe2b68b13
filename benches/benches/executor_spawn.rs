//! Group `executor`, spawning and waking: 1,000,000 spawns in a scope from inside the pool and from
//! outside it (per spawn), and the latency of one outside push into a pool whose threads are parked.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use workmill_benches::executor::{pools, timed};

const SPAWNS: u64 = 1_000_000;

fn spawn_inside(c: &mut Criterion) {
    let (ours, theirs) = pools();
    let mut group = c.benchmark_group("executor/spawn1m_inside");
    group.throughput(Throughput::Elements(SPAWNS));
    group.bench_function("workmill", |b| {
        b.iter_custom(|iters| {
            ours.install(|| {
                timed(iters, || {
                    workmill_executor::scope(|s| {
                        for i in 0..SPAWNS {
                            s.spawn(move |_| {
                                black_box(i);
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
                        for i in 0..SPAWNS {
                            s.spawn(move |_| {
                                black_box(i);
                            });
                        }
                    })
                })
            })
        })
    });
    group.finish();
}

fn spawn_outside(c: &mut Criterion) {
    let (ours, theirs) = pools();
    let mut group = c.benchmark_group("executor/spawn1m_outside");
    group.throughput(Throughput::Elements(SPAWNS));
    group.bench_function("workmill", |b| {
        b.iter(|| {
            ours.scope(|s| {
                for i in 0..SPAWNS {
                    s.spawn(move |_| {
                        black_box(i);
                    });
                }
            })
        })
    });
    group.bench_function("rayon", |b| {
        b.iter(|| {
            theirs.scope(|s| {
                for i in 0..SPAWNS {
                    s.spawn(move |_| {
                        black_box(i);
                    });
                }
            })
        })
    });
    group.finish();
}

/// Long enough for both pools' threads to finish spinning and park.
const SETTLE: Duration = Duration::from_millis(2);
/// Round trips actually timed per criterion call; the mean is scaled to the
/// requested iterations, so that the settling pauses do not grow with them.
const ROUND_TRIPS: u64 = 25;

/// The mean time of `round_trip` after the pool has gone idle, scaled to `iters`.
fn wake_latency<R>(iters: u64, mut round_trip: impl FnMut() -> R) -> Duration {
    let samples = iters.min(ROUND_TRIPS);
    let mut total = Duration::ZERO;
    for _ in 0..samples {
        std::thread::sleep(SETTLE);
        let start = Instant::now();
        black_box(round_trip());
        total += start.elapsed();
    }
    total.mul_f64(iters as f64 / samples as f64)
}

fn wake_up(c: &mut Criterion) {
    let (ours, theirs) = pools();
    let mut group = c.benchmark_group("executor/wakeup");
    let mut measured = false;
    group.bench_function("workmill", |b| {
        measured = true;
        b.iter_custom(|iters| wake_latency(iters, || black_box(ours.install(|| black_box(1)))))
    });
    group.bench_function("rayon", |b| {
        b.iter_custom(|iters| wake_latency(iters, || black_box(theirs.install(|| black_box(1)))))
    });
    group.finish();
    // A filter that skips the case leaves nothing to check.
    let parked = ours.metrics().total();
    assert!(
        !measured || parked.parks > 0,
        "the workmill pool never parked between round trips: the case measured no wake-up"
    );
}

criterion_group!(benches, spawn_inside, spawn_outside, wake_up);
criterion_main!(benches);
