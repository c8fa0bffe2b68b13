//! The hasher of keyed map-reduce's internal tables: a seeded folded-multiply hash, several times cheaper than SipHash on short keys.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Digits of pi, as arbitrary odd constants for the mixing.
const K1: u64 = 0x243f_6a88_85a3_08d3;
const K2: u64 = 0x1319_8a2e_0370_7345;

/// The full 128-bit product of `x` and `y`, folded to 64 bits.
#[inline(always)]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let product = u128::from(x) * u128::from(y);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Builds [`FoldHasher`]s from one random seed per map-reduce run.
///
/// The keyed tables of a run hash every key several times (combiner,
/// partition, merge), so the hash must be cheap. The seed comes from the
/// standard library's random keys, which makes collisions as hard to plan
/// as foldhash's (hashbrown's default): not cryptographic, but an input
/// cannot be crafted offline to collide in a run it has not seen.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FoldState {
    seed: u64,
}

impl FoldState {
    /// A fresh random seed.
    pub(crate) fn random() -> FoldState {
        FoldState {
            seed: RandomState::new().hash_one(K2) | 1,
        }
    }
}

impl BuildHasher for FoldState {
    type Hasher = FoldHasher;

    #[inline]
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher { acc: self.seed }
    }
}

/// A folded-multiply hasher in the style of foldhash and ahash's fallback.
#[derive(Clone, Debug)]
pub(crate) struct FoldHasher {
    acc: u64,
}

#[inline(always)]
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[inline(always)]
fn read_u32(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let len = bytes.len();
        let acc = self.acc.wrapping_add(len as u64).wrapping_mul(K1);
        // Up to 16 bytes, two overlapping reads cover every byte.
        let (a, b) = if len > 16 {
            let mut acc = acc;
            let mut at = 0;
            while len - at > 16 {
                acc = folded_multiply(read_u64(bytes, at) ^ acc, read_u64(bytes, at + 8) ^ K2);
                at += 16;
            }
            (read_u64(bytes, len - 16) ^ acc, read_u64(bytes, len - 8))
        } else if len >= 8 {
            (read_u64(bytes, 0), read_u64(bytes, len - 8))
        } else if len >= 4 {
            (read_u32(bytes, 0), read_u32(bytes, len - 4))
        } else if len > 0 {
            let spread = u64::from(bytes[0]) | u64::from(bytes[len / 2]) << 8;
            (spread | u64::from(bytes[len - 1]) << 16, 0)
        } else {
            (0, 0)
        };
        self.acc = folded_multiply(a ^ acc, b ^ K2);
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.acc = folded_multiply(self.acc ^ n, K1);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        folded_multiply(self.acc, K2 ^ self.acc.rotate_left(23))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn distinct_short_keys_rarely_collide() {
        let state = FoldState::random();
        let mut hashes = HashSet::new();
        let mut strings = HashSet::new();
        for a in b'a'..=b'z' {
            for b in b'a'..=b'z' {
                for len in 1..=20 {
                    let key: String = (0..len)
                        .map(|i| if i % 2 == 0 { a } else { b } as char)
                        .collect();
                    hashes.insert(state.hash_one(&key));
                    strings.insert(key);
                }
            }
        }
        for n in 0..100_000u64 {
            hashes.insert(state.hash_one(n));
        }
        let keys = strings.len() + 100_000;
        assert_eq!(hashes.len(), keys, "no 64-bit collision among {keys} keys");
    }

    #[test]
    fn seeds_differ_between_runs() {
        let (a, b) = (FoldState::random(), FoldState::random());
        assert_ne!(a.hash_one("word"), b.hash_one("word"));
        assert_eq!(a.hash_one("word"), a.hash_one("word"));
    }
}
