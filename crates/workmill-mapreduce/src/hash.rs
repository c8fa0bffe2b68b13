//! Keyed map-reduce's hashing: a seeded folded-multiply hash, several times cheaper than SipHash on short keys, computed once per pair and carried with the key.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

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
/// A keyed run hashes every pair it maps, so the hash must be cheap. The
/// hash is taken once and carried in a [`Hashed`] key through the chunk's
/// table, the choice of partition and the merge. The seed comes from the
/// standard library's random keys, which makes collisions as hard to plan
/// as foldhash's (hashbrown's default): not cryptographic, but an input
/// cannot be crafted offline to collide in a run it has not seen.
///
/// As in foldhash, both operands of every multiply that takes the key's
/// bytes are masked by the seed: the accumulator, which starts from it, and
/// a second secret drawn with it. A product is zero when either operand is,
/// and a zero product forgets everything hashed before; were one operand the
/// key's bytes against a constant, keys holding that constant would erase
/// their own differences and collide under every seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FoldState {
    seed: u64,
    secret: u64,
}

impl FoldState {
    /// A fresh random seed and secret.
    pub(crate) fn random() -> FoldState {
        let keys = RandomState::new();
        FoldState {
            seed: keys.hash_one(K2) | 1,
            secret: keys.hash_one(K1),
        }
    }
}

impl BuildHasher for FoldState {
    type Hasher = FoldHasher;

    #[inline]
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher {
            acc: self.seed,
            secret: self.secret,
        }
    }
}

/// A folded-multiply hasher in the style of foldhash and ahash's fallback.
#[derive(Clone, Debug)]
pub(crate) struct FoldHasher {
    acc: u64,
    /// Masks the operand of each multiply that the accumulator does not.
    secret: u64,
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
                acc = folded_multiply(
                    read_u64(bytes, at) ^ acc,
                    read_u64(bytes, at + 8) ^ self.secret,
                );
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
        self.acc = folded_multiply(a ^ acc, b ^ self.secret);
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

/// A key with its hash, taken once: the tables it goes into ([`PassThrough`])
/// and the choice of its partition read the hash instead of hashing again.
#[derive(Debug)]
pub(crate) struct Hashed<K> {
    hash: u64,
    pub(crate) key: K,
}

impl<K: Hash> Hashed<K> {
    #[inline]
    pub(crate) fn new(state: &FoldState, key: K) -> Hashed<K> {
        Hashed {
            hash: state.hash_one(&key),
            key,
        }
    }
}

impl<K> Hashed<K> {
    /// The hash partition of the key among `count`, by a multiply-shift.
    ///
    /// The hash is rotated first: the tables read its low bits (the bucket)
    /// and its top seven (the tag every probe compares). Taken from those,
    /// the partition would leave the keys of one partition with a few tags
    /// in common, and each probe would compare many keys.
    #[inline]
    pub(crate) fn partition(&self, count: usize) -> usize {
        ((u128::from(self.hash.rotate_left(32)) * count as u128) >> 64) as usize
    }
}

impl<K> Hash for Hashed<K> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<K: PartialEq> PartialEq for Hashed<K> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        // Different hashes rule out equal keys without comparing them.
        self.hash == other.hash && self.key == other.key
    }
}

impl<K: Eq> Eq for Hashed<K> {}

/// The tables of [`Hashed`] keys: the hash is the key's own, passed through.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PassThrough;

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;

    #[inline]
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

