//! Erlang C: the closed-form mean wait of an M/M/c queue, which the simulator is validated against.

/// Probability that an arrival waits in an M/M/c queue with `servers` servers
/// and offered load `a = lambda / mu` (Erlang C). 1.0 when `a >= servers`.
pub fn erlang_c(servers: usize, offered: f64) -> f64 {
    let c = servers as f64;
    if servers == 0 || offered >= c {
        return 1.0;
    }
    // Sum a^k / k! for k < c incrementally, which stays finite for large c.
    let mut term = 1.0;
    let mut sum = 0.0;
    for k in 0..servers {
        sum += term;
        term *= offered / (k as f64 + 1.0);
    }
    // `term` is now a^c / c!.
    let tail = term * c / (c - offered);
    tail / (sum + tail)
}

/// Mean time in queue (before service) of an M/M/c queue with arrival rate
/// `lambda`, service rate `mu` per server and `servers` servers; infinite when unstable.
pub fn mmc_mean_wait(servers: usize, lambda: f64, mu: f64) -> f64 {
    let capacity = servers as f64 * mu;
    if lambda >= capacity {
        return f64::INFINITY;
    }
    erlang_c(servers, lambda / mu) / (capacity - lambda)
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;

    #[test]
    fn matches_known_values() {
        // M/M/1: P(wait) = rho, Wq = rho / (mu - lambda).
        assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
        assert!((mmc_mean_wait(1, 0.7, 1.0) - 0.7 / 0.3).abs() < 1e-12);
        // M/M/2 with a = 1: C = (1/2 * 2) / (1 + 1 + 1) = 1/3.
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(mmc_mean_wait(2, 3.0, 1.0), f64::INFINITY);
        assert!(erlang_c(200, 150.0).is_finite());
    }
}
