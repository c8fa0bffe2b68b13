//! `join` and `join_context`: results, borrowing, nesting, panics, stealing.

use workmill_executor::{ThreadPool, join};

fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = join(|| fib(n - 1), || fib(n - 2));
    a + b
}

#[test]
fn fib_matches_the_closed_form_inside_and_outside_a_pool() {
    assert_eq!(fib(25), 75025);
    let pool = ThreadPool::builder().num_threads(2).build().unwrap();
    for _ in 0..20 {
        assert_eq!(pool.install(|| fib(27)), 196418);
    }
    let metrics = pool.metrics().total();
    eprintln!("{metrics:?}");
}
