//! Counterexamples and device traces, rendered for people and tools: readable text, a Mermaid
//! `sequenceDiagram`, the CSP 1.3 XML of every message, and the states in the Informal Trace
//! Format (ITF) that Apalache and Quint read.

use crate::client::{ClientNote, ClientOut, StoreOp};
use crate::config::Config;
use crate::msg::{Envelope, Primitive};
use crate::server::{EndCause, ServerEvent};
use crate::world::{Action, Step, World};
use serde_json::{json, Value};
use std::fmt::Write;

/// A message on the wire in one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wire {
    /// The device at the client end.
    pub device: u8,
    /// From the device to the server (else from the server to the device).
    pub to_server: bool,
    /// The message.
    pub env: Envelope,
    /// Sent, but never delivered: its connection was gone.
    pub lost: bool,
}

/// One step of a trace.
#[derive(Clone, Debug)]
pub struct TraceStep {
    /// The action.
    pub action: Action,
    /// The messages it put on the wire.
    pub messages: Vec<Wire>,
    /// What else happened (crash, storage write, expiry...).
    pub notes: Vec<(Option<u8>, String)>,
    /// The world after the step.
    pub state: World,
}

fn store_note(out: &ClientOut) -> Option<String> {
    match out.store? {
        StoreOp::Store(s) => Some(format!(
            "stores Session-ID {} crash-safely",
            sid(s.session.0)
        )),
        StoreOp::Remove => Some("removes the stored Session-ID".to_string()),
    }
}

fn sid(n: u32) -> String {
    format!("#{n}")
}

impl TraceStep {
    /// Record a step `before --action--> after`.
    pub fn new(
        cfg: &Config,
        before: &World,
        action: Action,
        step: &Step,
        after: &World,
    ) -> TraceStep {
        let _ = cfg;
        let orphan = step.request.is_some_and(|r| r.orphan);
        let messages = step
            .messages
            .iter()
            .map(|&(device, to_server, env)| {
                let push = matches!(env.body, Primitive::Disconnect { .. })
                    && env.mode == crate::msg::Mode::Request;
                let lost = if to_server {
                    false
                } else if push {
                    after.devices[device as usize].client.phase == crate::client::Phase::Down
                } else {
                    orphan
                };
                Wire {
                    device,
                    to_server,
                    env,
                    lost,
                }
            })
            .collect();
        let mut notes = Vec::new();
        let d = action.device();
        match action {
            Action::Start(x) => notes.push((
                d,
                if before.devices[x as usize].client.stored.is_some() {
                    "starts (a Session-ID is stored)".to_string()
                } else {
                    "starts".to_string()
                },
            )),
            Action::Crash(_) => notes.push((
                d,
                "CRASH: volatile state lost, stored Session-ID kept, answers in flight lost"
                    .to_string(),
            )),
            Action::LoseConnection(_) => {
                notes.push((d, "connection lost (context kept)".to_string()))
            }
            Action::RetryTimer(_) => notes.push((d, "retry timer fires".to_string())),
            Action::KeepAliveTimer(_) => notes.push((d, "keep-alive timer fires".to_string())),
            Action::User(_, a) => notes.push((d, format!("user: {a:?}"))),
            Action::Expire { user, index } => {
                let s = before.users[user as usize].sessions[index as usize];
                notes.push((
                    None,
                    format!(
                        "Time-To-Live of session {} (user{user}, {}) runs out",
                        sid(s.id.0),
                        s.client_id
                    ),
                ));
            }
            Action::ServerReceives(_)
            | Action::ClientReceives(_)
            | Action::ClientReceivesPush(_) => {}
        }
        if let Some(out) = &step.client {
            match out.note {
                Some(ClientNote::Established { recovered }) => notes.push((
                    d,
                    format!(
                        "holds a session{}",
                        if recovered {
                            " (recovered, context kept)"
                        } else {
                            ""
                        }
                    ),
                )),
                Some(ClientNote::LoginRefused(code)) => notes.push((
                    d,
                    format!("login refused ({}: {})", code.number(), code.description()),
                )),
                Some(ClientNote::SessionLost(code)) => {
                    notes.push((d, format!("session lost ({})", code.number())))
                }
                None => {}
            }
            if let Some(n) = store_note(out) {
                notes.push((d, n));
            }
        }
        if let Some(sout) = &step.server {
            for ev in &sout.events {
                let text = match ev {
                    ServerEvent::Admitted {
                        session,
                        client_id: c,
                        recovered,
                    } => {
                        format!(
                            "session {} {} for {}",
                            sid(session.0),
                            if *recovered { "recovered" } else { "created" },
                            c
                        )
                    }
                    ServerEvent::Ended {
                        session,
                        client_id: c,
                        cause,
                    } => {
                        let why = match cause {
                            EndCause::Logout => "logout",
                            EndCause::Expired => "expired",
                            EndCause::Replaced => "replaced by a new login",
                        };
                        format!("session {} of {} ended ({why})", sid(session.0), c)
                    }
                };
                notes.push((None, text));
            }
        }
        TraceStep {
            action,
            messages,
            notes,
            state: after.clone(),
        }
    }
}

