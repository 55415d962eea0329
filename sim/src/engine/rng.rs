//! Seeded randomness: one stream per device and purpose, and samplers that give the same
//! numbers on every machine.
//!
//! A stream is a [`Xoshiro128PlusPlus`] generator seeded through SplitMix64 from
//! `(seed, device, purpose)` ([`stream`]); a stream used only at rare events keeps a counter
//! and seeds a generator per event from `(seed, device, purpose, index)` ([`event_stream`]). Because each device draws its crash times and user actions from
//! streams of its own, which no protocol event touches, two variants run with the same seed see
//! the same crashes at the same times on the same devices; the network stream gives the `k`-th
//! message of a device the same latency in both, as long as their message counts agree.
//! Xoshiro128++ rather than Xoshiro256++: its state is 16 bytes instead of 32, which at a
//! million devices is 16 MB less; its period (2^128 - 1) per stream is far beyond what a
//! device draws.
//!
//! The samplers avoid the platform's `ln`/`exp` (whose last bit may differ between C
//! libraries): [`ln`] uses only IEEE-754 `+ - * /`, which are correctly rounded everywhere,
//! so a seed gives the same run on any machine.

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro128PlusPlus;

/// What a stream is for. Part of the stream's identity: changing a number changes every run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Purpose {
    /// Start time, crash times, restart delays: the device's hardware, independent of the
    /// protocol.
    Behaviour = 1,
    /// The user's actions (join, leave, presence): independent of the protocol.
    User = 2,
    /// Latency and loss of each message, back-off jitter: consumed per message.
    Network = 3,
    /// Whether the correlated outage hits the device, and its restart delay after an outage
    /// crash: independent of the protocol.
    Outage = 4,
    /// Whether a server restart hits the user's shard (keyed by the user, not a device).
    ServerOutage = 5,
}

/// One SplitMix64 step (Steele, Lea and Flood, 2014).
pub const fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn stream_key(seed: u64, device: u32, purpose: Purpose) -> u64 {
    let mut s = seed;
    let a = splitmix64(&mut s);
    let mut t = a ^ (u64::from(device) << 8 | purpose as u64);
    splitmix64(&mut t)
}

/// The stream of `device` for `purpose` under `seed`.
pub fn stream(seed: u64, device: u32, purpose: Purpose) -> Xoshiro128PlusPlus {
    // `seed_from_u64` expands the key with SplitMix64 into the 128-bit state.
    Xoshiro128PlusPlus::seed_from_u64(stream_key(seed, device, purpose))
}

/// The generator of the `index`-th event of `device`'s `purpose` stream: for streams drawn
/// from only at rare events (crashes, user actions), the device keeps a counter instead of a
/// generator's state, and each event seeds its own generator from `(seed, device, purpose,
/// index)` through SplitMix64.
pub fn event_stream(seed: u64, device: u32, purpose: Purpose, index: u32) -> Xoshiro128PlusPlus {
    let mut t =
        stream_key(seed, device, purpose) ^ u64::from(index).wrapping_mul(0xD1B5_4A32_D192_ED03);
    Xoshiro128PlusPlus::seed_from_u64(splitmix64(&mut t))
}

/// A uniform draw in `[0, 1)` with 53 bits.
#[inline]
pub fn unit(rng: &mut Xoshiro128PlusPlus) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform integer in `[lo, hi]`.
#[inline]
pub fn uniform_u64(rng: &mut Xoshiro128PlusPlus, lo: u64, hi: u64) -> u64 {
    debug_assert!(lo <= hi);
    let span = u128::from(hi - lo) + 1;
    lo + ((u128::from(rng.next_u64()) * span) >> 64) as u64
}

/// Natural logarithm of a positive, finite, normal `x`, from `+ - * /` only.
pub fn ln(x: f64) -> f64 {
    const LN2: f64 = std::f64::consts::LN_2;
    const SQRT2: f64 = std::f64::consts::SQRT_2;
    debug_assert!(x > 0.0 && x.is_finite());
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    if m > SQRT2 {
        m *= 0.5;
        e += 1;
    }
    // ln(m) = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.172, s^2 <= 0.0295: the series
    // s + s^3/3 + s^5/5 + ... to s^23 is exact to the last bit. Horner form, fixed order.
    const C: [f64; 11] = [
        1.0 / 3.0,
        1.0 / 5.0,
        1.0 / 7.0,
        1.0 / 9.0,
        1.0 / 11.0,
        1.0 / 13.0,
        1.0 / 15.0,
        1.0 / 17.0,
        1.0 / 19.0,
        1.0 / 21.0,
        1.0 / 23.0,
    ];
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut poly = C[10];
    for c in C[..10].iter().rev() {
        poly = poly * s2 + c;
    }
    let sum = s + s * s2 * poly;
    2.0 * sum + e as f64 * LN2
}

