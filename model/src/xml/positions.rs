//! Positions in a document: the 1-based line and column of a byte offset.
//!
//! Decoding never computes a position it does not report: the tree keeps byte offsets, an error
//! turns its one offset into a line and column ([`Pos::of`], one pass over the text before it),
//! and the positions a [`super::Decoded`] keeps for [`super::to_envelope`]'s errors are
//! computed together in one pass ([`resolve`]). So a document costs time linear in its size,
//! whatever its number of elements or attributes.

use super::XmlError;
use std::collections::BTreeMap;

/// A 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) line: usize,
    pub(super) column: usize,
}

impl Pos {
    /// The line and column of byte `offset` of `src` (clamped to the end): one pass over the
    /// text before it, for the one error that is reported.
    pub(super) fn of(src: &str, offset: usize) -> Pos {
        Cursor::new(src).advance(offset)
    }

    pub(super) fn error(self, expected: impl Into<String>, found: impl Into<String>) -> XmlError {
        XmlError {
            line: self.line,
            column: self.column,
            expected: expected.into(),
            found: found.into(),
        }
    }
}

/// The positions of many offsets, in one pass over `src` (their keys sorted by offset first).
pub(super) fn resolve<K: Ord + Copy>(src: &str, offsets: &BTreeMap<K, usize>) -> BTreeMap<K, Pos> {
    let mut by_offset: Vec<(usize, K)> = offsets.iter().map(|(k, o)| (*o, *k)).collect();
    by_offset.sort_unstable();
    let mut cursor = Cursor::new(src);
    by_offset
        .into_iter()
        .map(|(offset, key)| (key, cursor.advance(offset)))
        .collect()
}

/// A position that only moves forward: a line starts after each `\n`, and a column counts
/// the characters since (bytes that do not continue a UTF-8 sequence).
struct Cursor<'s> {
    bytes: &'s [u8],
    at: usize,
    pos: Pos,
}

impl<'s> Cursor<'s> {
    fn new(src: &'s str) -> Cursor<'s> {
        Cursor {
            bytes: src.as_bytes(),
            at: 0,
            pos: Pos { line: 1, column: 1 },
        }
    }

    /// The position of `offset` (clamped to the end); an offset behind the cursor gives the
    /// cursor's position, so callers pass offsets in increasing order.
    fn advance(&mut self, offset: usize) -> Pos {
        let end = offset.min(self.bytes.len());
        if let Some(ahead) = self.bytes.get(self.at..end) {
            for &b in ahead {
                if b == b'\n' {
                    self.pos.line += 1;
                    self.pos.column = 1;
                } else if b & 0xC0 != 0x80 {
                    self.pos.column += 1;
                }
            }
            self.at = end;
        }
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Line and column of each character boundary, counted over the characters themselves.
    fn reference(src: &str) -> Vec<(usize, Pos)> {
        let mut out = Vec::new();
        let (mut line, mut column) = (1, 1);
        for (i, c) in src.char_indices() {
            out.push((i, Pos { line, column }));
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        out.push((src.len(), Pos { line, column }));
        out
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let src = "ab\r\né\n\n日本x";
        assert_eq!(Pos::of(src, 0), Pos { line: 1, column: 1 });
        assert_eq!(
            Pos::of(src, 3),
            Pos { line: 1, column: 4 },
            "\\r is a character"
        );
        assert_eq!(Pos::of(src, 4), Pos { line: 2, column: 1 });
        assert_eq!(
            Pos::of(src, 6),
            Pos { line: 2, column: 2 },
            "é is one column"
        );
        assert_eq!(Pos::of(src, 14), Pos { line: 4, column: 3 });
        assert_eq!(
            Pos::of(src, 1000),
            Pos { line: 4, column: 4 },
            "clamped to the end"
        );
    }

    proptest! {
        /// `Pos::of` and `resolve` agree with counting characters, at every character boundary.
        #[test]
        fn one_pass_gives_the_positions_of_every_offset(
            src in "[a\\n\\r\\t é日\u{1F600}<>]{0,60}",
        ) {
            let expected = reference(&src);
            for (offset, pos) in &expected {
                prop_assert_eq!(Pos::of(&src, *offset), *pos, "offset {}", offset);
            }
            // Keys in an order unrelated to their offsets.
            let offsets: BTreeMap<usize, usize> = expected
                .iter()
                .enumerate()
                .map(|(i, (offset, _))| (expected.len() - i, *offset))
                .collect();
            let resolved = resolve(&src, &offsets);
            for (key, offset) in &offsets {
                let pos = expected.iter().find(|(o, _)| o == offset).map(|(_, p)| *p);
                prop_assert_eq!(resolved.get(key).copied(), pos, "offset {}", offset);
            }
        }
    }
}
