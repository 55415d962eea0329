//! `imps decode`: decode CSP XML files and print one JSON object per message.
//!
//! Each file holds one `WV-CSP-Message` (CSP 1.1, 1.2 or 1.3, decoded tolerantly by
//! [`imps_model::xml::decode`]). The JSON is the serialisation of
//! [`imps_model::xml::Decoded`], one object per line, in the order the files were given. The
//! first file that cannot be read or decoded stops the command; its error reads like a
//! compiler's, `<path>:<line>:<column>: expected ..., found ...`, so editors can jump to it.

use imps_model::io::{read_capped_string, Cap, ReadError};
use imps_model::xml::{decode, XmlError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why `imps decode` stopped.
#[derive(Debug, thiserror::Error)]
pub enum DecodeFileError {
    /// The file could not be read (missing, unreadable, not UTF-8, larger than
    /// [`Cap::XML_MESSAGE`]).
    #[error("{0}")]
    Read(ReadError),
    /// The file is not a CSP message the codec accepts.
    #[error("{}:{}:{}: expected {}, found {}", path.display(), source.line, source.column, source.expected, source.found)]
    Decode {
        /// The file.
        path: PathBuf,
        /// Where and why decoding failed.
        source: XmlError,
    },
    /// The JSON could not be written to the output.
    #[error("writing the decoded messages: {0}")]
    Write(#[from] std::io::Error),
}

impl DecodeFileError {
    /// The file the error is about, if it is about a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DecodeFileError::Read(e) => Some(e.path()),
            DecodeFileError::Decode { path, .. } => Some(path),
            DecodeFileError::Write(_) => None,
        }
    }
}

/// Decodes `paths` in order and writes one JSON line per message to `out`; stops at the
/// first file that cannot be read or decoded (the lines of the files before it are written).
///
/// # Errors
///
/// [`DecodeFileError::Read`] or [`DecodeFileError::Decode`] for the first bad file, and
/// [`DecodeFileError::Write`] when `out` fails.
pub fn decode_files(paths: &[PathBuf], out: &mut dyn Write) -> Result<(), DecodeFileError> {
    for path in paths {
        let text = read_capped_string(path, Cap::XML_MESSAGE).map_err(DecodeFileError::Read)?;
        let decoded = decode(&text).map_err(|source| DecodeFileError::Decode {
            path: path.clone(),
            source,
        })?;
        serde_json::to_writer(&mut *out, &decoded).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use imps_model::msg::{Envelope, Primitive, SessionId, Tid};
    use imps_model::xml::encode;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("temp file is writable");
        path
    }

    #[test]
    fn good_files_give_one_json_line_each_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let poll = encode(&Envelope::request(
            Some(SessionId(3)),
            Tid(8),
            Primitive::PollingRequest,
        ));
        let logout = encode(&Envelope::request(
            Some(SessionId(3)),
            Tid(9),
            Primitive::LogoutRequest,
        ));
        let files = [
            write(dir.path(), "b.xml", &poll),
            write(dir.path(), "a.xml", &logout),
        ];
        let mut out = Vec::new();
        decode_files(&files, &mut out).expect("both decode");
        let text = String::from_utf8(out).expect("JSON is UTF-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(
            "{\"version\":\"1.3\",\"primitive\":\"Polling-Request\",\"session_id\":\"imps.example#3\",\"transaction_id\":\"8\",\"user_id\":null,\"client_id\":null,\"result_code\":null,"
        ), "{}", lines[0]);
        assert!(lines[1].contains("\"primitive\":\"Logout-Request\""));
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
            assert!(v.is_object());
        }
    }

    #[test]
    fn the_first_bad_file_stops_with_path_line_and_column() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = encode(&Envelope::request(None, Tid(1), Primitive::PollingRequest));
        let bad = good.replace(
            "<TransactionMode>Request</TransactionMode>",
            "<TransactionMode>Foo</TransactionMode>",
        );
        let files = [
            write(dir.path(), "good.xml", &good),
            write(dir.path(), "bad.xml", &bad),
            write(dir.path(), "never-read.xml", "not even XML"),
        ];
        let mut out = Vec::new();
        let err = decode_files(&files, &mut out).expect_err("bad.xml must fail");
        assert_eq!(err.path(), Some(files[1].as_path()));
        assert_eq!(
            err.to_string(),
            format!(
                "{}:9:26: expected <TransactionMode> to be Request or Response, found \"Foo\"",
                files[1].display()
            )
        );
        // The good file before it was printed, nothing after it.
        let text = String::from_utf8(out).expect("JSON is UTF-8");
        assert_eq!(text.lines().count(), 1);

        let missing = dir.path().join("missing.xml");
        let err = decode_files(std::slice::from_ref(&missing), &mut Vec::new())
            .expect_err("missing file");
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("{}: ", missing.display())),
            "{shown}"
        );
    }
}
