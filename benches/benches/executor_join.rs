//! Group `executor`, fine-grained joins: fib(32) with a join at every level (per join) and the sum of a
//! 1023-node tree, workmill against rayon and a sequential baseline, each measured inside its pool.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use workmill_benches::executor::{pools, timed};

const FIB_N: u64 = 32;

fn fib_sequential(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    fib_sequential(n - 1) + fib_sequential(n - 2)
}

fn fib_workmill(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = workmill_executor::join(|| fib_workmill(n - 1), || fib_workmill(n - 2));
    a + b
}

fn fib_rayon(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = rayon::join(|| fib_rayon(n - 1), || fib_rayon(n - 2));
    a + b
}

/// Joins made by `fib(n)`: one per call with `n >= 2`.
fn fib_joins(n: u64) -> u64 {
    if n < 2 {
        0
    } else {
        1 + fib_joins(n - 1) + fib_joins(n - 2)
    }
}

struct Node {
    value: u64,
    children: Option<(Box<Node>, Box<Node>)>,
}

/// A complete binary tree of `2^depth - 1` nodes.
fn tree(depth: u32, next: &mut u64) -> Node {
    *next += 1;
    let value = *next;
    let children = (depth > 1).then(|| {
        (
            Box::new(tree(depth - 1, next)),
            Box::new(tree(depth - 1, next)),
        )
    });
    Node { value, children }
}

fn sum_sequential(node: &Node) -> u64 {
    node.value
        + node
            .children
            .as_ref()
            .map_or(0, |(l, r)| sum_sequential(l) + sum_sequential(r))
}

fn sum_workmill(node: &Node) -> u64 {
    node.value
        + node.children.as_ref().map_or(0, |(l, r)| {
            let (a, b) = workmill_executor::join(|| sum_workmill(l), || sum_workmill(r));
            a + b
        })
}

fn sum_rayon(node: &Node) -> u64 {
    node.value
        + node.children.as_ref().map_or(0, |(l, r)| {
            let (a, b) = rayon::join(|| sum_rayon(l), || sum_rayon(r));
            a + b
        })
}

fn fib(c: &mut Criterion) {
    let (ours, theirs) = pools();
    let mut group = c.benchmark_group("executor/fib32");
    group.throughput(Throughput::Elements(fib_joins(FIB_N)));
    group.bench_function("workmill", |b| {
        b.iter_custom(|iters| {
            ours.install(|| {
                timed(iters, || {
                    assert_eq!(fib_workmill(black_box(FIB_N)), 2_178_309)
                })
            })
        })
    });
    group.bench_function("rayon", |b| {
        b.iter_custom(|iters| {
            theirs.install(|| timed(iters, || assert_eq!(fib_rayon(black_box(FIB_N)), 2_178_309)))
        })
    });
    group.bench_function("sequential", |b| {
        b.iter(|| assert_eq!(fib_sequential(black_box(FIB_N)), 2_178_309))
    });
    group.finish();
}

fn tree_sum(c: &mut Criterion) {
    let (ours, theirs) = pools();
    let root = tree(10, &mut 0);
    let expected = 1023 * 1024 / 2;
    let mut group = c.benchmark_group("executor/tree1023");
    group.bench_function("workmill", |b| {
        b.iter_custom(|iters| {
            ours.install(|| {
                timed(iters, || {
                    assert_eq!(sum_workmill(black_box(&root)), expected)
                })
            })
        })
    });
    group.bench_function("rayon", |b| {
        b.iter_custom(|iters| {
            theirs.install(|| timed(iters, || assert_eq!(sum_rayon(black_box(&root)), expected)))
        })
    });

    group.bench_function("sequential", |b| {
        b.iter(|| assert_eq!(sum_sequential(black_box(&root)), expected))
    });
    group.finish();
}

criterion_group!(benches, fib, tree_sum);
criterion_main!(benches);
