//! Validation logs: what `imps validate` reads and what the checker and the simulator write.
//!
//! # JSON Lines (the native format)
//!
//! One object per line, in capture order:
//!
//! ```text
//! {"t_ms": 1200, "user": "alice", "device": "phone-1", "dir": "to-server", "xml": "<WV-CSP-Message ...>...</WV-CSP-Message>"}
//! {"t_ms": 1300, "user": "alice", "device": "phone-1", "event": "crash"}
//! ```
//!
//! `dir` is `to-server` or `to-client`; `event` is `crash`, `restart` or `connection-lost`.
//! `t_ms` must not decrease along a device's lines. Other keys are ignored (a capture tool may
//! add its own). Blank lines are skipped.
//!
//! # HAR 1.2
//!
//! Each entry whose request body is a `WV-CSP-Message` gives a `to-server` line (the request
//! body) and, when the response has a body, a `to-client` line; other entries are skipped. The
//! user and device come from the messages: a Login-Request names its user (`UserID`) and
//! device (its `ClientID`), and a message with a Session-ID belongs to the device whose
//! Login-Response (or Login-Request) carried that Session-ID. Lines are located by the line of
//! the entry in the file.
//!
//! # Writing
//!
//! [`LogWriter`] writes the JSON Lines form: the checker's counterexamples
//! ([`crate::trace::Trace::log`]) and the simulator's traced devices use it.

use crate::msg::Envelope;
use crate::xml;
use serde::Serialize;
use std::collections::BTreeMap;

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the device to the server.
    ToServer,
    /// From the server to the device.
    ToClient,
}

impl Dir {
    /// The spelling in the log.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dir::ToServer => "to-server",
            Dir::ToClient => "to-client",
        }
    }
}

/// Something that happened to a device, when the log records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The device crashed: its volatile state is gone, its crash-safe storage kept.
    Crash,
    /// The client (re)started; on a device that was running, a crash just before.
    Restart,
    /// The device's connection broke (it keeps its context).
    ConnectionLost,
}

impl EventKind {
    /// The spelling in the log.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Crash => "crash",
            EventKind::Restart => "restart",
            EventKind::ConnectionLost => "connection-lost",
        }
    }
}

/// What a line records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A CSP message on the wire.
    Message {
        /// Which way.
        dir: Dir,
        /// The `WV-CSP-Message` document.
        xml: String,
    },
    /// An event of the device.
    Event(EventKind),
}

/// One line of a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// 1-based line in the file (for HAR: the line where the entry starts).
    pub line: usize,
    /// For HAR: `entry N request` or `entry N response`; empty for JSON Lines.
    pub part: String,
    /// Milliseconds, as the log gives them.
    pub t_ms: u64,
    /// The user.
    pub user: String,
    /// The device (one client installation).
    pub device: String,
    /// What happened.
    pub entry: Entry,
}

/// A parsed log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// The file, as named on the command line.
    pub path: String,
    /// The lines, in capture order.
    pub lines: Vec<Line>,
}

/// A log that cannot be read: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct LogError {
    /// The file.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// What was expected there, and what was found.
    pub message: String,
}

fn err(path: &str, line: usize, message: impl Into<String>) -> LogError {
    LogError {
        path: path.to_string(),
        line,
        message: message.into(),
    }
}

/// Parses a log, JSON Lines or HAR: a document whose first non-blank character is `{` and
/// that parses as one JSON object with a `log` member is HAR; anything else is JSON Lines.
///
/// # Errors
///
/// A [`LogError`] naming the first bad line.
pub fn parse_log(path: &str, text: &str) -> Result<Log, LogError> {
    if looks_like_har(text) {
        parse_har(path, text)
    } else {
        parse_jsonl(path, text)
    }
}

fn looks_like_har(text: &str) -> bool {
    if !text.trim_start().starts_with('{') {
        return false;
    }
    // A JSON Lines log has several objects; HAR is one object with `log`.
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .is_some_and(|v| v.get("log").is_some())
}

fn field<'a>(
    obj: &'a serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Option<&'a serde_json::Value> {
    obj.get(key)
}

