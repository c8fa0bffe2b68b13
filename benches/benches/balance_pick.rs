//! Group `balance`: nanoseconds per routing decision of every strategy among 8 and 64 workers, beside the floor of a bare
//! random index pick and, for the score-based strategies, a naive seed-style pick that sorts every worker by score.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use workmill_balance::{
    Adaptive, LeastLoaded, PeakEwma, PowerOfTwoChoices, Random, Rendezvous, RoundRobin,
    WeightedRoundRobin, default_balancer, health_score,
};
use workmill_core::{Balancer, Candidate, Load, Outcome, Request};

/// Distinct candidate snapshots the benches cycle through, so that loads vary
/// between decisions as they do in a pool. Few enough to stay in cache, as the
/// pool's one reused candidate buffer does.
const SNAPSHOTS: usize = 16;

/// Snapshots of `workers` workers: mixed speeds, 0 to 7 jobs in flight, a few errors.
fn snapshots(workers: usize) -> Vec<Vec<Candidate>> {
    let mut rng = fastrand::Rng::with_seed(workers as u64);
    let speeds: Vec<u64> = (0..workers).map(|_| rng.u64(100..1_000)).collect();
    (0..SNAPSHOTS)
        .map(|_| {
            (0..workers)
                .map(|index| {
                    let running = rng.usize(0..2);
                    Candidate {
                        index,
                        load: Load {
                            running,
                            queued: rng.usize(0..6),
                            capacity: 16,
                            mean_latency: Some(Duration::from_millis(speeds[index])),
                            error_rate: if rng.u8(..) < 16 { 0.1 } else { 0.0 },
                        },
                        healthy: true,
                        weight: 1 + (speeds[index] / 200) as u32,
                    }
                })
                .collect()
        })
        .collect()
}

fn strategies() -> Vec<(&'static str, Box<dyn Balancer>)> {
    vec![
        ("default-sed", Box::new(default_balancer())),
        ("round-robin", Box::new(RoundRobin::new())),
        ("weighted-round-robin", Box::new(WeightedRoundRobin::new())),
        ("random", Box::new(Random::with_seed(1))),
        ("least-loaded", Box::new(LeastLoaded::new())),
        (
            "power-of-two-choices",
            Box::new(PowerOfTwoChoices::with_seed(1)),
        ),
        ("peak-ewma", Box::new(PeakEwma::new().seed(1))),
        ("adaptive", Box::new(Adaptive::new())),
        ("rendezvous", Box::new(Rendezvous::new())),
    ]
}

/// The seed's adaptive pick as written: score every available worker into a
/// vector, sort it, take the first.
fn seed_sort_by_score(candidates: &[Candidate]) -> Option<usize> {
    let mut scored: Vec<(f64, usize)> = candidates
        .iter()
        .filter(|c| c.is_available())
        .map(|c| {
            let health = health_score(c.load.error_rate, c.load.in_flight(), c.load.mean_latency);
            let load_ratio = c.load.in_flight() as f64 / c.load.capacity.max(1) as f64;
            let response = c.load.mean_latency.map_or(0.0, |d| d.as_secs_f64());
            ((1.0 - health) + load_ratio + response, c.index)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    scored.first().map(|&(_, index)| index)
}

fn pick(c: &mut Criterion) {
    for workers in [8usize, 64] {
        let sets = snapshots(workers);
        for (name, mut balancer) in strategies() {
            // Give the learning strategies a history first.
            for n in 0..(workers * 20) {
                balancer.observe(&Outcome {
                    worker: n % workers,
                    latency: Duration::from_millis(100 + (n % 7) as u64 * 50),
                    success: n % 13 != 0,
                });
            }
            let mut group = c.benchmark_group(format!("balance/{name}"));
            group.bench_with_input(BenchmarkId::new("workmill", workers), &sets, |b, sets| {
                let mut i = 0usize;
                b.iter(|| {
                    i = i.wrapping_add(1);
                    let request = Request::keyed(i as u64);
                    black_box(balancer.pick(black_box(&sets[i % SNAPSHOTS]), &request))
                })
            });
            group.bench_with_input(
                BenchmarkId::new("fastrand-index", workers),
                &sets,
                |b, sets| {
                    let mut rng = fastrand::Rng::with_seed(3);
                    let mut i = 0usize;
                    b.iter(|| {
                        i = i.wrapping_add(1);
                        let candidates = black_box(&sets[i % SNAPSHOTS]);
                        black_box(candidates[rng.usize(..candidates.len())].index)
                    })
                },
            );
            if matches!(name, "adaptive" | "default-sed") {
                group.bench_with_input(
                    BenchmarkId::new("seed-sort-by-score", workers),
                    &sets,
                    |b, sets| {
                        let mut i = 0usize;
                        b.iter(|| {
                            i = i.wrapping_add(1);
                            black_box(seed_sort_by_score(black_box(&sets[i % SNAPSHOTS])))
                        })
                    },
                );
            }
            group.finish();
        }
    }
}

criterion_group!(benches, pick);
criterion_main!(benches);