/// A counterexample (or a device's run): a sequence of steps from the initial world.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The variant.
    pub variant: String,
    /// The property violated.
    pub property: String,
    /// One line on what the trace shows.
    pub title: String,
    /// The bounds the verdict holds within.
    pub bounds: String,
    /// The initial world.
    pub initial: World,
    /// The steps.
    pub steps: Vec<TraceStep>,
    /// For a lasso: the index of the first step of the cycle, which repeats forever.
    pub loop_start: Option<usize>,
    /// The device the trace is about, if one.
    pub device: Option<u8>,
}

/// The key fields of a message, in one line.
pub fn summary(env: &Envelope) -> String {
    let mut s = env.body.wire_name().to_string();
    if let Some(r) = env.body.result() {
        let _ = write!(s, " {}", r.number());
    }
    match env.body {
        Primitive::LoginRequest(lr) => {
            let _ = write!(s, " ClientID={}", lr.client_id);
            if let Some(id) = lr.session_id {
                let _ = write!(s, " SessionID={} (recovery)", sid(id.0));
            }
            if lr.digest_schema {
                s.push_str(" DigestSchema");
            }
            if lr.digest_bytes.is_some() {
                s.push_str(" DigestBytes");
            }
            if lr.negotiation {
                s.push_str(" +negotiation");
            }
            if lr.system_message_response.is_some() {
                s.push_str(" +SystemMessageResponseList");
            }
        }
        Primitive::LoginResponse(r) => {
            if let Some(id) = r.session_id {
                let _ = write!(s, " SessionID={}", sid(id.0));
            }
            if r.nonce.is_some() {
                s.push_str(" Nonce");
            }
            if let Some(c) = r.capability_request {
                let _ = write!(s, " CapabilityRequest={}", if c { "T" } else { "F" });
            }
        }
        Primitive::JoinGroupRequest { group } | Primitive::LeaveGroupRequest { group } => {
            let _ = write!(s, " group{group}");
        }
        Primitive::UpdatePresenceRequest { presence } => {
            let _ = write!(s, " presence={presence}");
        }
        _ => {}
    }
    if let Some(id) = env.session {
        let _ = write!(s, " [session {}]", sid(id.0));
    }
    match env.tid {
        Some(t) => {
            let _ = write!(s, " TID={}", t.0);
        }
        None => s.push_str(" (no TID)"),
    }
    s
}

impl TraceStep {
    /// The step as lines of a Mermaid `sequenceDiagram` whose participants are
    /// `{lane}D<device>` and `{lane}S` (the server): a note per event, an arrow per message.
    pub fn mermaid(&self, out: &mut String, lane: &str) {
        for (d, n) in &self.notes {
            let over = d.map_or_else(|| format!("{lane}S"), |d| format!("{lane}D{d}"));
            let _ = writeln!(out, "    Note over {over}: {}", n.replace(';', ","));
        }
        for m in &self.messages {
            let text = summary(&m.env).replace(';', ",");
            let (dev, server) = (format!("{lane}D{}", m.device), format!("{lane}S"));
            let (from, to) = if m.to_server {
                (dev, server)
            } else {
                (server, dev)
            };
            let arrow = match (m.to_server, m.lost) {
                (_, true) => "-x",
                (true, false) => "->>",
                (false, false) => "-->>",
            };
            let lost = if m.lost { " (lost)" } else { "" };
            let _ = writeln!(out, "    {from}{arrow}{to}: {text}{lost}");
        }
    }

