//! Example: the sum of squares of 0..=n in parallel, checked against the closed form n(n+1)(2n+1)/6 in u128.
//!
//! ```sh
//! cargo run --release -p workmill-mapreduce --example sum_of_squares -- 100000000
//! ```

use std::process::ExitCode;
use std::time::Instant;

use workmill_mapreduce::{map_reduce, map_reduce_seq};

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    let n: u64 = match arg.as_deref().map(str::parse).unwrap_or(Ok(10_000_000)) {
        Ok(n) if n < u64::MAX => n,
        _ => {
            eprintln!(
                "usage: sum_of_squares [N]  (N a whole number below 2^64 - 1; default 10000000)"
            );
            return ExitCode::FAILURE;
        }
    };
    let square = |x: u64| u128::from(x) * u128::from(x);

    let start = Instant::now();
    let parallel = map_reduce(0..n + 1, square, |a, b| a + b).unwrap_or(0);
    let parallel_time = start.elapsed();

    let start = Instant::now();
    let sequential = map_reduce_seq(0..n + 1, square, |a, b| a + b).unwrap_or(0);
    let sequential_time = start.elapsed();

    let n = u128::from(n);
    let closed_form = n * (n + 1) * (2 * n + 1) / 6;
    println!("sum of squares of 0..={n}: {parallel}");
    println!("closed form n(n+1)(2n+1)/6:  {closed_form}");
    println!("parallel {parallel_time:?}, sequential {sequential_time:?}");
    if parallel != closed_form || sequential != closed_form {
        eprintln!("mismatch: parallel {parallel}, sequential {sequential}, expected {closed_form}");
        return ExitCode::FAILURE;
    }
    println!("ok");
    ExitCode::SUCCESS
}
