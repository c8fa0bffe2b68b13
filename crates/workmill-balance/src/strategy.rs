//! The built-in strategies, one per file, and the helpers a user's own strategy can share with them.
//!
//! Every strategy implements core's [`Balancer`](workmill_core::Balancer):
//! it picks only [available](workmill_core::Candidate::is_available)
//! candidates (healthy and below capacity) and explains a failed pick with
//! [`no_available_candidate`].

mod adaptive;
mod least_loaded;
mod peak_ewma;
mod power_of_two;
mod random;
mod rendezvous;
mod round_robin;
mod shortest_expected_delay;
mod weighted_round_robin;

pub use adaptive::{Adaptive, AdaptiveWeights};
pub use least_loaded::LeastLoaded;
pub use peak_ewma::PeakEwma;
pub use power_of_two::PowerOfTwoChoices;
pub use random::Random;
pub use rendezvous::Rendezvous;
pub use round_robin::RoundRobin;
pub use shortest_expected_delay::ShortestExpectedDelay;
pub use weighted_round_robin::WeightedRoundRobin;

use workmill_core::{BalanceError, Candidate};

/// Why no candidate can be picked: no workers at all, none healthy, or every
/// healthy one at capacity.
///
/// # Examples
///
/// ```
/// use workmill_balance::no_available_candidate;
/// use workmill_core::{BalanceError, Candidate, Load};
///
/// let full = Load { running: 2, capacity: 2, ..Load::default() };
/// let mut sick = Candidate::new(1, Load::default());
/// sick.healthy = false;
/// assert_eq!(no_available_candidate(&[]), BalanceError::NoWorkers);
/// assert_eq!(
///     no_available_candidate(&[sick]),
///     BalanceError::NoHealthyWorkers { total: 1 }
/// );
/// assert_eq!(
///     no_available_candidate(&[Candidate::new(0, full), sick]),
///     BalanceError::AllAtCapacity { healthy: 1 }
/// );
/// ```
pub fn no_available_candidate(candidates: &[Candidate]) -> BalanceError {
    if candidates.is_empty() {
        return BalanceError::NoWorkers;
    }
    let healthy = candidates.iter().filter(|c| c.healthy).count();
    if healthy == 0 {
        BalanceError::NoHealthyWorkers {
            total: candidates.len(),
        }
    } else {
        BalanceError::AllAtCapacity { healthy }
    }
}

/// A slot for per-worker state, indexed by [`Candidate::index`], grown on first sight.
pub(crate) fn slot<T: Default>(states: &mut Vec<T>, index: usize) -> &mut T {
    if index >= states.len() {
        states.resize_with(index + 1, T::default);
    }
    &mut states[index]
}

/// Positions `0..len` starting at `start` and wrapping, so that ties between
/// equal candidates fall to a different one on each pick.
pub(crate) fn rotated(start: usize, len: usize) -> impl Iterator<Item = usize> {
    let start = if start < len { start } else { 0 };
    (start..len).chain(0..start)
}

/// The next starting position after `start` among `len`, wrapping without a division.
pub(crate) fn advance(start: usize, len: usize) -> usize {
    if start + 1 < len { start + 1 } else { 0 }
}

#[cfg(all(test, not(workmill_loom)))]
pub(crate) mod test_support {
    use workmill_core::{Candidate, Load};

    /// Healthy candidates, one per entry, with that many jobs in flight and no capacity limit.
    pub(crate) fn loaded(in_flight: &[usize]) -> Vec<Candidate> {
        in_flight
            .iter()
            .enumerate()
            .map(|(index, &running)| {
                Candidate::new(
                    index,
                    Load {
                        running,
                        ..Load::default()
                    },
                )
            })
            .collect()
    }

    /// `n` idle healthy candidates.
    pub(crate) fn idle(n: usize) -> Vec<Candidate> {
        loaded(&vec![0; n])
    }
}
