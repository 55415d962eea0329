//! A log-linear histogram of non-negative integers (milliseconds): fixed buckets, so that
//! histograms of different runs, shards and machines merge by adding counts, and the JSON
//! form is exact.
//!
//! Values below 64 have a bucket each; above, every power of two is cut into 32 buckets, so a
//! reported quantile is within 1/32 (3.1 %) of the true value. The maximum is kept exactly.

use serde::{Deserialize, Serialize};

const LINEAR: u64 = 64;
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Number of buckets: 64 exact values, then 32 per octave from 2^6 to 2^64.
pub const BUCKETS: usize = LINEAR as usize + (64 - 6) * SUB as usize;

/// The histogram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogHistogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for LogHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of a value.
pub const fn bucket(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= 6
    let sub = (v >> (e - SUB_BITS)) & (SUB - 1);
    LINEAR as usize + (e as usize - 6) * SUB as usize + sub as usize
}

/// The largest value that falls in bucket `i`.
pub const fn bucket_high(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let k = i - LINEAR as usize;
    let e = (k / SUB as usize) as u32 + 6;
    let sub = (k % SUB as usize) as u64;
    let low = (1u64 << e) | (sub << (e - SUB_BITS));
    low + ((1u64 << (e - SUB_BITS)) - 1)
}

impl LogHistogram {
    /// An empty histogram.
    pub fn new() -> LogHistogram {
        LogHistogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Count one value.
    #[inline]
    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Add another histogram's counts; `None`, and `self` unchanged, when a count would not
    /// fit in 64 bits (histograms read from files can hold any count).
    pub fn checked_merge(&mut self, other: &LogHistogram) -> Option<()> {
        let total = self.total.checked_add(other.total)?;
        let counts: Vec<u64> = self
            .counts
            .iter()
            .zip(&other.counts)
            .map(|(a, b)| a.checked_add(*b))
            .collect::<Option<_>>()?;
        self.counts = counts;
        self.total = total;
        self.max = self.max.max(other.max);
        Some(())
    }

    /// Values counted.
    pub const fn count(&self) -> u64 {
        self.total
    }

    /// The largest value counted (0 when empty).
    pub const fn max(&self) -> u64 {
        self.max
    }

    /// The `q`-quantile (`q` in per-mille, 0..=1000): the top of the bucket holding the
    /// `ceil(q * count / 1000)`-th value, capped at the maximum. 0 when empty.
    pub fn quantile_permille(&self, q: u32) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = (u128::from(self.total) * u128::from(q))
            .div_ceil(1000)
            .max(1) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).min(self.max);
            }
        }
        self.max
    }

    /// Non-empty buckets as `(top value, count)`, in increasing order.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (bucket_high(i), *c))
    }
}

/// The JSON form: `{"count": n, "max": m, "buckets": [[index, count], ...]}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sparse {
    count: u64,
    max: u64,
    buckets: Vec<(u32, u64)>,
}

impl Serialize for LogHistogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Sparse {
            count: self.total,
            max: self.max,
            buckets: self
                .counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, c)| (i as u32, *c))
                .collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for LogHistogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sp = Sparse::deserialize(d)?;
        let mut h = LogHistogram::new();
        for (i, c) in sp.buckets {
            let slot = h.counts.get_mut(i as usize).ok_or_else(|| {
                serde::de::Error::custom(format!("histogram bucket {i} out of range 0..{BUCKETS}"))
            })?;
            *slot = slot.checked_add(c).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "histogram bucket {i}: its counts overflow 64 bits"
                ))
            })?;
            h.total = h.total.checked_add(c).ok_or_else(|| {
                serde::de::Error::custom("histogram: its counts overflow 64 bits")
            })?;
        }
        if h.total != sp.count {
            return Err(serde::de::Error::custom(format!(
                "histogram count {} does not match its buckets ({})",
                sp.count, h.total
            )));
        }
        h.max = sp.max;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut prev = 0;
        for v in (0..5000).chain([u64::MAX / 3, u64::MAX]) {
            let b = bucket(v);
            assert!(b >= prev && b < BUCKETS);
            assert!(
                v <= bucket_high(b),
                "{v} in bucket {b} with top {}",
                bucket_high(b)
            );
            if b > 0 {
                assert!(v > bucket_high(b - 1));
            }
            prev = b;
        }
    }

    #[test]
    fn quantiles_are_within_the_bucket_precision() {
        let mut h = LogHistogram::new();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        for (q, want) in [(500, 5000.0), (900, 9000.0), (990, 9900.0)] {
            let got = h.quantile_permille(q) as f64;
            assert!((got - want).abs() / want < 0.035, "q{q}: {got}");
        }
        assert_eq!(h.quantile_permille(1000), 10_000);
        assert_eq!(h.max(), 10_000);
    }

    #[test]
    fn merge_and_json_round_trip() {
        let (mut a, mut b) = (LogHistogram::new(), LogHistogram::new());
        (0..100).for_each(|v| a.record(v * 7));
        (0..50).for_each(|v| b.record(v * 1000));
        let mut ab = a.clone();
        ab.checked_merge(&b).unwrap();
        let json = serde_json::to_string(&ab).unwrap();
        let back: LogHistogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ab);
        assert_eq!(back.count(), 150);
        assert!(serde_json::from_str::<LogHistogram>(
            r#"{"count":1,"max":0,"buckets":[[99999,1]]}"#
        )
        .is_err());
    }

    #[test]
    fn counts_that_overflow_are_refused_not_wrapped() {
        let big: LogHistogram = serde_json::from_str(&format!(
            r#"{{"count":{},"max":5,"buckets":[[5,{}]]}}"#,
            u64::MAX,
            u64::MAX
        ))
        .unwrap();
        let mut h = LogHistogram::new();
        h.record(5);
        let before = h.clone();
        assert_eq!(h.checked_merge(&big), None);
        assert_eq!(h, before, "unchanged");
        let e = serde_json::from_str::<LogHistogram>(&format!(
            r#"{{"count":1,"max":5,"buckets":[[5,{}],[6,2]]}}"#,
            u64::MAX
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("overflow"), "{e}");
    }
}
