//! Reading input files within a size cap, and printing input-derived text safely.
//!
//! Every file the tools read goes through [`read_capped`] (or [`read_capped_string`]), or,
//! for the JSON Lines of `imps merge`, through [`capped_lines`]: they stop reading one byte
//! past the cap, so `imps decode /dev/zero` fails at once instead of filling the memory, and the
//! error names the file, the cap and what the cap is for. The caps, one per kind of file,
//! are the constants of [`Cap`].
//!
//! Error messages quote what they read (a file name, a knob, the text of an XML element). A
//! terminal would obey the control characters in it (`ESC ]0;...` sets the window title, `CR`
//! rewrites the line), so [`escape_controls`] writes them as `\u{1b}`, `\r`, ... before a
//! message is printed, and [`toml_error_line`] gives a TOML error on one line.
//!
//! ```
//! use imps_model::io::{escape_controls, read_capped_string, Cap, ReadError};
//!
//! let dir = std::env::temp_dir().join(format!("imps-io-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let big = dir.join("big.toml");
//! std::fs::write(&big, vec![b'#'; 2 << 20])?;
//! let err = read_capped_string(&big, Cap::VARIANT_FILE).unwrap_err();
//! assert!(matches!(err, ReadError::TooLarge { .. }));
//! assert!(err.to_string().ends_with(
//!     "big.toml: file larger than 1 MiB (1048576 bytes), the limit for a variant file"
//! ));
//! std::fs::remove_dir_all(&dir)?;
//!
//! assert_eq!(escape_controls("a\x1b]0;x\x07\rb"), "a\\u{1b}]0;x\\u{7}\\rb");
//! # Ok::<(), std::io::Error>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The largest file of a kind that the tools read, and what the kind is (for the error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    /// Bytes a file may have; one more and it is refused.
    pub bytes: u64,
    /// What such a file is, as the error says it: "the limit for {what}".
    pub what: &'static str,
}

const MIB: u64 = 1 << 20;

impl Cap {
    /// A CSP XML message for `imps decode`: the decoder's own limit,
    /// [`crate::xml::MAX_MESSAGE_BYTES`] (real messages are a few KiB).
    pub const XML_MESSAGE: Cap = Cap {
        bytes: crate::xml::MAX_MESSAGE_BYTES as u64,
        what: "a CSP XML message",
    };
    /// A variant file (the named ones are 2-3 KiB).
    pub const VARIANT_FILE: Cap = Cap {
        bytes: MIB,
        what: "a variant file",
    };
    /// A scenario file of the simulator (the named ones are 2-3 KiB).
    pub const SCENARIO_FILE: Cap = Cap {
        bytes: MIB,
        what: "a scenario file",
    };
    /// The requirement catalogue (`specs/requirements.toml` is 45 KB).
    pub const CATALOGUE: Cap = Cap {
        bytes: MIB,
        what: "the requirement catalogue",
    };
    /// One line of a shard file of `imps simulate --shard` (one unit's record: at most
    /// 10,000 trapped and 10,000 slow device ids, its histograms and its sweep: well under
    /// 1 MiB).
    pub const SHARD_LINE: Cap = Cap {
        bytes: 16 * MIB,
        what: "a line of a shard file",
    };
    /// A whole shard file, read line by line (so not held in memory): a bound on the reading,
    /// for a file that never ends.
    pub const SHARD_FILE: Cap = Cap {
        bytes: 64 * 1024 * MIB,
        what: "a shard file",
    };
}

