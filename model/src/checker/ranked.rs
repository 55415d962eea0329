//! A bitmap that also counts: the number of set bits before each 64-bit word is kept beside
//! it, so that whether element `i` is set and its rank (the set elements before it) are each
//! a word read and a popcount. 1.5 bits an element. The SCC search numbers the nodes it
//! includes with it, and the graph finds the few edges whose permutation is not the identity.

/// The bitmap, built element by element.
#[derive(Debug, Default)]
pub struct RankedBits {
    bits: Vec<u64>,
    /// Per word: the set bits before it.
    before: Vec<u32>,
    len: usize,
    ones: u32,
}

impl RankedBits {
    /// Empty, with room for `n` elements.
    pub fn with_capacity(n: usize) -> RankedBits {
        RankedBits {
            bits: Vec::with_capacity(n.div_ceil(64)),
            before: Vec::with_capacity(n.div_ceil(64)),
            ..RankedBits::default()
        }
    }

    /// The `n` elements `0..n`, element `i` set when `set(i)`.
    pub fn from_fn(n: usize, mut set: impl FnMut(usize) -> bool) -> RankedBits {
        let mut r = RankedBits::with_capacity(n);
        for w in 0..n.div_ceil(64) {
            let word = (0..64.min(n - w * 64))
                .filter(|&b| set(w * 64 + b))
                .fold(0u64, |word, b| word | 1 << b);
            r.close(word);
        }
        r.len = n;
        r
    }

    /// Add the next elements, set or not, a word at a time.
    pub fn extend(&mut self, set: impl IntoIterator<Item = bool>) {
        let mut b = self.len % 64;
        let mut word = 0u64;
        if b != 0 {
            // Reopen the last word, partly filled.
            word = self.bits.pop().expect("invariant: a word per 64 elements");
            self.before.pop();
            self.ones -= word.count_ones();
        }
        for s in set {
            word |= u64::from(s) << b;
            b += 1;
            self.len += 1;
            if b == 64 {
                self.close(word);
                (word, b) = (0, 0);
            }
        }
        if b != 0 {
            self.close(word);
        }
    }

    /// Append a word and the set bits before it.
    fn close(&mut self, word: u64) {
        self.before.push(self.ones);
        self.bits.push(word);
        self.ones = self
            .ones
            .checked_add(word.count_ones())
            .expect("invariant: fewer than 2^32 set elements");
    }

    /// Whether element `i` is set.
    pub fn contains(&self, i: usize) -> bool {
        self.bits[i / 64] >> (i % 64) & 1 != 0
    }

    /// The set elements before element `i`.
    pub fn rank(&self, i: usize) -> usize {
        let w = i / 64;
        self.before[w] as usize + (self.bits[w] & ((1u64 << (i % 64)) - 1)).count_ones() as usize
    }

    /// The set elements.
    pub fn ones(&self) -> usize {
        self.ones as usize
    }

    /// Free the spare capacity.
    pub fn shrink_to_fit(&mut self) {
        self.bits.shrink_to_fit();
        self.before.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Membership and ranks agree with counting, across words and at their edges.
    #[test]
    fn ranks_count_the_set_elements_before() {
        let set = |i: usize| i % 3 == 0 || (i / 64) % 5 == 2 || i == 639;
        let mut r = RankedBits::default();
        for i in 0..700 {
            r.extend([set(i)]);
        }
        let mut ones = 0;
        for i in 0..700 {
            assert_eq!(r.contains(i), set(i), "element {i}");
            assert_eq!(r.rank(i), ones, "rank of {i}");
            ones += usize::from(set(i));
        }
        assert_eq!(r.ones(), ones);
        let f = RankedBits::from_fn(700, set);
        assert!((0..700).all(|i| f.contains(i) == set(i) && f.rank(i) == r.rank(i)));
        assert_eq!(f.ones(), ones);
        // Extended in runs of every length from 1 (within a word, filling one exactly,
        // across several).
        let mut e = RankedBits::default();
        let (mut i, mut run) = (0, 1);
        while i < 700 {
            let end = (i + run).min(700);
            e.extend((i..end).map(set));
            (i, run) = (end, run % 130 + 1);
        }
        assert!((0..700).all(|i| e.contains(i) == set(i) && e.rank(i) == r.rank(i)));
        assert_eq!(e.ones(), ones);
    }
}
