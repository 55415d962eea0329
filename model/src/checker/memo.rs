//! A memo table that can be prefetched: open addressing with linear probing over a flat
//! array of entries, so that the slot of a key whose look-up is coming can be loaded into the
//! cache ahead of it ([`Memo::prefetch`]), as the visited set's slots are.

use std::hash::{BuildHasher, BuildHasherDefault, Hash};

/// A map from `K` to `V`, filled on misses and never shrunk. `empty` is a key that is never
/// stored: it marks the vacant slots.
#[derive(Debug)]
pub struct Memo<K, V> {
    slots: Vec<(K, V)>,
    empty: K,
    len: usize,
}

impl<K: Copy + Eq + Hash, V: Copy + Default> Memo<K, V> {
    /// An empty memo; `empty` must never be looked up or inserted.
    pub fn new(empty: K) -> Self {
        Memo {
            slots: vec![(empty, V::default()); 1 << 10],
            empty,
            len: 0,
        }
    }

    /// The hash of a key, to pass to the other methods.
    pub fn hash(key: &K) -> u64 {
        let h = BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(key);
        // FxHash's low bits are weak; the slot index comes from the high bits.
        h.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn home(&self, hash: u64) -> usize {
        (hash >> 32) as usize & (self.slots.len() - 1)
    }

    /// Start loading the slot of `hash` into the cache.
    pub fn prefetch(&self, hash: u64) {
        prefetch_index::prefetch_index(&self.slots, self.home(hash));
    }

    /// The value of `key` (whose hash is `hash`), if stored.
    pub fn get(&self, hash: u64, key: &K) -> Option<V> {
        debug_assert!(
            *key != self.empty,
            "invariant: the empty key is never looked up"
        );
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        loop {
            let (k, v) = &self.slots[i];
            if *k == *key {
                return Some(*v);
            }
            if *k == self.empty {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Store `value` for `key`, which is not stored yet.
    pub fn insert(&mut self, hash: u64, key: K, value: V) {
        assert!(
            key != self.empty,
            "invariant: the empty key is never stored"
        );
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            let (empty, bigger) = (self.empty, self.slots.len() * 2);
            let old = std::mem::replace(&mut self.slots, vec![(empty, V::default()); bigger]);
            self.len = 0;
            for (k, v) in old.into_iter().filter(|(k, _)| *k != empty) {
                self.insert(Self::hash(&k), k, v);
            }
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        while self.slots[i].0 != self.empty {
            debug_assert!(
                self.slots[i].0 != key,
                "invariant: the key is not stored yet"
            );
            i = (i + 1) & mask;
        }
        self.slots[i] = (key, value);
        self.len += 1;
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_finds_across_growth() {
        let mut m: Memo<u32, u64> = Memo::new(u32::MAX);
        for k in 0..50_000u32 {
            let h = Memo::<u32, u64>::hash(&k);
            assert_eq!(m.get(h, &k), None);
            m.insert(h, k, u64::from(k) * 3);
        }
        assert_eq!(m.len(), 50_000);
        for k in 0..50_000u32 {
            assert_eq!(
                m.get(Memo::<u32, u64>::hash(&k), &k),
                Some(u64::from(k) * 3)
            );
        }
        assert_eq!(m.get(Memo::<u32, u64>::hash(&50_000), &50_000), None);
    }
}
