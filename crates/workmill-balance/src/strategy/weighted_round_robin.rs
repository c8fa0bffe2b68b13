//! `WeightedRoundRobin`: nginx's smooth weighted round-robin, which spreads a heavy worker's turns between the others'.

use workmill_core::{BalanceError, Balancer, Candidate, Request};

use super::{no_available_candidate, slot};

/// Smooth weighted round-robin, the algorithm of nginx's upstream module.
///
/// Each pick adds every available worker's [`weight`](Candidate::weight) to
/// its running score, chooses the highest score (the first on a tie), and
/// takes the sum of the weights off the winner. Over any run of
/// `sum(weights)` picks each worker gets exactly its weight's share, and a
/// heavy worker's turns are interleaved with the others' rather than bunched:
/// weights `{5, 1, 1}` give `a a b a c a a`. A weight of 0 is read as 1.
///
/// # Examples
///
/// ```
/// use workmill_balance::WeightedRoundRobin;
/// use workmill_core::{Balancer, Candidate, Load, Request};
///
/// let candidates: Vec<Candidate> = [5, 1, 1]
///     .into_iter()
///     .enumerate()
///     .map(|(i, weight)| Candidate { weight, ..Candidate::new(i, Load::default()) })
///     .collect();
/// let mut wrr = WeightedRoundRobin::new();
/// let picks: String = (0..7)
///     .map(|_| char::from(b'a' + wrr.pick(&candidates, &Request::default()).unwrap() as u8))
///     .collect();
/// assert_eq!(picks, "aabacaa");
/// ```
#[derive(Clone, Debug, Default)]
pub struct WeightedRoundRobin {
    current: Vec<i64>,
}

impl WeightedRoundRobin {
    /// A weighted round-robin with every score at zero.
    pub fn new() -> WeightedRoundRobin {
        WeightedRoundRobin::default()
    }
}

impl Balancer for WeightedRoundRobin {
    fn pick(
        &mut self,
        candidates: &[Candidate],
        _request: &Request,
    ) -> Result<usize, BalanceError> {
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for candidate in candidates.iter().filter(|c| c.is_available()) {
            let weight = i64::from(candidate.weight.max(1));
            let score = slot(&mut self.current, candidate.index);
            *score += weight;
            total += weight;
            if best.is_none_or(|(_, top)| *score > top) {
                best = Some((candidate.index, *score));
            }
        }
        let (index, _) = best.ok_or_else(|| no_available_candidate(candidates))?;
        self.current[index] -= total;
        Ok(index)
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use crate::strategy::test_support::idle;
    use proptest::prelude::*;

    fn weighted(weights: &[u32]) -> Vec<Candidate> {
        let mut candidates = idle(weights.len());
        for (c, &w) in candidates.iter_mut().zip(weights) {
            c.weight = w;
        }
        candidates
    }

    #[test]
    fn five_one_one_is_smooth() {
        let candidates = weighted(&[5, 1, 1]);
        let mut wrr = WeightedRoundRobin::new();
        let picks: Vec<usize> = (0..14)
            .map(|_| wrr.pick(&candidates, &Request::default()).unwrap())
            .collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn unavailable_workers_are_skipped() {
        let mut candidates = weighted(&[5, 1, 1]);
        candidates[0].healthy = false;
        let mut wrr = WeightedRoundRobin::new();
        let picks: Vec<usize> = (0..4)
            .map(|_| wrr.pick(&candidates, &Request::default()).unwrap())
            .collect();
        assert_eq!(picks, [1, 2, 1, 2]);
        candidates[1].healthy = false;
        candidates[2].healthy = false;
        assert_eq!(
            wrr.pick(&candidates, &Request::default()),
            Err(BalanceError::NoHealthyWorkers { total: 3 })
        );
    }

    proptest! {
        #[test]
        fn each_cycle_gives_each_worker_exactly_its_weight(weights in proptest::collection::vec(1u32..8, 1..6)) {
            let candidates = weighted(&weights);
            let mut wrr = WeightedRoundRobin::new();
            let cycle: u32 = weights.iter().sum();
            for _ in 0..3 {
                let mut counts = vec![0u32; weights.len()];
                for _ in 0..cycle {
                    counts[wrr.pick(&candidates, &Request::default()).unwrap()] += 1;
                }
                prop_assert_eq!(&counts, &weights);
            }
        }
    }
}
