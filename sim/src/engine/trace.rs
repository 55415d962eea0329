//! A traced device's messages as a Mermaid `sequenceDiagram` and as CSP 1.3 XML, in the style
//! of the checker's counterexamples (message summaries from [`imps_model::trace::summary`]).

use super::sim::{Fate, TraceEntry, TraceWhat};
use std::fmt::Write;

/// The most messages a diagram shows; the XML has them all.
pub const MAX_DIAGRAM_LINES: usize = 5000;

fn secs(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// What a trace is of.
#[derive(Clone, Copy, Debug)]
pub struct TraceOf<'a> {
    /// The variant.
    pub variant: &'a str,
    /// The seed.
    pub seed: u64,
    /// The device.
    pub device: u32,
    /// Its user.
    pub user: u32,
}

/// The device's messages and events as a Mermaid `sequenceDiagram`.
pub fn mermaid(of: TraceOf<'_>, entries: &[TraceEntry]) -> String {
    let mut out = String::from("sequenceDiagram\n");
    let d = of.device;
    let _ = writeln!(
        out,
        "    title {} seed {}: dev{d} (user{})",
        of.variant, of.seed, of.user
    );
    let _ = writeln!(out, "    participant D as dev{d} (user{})", of.user);
    out.push_str("    participant S as server\n");
    let mine: Vec<&TraceEntry> = entries.iter().filter(|e| e.device == d).collect();
    for e in mine.iter().take(MAX_DIAGRAM_LINES) {
        let t = secs(e.time_ms);
        match e.what {
            TraceWhat::Note(n) => {
                let _ = writeln!(out, "    Note over D: {t} {n}");
            }
            TraceWhat::Message {
                from_device,
                env,
                fate,
            } => {
                let text = imps_model::trace::summary(&env).replace(';', ",");
                let (from, to) = if from_device { ("D", "S") } else { ("S", "D") };
                let (arrow, why) = match (fate, from_device) {
                    (Fate::Delivered, true) => ("->>", ""),
                    (Fate::Delivered, false) => ("-->>", ""),
                    (Fate::Lost, _) => ("-x", " (lost)"),
                    (Fate::Dropped, _) => ("-x", " (dropped: connection gone)"),
                };
                let _ = writeln!(out, "    {from}{arrow}{to}: {t} {text}{why}");
            }
        }
    }
    if mine.len() > MAX_DIAGRAM_LINES {
        let _ = writeln!(
            out,
            "    Note over D,S: {} more entries: see device-{d}.xml",
            mine.len() - MAX_DIAGRAM_LINES
        );
    }
    out
}

/// The device's messages as CSP 1.3 XML ([`imps_model::xml::encode`]), each preceded by a
/// comment with its time, sender and receiver, inside an `imps-trace` element.
pub fn xml(of: TraceOf<'_>, entries: &[TraceEntry]) -> String {
    let d = of.device;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<imps-trace variant=\"{}\" seed=\"{}\" device=\"dev{d}\" user=\"user{}\">",
        of.variant, of.seed, of.user
    );
    for e in entries.iter().filter(|e| e.device == d) {
        let t = secs(e.time_ms);
        match e.what {
            TraceWhat::Note(n) => {
                let _ = writeln!(out, "<!-- t={t} dev{d}: {n} -->");
            }
            TraceWhat::Message {
                from_device,
                env,
                fate,
            } => {
                let (from, to) = if from_device {
                    (format!("dev{d}"), "server".to_string())
                } else {
                    ("server".to_string(), format!("dev{d}"))
                };
                let fate = match fate {
                    Fate::Delivered => "delivered",
                    Fate::Lost => "lost",
                    Fate::Dropped => "dropped",
                };
                let _ = writeln!(out, "<!-- t={t} {from} -> {to} ({fate}) -->");
                let _ = writeln!(
                    out,
                    "<message time-ms=\"{}\" from=\"{from}\" to=\"{to}\" fate=\"{fate}\">",
                    e.time_ms
                );
                out.push_str(&imps_model::xml::encode_fragment(&env));
                out.push_str("</message>\n");
            }
        }
    }
    out.push_str("</imps-trace>\n");
    out
}
