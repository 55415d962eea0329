//! Writing output files: never half-written (a temporary file in the same directory, then a
//! rename); and reading the command line with clap's errors safe for a terminal.

use std::io::Write;
use std::path::Path;

/// The command line as `P`. clap's own errors (an unknown flag, a bad value) quote the
/// arguments; they are printed with their control characters escaped
/// ([`imps_model::io::escape_controls`], line by line), then the process exits with clap's
/// code (2). `--help` and `--version` print as clap prints them.
pub fn parse_args<P: clap::Parser>() -> P {
    match P::try_parse() {
        Ok(parsed) => parsed,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            let mut err = std::io::stderr().lock();
            for line in text.lines() {
                // Nothing more to say if stderr is closed.
                let _ = writeln!(err, "{}", imps_model::io::escape_controls(line));
            }
            std::process::exit(e.exit_code());
        }
    }
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
