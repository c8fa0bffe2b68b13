//! `Rendezvous`: highest-random-weight hashing, so each affinity key keeps going to the same worker.

use workmill_core::{BalanceError, Balancer, Candidate, Outcome, Request};

use super::{PowerOfTwoChoices, no_available_candidate};

/// Rendezvous (highest random weight) hashing on [`Request::key`].
///
/// Every (key, worker) pair gets a pseudo-random score, and a keyed request
/// goes to the available worker with the highest score. A key therefore
/// stays on one worker as long as that worker is available; when it is not,
/// the key moves to its second-highest worker, and when a worker leaves, only
/// the keys that lived on it move. Weighted workers score
/// `-weight / ln(u)` (Schindelhauer and Schomaker's weighted form), so each
/// gets a share of the keys proportional to its weight.
///
/// Requests without a key go to the fallback strategy, power of two choices
/// by default. Affinity ignores load: with uneven speeds it overloads the
/// slow workers, which is its price.
///
/// # Examples
///
/// ```
/// use workmill_balance::Rendezvous;
/// use workmill_core::{Balancer, Candidate, Load, Request};
///
/// let mut candidates: Vec<Candidate> = (0..5).map(|i| Candidate::new(i, Load::default())).collect();
/// let mut hashing = Rendezvous::new();
/// let home = hashing.pick(&candidates, &Request::keyed(42)).unwrap();
/// assert_eq!(hashing.pick(&candidates, &Request::keyed(42)), Ok(home));
///
/// // Another worker leaving does not move the key.
/// let other = (home + 1) % 5;
/// candidates[other].healthy = false;
/// assert_eq!(hashing.pick(&candidates, &Request::keyed(42)), Ok(home));
/// ```
#[derive(Clone, Debug)]
pub struct Rendezvous<B = PowerOfTwoChoices> {
    fallback: B,
}

impl Rendezvous {
    /// Rendezvous hashing with power of two choices for unkeyed requests.
    pub fn new() -> Rendezvous {
        Rendezvous {
            fallback: PowerOfTwoChoices::new(),
        }
    }
}

impl Default for Rendezvous {
    fn default() -> Rendezvous {
        Rendezvous::new()
    }
}

impl<B: Balancer> Rendezvous<B> {
    /// Rendezvous hashing with `fallback` for unkeyed requests.
    pub fn with_fallback(fallback: B) -> Rendezvous<B> {
        Rendezvous { fallback }
    }
}

/// A well-mixed 64-bit hash of a key and a worker index (splitmix64's finaliser).
fn mix(key: u64, worker: usize) -> u64 {
    let mut z = key ^ (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The weighted score `-weight / ln(u)` with `u` in (0, 1) from the hash.
fn weighted_score(hash: u64, weight: u32) -> f64 {
    let unit = ((hash >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(weight.max(1)) / unit.ln()
}

impl<B: Balancer> Balancer for Rendezvous<B> {
    fn pick(&mut self, candidates: &[Candidate], request: &Request) -> Result<usize, BalanceError> {
        let Some(key) = request.key else {
            return self.fallback.pick(candidates, request);
        };
        let available = candidates.iter().filter(|c| c.is_available());
        let Some(first) = available.clone().next() else {
            return Err(no_available_candidate(candidates));
        };
        let uniform = available.clone().all(|c| c.weight == first.weight);
        let best = if uniform {
            // Equal weights: the raw hash orders the same as the weighted score, without a logarithm.
            available.max_by_key(|c| mix(key, c.index)).map(|c| c.index)
        } else {
            let mut best: Option<(usize, f64)> = None;
            for c in available {
                let score = weighted_score(mix(key, c.index), c.weight);
                if best.is_none_or(|(_, top)| score > top) {
                    best = Some((c.index, score));
                }
            }
            best.map(|(index, _)| index)
        };
        best.ok_or_else(|| no_available_candidate(candidates))
    }

    fn observe(&mut self, outcome: &Outcome) {
        self.fallback.observe(outcome);
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use crate::strategy::test_support::idle;

    fn homes(hashing: &mut Rendezvous, candidates: &[Candidate], keys: u64) -> Vec<usize> {
        (0..keys)
            .map(|k| hashing.pick(candidates, &Request::keyed(k)).unwrap())
            .collect()
    }

    #[test]
    fn only_the_keys_of_a_leaving_worker_move() {
        let mut candidates = idle(8);
        let mut hashing = Rendezvous::new();
        let before = homes(&mut hashing, &candidates, 10_000);
        candidates[3].healthy = false;
        let after = homes(&mut hashing, &candidates, 10_000);
        for (b, a) in before.iter().zip(&after) {
            if *b == 3 {
                assert_ne!(*a, 3);
            } else {
                assert_eq!(a, b, "a key not on the leaving worker moved");
            }
        }
        let moved = before.iter().filter(|&&b| b == 3).count();
        assert!(
            (1_000..1_500).contains(&moved),
            "{moved} of 10000 keys lived on worker 3"
        );
    }

    #[test]
    fn keys_spread_in_proportion_to_weight() {
        let mut candidates = idle(3);
        candidates[0].weight = 2;
        let mut hashing = Rendezvous::new();
        let mut counts = [0usize; 3];
        for home in homes(&mut hashing, &candidates, 40_000) {
            counts[home] += 1;
        }
        assert!((19_000..21_000).contains(&counts[0]), "{counts:?}");
        assert!((9_000..11_000).contains(&counts[1]), "{counts:?}");
    }

    #[test]
    fn unkeyed_requests_use_the_fallback() {
        let mut hashing = Rendezvous::with_fallback(crate::RoundRobin::new());
        let candidates = idle(3);
        let picks: Vec<usize> = (0..3)
            .map(|_| hashing.pick(&candidates, &Request::default()).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2]);
    }
}