    /// What the step did, one line per event and message: `dev0: starts`,
    /// `dev0 -> server: Login-Request ...`.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (d, n) in &self.notes {
            let who = d
                .map(|d| format!("dev{d}"))
                .unwrap_or_else(|| "server".to_string());
            out.push(format!("{who}: {n}"));
        }
        for m in &self.messages {
            let arrow = if m.to_server {
                format!("dev{} -> server", m.device)
            } else {
                format!("server -> dev{}", m.device)
            };
            let lost = if m.lost {
                "   (LOST: the connection is gone)"
            } else {
                ""
            };
            out.push(format!("{arrow}: {}{lost}", summary(&m.env)));
        }
        out
    }
}

impl Trace {
    /// Readable text, one line per message or event.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{} / {}: {}", self.variant, self.property, self.title);
        let _ = writeln!(out, "bounds: {}", self.bounds);
        for (i, st) in self.steps.iter().enumerate() {
            if Some(i) == self.loop_start {
                let _ = writeln!(out, "  --- cycle: the steps below repeat forever ---");
            }
            for line in st.lines() {
                let _ = writeln!(out, "{:>4}. {line}", i + 1);
            }
        }
        if self.loop_start.is_some() {
            let _ = writeln!(out, "  --- end of cycle ---");
        }
        out
    }

    /// A Mermaid `sequenceDiagram`.
    pub fn mermaid(&self) -> String {
        let mut out = String::from("sequenceDiagram\n");
        let _ = writeln!(
            out,
            "    title {} / {}: {}",
            self.variant,
            self.property,
            self.title.replace(';', ",")
        );
        for dev in &self.initial.devices {
            let d = dev.client.device.0;
            let _ = writeln!(
                out,
                "    participant D{d} as dev{d} (user{})",
                dev.client.user.0
            );
        }
        out.push_str("    participant S as server\n");
        let all: Vec<String> = self
            .initial
            .devices
            .iter()
            .map(|d| format!("D{}", d.client.device.0))
            .collect();
        let span = if all.len() > 1 {
            format!("{},S", all[0])
        } else {
            format!("{},S", all.first().cloned().unwrap_or_default())
        };
        for (i, st) in self.steps.iter().enumerate() {
            if Some(i) == self.loop_start {
                out.push_str("    loop forever\n");
            }
            st.mermaid(&mut out, "");
        }
        if self.loop_start.is_some() {
            out.push_str("    end\n");
        }
        let _ = writeln!(out, "    Note over {span}: bounds: {}", self.bounds);
        out
    }

    /// Every message as CSP 1.3 XML, wrapped with its step, sender and receiver.
    pub fn xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<imps-trace variant=\"{}\" property=\"{}\">",
            self.variant, self.property
        );
        for (i, st) in self.steps.iter().enumerate() {
            for m in &st.messages {
                let (from, to) = if m.to_server {
                    (format!("dev{}", m.device), "server".to_string())
                } else {
                    ("server".to_string(), format!("dev{}", m.device))
                };
                let cycle = self.loop_start.is_some_and(|l| i >= l);
                let _ = writeln!(out, "<message step=\"{}\" from=\"{from}\" to=\"{to}\" lost=\"{}\" in-cycle=\"{cycle}\">", i + 1, m.lost);
                out.push_str(&crate::xml::encode_fragment(&m.env));
                out.push_str("</message>\n");
            }
        }
        out.push_str("</imps-trace>\n");
        out
    }

    /// The trace as a validation log (JSON Lines, [`crate::validate::log`]): every message
    /// that reached the wire (not those sent to a connection that was gone), and the starts,
    /// crashes and lost connections as events; a lasso's cycle is written once. `imps
    /// validate` reads it back. Time is abstract in the checker: each step is 100 ms after
    /// the one before, except a Time-To-Live expiry, a day after (the validator lets a
    /// session expire only once its `KeepAliveTime` has passed).
    pub fn log(&self) -> String {
        use crate::validate::log::{Dir, EventKind, LogWriter};
        let mut w = LogWriter::new();
        let names = |d: u8| {
            let c = &self.initial.devices[d as usize].client;
            (format!("user{}", c.user.0), format!("dev{}", c.device.0))
        };
        let mut t_ms = 0;
        for st in &self.steps {
            t_ms += match st.action {
                Action::Expire { .. } => 86_400_000,
                _ => 100,
            };
            let event = match st.action {
                Action::Start(d) => Some((d, EventKind::Restart)),
                Action::Crash(d) => Some((d, EventKind::Crash)),
                Action::LoseConnection(d) => Some((d, EventKind::ConnectionLost)),
                Action::ServerReceives(_)
                | Action::ClientReceives(_)
                | Action::ClientReceivesPush(_)
                | Action::RetryTimer(_)
                | Action::KeepAliveTimer(_)
                | Action::Expire { .. }
                | Action::User(..) => None,
            };
            if let Some((d, kind)) = event {
                let (u, dev) = names(d);
                w.event(t_ms, &u, &dev, kind);
            }
            for m in st.messages.iter().filter(|m| !m.lost) {
                let (u, dev) = names(m.device);
                let dir = if m.to_server {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                };
                w.message(t_ms, &u, &dev, dir, &m.env);
            }
        }
        w.finish()
    }

    /// The states in the Informal Trace Format (ITF).
    pub fn itf(&self) -> Value {
        let state = |w: &World, action: &str, index: usize| -> Value {
            let mut m = serde_json::Map::new();
            m.insert("#meta".into(), json!({ "index": index }));
            m.insert("action".into(), Value::String(action.to_string()));
            let v = serde_json::to_value(w).expect("invariant: a World serializes to JSON");
            if let Value::Object(fields) = v {
                for (k, v) in fields {
                    m.insert(k, itf_value(v));
                }
            }
            Value::Object(m)
        };
        let mut states = vec![state(&self.initial, "init", 0)];
        for (i, st) in self.steps.iter().enumerate() {
            states.push(state(&st.state, &format!("{:?}", st.action), i + 1));
        }
        let mut meta = json!({
            "format": "ITF",
            "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
            "source": format!("imps check --variant {}", self.variant),
            "description": format!("{}: {} (bounds: {})", self.property, self.title, self.bounds),
        });
        if let Some(l) = self.loop_start {
            meta["loop"] = json!(l);
        }
        json!({
            "#meta": meta,
            "vars": ["action", "crashes_left", "devices", "losses_left", "shared", "users"],
            "states": states,
        })
    }
}

/// Convert serde's JSON of the world to ITF values: integers as `{"#bigint": "n"}`, enum
/// variants as `{"tag": ..., "value": ...}` (Quint's sum types), `null` as the `None` variant.
fn itf_value(v: Value) -> Value {
    match v {
        Value::Null => json!({ "tag": "None", "value": { "#tup": [] } }),
        Value::Bool(b) => Value::Bool(b),
        Value::Number(n) => json!({ "#bigint": n.to_string() }),
        Value::String(s) if s.chars().next().is_some_and(char::is_uppercase) => {
            json!({ "tag": s, "value": { "#tup": [] } })
        }
        Value::String(s) => Value::String(s),
        Value::Array(a) => Value::Array(a.into_iter().map(itf_value).collect()),
        Value::Object(m) => {
            if m.len() == 1 {
                let (k, inner) = m.into_iter().next().expect("invariant: one entry");
                if k.chars().next().is_some_and(char::is_uppercase) {
                    return json!({ "tag": k, "value": itf_value(inner) });
                }
                let mut one = serde_json::Map::new();
                one.insert(k, itf_value(inner));
                return Value::Object(one);
            }
            Value::Object(m.into_iter().map(|(k, v)| (k, itf_value(v))).collect())
        }
    }
}
