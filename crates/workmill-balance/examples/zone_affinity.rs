//! A strategy written by a user: send each task to a worker in the caller's zone, else use power of two choices.
//!
//! Run it with `cargo run -p workmill-balance --example zone_affinity`.

use workmill_balance::{Pool, PowerOfTwoChoices, ThreadWorker};
use workmill_core::{BalanceError, Balancer, Candidate, Outcome, Request, TaskError};

/// Prefers the least loaded available worker in the caller's zone (the
/// request's key); when none is available, any worker by power of two choices.
struct ZoneAffinity {
    /// The zone of each worker, by its index in the pool.
    zones: Vec<u64>,
    fallback: PowerOfTwoChoices,
}

impl Balancer for ZoneAffinity {
    fn pick(&mut self, candidates: &[Candidate], request: &Request) -> Result<usize, BalanceError> {
        if let Some(zone) = request.key {
            let local = candidates
                .iter()
                .filter(|c| c.is_available() && self.zones.get(c.index) == Some(&zone))
                .min_by_key(|c| c.load.in_flight());
            if let Some(worker) = local {
                return Ok(worker.index);
            }
        }
        // No zone given, or every worker of the zone is down or full.
        self.fallback.pick(candidates, request)
    }

    fn observe(&mut self, outcome: &Outcome) {
        self.fallback.observe(outcome);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const EU: u64 = 1;
    const US: u64 = 2;
    let pool = Pool::builder()
        .worker("eu-1", ThreadWorker::new(1, 16)?)
        .worker("eu-2", ThreadWorker::new(1, 16)?)
        .worker("us-1", ThreadWorker::new(1, 16)?)
        .balancer(ZoneAffinity {
            zones: vec![EU, EU, US],
            fallback: PowerOfTwoChoices::with_seed(1),
        })
        .build()?;

    let mut handles = Vec::new();
    for n in 0..30u64 {
        let zone = if n % 3 == 0 { US } else { EU };
        handles.push(pool.distribute_with(Request::keyed(zone), move || Ok::<_, TaskError>(n))?);
    }
    let total: u64 = handles
        .into_iter()
        .map(|h| h.wait())
        .sum::<Result<u64, _>>()?;
    assert_eq!(total, (0..30).sum());

    let stats = pool.stats();
    for worker in &stats {
        println!(
            "{:5} processed {:2}  mean service {:?}",
            worker.name, worker.processed, worker.mean_response_time
        );
    }
    // Every US caller's task ran in the US, every EU caller's in the EU.
    assert_eq!(stats[2].processed, 10);
    assert_eq!(stats[0].processed + stats[1].processed, 20);
    pool.shutdown();
    Ok(())
}
