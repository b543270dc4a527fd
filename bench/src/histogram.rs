//! A latency histogram with logarithmic buckets: fixed memory, about 1.6 %
//! relative error, mergeable across client threads.

use std::time::Duration;

/// Sub-buckets per power of two: 2^6 = 64, so a bucket spans at most 1/64 of
/// its value.
const SUB_BITS: u32 = 6;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Values up to 2^40 ns (about 18 minutes) get a bucket of their own; longer
/// ones land in the last bucket.
const MAX_BITS: u32 = 40;
const BUCKETS: usize = ((MAX_BITS - SUB_BITS + 1) as usize) * SUB_BUCKETS;

/// Counts of durations by nanosecond buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    /// Counts one duration.
    pub fn record(&mut self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket_of(nanos)] += 1;
        self.total += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    /// The smallest bucket value at or below which `quantile` (0.0 to 1.0)
    /// of the durations lie; `None` when empty.
    pub fn quantile(&self, quantile: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        // The rank of the wanted sample, 1-based: at least the first.
        let rank = ((quantile.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(Duration::from_nanos(upper_bound(bucket)));
            }
        }
        unreachable!("the counts add up to the total")
    }
}

/// The bucket of `nanos`: exact below 2^SUB_BITS, then SUB_BUCKETS per octave.
fn bucket_of(nanos: u64) -> usize {
    if nanos < SUB_BUCKETS as u64 {
        return nanos as usize;
    }
    let octave = 63 - nanos.leading_zeros();
    if octave >= MAX_BITS {
        return BUCKETS - 1;
    }
    let shift = octave - SUB_BITS;
    let sub = ((nanos >> shift) as usize) & (SUB_BUCKETS - 1);
    (shift as usize + 1) * SUB_BUCKETS + sub
}

/// The largest value that falls into `bucket`.
fn upper_bound(bucket: usize) -> u64 {
    if bucket < SUB_BUCKETS {
        return bucket as u64;
    }
    let shift = (bucket / SUB_BUCKETS - 1) as u32;
    let sub = (bucket % SUB_BUCKETS) as u64;
    (((SUB_BUCKETS as u64) | sub) << shift) + (1 << shift) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(nanos: &[u64]) -> Histogram {
        let mut histogram = Histogram::new();
        for &n in nanos {
            histogram.record(Duration::from_nanos(n));
        }
        histogram
    }

    #[test]
    fn an_empty_histogram_has_no_quantiles() {
        assert_eq!(Histogram::new().quantile(0.5), None);
    }

    #[test]
    fn small_values_are_exact() {
        let histogram = of(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(histogram.quantile(0.5), Some(Duration::from_nanos(5)));
        assert_eq!(histogram.quantile(1.0), Some(Duration::from_nanos(10)));
        assert_eq!(histogram.quantile(0.0), Some(Duration::from_nanos(1)));
    }

    #[test]
    fn large_values_are_within_two_percent_above() {
        for nanos in [64, 65, 1_000, 12_345, 987_654, 1_999_999, 3_000_000_000] {
            let reported = of(&[nanos]).quantile(0.5).unwrap().as_nanos() as u64;
            assert!(reported >= nanos, "{nanos} reported as {reported}");
            assert!(
                reported as f64 <= nanos as f64 * 1.02,
                "{nanos} reported as {reported}"
            );
        }
    }

    #[test]
    fn every_value_lies_within_its_bucket() {
        for nanos in (0..20_000).chain([u32::MAX as u64, 1 << 39]) {
            let bucket = bucket_of(nanos);
            assert!(nanos <= upper_bound(bucket), "{nanos} above its bucket");
            if bucket > 0 {
                assert!(nanos > upper_bound(bucket - 1), "{nanos} below its bucket");
            }
        }
    }

    #[test]
    fn huge_values_land_in_the_last_bucket() {
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(of(&[u64::MAX]).total, 1);
    }

    #[test]
    fn p99_sees_the_slow_tail() {
        let mut samples = vec![1_000; 98];
        samples.extend([50_000, 50_000]);
        let histogram = of(&samples);
        assert!(histogram.quantile(0.5).unwrap() < Duration::from_micros(2));
        assert!(histogram.quantile(0.99).unwrap() >= Duration::from_micros(50));
    }

    #[test]
    fn merging_adds_the_counts() {
        let mut merged = of(&[10, 20]);
        merged.merge(&of(&[30]));
        assert_eq!(merged, of(&[10, 20, 30]));
        assert_eq!(merged.total, 3);
    }
}