/// Parses JSON Lines (see the module documentation).
///
/// # Errors
///
/// A [`LogError`] naming the first line that is not a JSON object, lacks a key, has an
/// unknown `dir` or `event`, or whose `t_ms` is before the previous line of its device.
pub fn parse_jsonl(path: &str, text: &str) -> Result<Log, LogError> {
    let mut lines = Vec::new();
    let mut last_t: BTreeMap<(String, String), (u64, usize)> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
            err(
                path,
                n,
                format!("expected a JSON object, found text that does not parse ({e})"),
            )
        })?;
        let serde_json::Value::Object(obj) = v else {
            return Err(err(path, n, "expected a JSON object {\"t_ms\": ..., \"user\": ..., \"device\": ..., \"dir\" and \"xml\" or \"event\"}"));
        };
        let t_ms = field(&obj, "t_ms")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| {
                err(
                    path,
                    n,
                    "expected \"t_ms\": a whole number of milliseconds (0 or more)",
                )
            })?;
        let text_field = |key: &str| -> Result<String, LogError> {
            match field(&obj, key) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                Some(_) => Err(err(
                    path,
                    n,
                    format!("expected \"{key}\": a non-empty string"),
                )),
                None => Err(err(path, n, format!("expected a \"{key}\" key"))),
            }
        };
        let user = text_field("user")?;
        let device = text_field("device")?;
        let entry = match (field(&obj, "event"), field(&obj, "dir")) {
            (Some(_), Some(_)) => {
                return Err(err(
                    path,
                    n,
                    "expected either \"event\" or \"dir\" with \"xml\", not both",
                ))
            }
            (Some(ev), None) => {
                let kind = match ev.as_str() {
                    Some("crash") => EventKind::Crash,
                    Some("restart") => EventKind::Restart,
                    Some("connection-lost") => EventKind::ConnectionLost,
                    _ => {
                        return Err(err(
                            path,
                            n,
                            format!(
                                "expected \"event\": \"crash\", \"restart\" or \"connection-lost\", found {ev}"
                            ),
                        ))
                    }
                };
                Entry::Event(kind)
            }
            (None, Some(d)) => {
                let dir = match d.as_str() {
                    Some("to-server") => Dir::ToServer,
                    Some("to-client") => Dir::ToClient,
                    _ => {
                        return Err(err(
                            path,
                            n,
                            format!("expected \"dir\": \"to-server\" or \"to-client\", found {d}"),
                        ))
                    }
                };
                let xml = text_field("xml")?;
                Entry::Message { dir, xml }
            }
            (None, None) => {
                return Err(err(
                    path,
                    n,
                    "expected \"dir\" and \"xml\" (a message) or \"event\"",
                ))
            }
        };
        let key = (user.clone(), device.clone());
        if let Some(&(prev, at)) = last_t.get(&key) {
            if t_ms < prev {
                return Err(err(
                    path,
                    n,
                    format!(
                        "expected t_ms of at least {prev} (device {device} of {user} was at {prev} on line {at}), found {t_ms}"
                    ),
                ));
            }
        }
        last_t.insert(key, (t_ms, n));
        lines.push(Line {
            line: n,
            part: String::new(),
            t_ms,
            user,
            device,
            entry,
        });
    }
    Ok(Log {
        path: path.to_string(),
        lines,
    })
}

// ---------------------------------------------------------------------------------------------
// HAR
// ---------------------------------------------------------------------------------------------

