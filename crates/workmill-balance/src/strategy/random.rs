//! `Random`: a uniformly random available worker, from a seedable generator.

use workmill_core::{BalanceError, Balancer, Candidate, Request};

use super::no_available_candidate;

/// Picks an available worker uniformly at random.
///
/// Like round-robin it ignores speed and load; it is here as the floor every
/// other strategy must beat. Seed it with [`Random::with_seed`] for a
/// reproducible sequence.
///
/// # Examples
///
/// ```
/// use workmill_balance::Random;
/// use workmill_core::{Balancer, Candidate, Load, Request};
///
/// let candidates: Vec<Candidate> = (0..4).map(|i| Candidate::new(i, Load::default())).collect();
/// let mut a = Random::with_seed(7);
/// let mut b = Random::with_seed(7);
/// for _ in 0..10 {
///     assert_eq!(a.pick(&candidates, &Request::default()), b.pick(&candidates, &Request::default()));
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Random {
    rng: fastrand::Rng,
}

impl Random {
    /// A generator seeded from the system.
    pub fn new() -> Random {
        Random {
            rng: fastrand::Rng::new(),
        }
    }

    /// A generator with a fixed seed, for reproducible picks.
    pub fn with_seed(seed: u64) -> Random {
        Random {
            rng: fastrand::Rng::with_seed(seed),
        }
    }
}

impl Default for Random {
    fn default() -> Random {
        Random::new()
    }
}

impl Balancer for Random {
    fn pick(
        &mut self,
        candidates: &[Candidate],
        _request: &Request,
    ) -> Result<usize, BalanceError> {
        if candidates.is_empty() {
            return Err(BalanceError::NoWorkers);
        }
        // One draw suffices when every worker is available, the usual case.
        let first = &candidates[self.rng.usize(..candidates.len())];
        if first.is_available() {
            return Ok(first.index);
        }
        let available = candidates.iter().filter(|c| c.is_available()).count();
        if available == 0 {
            return Err(no_available_candidate(candidates));
        }
        let nth = self.rng.usize(..available);
        candidates
            .iter()
            .filter(|c| c.is_available())
            .nth(nth)
            .map(|c| c.index)
            .ok_or_else(|| no_available_candidate(candidates))
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use crate::strategy::test_support::idle;

    #[test]
    fn spreads_evenly_over_available_workers_only() {
        let mut candidates = idle(5);
        candidates[3].healthy = false;
        let mut random = Random::with_seed(42);
        let mut counts = [0usize; 5];
        for _ in 0..40_000 {
            counts[random.pick(&candidates, &Request::default()).unwrap()] += 1;
        }
        assert_eq!(counts[3], 0);
        for (i, &n) in counts.iter().enumerate().filter(|&(i, _)| i != 3) {
            assert!((9_000..11_000).contains(&n), "worker {i} got {n} of 40000");
        }
    }

    #[test]
    fn errs_when_nothing_is_available() {
        let mut candidates = idle(2);
        candidates[0].healthy = false;
        candidates[1].healthy = false;
        assert_eq!(
            Random::with_seed(1).pick(&candidates, &Request::default()),
            Err(BalanceError::NoHealthyWorkers { total: 2 })
        );
    }
}
