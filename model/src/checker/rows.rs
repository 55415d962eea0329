//! The state array: one row of 32-bit words per state, stored in 16-bit halves.
//!
//! Most words of a state are small (indices into component tables of a few thousand entries,
//! crash and loss budgets), so every row keeps the low halves of its words in one array and
//! only the columns that have ever held a value of 2^16 or more keep their high halves, in a
//! second array. A column turns wide the first time such a value is stored in it: the rows
//! stored before all have a zero high half there, so widening only adds a column of zeros to
//! the second array. A row of the largest configurations takes 16 bytes instead of 24 or 28.

use arrayvec::ArrayVec;

/// The most words a row can have: eight devices, eight users and the counters.
pub const MAX_WORDS: usize = 17;

/// The rows.
#[derive(Debug)]
pub struct Rows {
    stride: usize,
    lo: Vec<u16>,
    /// For each column, its position among the wide columns (`u8::MAX`: not wide).
    wide_at: Vec<u8>,
    /// The wide columns, in the order of their high halves in a row of `hi`.
    wide_cols: Vec<usize>,
    hi: Vec<u16>,
}

impl Rows {
    /// No rows of `stride` words.
    pub fn new(stride: usize) -> Rows {
        assert!(
            stride <= MAX_WORDS,
            "invariant: at most {MAX_WORDS} words a state"
        );
        Rows {
            stride,
            lo: Vec::new(),
            wide_at: vec![u8::MAX; stride],
            wide_cols: Vec::new(),
            hi: Vec::new(),
        }
    }

    /// Words a row.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.lo.len() / self.stride
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.lo.is_empty()
    }

    /// Add a row.
    #[inline]
    pub fn push(&mut self, words: &[u32]) {
        debug_assert_eq!(words.len(), self.stride);
        // Most rows have no high half anywhere: then only their low halves are stored (the
        // wide columns, if any, get zeros).
        if words.iter().fold(0, |acc, &w| acc | w) <= u32::from(u16::MAX) {
            self.lo.extend(words.iter().map(|&w| w as u16));
            let w = self.wide_cols.len();
            self.hi.resize(self.hi.len() + w, 0);
            return;
        }
        for (c, &w) in words.iter().enumerate() {
            if w > u32::from(u16::MAX) && self.wide_at[c] == u8::MAX {
                self.widen(c);
            }
        }
        self.lo.extend(words.iter().map(|&w| w as u16));
        self.hi
            .extend(self.wide_cols.iter().map(|&c| (words[c] >> 16) as u16));
    }

    /// Make column `c` wide: every row stored so far has a zero high half there, put last.
    fn widen(&mut self, c: usize) {
        let (n, w) = (self.len(), self.wide_cols.len());
        let mut hi = Vec::with_capacity((n + 1) * (w + 1));
        for r in 0..n {
            hi.extend_from_slice(&self.hi[r * w..(r + 1) * w]);
            hi.push(0);
        }
        self.hi = hi;
        self.wide_at[c] = w as u8;
        self.wide_cols.push(c);
    }

    /// Word `c` of row `s`.
    pub fn word(&self, s: usize, c: usize) -> u32 {
        let lo = u32::from(self.lo[s * self.stride + c]);
        match self.wide_at[c] {
            u8::MAX => lo,
            i => lo | u32::from(self.hi[s * self.wide_cols.len() + i as usize]) << 16,
        }
    }

    /// The words of row `s`.
    pub fn row(&self, s: usize) -> ArrayVec<u32, MAX_WORDS> {
        (0..self.stride).map(|c| self.word(s, c)).collect()
    }

    /// Whether row `s` has these words.
    #[inline]
    pub fn eq(&self, s: usize, words: &[u32]) -> bool {
        let lo = &self.lo[s * self.stride..(s + 1) * self.stride];
        if self.wide_cols.is_empty() {
            // Every word is its low half, so a word with a high half matches none; no early
            // exit, which compiles to straight-line code.
            return lo
                .iter()
                .zip(words)
                .fold(0, |acc, (&l, &w)| acc | (u32::from(l) ^ w))
                == 0;
        }
        if !lo.iter().zip(words).all(|(&l, &w)| l == w as u16) {
            return false;
        }
        let w = self.wide_cols.len();
        let hi = &self.hi[s * w..(s + 1) * w];
        // A value with a high half in a narrow column is in no row: storing it would have
        // widened the column.
        words.iter().zip(&self.wide_at).all(|(&v, &i)| {
            let h = (v >> 16) as u16;
            if i == u8::MAX {
                h == 0
            } else {
                hi[i as usize] == h
            }
        })
    }

    /// Make `out` a copy of the rows in `range` (with this array's wide columns), in the
    /// memory `out` already has: the explorer hands each BFS level to its generator this
    /// way, in one of two buffers that take turns, instead of a new allocation per level
    /// whose pages the kernel would zero first.
    pub fn copy_into(&self, range: std::ops::Range<usize>, out: &mut Rows) {
        let w = self.wide_cols.len();
        out.stride = self.stride;
        out.lo.clear();
        out.lo
            .extend_from_slice(&self.lo[range.start * self.stride..range.end * self.stride]);
        out.wide_at.clone_from(&self.wide_at);
        out.wide_cols.clone_from(&self.wide_cols);
        out.hi.clear();
        out.hi
            .extend_from_slice(&self.hi[range.start * w..range.end * w]);
    }

    /// Start loading row `s` into the cache.
    pub fn prefetch(&self, s: usize) {
        prefetch_index::prefetch_index(&self.lo, s * self.stride);
        if !self.wide_cols.is_empty() {
            prefetch_index::prefetch_index(&self.hi, s * self.wide_cols.len());
        }
    }

    /// Free the spare capacity.
    pub fn shrink_to_fit(&mut self) {
        self.lo.shrink_to_fit();
        self.hi.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_words_as_columns_widen() {
        let mut rows = Rows::new(4);
        let mut want: Vec<[u32; 4]> = Vec::new();
        for i in 0..3000u32 {
            // Column 3 widens first, then column 0, then column 2; column 1 never does.
            let r = [
                if i > 2000 { 70_000 + i } else { i },
                i % 7,
                if i > 2500 { u32::MAX - i } else { 3 },
                if i > 1000 { i << 8 } else { i },
            ];
            rows.push(&r);
            want.push(r);
        }
        assert_eq!(rows.len(), 3000);
        for (s, r) in want.iter().enumerate() {
            assert_eq!(rows.row(s).as_slice(), r, "row {s}");
            assert!(rows.eq(s, r));
            let mut other = *r;
            other[2] ^= 1 << 20;
            assert!(
                !rows.eq(s, &other),
                "row {s} equals a row with another high half"
            );
            other = *r;
            other[1] ^= 1;
            assert!(
                !rows.eq(s, &other),
                "row {s} equals a row with another low half"
            );
        }
        // A narrow column told apart from a value with a high half.
        assert!(!rows.eq(0, &[0, 1 << 16, 3, 0]));
        // A copy of a range holds the same rows, also into a buffer that held other rows
        // of another width before.
        let mut part = Rows::new(2);
        part.push(&[1 << 20, 5]);
        for range in [1500..2600, 10..20] {
            rows.copy_into(range.clone(), &mut part);
            assert_eq!(part.len(), range.len());
            for (s, r) in range.clone().enumerate() {
                assert_eq!(part.row(s).as_slice(), &want[r], "row {s} of {range:?}");
            }
        }
    }
}