/// The 1-based line where each element of `log.entries` starts, in order. A small scanner
/// over the JSON text (strings, escapes, nesting), since the JSON parser keeps no positions.
fn har_entry_lines(text: &str) -> Vec<usize> {
    #[derive(PartialEq)]
    enum Frame {
        Obj(Option<String>),
        Arr,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut keys: Vec<Option<String>> = Vec::new(); // the key under which each frame sits
    let mut out = Vec::new();
    let mut line = 1;
    let mut last_string: Option<String> = None;
    let mut chars = text.chars().peekable();
    let in_entries = |keys: &[Option<String>], stack: &[Frame]| {
        stack.len() == 3
            && matches!(stack[2], Frame::Arr)
            && keys.get(1).and_then(|k| k.as_deref()) == Some("log")
            && keys.get(2).and_then(|k| k.as_deref()) == Some("entries")
    };
    let mut pending_key: Option<String> = None;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                if e == '\n' {
                                    line += 1;
                                }
                                s.push(e);
                            }
                        }
                        '"' => break,
                        '\n' => {
                            line += 1;
                            s.push(c);
                        }
                        other => s.push(other),
                    }
                }
                last_string = Some(s);
            }
            ':' => {
                pending_key = last_string.take();
                if let Some(Frame::Obj(k)) = stack.last_mut() {
                    *k = pending_key.clone();
                }
            }
            '{' | '[' => {
                if in_entries(&keys, &stack) && c == '{' {
                    out.push(line);
                }
                let under = match stack.last() {
                    Some(Frame::Obj(k)) => k.clone(),
                    _ => None,
                };
                keys.push(under);
                stack.push(if c == '{' {
                    Frame::Obj(None)
                } else {
                    Frame::Arr
                });
                pending_key = None;
            }
            '}' | ']' => {
                stack.pop();
                keys.pop();
            }
            ',' => {
                last_string = None;
                if let Some(Frame::Obj(k)) = stack.last_mut() {
                    *k = None;
                }
            }
            _ => {}
        }
    }
    let _ = pending_key;
    out
}

