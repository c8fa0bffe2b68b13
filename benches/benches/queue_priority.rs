//! Group `queue`, cases `priority_fill_drain` and `priority_steady`: the memory backend's ready queue
//! (one FIFO per priority level) against `std::collections::BinaryHeap` ordered by the same `QueueKey`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use workmill_core::{Priority, QueueKey};
use workmill_queue::ReadyQueue;

/// Task-queue-like keys: a few priority levels, arrival numbers counting up.
fn keys(count: usize) -> Vec<QueueKey> {
    let mut rng = fastrand::Rng::with_seed(42);
    (0..count)
        .map(|seq| QueueKey::new(Priority::new(rng.u16(0..8)), seq as u64))
        .collect()
}

/// Push everything, then pop everything.
fn fill_drain(c: &mut Criterion) {
    let keys = keys(10_000);
    let mut group = c.benchmark_group("queue/priority_fill_drain");
    group.throughput(Throughput::Elements(keys.len() as u64));
    group.bench_function("workmill", |b| {
        b.iter(|| {
            let mut ready = ReadyQueue::new();
            for (slot, &key) in keys.iter().enumerate() {
                ready.push(key, slot as u32);
            }
            while let Some(entry) = ready.pop() {
                black_box(entry);
            }
        })
    });
    group.bench_function("binary-heap", |b| {
        b.iter(|| {
            let mut heap = BinaryHeap::new();
            for (slot, &key) in keys.iter().enumerate() {
                heap.push(Reverse((key, slot as u32)));
            }
            while let Some(entry) = heap.pop() {
                black_box(entry);
            }
        })
    });
    group.finish();
}

/// A queue holding 10,000 tasks: each step pops the next and pushes a new arrival
/// (a fresh arrival number, a random one of eight priorities).
fn steady(c: &mut Criterion) {
    const HELD: usize = 10_000;
    let initial = keys(HELD);
    let priorities: Vec<Priority> = keys(HELD).iter().map(|key| key.priority).collect();
    let mut group = c.benchmark_group("queue/priority_steady");
    group.throughput(Throughput::Elements(priorities.len() as u64));
    group.bench_function("workmill", |b| {
        let mut ready = ReadyQueue::new();
        for &key in &initial {
            ready.push(key, 0u32);
        }
        let mut seq = HELD as u64;
        b.iter(|| {
            for &priority in &priorities {
                black_box(ready.pop());
                ready.push(QueueKey::new(priority, seq), 0);
                seq += 1;
            }
        })
    });
    group.bench_function("binary-heap", |b| {
        let mut heap = BinaryHeap::new();
        for &key in &initial {
            heap.push(Reverse((key, 0u32)));
        }
        let mut seq = HELD as u64;
        b.iter(|| {
            for &priority in &priorities {
                black_box(heap.pop());
                heap.push(Reverse((QueueKey::new(priority, seq), 0)));
                seq += 1;
            }
        })
    });
    group.finish();
}

criterion_group!(benches, fill_drain, steady);
criterion_main!(benches);