impl fmt::Display for Cap {
    /// `1 MiB (1048576 bytes)`: the size in the largest binary unit that divides it, then exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bytes;
        let (n, unit) = [(1u64 << 30, "GiB"), (MIB, "MiB"), (1 << 10, "KiB")]
            .into_iter()
            .find(|(u, _)| b >= *u && b % u == 0)
            .map_or((b, "bytes"), |(u, name)| (b / u, name));
        if unit == "bytes" {
            write!(f, "{b} bytes")
        } else {
            write!(f, "{n} {unit} ({b} bytes)")
        }
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The operating system refused (missing, unreadable, a directory, ...).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file has more bytes than its cap; reading stopped one byte past it.
    #[error("{}: file larger than {cap}, the limit for {}", path.display(), cap.what)]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap it broke.
        cap: Cap,
    },
    /// A line of the file has more bytes than its cap; reading stopped one byte past it.
    #[error("{}:{line}: line longer than {cap}, the limit for {}", path.display(), cap.what)]
    LineTooLong {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The cap it broke.
        cap: Cap,
    },
    /// The file is not UTF-8 text.
    #[error("{}: not UTF-8 text (invalid byte at offset {offset})", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Byte offset in the file of the first byte that is not UTF-8 (also for
        /// [`capped_lines`]: from the start of the file, not of the line).
        offset: u64,
    },
}

impl ReadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Io { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::LineTooLong { path, .. }
            | ReadError::NotUtf8 { path, .. } => path,
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ReadError + '_ {
    move |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The bytes of `path`, reading at most `cap.bytes + 1` of them.
///
/// # Errors
///
/// [`ReadError::Io`] when the file cannot be opened or read, [`ReadError::TooLarge`] when it
/// has more than `cap.bytes` bytes (a device such as `/dev/zero` included).
pub fn read_capped(path: &Path, cap: Cap) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut bytes = Vec::new();
    file.take(cap.bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    if bytes.len() as u64 > cap.bytes {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            cap,
        });
    }
    Ok(bytes)
}

/// [`read_capped`], as UTF-8 text.
///
/// # Errors
///
/// Those of [`read_capped`], and [`ReadError::NotUtf8`].
pub fn read_capped_string(path: &Path, cap: Cap) -> Result<String, ReadError> {
    String::from_utf8(read_capped(path, cap)?).map_err(|e| ReadError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to() as u64,
    })
}

/// The lines of `path` as UTF-8 text, one at a time, with their 1-based numbers: each line at
/// most `line_cap` bytes (its line end excluded), the file at most `file_cap` bytes. A line
/// end is `\n` or `\r\n`, as for [`str::lines`].
///
/// # Errors
///
/// [`ReadError::Io`] when the file cannot be opened; each item is [`ReadError::Io`],
/// [`ReadError::LineTooLong`], [`ReadError::TooLarge`] or [`ReadError::NotUtf8`] when a
/// line cannot be read, after which the iterator ends.
pub fn capped_lines(path: &Path, line_cap: Cap, file_cap: Cap) -> Result<CappedLines, ReadError> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    Ok(CappedLines {
        path: path.to_path_buf(),
        reader: BufReader::new(file),
        line_cap,
        file_cap,
        read: 0,
        line: 0,
        done: false,
        buf: Vec::new(),
    })
}

/// The iterator of [`capped_lines`].
#[derive(Debug)]
pub struct CappedLines {
    path: PathBuf,
    reader: BufReader<std::fs::File>,
    line_cap: Cap,
    file_cap: Cap,
    /// Bytes read so far.
    read: u64,
    /// Lines read so far.
    line: usize,
    done: bool,
    buf: Vec<u8>,
}

impl CappedLines {
    fn next_line(&mut self) -> Result<Option<String>, ReadError> {
        self.buf.clear();
        // The line, its `\r\n` and one byte more tell a line at the cap from a longer one.
        let limit = self.line_cap.bytes.saturating_add(3);
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(io_error(&self.path))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let start = self.read;
        self.read += n as u64;
        if self.read > self.file_cap.bytes {
            return Err(ReadError::TooLarge {
                path: self.path.clone(),
                cap: self.file_cap,
            });
        }
        let mut text: &[u8] = &self.buf;
        if let Some(t) = text.strip_suffix(b"\n") {
            text = t.strip_suffix(b"\r").unwrap_or(t);
        }
        if text.len() as u64 > self.line_cap.bytes {
            return Err(ReadError::LineTooLong {
                path: self.path.clone(),
                line: self.line,
                cap: self.line_cap,
            });
        }
        match std::str::from_utf8(text) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(e) => Err(ReadError::NotUtf8 {
                path: self.path.clone(),
                offset: start + e.valid_up_to() as u64,
            }),
        }
    }
}

