//! The traced devices as a validation log (`imps simulate --log`): JSON Lines that
//! `imps validate` reads ([`imps_model::validate::log`]).
//!
//! Entries are recorded when they happen on the wire, not when they arrive: a request when
//! the device sends it, an answer or a Disconnect when the server sends it (an answer to a
//! connection that is already gone is never sent, and not written), and the device's
//! power-ons (`restart`), crashes and noticed connection losses as events. A message the
//! network loses is written: it was sent. That is the order a capture next to the wire
//! would show, and the order in which the model's steps put the messages on the wire.

use imps_model::msg::Envelope;
use imps_model::validate::log::{Dir, EventKind, LogWriter};

/// The most entries a run records for its log; past it the run stops with an error.
pub const MAX_LOG_ENTRIES: usize = 20_000_000;

/// What a log entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogWhat {
    /// A message put on the wire.
    Message {
        /// Sent by the device (else by the server).
        to_server: bool,
        /// The message.
        env: Envelope,
    },
    /// An event of the device.
    Event(EventKind),
}

/// One entry of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Simulated time, ms.
    pub time_ms: u64,
    /// The device.
    pub device: u32,
    /// What.
    pub what: LogWhat,
}

/// The entries as JSON Lines: user `user<U>` (device / devices_per_user), device `dev<D>`,
/// messages as CSP 1.3 XML.
pub fn jsonl(entries: &[LogEntry], devices_per_user: u32) -> String {
    let mut w = LogWriter::new();
    for e in entries {
        let user = format!("user{}", e.device / devices_per_user.max(1));
        let dev = format!("dev{}", e.device);
        match e.what {
            LogWhat::Message { to_server, env } => {
                let dir = if to_server {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                };
                w.message(e.time_ms, &user, &dev, dir, &env);
            }
            LogWhat::Event(kind) => w.event(e.time_ms, &user, &dev, kind),
        }
    }
    w.finish()
}