/// Milliseconds since 1970 of an ISO 8601 date-time (`2024-05-01T10:00:00.123+02:00`, `Z`).
fn iso8601_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) && !t.is_empty() {
            t.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = s.get(start..i)?;
        let three: String = digits.chars().chain("000".chars()).take(3).collect();
        frac_ms = three.parse().ok()?;
    }
    let offset_min = match b.get(i) {
        Some(b'Z') | None => 0,
        Some(b'+') | Some(b'-') => {
            let sign = if b[i] == b'-' { -1 } else { 1 };
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6).or_else(|| num(i + 3..i + 5))?;
            sign * (oh * 60 + om)
        }
        Some(_) => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (yy, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = (((days * 24 + h) * 60 + mi - offset_min) * 60 + sec) * 1000 + frac_ms;
    u64::try_from(ms).ok()
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\n' | b'\r' | b' ' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Who a HAR message belongs to, learnt from the messages themselves.
#[derive(Default)]
struct HarOwners {
    /// Session-ID -> (user, device).
    sessions: BTreeMap<String, (String, String)>,
}

/// Parses HAR 1.2 (see the module documentation).
///
/// # Errors
///
/// A [`LogError`] at the entry's line when the file is not HAR, a body does not decode, or
/// a message's user and device cannot be told (an in-session message whose Session-ID no
/// earlier Login-Request or Login-Response of the file named).
pub fn parse_har(path: &str, text: &str) -> Result<Log, LogError> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        err(
            path,
            e.line(),
            format!("expected HAR 1.2 (one JSON object), found JSON that does not parse: {e}"),
        )
    })?;
    let entries = doc
        .get("log")
        .and_then(|l| l.get("entries"))
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| err(path, 1, "expected HAR 1.2: an object with log.entries"))?;
    let entry_lines = har_entry_lines(text);
    let mut owners = HarOwners::default();
    let mut lines = Vec::new();
    for (k, e) in entries.iter().enumerate() {
        let n = entry_lines.get(k).copied().unwrap_or(1);
        let body =
            |v: Option<&serde_json::Value>, what: &str| -> Result<Option<String>, LogError> {
                let Some(v) = v else { return Ok(None) };
                let Some(t) = v.get("text").and_then(serde_json::Value::as_str) else {
                    return Ok(None);
                };
                if v.get("encoding").and_then(serde_json::Value::as_str) == Some("base64") {
                    let bytes = base64_decode(t).ok_or_else(|| {
                        err(
                            path,
                            n,
                            format!("entry {}: expected base64 in the {what} body", k + 1),
                        )
                    })?;
                    return String::from_utf8(bytes).map(Some).map_err(|_| {
                        err(
                            path,
                            n,
                            format!("entry {}: expected UTF-8 in the {what} body", k + 1),
                        )
                    });
                }
                Ok(Some(t.to_string()))
            };
        let Some(req) = body(e.get("request").and_then(|r| r.get("postData")), "request")? else {
            continue;
        };
        if !req.contains("WV-CSP-Message") {
            continue;
        }
        let resp = body(e.get("response").and_then(|r| r.get("content")), "response")?
            .filter(|t| !t.trim().is_empty());
        let started = e
            .get("startedDateTime")
            .and_then(serde_json::Value::as_str)
            .and_then(iso8601_ms)
            .unwrap_or(0);
        let took = e
            .get("time")
            .and_then(serde_json::Value::as_f64)
            .filter(|t| *t >= 0.0)
            .unwrap_or(0.0) as u64;
        let decode = |xml: &str, what: &str| {
            xml::decode(xml).map_err(|x| {
                err(
                    path,
                    n,
                    format!(
                        "entry {} {what}: the message does not decode: line {}, column {}: expected {}, found {}",
                        k + 1,
                        x.line,
                        x.column,
                        x.expected,
                        x.found
                    ),
                )
            })
        };
        let d = decode(&req, "request")?;
        let (user, device) = if d.primitive == "Login-Request" {
            let user = d.user_id.clone().ok_or_else(|| {
                err(
                    path,
                    n,
                    format!(
                        "entry {} request: expected a UserID in the Login-Request",
                        k + 1
                    ),
                )
            })?;
            let device = d.client_id.clone().ok_or_else(|| {
                err(
                    path,
                    n,
                    format!(
                        "entry {} request: expected a ClientID in the Login-Request",
                        k + 1
                    ),
                )
            })?;
            (user, device)
        } else {
            let sid = d.session_id.clone().ok_or_else(|| {
                err(path, n, format!("entry {} request: a {} without a SessionID names no user or device (HAR logs take them from the messages)", k + 1, d.primitive))
            })?;
            owners.sessions.get(&sid).cloned().ok_or_else(|| {
                err(path, n, format!("entry {} request: expected a SessionID that an earlier Login-Request or Login-Response of the file named, found {sid:?} (HAR logs take the user and device from the messages)", k + 1))
            })?
        };
        if let Some(r) = &d.recovery_session_id {
            if d.primitive == "Login-Request" {
                owners
                    .sessions
                    .insert(r.clone(), (user.clone(), device.clone()));
            }
        }
        lines.push(Line {
            line: n,
            part: format!("entry {} request", k + 1),
            t_ms: started,
            user: user.clone(),
            device: device.clone(),
            entry: Entry::Message {
                dir: Dir::ToServer,
                xml: req,
            },
        });
        if let Some(resp) = resp {
            let r = decode(&resp, "response")?;
            if r.primitive == "Login-Response" {
                if let Some(sid) = &r.content_session_id {
                    owners
                        .sessions
                        .insert(sid.clone(), (user.clone(), device.clone()));
                }
            }
            lines.push(Line {
                line: n,
                part: format!("entry {} response", k + 1),
                t_ms: started + took,
                user,
                device,
                entry: Entry::Message {
                    dir: Dir::ToClient,
                    xml: resp,
                },
            });
        }
    }
    Ok(Log {
        path: path.to_string(),
        lines,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct MessageLine<'a> {
    t_ms: u64,
    user: &'a str,
    device: &'a str,
    dir: &'a str,
    xml: &'a str,
}

#[derive(Serialize)]
struct EventLine<'a> {
    t_ms: u64,
    user: &'a str,
    device: &'a str,
    event: &'a str,
}

/// Writes the JSON Lines form, one line per call.
#[derive(Debug, Default)]
pub struct LogWriter {
    out: String,
}

impl LogWriter {
    /// An empty log.
    pub fn new() -> LogWriter {
        LogWriter::default()
    }

