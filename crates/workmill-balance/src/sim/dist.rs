//! Samplers for the simulator: exponential gaps and service times, lognormal, from a seeded `fastrand::Rng`.

use super::profile::ServiceShape;

/// An independent generator for stream `stream` of a run seeded with `seed`.
///
/// fastrand's generator (wyrand) walks its state by a fixed increment, so two
/// generators seeded with nearby integers produce correlated streams: seeding
/// arrivals with `seed ^ 1` and job sizes with `seed ^ 2` biased waits by up to
/// 20%. Each seed is therefore scrambled through splitmix64's finaliser first.
pub(crate) fn stream(seed: u64, stream: u64) -> fastrand::Rng {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    fastrand::Rng::with_seed(z ^ (z >> 31))
}

/// An exponential sample with the given mean.
pub(crate) fn exponential(rng: &mut fastrand::Rng, mean: f64) -> f64 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    -(1.0 - rng.f64()).ln() * mean
}

/// A standard normal sample (Box-Muller).
pub(crate) fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64();
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A job's size relative to the worker's mean service time: mean 1, spread by `shape`.
pub(crate) fn work(rng: &mut fastrand::Rng, shape: ServiceShape) -> f64 {
    match shape {
        ServiceShape::Exponential => exponential(rng, 1.0),
        ServiceShape::Deterministic => 1.0,
        ServiceShape::LogNormal { sigma } => {
            // exp(mu + sigma Z) has mean exp(mu + sigma^2 / 2); choose mu for mean 1.
            (-sigma * sigma / 2.0 + sigma * standard_normal(rng)).exp()
        }
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;

    fn mean_and_cv(samples: &[f64]) -> (f64, f64) {
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn work_has_mean_one_and_the_shapes_spread() {
        let mut rng = fastrand::Rng::with_seed(1);
        let draw = |rng: &mut fastrand::Rng, shape| {
            (0..200_000).map(|_| work(rng, shape)).collect::<Vec<_>>()
        };
        let (mean, cv) = mean_and_cv(&draw(&mut rng, ServiceShape::Exponential));
        assert!(
            (mean - 1.0).abs() < 0.01 && (cv - 1.0).abs() < 0.02,
            "{mean} {cv}"
        );
        let (mean, cv) = mean_and_cv(&draw(&mut rng, ServiceShape::Deterministic));
        assert!(mean == 1.0 && cv == 0.0);
        let sigma: f64 = 0.5;
        let (mean, cv) = mean_and_cv(&draw(&mut rng, ServiceShape::LogNormal { sigma }));
        let expected_cv = (sigma.powi(2).exp() - 1.0).sqrt();
        assert!(
            (mean - 1.0).abs() < 0.01 && (cv - expected_cv).abs() < 0.02,
            "{mean} {cv}"
        );
    }
}
