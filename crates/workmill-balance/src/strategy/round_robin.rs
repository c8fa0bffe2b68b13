//! `RoundRobin`: each available worker in turn, skipping the unhealthy (the seed's first balancer).

use workmill_core::{BalanceError, Balancer, Candidate, Request};

use super::no_available_candidate;

/// Hands jobs to the workers in turn, skipping any that is unhealthy or full.
///
/// This is the seed's `RoundRobinLoadBalancer`: it ignores speed and load, so
/// with heterogeneous workers the slowest one sets the pace (the simulator
/// shows it unstable at 0.9 load on the seed's profile). It fails with
/// [`BalanceError::NoHealthyWorkers`] when every worker is unhealthy.
///
/// # Examples
///
/// ```
/// use workmill_balance::RoundRobin;
/// use workmill_core::{Balancer, Candidate, Load, Request};
///
/// let mut candidates: Vec<Candidate> = (0..3).map(|i| Candidate::new(i, Load::default())).collect();
/// candidates[1].healthy = false;
/// let mut rr = RoundRobin::new();
/// let picks: Vec<usize> = (0..4).map(|_| rr.pick(&candidates, &Request::default()).unwrap()).collect();
/// assert_eq!(picks, [0, 2, 0, 2]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    next: usize,
}

impl RoundRobin {
    /// A round-robin that starts with the first worker.
    pub fn new() -> RoundRobin {
        RoundRobin::default()
    }
}

impl Balancer for RoundRobin {
    fn pick(
        &mut self,
        candidates: &[Candidate],
        _request: &Request,
    ) -> Result<usize, BalanceError> {
        let len = candidates.len();
        let mut position = if self.next < len { self.next } else { 0 };
        for _ in 0..len {
            let candidate = &candidates[position];
            position += 1;
            if position == len {
                position = 0;
            }
            if candidate.is_available() {
                self.next = position;
                return Ok(candidate.index);
            }
        }
        Err(no_available_candidate(candidates))
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use crate::strategy::test_support::idle;
    use workmill_core::Load;

    #[test]
    fn cycles_through_every_worker_in_order() {
        let candidates = idle(4);
        let mut rr = RoundRobin::new();
        let picks: Vec<usize> = (0..8)
            .map(|_| rr.pick(&candidates, &Request::default()).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn skips_unhealthy_and_full_and_says_why_when_none_is_left() {
        let mut candidates = idle(3);
        candidates[0].healthy = false;
        candidates[2].load = Load {
            running: 1,
            capacity: 1,
            ..Load::default()
        };
        let mut rr = RoundRobin::new();
        for _ in 0..3 {
            assert_eq!(rr.pick(&candidates, &Request::default()), Ok(1));
        }
        candidates[1].healthy = false;
        assert_eq!(
            rr.pick(&candidates, &Request::default()),
            Err(BalanceError::AllAtCapacity { healthy: 1 })
        );
        candidates[2].healthy = false;
        assert_eq!(
            rr.pick(&candidates, &Request::default()),
            Err(BalanceError::NoHealthyWorkers { total: 3 })
        );
        assert_eq!(
            rr.pick(&[], &Request::default()),
            Err(BalanceError::NoWorkers)
        );
    }

    #[test]
    fn survives_the_pool_shrinking() {
        let mut rr = RoundRobin::new();
        for _ in 0..3 {
            rr.pick(&idle(4), &Request::default()).unwrap();
        }
        assert_eq!(rr.pick(&idle(2), &Request::default()), Ok(0));
    }
}
