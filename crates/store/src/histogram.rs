//! A fixed-bucket histogram of `u64` observations (milliseconds, microseconds, …) kept in
//! relaxed atomics: recording is a short search of the bounds and two atomic adds, and a
//! reader takes a [`HistogramSnapshot`] whose buckets may be a moment apart from each other
//! (statistics, not synchronisation). The store keeps one for the lateness of expiries
//! ([`Store::expiry_lateness`](crate::Store::expiry_lateness)); the server uses the same type
//! for its own timings.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of observations per bucket, with their sum.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds (inclusive), ascending; one more bucket counts what exceeds the last.
    bounds: &'static [u64],
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

/// What a [`Histogram`] held when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// The buckets' upper bounds (inclusive), as the histogram was made with.
    pub bounds: &'static [u64],
    /// Observations per bucket (not cumulative): `counts[i]` for `bounds[i]`, and a last one
    /// for those above every bound.
    pub counts: Vec<u64>,
    /// The sum of every observation.
    pub sum: u64,
}

impl HistogramSnapshot {
    /// Every observation.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Histogram {
    /// An empty histogram with buckets up to each of `bounds` (ascending) and one above.
    pub fn new(bounds: &'static [u64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub fn record(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        let h = Histogram::new(&[1, 10, 100]);
        for v in [0, 1, 2, 10, 11, 100, 101, 5000] {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.counts, vec![2, 2, 2, 2]);
        assert_eq!(s.count(), 8);
        assert_eq!(s.sum, 5225);
    }
}
