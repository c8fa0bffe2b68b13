//! How an input is cut into chunks: `Chunking` (adaptive, fixed, per worker) and the splitter that applies it.

use std::num::NonZeroUsize;

/// How map-reduce cuts its input into chunks, each folded sequentially by one worker.
///
/// Every mode respects the length bounds set with
/// [`MapReduce::min_len`](crate::MapReduce::min_len) and
/// [`MapReduce::max_len`](crate::MapReduce::max_len) (the minimum wins when they conflict).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Chunking {
    /// Split only where other workers actually take work ("thief splitting",
    /// as rayon does): the input is halved `log2(threads) + 1` times, and a
    /// half that another worker stole gets that budget back, since a steal
    /// means a worker was idle. Even work ends in about two chunks per thread;
    /// uneven work is split further where idle workers find it. The default.
    #[default]
    Adaptive,
    /// Chunks of this many items (the last one may be shorter).
    Fixed(NonZeroUsize),
    /// `k` chunks per worker: chunks of `len / (threads * k)` items, rounded up.
    /// Even work spreads evenly, and `k > 1` leaves room to balance uneven work.
    PerWorker(NonZeroUsize),
}

impl Chunking {
    /// `k` chunks per worker, the usual choice: [`Chunking::PerWorker`] with `k = 4`.
    pub const PER_WORKER: Chunking = Chunking::PerWorker(NonZeroUsize::new(4).unwrap());

    /// [`Chunking::Fixed`] from a plain length; `None` for zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use workmill_mapreduce::Chunking;
    ///
    /// assert!(Chunking::fixed(1024).is_some());
    /// assert_eq!(Chunking::fixed(0), None);
    /// ```
    pub fn fixed(len: usize) -> Option<Chunking> {
        NonZeroUsize::new(len).map(Chunking::Fixed)
    }

    /// [`Chunking::PerWorker`] from a plain count; `None` for zero.
    pub fn per_worker(k: usize) -> Option<Chunking> {
        NonZeroUsize::new(k).map(Chunking::PerWorker)
    }
}

/// The splitting decision of one run, copied into every half as it recurses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Splitter {
    /// Chunk length for the fixed modes, or `None` for adaptive.
    chunk: Option<usize>,
    /// Adaptive: how many more times this piece may be halved without a steal.
    splits: usize,
    threads: usize,
    min: usize,
    max: usize,
}

impl Splitter {
    /// The splitter for an input of `len` items on a pool of `threads` threads.
    pub(crate) fn new(
        chunking: Chunking,
        len: usize,
        threads: usize,
        min: usize,
        max: usize,
    ) -> Splitter {
        let threads = threads.max(1);
        let min = min.max(1);
        let max = max.max(min);
        let chunk = match chunking {
            Chunking::Adaptive => None,
            Chunking::Fixed(n) => Some(n.get()),
            Chunking::PerWorker(k) => Some(len.div_ceil(threads.saturating_mul(k.get())).max(1)),
        };
        Splitter {
            chunk: chunk.map(|c| c.clamp(min, max)),
            splits: threads,
            threads,
            min,
            max,
        }
    }

    /// Where to cut a piece of `len` items, or `None` to fold it whole.
    /// `migrated` says the piece was stolen by another worker.
    #[inline]
    pub(crate) fn split(&mut self, len: usize, migrated: bool) -> Option<usize> {
        if let Some(chunk) = self.chunk {
            // Cut on a chunk boundary, so every chunk but the last is full.
            return (len > chunk).then(|| len.div_ceil(chunk) / 2 * chunk);
        }
        if len / 2 < self.min {
            return None;
        }
        if migrated {
            self.splits = self.threads.max(self.splits / 2);
        } else if self.splits > 0 {
            self.splits /= 2;
        } else if len <= self.max {
            return None;
        }
        Some(len / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunk lengths a splitter cuts `len` into when nothing is ever stolen.
    fn chunks(mut splitter: Splitter, len: usize, out: &mut Vec<usize>) {
        match splitter.split(len, false) {
            Some(mid) => {
                chunks(splitter, mid, out);
                chunks(splitter, len - mid, out);
            }
            None => out.push(len),
        }
    }

    fn chunk_lengths(
        chunking: Chunking,
        len: usize,
        threads: usize,
        min: usize,
        max: usize,
    ) -> Vec<usize> {
        let mut out = Vec::new();
        chunks(
            Splitter::new(chunking, len, threads, min, max),
            len,
            &mut out,
        );
        out
    }

    #[test]
    fn fixed_chunks_are_full_but_the_last() {
        let lengths = chunk_lengths(Chunking::fixed(10).unwrap(), 95, 2, 1, usize::MAX);
        assert_eq!(lengths, [10, 10, 10, 10, 10, 10, 10, 10, 10, 5]);
    }

    #[test]
    fn per_worker_makes_k_chunks_per_thread() {
        let lengths = chunk_lengths(Chunking::PER_WORKER, 8_000, 2, 1, usize::MAX);
        assert_eq!(lengths, vec![1_000; 8]);
    }

    #[test]
    fn adaptive_without_steals_makes_about_one_chunk_per_thread() {
        let lengths = chunk_lengths(Chunking::Adaptive, 1 << 20, 4, 1, usize::MAX);
        assert_eq!(
            lengths.len(),
            8,
            "a budget of 4 allows three levels of halving"
        );
        assert_eq!(lengths.iter().sum::<usize>(), 1 << 20);
    }

    #[test]
    fn bounds_hold_and_the_minimum_wins() {
        let lengths = chunk_lengths(Chunking::Adaptive, 1_000, 2, 1, 100);
        assert!(lengths.iter().all(|&l| l <= 100), "{lengths:?}");
        let lengths = chunk_lengths(Chunking::fixed(1).unwrap(), 100, 2, 30, 10);
        assert_eq!(lengths, [30, 30, 30, 10]);
        let lengths = chunk_lengths(Chunking::Adaptive, 100, 2, 60, usize::MAX);
        assert_eq!(lengths, [100]);
    }

    #[test]
    fn a_steal_refills_the_budget() {
        let mut splitter = Splitter::new(Chunking::Adaptive, 1 << 20, 2, 1, usize::MAX);
        assert!(splitter.split(1 << 20, false).is_some());
        assert!(splitter.split(1 << 19, false).is_some());
        assert_eq!(splitter.split(1 << 18, false), None);
        assert_eq!(splitter.split(1 << 18, true), Some(1 << 17));
    }
}
