//! Where the commands' output goes: standard output through a writer that keeps its first
//! error ([`Sink`]), notes on standard error that never panic ([`note`]), and files that are
//! never half-written ([`write_atomic`]).

use std::io::{self, Write};
use std::path::Path;

/// A writer for a command's standard output that remembers the first error it returned.
///
/// `println!` panics when stdout fails (a full disk, a closed pipe); the commands write to a
/// `Sink` instead and pass its errors on, and `main` asks [`Sink::status`] at the end. So a
/// failed stdout is reported as `<stdout>: ...` however a command wrapped the error, and a
/// closed pipe (`imps variants | head -1`) ends the command quietly, as it does for Unix tools.
///
/// ```
/// use imps_sim::output::{Sink, Stdout};
/// use std::io::Write;
///
/// let mut out = Sink::new(Vec::new());
/// writeln!(out, "fine").unwrap();
/// assert!(matches!(out.status(), Stdout::Written));
/// ```
pub struct Sink<W: Write> {
    inner: W,
    failure: Option<io::Error>,
}

/// How standard output fared, once a command is done with it.
#[derive(Debug)]
pub enum Stdout {
    /// Everything was written and flushed.
    Written,
    /// The reader went away (a closed pipe): not an error of ours.
    Closed,
    /// Writing failed.
    Failed(io::Error),
}

impl<W: Write> Sink<W> {
    /// Wrap `inner`.
    pub const fn new(inner: W) -> Self {
        Sink {
            inner,
            failure: None,
        }
    }

    /// Flush, and say how the output fared: the first error any write or flush returned.
    pub fn status(&mut self) -> Stdout {
        if self.failure.is_none() {
            // An error is kept by `flush` itself.
            let _ = self.flush();
        }
        match self.failure.take() {
            None => Stdout::Written,
            Some(e) if e.kind() == io::ErrorKind::BrokenPipe => Stdout::Closed,
            Some(e) => Stdout::Failed(e),
        }
    }

    fn keep(&mut self, e: io::Error) -> io::Error {
        if e.kind() == io::ErrorKind::Interrupted {
            return e;
        }
        let copy = io::Error::new(e.kind(), e.to_string());
        self.failure.get_or_insert(e);
        copy
    }
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.keep(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.keep(e))
    }
}

/// Write a line of diagnostics (progress, the files written, a header when stdout carries
/// JSON) to standard error. A failed stderr is ignored: there is nowhere left to say so, and
/// `eprintln!` would panic.
pub fn note(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Write `bytes` to `path` atomically, creating the parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.flush()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails every write with `kind` after `ok` bytes.
    struct Failing {
        ok: usize,
        kind: io::ErrorKind,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.ok == 0 {
                return Err(io::Error::from(self.kind));
            }
            let n = buf.len().min(self.ok);
            self.ok -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_first_error_is_kept_however_the_caller_wraps_it() {
        let mut out = Sink::new(Failing {
            ok: 3,
            kind: io::ErrorKind::StorageFull,
        });
        let e = out.write_all(b"hello").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        // A caller that drops the error does not hide it.
        let _ = out.write_all(b"again");
        match out.status() {
            Stdout::Failed(e) => assert_eq!(e.kind(), io::ErrorKind::StorageFull),
            other => panic!("expected Failed, got {other:?}"),
        }
    }

    #[test]
    fn a_closed_pipe_is_closed_not_failed() {
        let mut out = Sink::new(Failing {
            ok: 0,
            kind: io::ErrorKind::BrokenPipe,
        });
        assert!(writeln!(out, "x").is_err());
        assert!(matches!(out.status(), Stdout::Closed));
    }
}
