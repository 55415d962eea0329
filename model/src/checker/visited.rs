//! The set of visited states: an open-addressing hash table of state numbers, each slot
//! carrying a 32-bit fingerprint of its state's hash next to the number.
//!
//! The fingerprint is the top 32 bits of the hash and the home slot is the top bits of the
//! fingerprint, so that
//! - a probe rejects other states without reading them (one look at the state array per
//!   hit, and about one in 2^(32 - log2 capacity) per miss);
//! - growing the table re-homes every entry from its fingerprint alone, in one sequential
//!   pass, without reading the state array.
//!
//! The explorer prefetches a look-up's home slot ([`Visited::prefetch`]) and then the state
//! it will most likely compare against ([`Visited::candidate`]) well before the look-up, so
//! that the look-up finds both in cache.

/// The visited set. Slot value 0 is empty; otherwise the high half is the fingerprint and
/// the low half the state number plus one.
#[derive(Debug)]
pub struct Visited {
    slots: Vec<u64>,
    /// log2 of the capacity.
    bits: u32,
    len: usize,
}

/// The outcome of [`Visited::find`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The state is there, with this number.
    Found(u32),
    /// The state is not there; this is the empty slot where it goes.
    Vacant(usize),
}

impl Visited {
    /// An empty set with room for a few thousand states.
    pub fn new() -> Visited {
        let bits = 12;
        Visited {
            slots: vec![0; 1 << bits],
            bits,
            len: 0,
        }
    }

    /// The number of states in the set.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn home(&self, fingerprint: u32) -> usize {
        (fingerprint >> (32 - self.bits)) as usize
    }

    /// Start loading the home slot of `hash` into the cache.
    pub fn prefetch(&self, hash: u64) {
        prefetch_index::prefetch_index(&self.slots, self.home((hash >> 32) as u32));
    }

    /// The first state whose fingerprint matches `hash` along its probe sequence, if any: the
    /// state a [`Visited::find`] will most likely compare against.
    pub fn candidate(&self, hash: u64) -> Option<u32> {
        match self.find(hash, |_| true) {
            Probe::Found(n) => Some(n),
            Probe::Vacant(_) => None,
        }
    }

    /// Look for the state with this hash; `eq(n)` tells whether state `n` is the one sought.
    pub fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Probe {
        let fp = (hash >> 32) as u32;
        let mask = self.slots.len() - 1;
        let mut i = self.home(fp);
        loop {
            let v = self.slots[i];
            if v == 0 {
                return Probe::Vacant(i);
            }
            if (v >> 32) as u32 == fp && eq(v as u32 - 1) {
                return Probe::Found(v as u32 - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// Put state `n` with this hash in the slot that [`Visited::find`] returned as vacant
    /// (with no insertion in between).
    pub fn insert_at(&mut self, slot: usize, hash: u64, n: u32) {
        assert!(n < u32::MAX, "invariant: fewer than 2^32 - 1 states");
        debug_assert_eq!(self.slots[slot], 0, "invariant: the slot is vacant");
        self.slots[slot] = (hash >> 32) << 32 | u64::from(n + 1);
        self.len += 1;
        // At most 4/5 full: linear probing stays short.
        if self.len * 5 > self.slots.len() * 4 {
            self.grow();
        }
    }

    fn grow(&mut self) {
        assert!(self.bits < 32, "invariant: fewer than 2^32 slots");
        let old = std::mem::replace(&mut self.slots, vec![0; 1 << (self.bits + 1)]);
        self.bits += 1;
        let mask = self.slots.len() - 1;
        for v in old.into_iter().filter(|&v| v != 0) {
            let mut i = self.home((v >> 32) as u32);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = v;
        }
    }
}

impl Default for Visited {
    fn default() -> Self {
        Visited::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash with chosen fingerprint bits, to force collisions.
    fn hash(fp: u32, low: u32) -> u64 {
        u64::from(fp) << 32 | u64::from(low)
    }

    #[test]
    fn finds_what_was_inserted_across_growth_and_collisions() {
        let mut v = Visited::new();
        // Many states share a fingerprint (same home slot, so long probe runs), and many
        // more force the table to grow several times.
        let key = |n: u32| {
            hash(
                if n % 3 == 0 {
                    7
                } else {
                    n.wrapping_mul(2_654_435_761)
                },
                n,
            )
        };
        for n in 0..20_000u32 {
            match v.find(key(n), |m| m == n) {
                Probe::Vacant(slot) => v.insert_at(slot, key(n), n),
                Probe::Found(m) => panic!("state {n} found as {m} before its insertion"),
            }
        }
        assert_eq!(v.len(), 20_000);
        for n in 0..20_000u32 {
            assert_eq!(v.find(key(n), |m| m == n), Probe::Found(n));
            assert!(v.candidate(key(n)).is_some());
        }
        assert!(matches!(
            v.find(key(20_000), |m| m == 20_000),
            Probe::Vacant(_)
        ));
    }

    #[test]
    fn equal_fingerprints_are_told_apart_by_the_state() {
        let mut v = Visited::new();
        for n in 0..10u32 {
            let Probe::Vacant(slot) = v.find(hash(42, 0), |m| m == n) else {
                panic!("state {n} found before its insertion");
            };
            v.insert_at(slot, hash(42, 0), n);
        }
        for n in 0..10u32 {
            assert_eq!(v.find(hash(42, 0), |m| m == n), Probe::Found(n));
        }
        assert_eq!(v.candidate(hash(42, 0)), Some(0));
    }
}