    /// A message, written as CSP 1.3 XML ([`xml::encode_fragment`]).
    pub fn message(&mut self, t_ms: u64, user: &str, device: &str, dir: Dir, env: &Envelope) {
        let xml = xml::encode_fragment(env);
        let line = MessageLine {
            t_ms,
            user,
            device,
            dir: dir.as_str(),
            xml: xml.trim_end(),
        };
        self.push(&line);
    }

    /// An event.
    pub fn event(&mut self, t_ms: u64, user: &str, device: &str, kind: EventKind) {
        let line = EventLine {
            t_ms,
            user,
            device,
            event: kind.as_str(),
        };
        self.push(&line);
    }

    fn push(&mut self, line: &impl Serialize) {
        let s = serde_json::to_string(line).expect("invariant: a log line serializes to JSON");
        self.out.push_str(&s);
        self.out.push('\n');
    }

    /// The log so far.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// The log.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_errors_name_the_line_and_what_was_expected() {
        let ok = "{\"t_ms\": 1, \"user\": \"a\", \"device\": \"p\", \"event\": \"crash\"}\n";
        assert_eq!(parse_jsonl("x", ok).unwrap().lines.len(), 1);
        let cases = [
            ("not json\n", "x:1: expected a JSON object"),
            (
                "{\"t_ms\": 1, \"user\": \"a\", \"device\": \"p\", \"dir\": \"up\", \"xml\": \"<a/>\"}\n",
                "x:1: expected \"dir\": \"to-server\" or \"to-client\", found \"up\"",
            ),
            (
                "\n{\"t_ms\": -1, \"user\": \"a\", \"device\": \"p\", \"event\": \"crash\"}\n",
                "x:2: expected \"t_ms\"",
            ),
            (
                "{\"t_ms\": 1, \"user\": \"a\", \"device\": \"p\", \"event\": \"reboot\"}\n",
                "x:1: expected \"event\": \"crash\", \"restart\" or \"connection-lost\", found \"reboot\"",
            ),
            (
                "{\"t_ms\": 1, \"user\": \"a\", \"device\": \"p\"}\n",
                "x:1: expected \"dir\" and \"xml\" (a message) or \"event\"",
            ),
            (
                "{\"t_ms\": 5, \"user\": \"a\", \"device\": \"p\", \"event\": \"crash\"}\n{\"t_ms\": 4, \"user\": \"a\", \"device\": \"p\", \"event\": \"restart\"}\n",
                "x:2: expected t_ms of at least 5",
            ),
        ];
        for (text, want) in cases {
            let e = parse_jsonl("x", text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}\n  wanted {want}");
        }
    }

    #[test]
    fn the_writer_writes_what_the_parser_reads() {
        let env = crate::msg::Envelope::request(
            None,
            crate::msg::Tid(1),
            crate::msg::Primitive::LogoutRequest,
        );
        let mut w = LogWriter::new();
        w.message(5, "user0", "dev0", Dir::ToServer, &env);
        w.event(7, "user0", "dev0", EventKind::Restart);
        let log = parse_jsonl("w", &w.finish()).unwrap();
        assert_eq!(log.lines.len(), 2);
        let Entry::Message { dir, xml } = &log.lines[0].entry else {
            panic!("a message")
        };
        assert_eq!(*dir, Dir::ToServer);
        assert_eq!(crate::xml::decode_envelope(xml).unwrap(), env);
        assert_eq!(log.lines[1].entry, Entry::Event(EventKind::Restart));
    }

    #[test]
    fn iso_dates_and_base64() {
        assert_eq!(iso8601_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            iso8601_ms("2024-05-01T12:00:00.000+02:00"),
            iso8601_ms("2024-05-01T10:00:00Z")
        );
        assert_eq!(base64_decode("PGE+").unwrap(), b"<a>");
    }

    #[test]
    fn har_entries_are_located_by_line() {
        let text = "{\n \"log\": {\n  \"entries\": [\n   {\"a\": [1, {\"b\": 2}]},\n\n   {\"c\": \"x{y\"}\n  ]\n }\n}\n";
        assert_eq!(har_entry_lines(text), vec![4, 6]);
    }
}
