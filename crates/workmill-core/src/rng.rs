//! A small, fast, thread-local pseudo-random generator for jitter; not for anything that needs to be unpredictable.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

/// A non-zero seed from the operating system's per-process hash keys.
fn seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0x9E37_79B9_7F4A_7C15);
    hasher.finish() | 1
}

/// The next value of a xorshift64* generator: fast and well spread, which is all jitter needs.
pub(crate) fn next_u64() -> u64 {
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A uniform sample from `[0, 1)`.
pub(crate) fn unit_f64() -> f64 {
    // The top 53 bits fill an f64 mantissa exactly.
    (next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_lie_in_the_unit_interval_and_spread() {
        let samples: Vec<f64> = (0..10_000).map(|_| unit_f64()).collect();
        assert!(samples.iter().all(|x| (0.0..1.0).contains(x)));
        let below_half = samples.iter().filter(|&&x| x < 0.5).count();
        assert!(
            (4_000..6_000).contains(&below_half),
            "{below_half} of 10000 below 0.5"
        );
    }
}
