//! `Balancer`: the small trait every load-balancing strategy implements, with its inputs (`Candidate`, `Request`) and feedback (`Outcome`).

use std::time::Duration;

use crate::error::BalanceError;
use crate::worker::Load;

/// One worker as a balancer sees it when choosing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// The worker's stable index in its pool; [`Outcome::worker`] refers to the same index.
    pub index: usize,
    /// Its load snapshot.
    pub load: Load,
    /// False while the pool's health tracking has ejected it or marked it unhealthy.
    pub healthy: bool,
    /// Its relative weight for weighted strategies; 1 when unweighted.
    pub weight: u32,
}

impl Candidate {
    /// A healthy candidate of weight 1.
    pub fn new(index: usize, load: Load) -> Candidate {
        Candidate {
            index,
            load,
            healthy: true,
            weight: 1,
        }
    }

    /// True when it is healthy and below its capacity, so it can take a job now.
    pub fn is_available(&self) -> bool {
        self.healthy && !self.load.is_saturated()
    }
}

/// What the balancer may know about the job being placed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// An affinity key (a user id, a shard); strategies that hash for affinity use it, others ignore it.
    pub key: Option<u64>,
}

impl Request {
    /// A request with an affinity key.
    pub fn keyed(key: u64) -> Request {
        Request { key: Some(key) }
    }
}

/// How a job placed on a worker went: the feedback a balancer learns from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The worker's index, as in [`Candidate::index`].
    pub worker: usize,
    /// Time from submission to completion.
    pub latency: Duration,
    /// False if the job failed.
    pub success: bool,
}

/// Chooses one worker among candidates, and learns from outcomes.
///
/// Implementations only compare metrics, so any `PartialOrd` score works;
/// incomparable values (NaN) must not panic. A strategy should skip
/// candidates that are not [`healthy`](Candidate::healthy), and return
/// [`BalanceError::NoHealthyWorkers`] when none is left, or
/// [`BalanceError::AllAtCapacity`] when every healthy one is saturated.
///
/// # Examples
///
/// A strategy that always picks the healthy worker with the fewest jobs:
///
/// ```
/// use workmill_core::{BalanceError, Balancer, Candidate, Load, Request};
///
/// struct Fewest;
///
/// impl Balancer for Fewest {
///     fn pick(&mut self, candidates: &[Candidate], _request: &Request) -> Result<usize, BalanceError> {
///         candidates
///             .iter()
///             .filter(|c| c.healthy)
///             .min_by_key(|c| c.load.in_flight())
///             .map(|c| c.index)
///             .ok_or(BalanceError::NoHealthyWorkers { total: candidates.len() })
///     }
/// }
///
/// let candidates = [
///     Candidate::new(0, Load { running: 3, ..Load::default() }),
///     Candidate::new(1, Load { running: 1, ..Load::default() }),
/// ];
/// assert_eq!(Fewest.pick(&candidates, &Request::default()), Ok(1));
/// ```
pub trait Balancer: Send {
    /// Chooses a worker for `request` among `candidates`; returns its [`Candidate::index`].
    fn pick(&mut self, candidates: &[Candidate], request: &Request) -> Result<usize, BalanceError>;

    /// Learns from a finished job. The default ignores outcomes.
    fn observe(&mut self, outcome: &Outcome) {
        let _ = outcome;
    }
}

impl<B: Balancer + ?Sized> Balancer for Box<B> {
    fn pick(&mut self, candidates: &[Candidate], request: &Request) -> Result<usize, BalanceError> {
        (**self).pick(candidates, request)
    }

    fn observe(&mut self, outcome: &Outcome) {
        (**self).observe(outcome);
    }
}
