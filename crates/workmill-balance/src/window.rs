//! `Window`: the last N samples with their running sum, so a windowed mean costs O(1) per sample.

/// The most recent `len` samples of a value and their sum.
///
/// Pushing past `len` drops the oldest sample. The sum is kept incrementally
/// and recomputed from the samples every `len` pushes, so floating-point
/// drift cannot build up over a long run.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    samples: Vec<f64>,
    next: usize,
    filled: usize,
    sum: f64,
    pushes_since_resum: usize,
}

impl Window {
    /// A window of `len` samples; `len` 0 is read as 1.
    pub(crate) fn new(len: usize) -> Window {
        Window {
            samples: vec![0.0; len.max(1)],
            next: 0,
            filled: 0,
            sum: 0.0,
            pushes_since_resum: 0,
        }
    }

    pub(crate) fn push(&mut self, value: f64) {
        let len = self.samples.len();
        if self.filled == len {
            self.sum -= self.samples[self.next];
        } else {
            self.filled += 1;
        }
        self.samples[self.next] = value;
        self.sum += value;
        self.next = (self.next + 1) % len;
        self.pushes_since_resum += 1;
        if self.pushes_since_resum >= len {
            self.pushes_since_resum = 0;
            self.sum = self.samples[..self.filled].iter().sum();
        }
    }

    /// Samples held, at most the window's length.
    pub(crate) fn count(&self) -> usize {
        self.filled
    }

    /// The mean of the held samples, if there is any.
    pub(crate) fn mean(&self) -> Option<f64> {
        (self.filled > 0).then(|| self.sum / self.filled as f64)
    }

    /// Forgets every sample.
    pub(crate) fn clear(&mut self) {
        self.next = 0;
        self.filled = 0;
        self.sum = 0.0;
        self.pushes_since_resum = 0;
    }
}

#[cfg(all(test, not(workmill_loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn mean_is_the_mean_of_the_last_len_samples(
            len in 1usize..12,
            values in proptest::collection::vec(0.0f64..1_000.0, 0..60),
        ) {
            let mut window = Window::new(len);
            for &v in &values {
                window.push(v);
            }
            let tail: Vec<f64> = values.iter().rev().take(len).copied().collect();
            prop_assert_eq!(window.count(), tail.len());
            match window.mean() {
                None => prop_assert!(tail.is_empty()),
                Some(mean) => {
                    let expected = tail.iter().sum::<f64>() / tail.len() as f64;
                    prop_assert!((mean - expected).abs() < 1e-6 * expected.max(1.0));
                }
            }
        }
    }

    #[test]
    fn clear_forgets() {
        let mut window = Window::new(3);
        window.push(1.0);
        window.clear();
        assert_eq!(window.mean(), None);
        window.push(4.0);
        assert_eq!(window.mean(), Some(4.0));
    }
}
