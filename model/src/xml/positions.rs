//! Positions in a document: the 1-based line and column of a byte offset.

use super::XmlError;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) line: usize,
    pub(super) column: usize,
}

impl Pos {
    /// The line and column of byte `offset` of `src` (clamped to the end).
    pub(super) fn of(src: &str, offset: usize) -> Pos {
        let bytes = src.as_bytes();
        let before = bytes.get(..offset).unwrap_or(bytes);
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let column = 1 + before
            .get(line_start..)
            .unwrap_or_default()
            .iter()
            .filter(|b| (**b & 0xC0) != 0x80)
            .count();
        Pos { line, column }
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