/// An exponential draw with mean `mean` (any unit), by inversion.
#[inline]
pub fn exponential(rng: &mut Xoshiro128PlusPlus, mean: f64) -> f64 {
    let u = 1.0 - unit(rng); // (0, 1]
    -ln(u) * mean
}

/// An exponential distribution with mean 1 by table: [`ExpTable::BITS`] bits of a draw pick
/// one of 4096 equal-probability intervals of the inverse CDF, the next 20 bits interpolate
/// linearly inside it. One multiply instead of a logarithm, for the per-message latency; the
/// tail is cut at the quantile 1 - 1/8192 (9 means). The table is built with [`ln`], so it is
/// the same on every machine.
#[derive(Clone, Debug)]
pub struct ExpTable {
    q: Vec<f64>,
}

impl Default for ExpTable {
    fn default() -> Self {
        Self::new()
    }
}

impl ExpTable {
    /// Index bits.
    pub const BITS: u32 = 12;

    /// Build the table.
    pub fn new() -> ExpTable {
        let n = 1usize << Self::BITS;
        let mut q: Vec<f64> = (0..n).map(|i| -ln(1.0 - i as f64 / n as f64)).collect();
        q.push(-ln(1.0 / (2 * n) as f64));
        ExpTable { q }
    }

    /// A draw with mean (about) `mean`.
    #[inline]
    pub fn sample(&self, rng: &mut Xoshiro128PlusPlus, mean: f64) -> f64 {
        self.sample_bits(rng.next_u32(), mean)
    }

    /// A draw with mean (about) `mean` from 32 random bits: 12 pick the interval, 20
    /// interpolate.
    #[inline]
    pub fn sample_bits(&self, x: u32, mean: f64) -> f64 {
        let i = (x >> (32 - Self::BITS)) as usize;
        let frac_bits = 32 - Self::BITS;
        let frac = f64::from(x & ((1 << frac_bits) - 1)) * (1.0 / f64::from(1u32 << frac_bits));
        let (a, b) = (self.q[i], self.q[i + 1]);
        (a + (b - a) * frac) * mean
    }
}

/// A Bernoulli draw: true with probability `p`.
#[inline]
pub fn chance(rng: &mut Xoshiro128PlusPlus, p: f64) -> bool {
    p > 0.0 && unit(rng) < p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_agrees_with_the_platform_to_the_last_bits() {
        let mut x = 1e-16;
        while x < 1e12 {
            let ours = ln(x);
            let theirs = x.ln();
            assert!(
                (ours - theirs).abs() <= 4.0 * f64::EPSILON * theirs.abs().max(1.0),
                "{x}: {ours} vs {theirs}"
            );
            x *= 1.37;
        }
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn streams_differ_by_device_and_purpose_and_repeat_by_seed() {
        let a = stream(1, 0, Purpose::Behaviour).next_u64();
        assert_eq!(a, stream(1, 0, Purpose::Behaviour).next_u64());
        assert_ne!(a, stream(1, 1, Purpose::Behaviour).next_u64());
        assert_ne!(a, stream(1, 0, Purpose::Network).next_u64());
        assert_ne!(a, stream(2, 0, Purpose::Behaviour).next_u64());
        let e = event_stream(1, 0, Purpose::Behaviour, 0).next_u64();
        assert_eq!(e, event_stream(1, 0, Purpose::Behaviour, 0).next_u64());
        assert_ne!(e, event_stream(1, 0, Purpose::Behaviour, 1).next_u64());
        assert_ne!(e, event_stream(1, 1, Purpose::Behaviour, 0).next_u64());
    }

    #[test]
    fn samplers_have_the_right_means() {
        let mut r = stream(7, 3, Purpose::Network);
        let n = 200_000;
        let mean: f64 = (0..n).map(|_| exponential(&mut r, 50.0)).sum::<f64>() / n as f64;
        assert!((mean - 50.0).abs() < 1.0, "{mean}");
        let t = ExpTable::new();
        let mean: f64 = (0..n).map(|_| t.sample(&mut r, 50.0)).sum::<f64>() / n as f64;
        assert!((mean - 50.0).abs() < 1.0, "table: {mean}");
        let u: u64 = (0..n).map(|_| uniform_u64(&mut r, 10, 20)).sum();
        let m = u as f64 / n as f64;
        assert!((m - 15.0).abs() < 0.05, "{m}");
        assert!((0..1000).all(|_| (10..=20).contains(&uniform_u64(&mut r, 10, 20))));
    }
}
