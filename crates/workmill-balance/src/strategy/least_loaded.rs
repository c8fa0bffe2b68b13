//! `LeastLoaded`: the available worker with the fewest jobs in flight (join the shortest queue).

use workmill_core::{BalanceError, Balancer, Candidate, Request};

use super::{advance, no_available_candidate, rotated};

/// Picks the available worker holding the fewest jobs, running or queued.
///
/// Ties go to a different worker on each pick, so idle equal workers share
/// the work instead of the first one taking it all. It does not know speeds:
/// a slow worker with an empty queue looks as good as a fast one.
///
/// # Examples
///
/// ```
/// use workmill_balance::LeastLoaded;
/// use workmill_core::{Balancer, Candidate, Load, Request};
///
/// let candidates = [
///     Candidate::new(0, Load { running: 2, queued: 1, ..Load::default() }),
///     Candidate::new(1, Load { running: 1, ..Load::default() }),
/// ];
/// assert_eq!(LeastLoaded::new().pick(&candidates, &Request::default()), Ok(1));
/// ```
#[derive(Clone, Debug, Default)]
pub struct LeastLoaded {
    start: usize,
}

impl LeastLoaded {
    /// A least-loaded balancer.
    pub fn new() -> LeastLoaded {
        LeastLoaded::default()
    }
}

impl Balancer for LeastLoaded {
    fn pick(
        &mut self,
        candidates: &[Candidate],
        _request: &Request,
    ) -> Result<usize, BalanceError> {
        let mut best: Option<&Candidate> = None;
        for position in rotated(self.start, candidates.len()) {
            let candidate = &candidates[position];
            if candidate.is_available()
                && best.is_none_or(|b| candidate.load.in_flight() < b.load.in_flight())
            {
                best = Some(candidate);
            }
        }
        self.start = advance(self.start, candidates.len());
        best.map(|c| c.index)
            .ok_or_else(|| no_available_candidate(candidates))
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use crate::strategy::test_support::loaded;

    #[test]
    fn picks_the_fewest_jobs_and_shares_ties() {
        let candidates = loaded(&[3, 1, 4, 1]);
        let mut ll = LeastLoaded::new();
        let mut picks: Vec<usize> = (0..4)
            .map(|_| ll.pick(&candidates, &Request::default()).unwrap())
            .collect();
        picks.sort_unstable();
        picks.dedup();
        assert_eq!(picks, [1, 3]);
    }

    #[test]
    fn never_picks_an_unavailable_worker_even_if_idle() {
        let mut candidates = loaded(&[0, 5]);
        candidates[0].healthy = false;
        assert_eq!(
            LeastLoaded::new().pick(&candidates, &Request::default()),
            Ok(1)
        );
    }
}