impl Iterator for CappedLines {
    type Item = Result<(usize, String), ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_line() {
            Ok(Some(text)) => Some(Ok((self.line, text))),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A TOML error of `text` as one line, `line L, column C: message (in "the line")`: the toml
/// crate's own display quotes the offending line under a header, over four lines, and its
/// message may take two (they are joined with `; `). The line is quoted as a Rust string
/// (control characters escaped), shortened to 80 characters.
pub fn toml_error_line(text: &str, e: &toml::de::Error) -> String {
    let one_line = |s: &str| {
        s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    };
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = 1 + before.matches('\n').count();
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = 1 + before[line_start..].chars().count();
            let content = text[line_start..].lines().next().unwrap_or("").trim();
            let mut shown: String = content.chars().take(80).collect();
            if shown.len() < content.len() {
                shown.push_str("...");
            }
            let message = one_line(e.message());
            if shown.is_empty() {
                format!("line {line}, column {column}: {message}")
            } else {
                format!("line {line}, column {column}: {message} (in {shown:?})")
            }
        }
        // No place in the text (an error of the values): the display names the keys.
        None => one_line(&e.to_string()),
    }
}

/// `text` with every control character written as an escape, so that it prints as one line
/// that a terminal shows as it is: `\n`, `\r`, `\t` as such; every other C0 control, DEL, C1
/// control, the Unicode line and paragraph separators and the bidirectional overrides and
/// isolates (which reorder what a terminal shows) as `\u{..}`, Rust's notation. A backslash
/// stays as it is (a path or a message may hold one). Borrowed when there is nothing to escape.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                use fmt::Write;
                write!(out, "\\u{{{:x}}}", u32::from(c)).expect("invariant: a String takes writes");
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether [`escape_controls`] escapes `c`.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(bytes: u64) -> Cap {
        Cap {
            bytes,
            what: "a test file",
        }
    }

    #[test]
    fn a_file_at_the_cap_is_read_and_one_byte_more_is_refused() {
        let dir = tempfile_dir();
        let at = dir.join("at");
        std::fs::write(&at, b"12345").unwrap();
        assert_eq!(read_capped(&at, cap(5)).unwrap(), b"12345");
        let err = read_capped(&at, cap(4)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: file larger than 4 bytes, the limit for a test file",
                at.display()
            )
        );
        assert_eq!(err.path(), at);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_endless_file_is_refused_at_the_cap() {
        let zero = Path::new("/dev/zero");
        if !zero.exists() {
            return;
        }
        let err = read_capped(zero, Cap::XML_MESSAGE).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("larger than 1 MiB (1048576 bytes), the limit for a CSP XML message"),
            "{err}"
        );
        let err = capped_lines(zero, Cap::SHARD_LINE, Cap::SHARD_FILE)
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero:1: line longer than 16 MiB (16777216 bytes), the limit for a line of a shard file"
        );
    }

    #[test]
    fn not_utf8_and_missing_files_say_so() {
        let dir = tempfile_dir();
        let latin1 = dir.join("latin1");
        std::fs::write(&latin1, b"ok\n\xe9t\xe9").unwrap();
        let err = read_capped_string(&latin1, cap(100)).unwrap_err();
        assert!(matches!(err, ReadError::NotUtf8 { offset: 3, .. }), "{err}");
        let mut lines = capped_lines(&latin1, cap(100), cap(100)).unwrap();
        assert_eq!(lines.next().unwrap().unwrap(), (1, "ok".to_owned()));
        assert!(matches!(
            lines.next().unwrap().unwrap_err(),
            ReadError::NotUtf8 { offset: 3, .. }
        ));
        assert!(lines.next().is_none(), "the iterator ends after an error");
        let missing = dir.join("missing");
        let err = read_capped(&missing, cap(100)).unwrap_err();
        assert!(matches!(err, ReadError::Io { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with(&format!("{}: ", missing.display())));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lines_are_capped_each_and_together() {
        let dir = tempfile_dir();
        let f = dir.join("lines");
        std::fs::write(&f, "abc\r\nde\n\nfghi").unwrap();
        let all: Vec<(usize, String)> = capped_lines(&f, cap(4), cap(100))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let expected = [(1, "abc"), (2, "de"), (3, ""), (4, "fghi")];
        assert_eq!(
            all,
            expected.map(|(n, s)| (n, s.to_owned())).to_vec(),
            "\\r\\n and \\n end lines, a last line needs no end"
        );
        let err = capped_lines(&f, cap(3), cap(100))
            .unwrap()
            .find_map(Result::err)
            .unwrap();
        assert!(
            matches!(err, ReadError::LineTooLong { line: 4, .. }),
            "{err}"
        );
        let err = capped_lines(&f, cap(4), cap(8))
            .unwrap()
            .find_map(Result::err)
            .unwrap();
        assert!(matches!(err, ReadError::TooLarge { .. }), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn caps_print_in_their_unit_and_exactly() {
        assert_eq!(Cap::VARIANT_FILE.to_string(), "1 MiB (1048576 bytes)");
        assert_eq!(Cap::SHARD_FILE.to_string(), "64 GiB (68719476736 bytes)");
        assert_eq!(cap(3072).to_string(), "3 KiB (3072 bytes)");
        assert_eq!(cap(1536).to_string(), "1536 bytes");
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert!(matches!(
            escape_controls("plain é ü 日本"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("\x1b]0;title\x07a\rb\x0bc\nd\te\x7f\u{85}\u{9b}f\\"),
            "\\u{1b}]0;title\\u{7}a\\rb\\u{b}c\\nd\\te\\u{7f}\\u{85}\\u{9b}f\\"
        );
        for c in (0u32..0x20)
            .chain(0x7f..0xa0)
            .chain([0x2028, 0x2029, 0x202e, 0x2067])
        {
            let s = char::from_u32(c).unwrap().to_string();
            let e = escape_controls(&s);
            let expected = match c {
                0x0a => "\\n".to_owned(),
                0x0d => "\\r".to_owned(),
                0x09 => "\\t".to_owned(),
                _ => format!("\\u{{{c:x}}}"),
            };
            assert_eq!(e, expected, "{c:#x}");
        }
    }

    #[test]
    fn toml_errors_are_one_line_that_quotes_the_line() {
        #[derive(Debug, serde::Deserialize)]
        struct T {
            #[allow(dead_code)]
            a: u8,
        }
        for (text, prefix) in [
            (
                "# c\na = \"x\x1b\r\"\n",
                "line 2, column 7: invalid basic string (in \"a = \\\"x\\u{1b}\\r\\\"\")",
            ),
            ("a = 1\nb = \n", "line 2, column 5: "),
            ("a = 1\n[[a\x0b\n", "line 2, column "),
        ] {
            let e = toml::from_str::<T>(text).unwrap_err();
            let line = toml_error_line(text, &e);
            assert!(line.starts_with(prefix), "{text:?}: {line}");
            assert!(!line.chars().any(char::is_control), "{text:?}: {line:?}");
            assert!(line.contains("(in \""), "{text:?}: {line}");
        }
        let e = toml::from_str::<T>("a = 1\nb = \n").unwrap_err();
        assert!(
            e.to_string().lines().count() > 2,
            "the crate's own display takes several lines: {e}"
        );
    }

    /// A fresh directory under the system's temporary one (this crate has no tempfile).
    fn tempfile_dir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "imps-io-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
