//! `RetryPolicy` and `Backoff`: how many attempts a task gets, how long it waits between them, and how far it is demoted.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::InvalidRetryPolicy;
use crate::priority::Priority;
use crate::rng;

/// How long to wait before retry number `n` (the first retry is `n = 1`).
///
/// Every variant is *monotone* (a later retry never waits less before jitter)
/// and *capped*. Jitter is subtractive: a jittered delay lies in
/// `[d * (1 - jitter), d]`, so it never exceeds the cap and spreads retries
/// of tasks that failed together so they do not return together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Backoff {
    /// Retry as soon as a worker is free.
    Immediate,
    /// The same delay before every retry.
    Fixed(Duration),
    /// `initial * factor^(n-1)`, capped at `max`. The seed's `2 ** attempts` seconds is
    /// `Exponential { initial: 2 s, factor: 2.0, max: .. }`.
    Exponential {
        /// Delay before the first retry.
        initial: Duration,
        /// Growth per retry; at least 1.0.
        factor: f64,
        /// No delay is longer than this.
        max: Duration,
    },
}

impl Backoff {
    /// Exponential backoff doubling from `initial` up to `max`.
    pub fn exponential(initial: Duration, max: Duration) -> Backoff {
        Backoff::Exponential {
            initial,
            factor: 2.0,
            max,
        }
    }

    /// The delay before retry number `retry` (1-based), without jitter.
    ///
    /// Never panics: the arithmetic saturates, and an invalid factor (below 1,
    /// or not finite) is read as 1, which [`RetryPolicy::validate`] reports.
    pub fn base_delay(&self, retry: u32) -> Duration {
        match *self {
            Backoff::Immediate => Duration::ZERO,
            Backoff::Fixed(d) => d,
            Backoff::Exponential {
                initial,
                factor,
                max,
            } => {
                let factor = if factor.is_finite() && factor >= 1.0 {
                    factor
                } else {
                    1.0
                };
                if initial.is_zero() {
                    return Duration::ZERO;
                }
                // Past i32::MAX retries the exponent stays there; factor^that is infinite for
                // any factor above 1, so the cap applies, as the formula says.
                let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
                let secs = initial.as_secs_f64() * factor.powi(exponent);
                if !secs.is_finite() || secs >= max.as_secs_f64() {
                    max
                } else {
                    Duration::try_from_secs_f64(secs).unwrap_or(max).min(max)
                }
            }
        }
    }
}

impl Default for Backoff {
    /// One second, doubling, capped at five minutes.
    fn default() -> Backoff {
        Backoff::exponential(Duration::from_secs(1), Duration::from_secs(300))
    }
}

/// What a backend does after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Run the task again after `delay`, at `priority`.
    Retry {
        /// How long the task waits before it is eligible again.
        delay: Duration,
        /// The task's priority for its next attempt (demoted if the policy says so).
        priority: Priority,
    },
    /// No attempts left, or the error was permanent: the task is dead-lettered.
    GiveUp,
}

/// How many attempts a task gets and what happens between them.
///
/// The policy travels with the task into durable backends, so a worker process
/// on another machine applies the submitter's policy. Backends do not decide on
/// their own: they call [`RetryPolicy::decide`], so every backend agrees.
///
/// # Examples
///
/// The seed's unreliable tasks: three attempts, waiting 2 s then 4 s, each retry
/// ten priority levels lower.
///
/// ```
/// use std::time::Duration;
/// use workmill_core::{Backoff, Priority, RetryDecision, RetryPolicy};
///
/// let policy = RetryPolicy::new(3)
///     .backoff(Backoff::exponential(Duration::from_secs(2), Duration::from_secs(60)))
///     .jitter(0.0)
///     .demote_by(10);
///
/// let after_first = policy.decide(1, false, Priority::new(5), 0.5);
/// assert_eq!(
///     after_first,
///     RetryDecision::Retry { delay: Duration::from_secs(2), priority: Priority::new(15) }
/// );
/// assert_eq!(policy.decide(3, false, Priority::new(25), 0.5), RetryDecision::GiveUp);
/// assert_eq!(policy.decide(1, true, Priority::new(5), 0.5), RetryDecision::GiveUp, "permanent");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    max_attempts: u32,
    backoff: Backoff,
    jitter: f64,
    demote_by: u16,
}

