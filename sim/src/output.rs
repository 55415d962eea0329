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
    let _ = writeln!(
        io::stderr().lock(),
        "{}",
        imps_model::io::escape_controls(line)
    );
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so that
/// `path` is never half-written; the parent directories are created.
///
/// A file that exists keeps its permissions (`imps check --bless` rewrites a variant file in
/// place); a new file gets those of a file the user created: 0644 less the umask (the
/// temporary file alone would be 0600).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let kept = std::fs::metadata(path).ok().map(|m| m.permissions());
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode given to open(2), which the umask reduces.
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    if let Some(p) = kept {
        tmp.as_file().set_permissions(p)?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// `name` as one folder or file name under an output directory: refused when it is empty,
/// `.` or `..`, or holds a separator, because `out.join(name)` would then not be a new entry
/// under `out` (a variant file `...toml` is named `..`).
pub fn entry_name(name: &str) -> Result<&str, String> {
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(std::path::Component::Normal(n)), None) if n == name => Ok(name),
        _ => Err(format!(
            "`{name}` cannot name a file or folder under the output directory: expected a name without `/` that is not `.` or `..`"
        )),
    }
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
    fn atomic_writes_leave_no_temporary_files_and_keep_a_files_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.txt");
        write_atomic(&p, b"one").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            // Whatever the umask, never the temporary file's 0600 and never more than 0644.
            assert_eq!(mode(&p) & !0o644, 0, "{:o}", mode(&p));
            assert_eq!(mode(&p) & 0o600, 0o600, "{:o}", mode(&p));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o604)).unwrap();
            write_atomic(&p, b"two").unwrap();
            assert_eq!(mode(&p), 0o604);
        }
        write_atomic(&p, b"three").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "three");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_entry_name_stays_under_its_directory() {
        for good in ["post-cr", ".toml", "..a", "a..b", "...."] {
            assert_eq!(entry_name(good), Ok(good));
        }
        for bad in ["", ".", "..", "a/b", "/a", "a/", "./a"] {
            assert!(entry_name(bad).is_err(), "{bad}");
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
