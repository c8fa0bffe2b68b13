//! `PowerOfTwoChoices`: two distinct available workers at random, and the less loaded of the two.

use workmill_core::{BalanceError, Balancer, Candidate, Request};

use super::no_available_candidate;

/// The power of two random choices (Mitzenmacher): draw two distinct
/// available workers and take the one with fewer jobs in flight.
///
/// It never picks the more loaded of its two, so the most loaded worker of
/// all is never chosen while there are two or more available. Its maximum
/// queue grows like `log log n` instead of random's `log n / log log n`, and
/// it needs no global scan, which is why tower and Finagle build on it.
///
/// # Examples
///
/// ```
/// use workmill_balance::PowerOfTwoChoices;
/// use workmill_core::{Balancer, Candidate, Load, Request};
///
/// let candidates = [
///     Candidate::new(0, Load { running: 5, ..Load::default() }),
///     Candidate::new(1, Load { running: 1, ..Load::default() }),
/// ];
/// let mut p2c = PowerOfTwoChoices::with_seed(3);
/// assert_eq!(p2c.pick(&candidates, &Request::default()), Ok(1));
/// ```
#[derive(Clone, Debug)]
pub struct PowerOfTwoChoices {
    rng: fastrand::Rng,
    available: Vec<usize>,
}

impl PowerOfTwoChoices {
    /// Two choices drawn from a generator seeded by the system.
    pub fn new() -> PowerOfTwoChoices {
        PowerOfTwoChoices::from_rng(fastrand::Rng::new())
    }

    /// Two choices drawn from a generator with a fixed seed, for reproducible picks.
    pub fn with_seed(seed: u64) -> PowerOfTwoChoices {
        PowerOfTwoChoices::from_rng(fastrand::Rng::with_seed(seed))
    }

    fn from_rng(rng: fastrand::Rng) -> PowerOfTwoChoices {
        PowerOfTwoChoices {
            rng,
            available: Vec::new(),
        }
    }

    /// Two distinct positions in `0..len`, uniformly; `len` must be at least 2.
    fn two_positions(&mut self, len: usize) -> (usize, usize) {
        let first = self.rng.usize(..len);
        let mut second = self.rng.usize(..len - 1);
        if second >= first {
            second += 1;
        }
        (first, second)
    }
}

impl Default for PowerOfTwoChoices {
    fn default() -> PowerOfTwoChoices {
        PowerOfTwoChoices::new()
    }
}

impl Balancer for PowerOfTwoChoices {
    fn pick(&mut self, candidates: &[Candidate], request: &Request) -> Result<usize, BalanceError> {
        self.pick_by(candidates, request, |c| c.load.in_flight() as f64)
    }
}

impl PowerOfTwoChoices {
    /// Two choices ranked by any cost instead of jobs in flight: the lower cost
    /// wins, a tie or an incomparable (NaN) cost goes to the first drawn.
    ///
    /// This is how [`PeakEwma`](crate::PeakEwma) and user strategies reuse
    /// the draw.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_balance::PowerOfTwoChoices;
    /// use workmill_core::{Candidate, Load, Request};
    ///
    /// let candidates = [
    ///     Candidate::new(0, Load { running: 1, capacity: 2, ..Load::default() }),
    ///     Candidate::new(1, Load { running: 1, capacity: 8, ..Load::default() }),
    /// ];
    /// let mut p2c = PowerOfTwoChoices::with_seed(1);
    /// let by_utilization = p2c.pick_by(&candidates, &Request::default(), |c| c.load.utilization());
    /// assert_eq!(by_utilization, Ok(1));
    /// ```
    pub fn pick_by(
        &mut self,
        candidates: &[Candidate],
        _request: &Request,
        mut cost: impl FnMut(&Candidate) -> f64,
    ) -> Result<usize, BalanceError> {
        let mut cheaper = |a: &Candidate, b: &Candidate| {
            if cost(b) < cost(a) { b.index } else { a.index }
        };
        if candidates.len() >= 2 {
            // Fast path: with every worker available, two draws decide.
            let (a, b) = self.two_positions(candidates.len());
            let (a, b) = (&candidates[a], &candidates[b]);
            if a.is_available() && b.is_available() {
                return Ok(cheaper(a, b));
            }
        }
        let mut available = std::mem::take(&mut self.available);
        available.clear();
        available.extend(
            candidates
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_available())
                .map(|(position, _)| position),
        );
        let picked = match available.len() {
            0 => Err(no_available_candidate(candidates)),
            1 => Ok(candidates[available[0]].index),
            len => {
                let (a, b) = self.two_positions(len);
                Ok(cheaper(
                    &candidates[available[a]],
                    &candidates[available[b]],
                ))
            }
        };
        self.available = available;
        picked
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use crate::strategy::test_support::loaded;

    #[test]
    fn never_picks_the_more_loaded_of_its_two() {
        // With three workers every pair contains a less loaded one than the
        // busiest, so the busiest is never picked; the idlest wins every pair
        // it is in, two pairs of three.
        let candidates = loaded(&[0, 5, 10]);
        let mut p2c = PowerOfTwoChoices::with_seed(11);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[p2c.pick(&candidates, &Request::default()).unwrap()] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!(
            (19_000..21_000).contains(&counts[0]),
            "idlest worker won {} of 30000",
            counts[0]
        );
    }

    #[test]
    fn with_two_available_always_takes_the_lighter() {
        let mut candidates = loaded(&[0, 7, 3, 9]);
        candidates[0].healthy = false;
        candidates[3].healthy = false;
        let mut p2c = PowerOfTwoChoices::with_seed(5);
        for _ in 0..1_000 {
            assert_eq!(p2c.pick(&candidates, &Request::default()), Ok(2));
        }
    }

    #[test]
    fn a_lone_available_worker_is_picked_and_none_is_an_error() {
        let mut candidates = loaded(&[4, 1]);
        candidates[1].healthy = false;
        let mut p2c = PowerOfTwoChoices::with_seed(9);
        assert_eq!(p2c.pick(&candidates, &Request::default()), Ok(0));
        candidates[0].healthy = false;
        assert_eq!(
            p2c.pick(&candidates, &Request::default()),
            Err(BalanceError::NoHealthyWorkers { total: 2 })
        );
    }
}