impl RetryPolicy {
    /// A policy allowing `max_attempts` attempts in all (the first run included), with the
    /// default backoff (1 s doubling to 5 min), 10% jitter and no demotion.
    pub fn new(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            backoff: Backoff::default(),
            jitter: 0.1,
            demote_by: 0,
        }
    }

    /// Exactly one attempt: a failure dead-letters the task.
    pub fn never() -> RetryPolicy {
        RetryPolicy::new(1)
    }

    /// Sets the delay schedule between attempts.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> RetryPolicy {
        self.backoff = backoff;
        self
    }

    /// Sets the jitter fraction, from 0.0 (none) to 1.0 (anywhere between zero and the delay).
    #[must_use]
    pub fn jitter(mut self, fraction: f64) -> RetryPolicy {
        self.jitter = fraction;
        self
    }

    /// Sets how many priority levels each retry loses (the seed uses 10).
    #[must_use]
    pub fn demote_by(mut self, step: u16) -> RetryPolicy {
        self.demote_by = step;
        self
    }

    /// Attempts allowed in all, the first run included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The delay schedule.
    pub fn backoff_schedule(&self) -> &Backoff {
        &self.backoff
    }

    /// The jitter fraction.
    pub fn jitter_fraction(&self) -> f64 {
        self.jitter
    }

    /// Priority levels lost per retry.
    pub fn demotion_step(&self) -> u16 {
        self.demote_by
    }

    /// Checks that the policy makes sense: at least one attempt, jitter within
    /// `[0, 1]`, and an exponential factor that is finite and at least 1.
    pub fn validate(&self) -> Result<(), InvalidRetryPolicy> {
        if self.max_attempts == 0 {
            return Err(InvalidRetryPolicy::new(
                "max_attempts is 0; a task needs at least one attempt",
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(InvalidRetryPolicy::new(
                "jitter must lie between 0.0 and 1.0",
            ));
        }
        if let Backoff::Exponential {
            factor,
            initial,
            max,
        } = self.backoff
        {
            if !factor.is_finite() || factor < 1.0 {
                return Err(InvalidRetryPolicy::new(
                    "the exponential factor must be finite and at least 1.0",
                ));
            }
            if initial > max {
                return Err(InvalidRetryPolicy::new(
                    "the exponential initial delay exceeds its cap",
                ));
            }
        }
        Ok(())
    }

    /// The delay before retry number `retry` with jitter applied, where `random` is a
    /// uniform sample from `[0, 1)`: the result lies in `[d * (1 - jitter), d]`.
    pub fn delay(&self, retry: u32, random: f64) -> Duration {
        let base = self.backoff.base_delay(retry);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // `mul_f64` panics when the product does not fit a `Duration`, which a factor of
        // 1.0 gives for bases within a rounding of `Duration::MAX`: the jitter only shortens.
        Duration::try_from_secs_f64(base.as_secs_f64() * (1.0 - jitter * random))
            .map_or(base, |delay| delay.min(base))
    }

    /// What to do after attempt number `attempts_made` failed.
    ///
    /// `permanent` is true when the error says retrying cannot help (a
    /// permanent `TaskError`, an undecodable payload, a corrupt record).
    /// `random` is a uniform sample from `[0, 1)` for the jitter, passed in so
    /// that the decision is reproducible in tests.
    pub fn decide(
        &self,
        attempts_made: u32,
        permanent: bool,
        current: Priority,
        random: f64,
    ) -> RetryDecision {
        if permanent || attempts_made >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        RetryDecision::Retry {
            delay: self.delay(attempts_made, random),
            priority: current.demoted(self.demote_by),
        }
    }

    /// [`decide`](RetryPolicy::decide) with a random jitter sample from a fast thread-local generator.
    pub fn decide_now(
        &self,
        attempts_made: u32,
        permanent: bool,
        current: Priority,
    ) -> RetryDecision {
        self.decide(attempts_made, permanent, current, rng::unit_f64())
    }
}

impl Default for RetryPolicy {
    /// Three attempts, as in the seed, with the default backoff and 10% jitter.
    fn default() -> RetryPolicy {
        RetryPolicy::new(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_backoff() -> impl Strategy<Value = Backoff> {
        prop_oneof![
            Just(Backoff::Immediate),
            (0u64..10_000).prop_map(|ms| Backoff::Fixed(Duration::from_millis(ms))),
            (0u64..10_000, 1.0f64..8.0, 0u64..1_000_000).prop_map(|(i, f, m)| {
                Backoff::Exponential {
                    initial: Duration::from_millis(i),
                    factor: f,
                    max: Duration::from_millis(i + m),
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn backoff_is_monotone_and_capped(backoff in arb_backoff(), retries in 1u32..200) {
            let mut previous = Duration::ZERO;
            for n in 1..=retries {
                let d = backoff.base_delay(n);
                prop_assert!(d >= previous, "retry {n}: {d:?} < {previous:?}");
                if let Backoff::Exponential { max, .. } = backoff {
                    prop_assert!(d <= max, "retry {n}: {d:?} over cap {max:?}");
                }
                previous = d;
            }
        }

        #[test]
        fn jitter_stays_within_bounds(
            backoff in arb_backoff(),
            jitter in 0.0f64..=1.0,
            retry in 1u32..64,
            random in 0.0f64..1.0,
        ) {
            let policy = RetryPolicy::new(100).backoff(backoff.clone()).jitter(jitter);
            let base = backoff.base_delay(retry);
            let d = policy.delay(retry, random);
            prop_assert!(d <= base);
            // Duration arithmetic rounds to nanoseconds; allow one nanosecond.
            prop_assert!(d + Duration::from_nanos(1) >= base.mul_f64(1.0 - jitter));
        }

        #[test]
        fn decide_retries_exactly_until_the_last_attempt(max in 1u32..20, step in 0u16..50) {
            let policy = RetryPolicy::new(max).demote_by(step);
            let mut priority = Priority::NORMAL;
            for attempt in 1..=max {
                match policy.decide(attempt, false, priority, 0.3) {
                    RetryDecision::Retry { priority: next, .. } => {
                        prop_assert!(attempt < max);
                        prop_assert_eq!(next, priority.demoted(step));
                        priority = next;
                    }
                    RetryDecision::GiveUp => prop_assert_eq!(attempt, max),
                }
            }
        }
    }

    #[test]
    fn exponential_doubles_then_caps() {
        let b = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(10));
        let delays: Vec<u64> = (1..=6).map(|n| b.base_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn delays_near_duration_max_do_not_panic() {
        for base in [Duration::MAX, Duration::from_secs(u64::MAX)] {
            let fixed = RetryPolicy::new(3).backoff(Backoff::Fixed(base));
            for (jitter, random) in [(0.0, 0.5), (0.1, 0.0), (0.5, 0.999)] {
                let delay = fixed.clone().jitter(jitter).delay(1, random);
                assert!(delay <= base && delay >= base.mul_f64(0.49), "{delay:?}");
            }
            assert!(matches!(
                fixed.jitter(0.0).decide(1, false, Priority::NORMAL, 0.5),
                RetryDecision::Retry { .. }
            ));
        }
        let uncapped = Backoff::exponential(Duration::from_secs(1), Duration::MAX);
        let policy = RetryPolicy::new(100).backoff(uncapped).jitter(0.0);
        assert_eq!(policy.delay(70, 0.0), Duration::MAX);
    }

    #[test]
    fn the_formula_holds_for_any_retry_number() {
        // A factor near 1 reaches its cap only after a thousand retries.
        let slow = Backoff::Exponential {
            initial: Duration::from_secs(1),
            factor: 1.005,
            max: Duration::from_secs(3_600),
        };
        let at_1500 = slow.base_delay(1_500).as_secs_f64();
        assert!((at_1500 - 1.005f64.powi(1_499)).abs() < 0.01, "{at_1500}");
        assert_eq!(slow.base_delay(1_700), Duration::from_secs(3_600));
        // Zero times anything is zero, however far the factor overflows.
        let zero = Backoff::Exponential {
            initial: Duration::ZERO,
            factor: 10.0,
            max: Duration::from_secs(60),
        };
        assert_eq!(zero.base_delay(400), Duration::ZERO);
        assert_eq!(zero.base_delay(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn invalid_policies_are_reported() {
        assert!(RetryPolicy::new(0).validate().is_err());
        assert!(RetryPolicy::new(3).jitter(1.5).validate().is_err());
        assert!(RetryPolicy::new(3).jitter(f64::NAN).validate().is_err());
        let shrinking = Backoff::Exponential {
            initial: Duration::from_secs(1),
            factor: 0.5,
            max: Duration::from_secs(5),
        };
        let err = RetryPolicy::new(3)
            .backoff(shrinking.clone())
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("factor"), "{err}");
        // Even an invalid factor never panics and stays capped.
        assert!(shrinking.base_delay(40) <= Duration::from_secs(5));
        assert!(RetryPolicy::default().validate().is_ok());
    }

    #[test]
    fn permanent_errors_give_up_at_once() {
        let policy = RetryPolicy::new(10);
        assert_eq!(
            policy.decide(1, true, Priority::NORMAL, 0.0),
            RetryDecision::GiveUp
        );
    }
}
