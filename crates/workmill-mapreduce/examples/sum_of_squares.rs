//! Example: the sum of squares of 0..=n in parallel, checked against the closed form n(n+1)(2n+1)/6 in u128.
//!
//! ```sh
//! cargo run --release -p workmill-mapreduce --example sum_of_squares -- 100000000
//! ```

use std::process::ExitCode;
use std::time::Instant;

use workmill_mapreduce::{map_reduce, map_reduce_seq};

/// The largest N whose sum of squares fits in u128 (about 10^13).
const MAX_N: u64 = 10_069_012_961_344;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    let (n, closed_form) = match parse(arg.as_deref()) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
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

/// N from the command line (10,000,000 without one) and its closed form, or
/// the message for an N that is not a number or whose sum outgrows u128.
fn parse(arg: Option<&str>) -> Result<(u64, u128), String> {
    let usage =
        format!("usage: sum_of_squares [N]  (N a whole number up to {MAX_N}; default 10000000)");
    let n = match arg {
        None => 10_000_000,
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("error: N must be a whole number, not {arg:?}\n{usage}"))?,
    };
    match closed_form(n) {
        Some(sum) => Ok((n, sum)),
        None => Err(format!(
            "error: the sum of squares of 0..={n} does not fit in u128\n{usage}"
        )),
    }
}

/// n(n+1)(2n+1)/6, or `None` when it does not fit in u128. Dividing first
/// keeps every product within the result: n(n+1) fits for any u64, and 3
/// divides 2n+1 or else n(n+1)/2.
fn closed_form(n: u64) -> Option<u128> {
    let n = u128::from(n);
    let half = n * (n + 1) / 2;
    let odd = 2 * n + 1;
    if odd % 3 == 0 {
        half.checked_mul(odd / 3)
    } else {
        (half / 3).checked_mul(odd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closed_form_is_exact_up_to_the_largest_n_and_refuses_beyond() {
        // Past about 5.5 * 10^12, n(n+1)(2n+1) itself no longer fits in u128.
        for n in [1, 2, 3, 10, 5_541_191_377_757, 7_000_000_000_001, MAX_N] {
            let (sum, before) = (closed_form(n).unwrap(), closed_form(n - 1).unwrap());
            assert_eq!(sum - before, u128::from(n) * u128::from(n), "n = {n}");
        }
        assert_eq!(closed_form(3), Some(14));
        assert_eq!(closed_form(MAX_N + 1), None);
        assert_eq!(closed_form(u64::MAX), None);
    }

    #[test]
    fn n_is_refused_with_a_message_unless_its_sum_fits() {
        assert_eq!(
            parse(None),
            Ok((10_000_000, closed_form(10_000_000).unwrap()))
        );
        assert!(parse(Some("6000000000000")).is_ok());
        assert!(parse(Some(&MAX_N.to_string())).is_ok());
        for arg in [
            &(MAX_N + 1).to_string(),
            "18446744073709551615",
            "-1",
            "ten",
        ] {
            let message = parse(Some(arg)).unwrap_err();
            assert!(message.contains(&MAX_N.to_string()), "{message}");
        }
    }
}
