//! The seed's health score: one number from 0 to 1 (higher is healthier) built from error rate, load and response time.

use std::time::Duration;

/// The seed's health score, `(error + load + response) / 3`, each part a penalty
/// from 1 (perfect) down to a floor:
///
/// - error: `1 - min(0.8, 2 * error_rate)`;
/// - load: `1 - min(0.5, jobs_in_flight / 10)`;
/// - response: `1 - min(0.5, mean_response_seconds / 2)`.
///
/// A worker with no response time measured yet counts as responding instantly.
/// Because of the floors the score never drops below 0.4, so the seed's
/// "unhealthy below 0.3" rule only matters with other weights; workmill keeps
/// the formula as written and does its ejections with
/// [`HealthTracker`](crate::HealthTracker) instead.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workmill_balance::health_score;
///
/// assert_eq!(health_score(0.0, 0, None), 1.0);
/// // 30% errors, 4 jobs, 1 s mean: (0.4 + 0.6 + 0.5) / 3.
/// let score = health_score(0.3, 4, Some(Duration::from_secs(1)));
/// assert!((score - 0.5).abs() < 1e-9);
/// ```
pub fn health_score(error_rate: f64, in_flight: usize, mean_response: Option<Duration>) -> f64 {
    health_score_seconds(
        error_rate,
        in_flight,
        mean_response.map(|d| d.as_secs_f64()),
    )
}

/// [`health_score`] with the response time in seconds, for the hot path.
pub(crate) fn health_score_seconds(
    error_rate: f64,
    in_flight: usize,
    mean_response: Option<f64>,
) -> f64 {
    let error_rate = if error_rate.is_finite() {
        error_rate.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let error_penalty = 1.0 - (error_rate * 2.0).min(0.8);
    let load_penalty = 1.0 - (in_flight as f64 / 10.0).min(0.5);
    let response = mean_response.unwrap_or(0.0);
    let response_penalty = 1.0 - (response / 2.0).min(0.5);
    (error_penalty + load_penalty + response_penalty) / 3.0
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;

    #[test]
    fn floors_hold_and_bad_rates_count_as_failing() {
        let worst = health_score(1.0, 1_000, Some(Duration::from_secs(3_600)));
        assert!((worst - 0.4).abs() < 1e-9);
        assert_eq!(health_score(f64::NAN, 0, None), health_score(1.0, 0, None));
        assert!(health_score(0.1, 1, None) > health_score(0.2, 1, None));
        assert!(health_score(0.0, 1, None) > health_score(0.0, 2, None));
    }
}