/// Returns the one `u64` a [`Hashed`] key writes.
#[derive(Clone, Debug)]
pub(crate) struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    /// Only `Hashed` keys go into these tables, and they write one `u64`;
    /// bytes would still be hashed, by the folded multiply (unseeded).
    fn write(&mut self, bytes: &[u8]) {
        let mut inner = FoldHasher {
            acc: self.0,
            secret: K2,
        };
        inner.write(bytes);
        self.0 = inner.finish();
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
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
    fn hashed_keys_pass_their_hash_through_and_compare_by_key() {
        let state = FoldState::random();
        let word = Hashed::new(&state, "word");
        assert_eq!(PassThrough.hash_one(&word), state.hash_one("word"));
        assert_eq!(word, Hashed::new(&state, "word"));
        assert_ne!(word, Hashed::new(&state, "other"));
        // Equal hashes alone do not make keys equal.
        let forged = Hashed {
            hash: word.hash,
            key: "other",
        };
        assert_ne!(word, forged);
        assert_ne!(PassThrough.hash_one("a"), PassThrough.hash_one("b"));
    }

    #[test]
    fn partitions_are_even_and_keep_the_tags_of_their_keys_apart() {
        let state = FoldState::random();
        let count = 64;
        let mut sizes = vec![0usize; count];
        let mut tags_in_first = HashSet::new();
        for n in 0..64_000u64 {
            let key = Hashed::new(&state, n);
            let partition = key.partition(count);
            sizes[partition] += 1;
            if partition == 0 {
                // The tag std's tables compare on every probe.
                tags_in_first.insert(key.hash >> 57);
            }
        }
        assert!(
            sizes.iter().all(|&n| (800..1_200).contains(&n)),
            "{sizes:?}"
        );
        // Partitions cut from the top bits would leave this one two tags.
        assert!(
            tags_in_first.len() > 100,
            "{} of 128 tags",
            tags_in_first.len()
        );
    }

    #[test]
    fn keys_holding_a_constant_of_the_hash_still_spread_and_depend_on_the_seed() {
        // Bytes equal to a mixing constant, where an unmasked operand would
        // meet it: the high half of a u128 or the last 8 of 16 bytes, bytes
        // 8..16 of a longer key (a block), and the last 8 of a longer key.
        const K2_BYTES: [u8; 8] = K2.to_le_bytes();
        let kinds: [fn(u64) -> Vec<u8>; 3] = [
            |i| [&i.to_le_bytes()[..], &K2_BYTES].concat(),
            |i| [&i.to_le_bytes()[..], &K2_BYTES, &[7; 8]].concat(),
            |i| [&i.to_le_bytes()[..], &[7; 8], &K2_BYTES].concat(),
        ];
        let (state, other) = (FoldState::random(), FoldState::random());
        let mut by_kind: Vec<Vec<u64>> = vec![Vec::new(); 5];
        for i in 0..1_000u64 {
            let wide = u128::from(K2) << 64 | u128::from(i);
            let octets: [u8; 16] = kinds[0](i).try_into().unwrap();
            by_kind[0].push(state.hash_one(wide));
            by_kind[1].push(state.hash_one(octets));
            by_kind[2].push(state.hash_one(std::net::Ipv6Addr::from(octets)));
            by_kind[3].push(state.hash_one(kinds[1](i)));
            by_kind[4].push(state.hash_one(kinds[2](i)));
        }
        for (kind, hashes) in by_kind.iter().enumerate() {
            let distinct: HashSet<u64> = hashes.iter().copied().collect();
            assert_eq!(distinct.len(), 1_000, "kind {kind}");
            let partitions: HashSet<usize> = hashes
                .iter()
                .map(|&hash| Hashed { hash, key: () }.partition(64))
                .collect();
            assert!(partitions.len() > 48, "kind {kind}: {partitions:?}");
        }
        let wide = u128::from(K2) << 64;
        assert_ne!(state.hash_one(wide), other.hash_one(wide));
        assert_ne!(state.hash_one(kinds[2](0)), other.hash_one(kinds[2](0)));
    }

    #[test]
    fn seeds_differ_between_runs() {
        let (a, b) = (FoldState::random(), FoldState::random());
        assert_ne!(a.hash_one("word"), b.hash_one("word"));
        assert_eq!(a.hash_one("word"), a.hash_one("word"));
    }
}
