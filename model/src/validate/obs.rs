//! Observations: a log's lines decoded, split by user, with their identifiers interned, and
//! how an observed message is matched against a message of the model.
//!
//! Real identifiers (Session-IDs, Client-IDs, Transaction-IDs, groups, presence values) are
//! interned per user into small numbers; a hypothesis of the search maps the model's
//! identifiers to them ([`super::engine::Hyp`]).

use super::log::{Dir, Entry, EventKind, Log};
use crate::codes::ResultCode;
use crate::msg::{Envelope, Mode, Primitive};
use crate::xml::{self, Decoded, SessionType};
use rustc_hash::FxHashMap;

/// The most devices of one user the validator tracks (the world's device masks are 8 bits).
pub const MAX_DEVICES_PER_USER: usize = 8;

/// The most distinct groups one user's log may name (the session context is an 8-bit set).
pub const MAX_GROUPS: usize = 8;

/// The most distinct Transaction-IDs one user's log may carry (they ride in the model's
/// 16-bit Transaction-ID field; the top value is reserved).
pub const MAX_TIDS: usize = u16::MAX as usize - 1;

/// Strings interned in order of first appearance.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    map: FxHashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    /// The number of `s`, new or known.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&n) = self.map.get(s) {
            return n;
        }
        let n = self.names.len() as u32;
        self.map.insert(s.to_string(), n);
        self.names.push(s.to_string());
        n
    }

    /// The string of number `n`.
    pub fn name(&self, n: u32) -> &str {
        &self.names[n as usize]
    }

    /// How many strings.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// An observed message, as the matcher needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obs {
    /// Which way.
    pub dir: Dir,
    /// The primitive's element name.
    pub prim: String,
    /// `TransactionMode`.
    pub mode: Mode,
    /// The `SessionDescriptor`'s Session-ID (interned).
    pub desc_sid: Option<u32>,
    /// The primitive's own `SessionID` child (interned).
    pub content_sid: Option<u32>,
    /// The Transaction-ID: 1 + its interned number (0 is never used).
    pub tid: Option<u16>,
    /// The `ClientID` (interned).
    pub client_id: Option<u32>,
    /// The `UserID` of a Login-Request agrees with the user's first one.
    pub user_ok: bool,
    /// The `UserID` text.
    pub user_id: Option<String>,
    /// `Result/Code`.
    pub result: Option<u16>,
    /// Login-Request: `Password` present.
    pub password: bool,
    /// Login-Request: `DigestSchema` present.
    pub digest_schema: bool,
    /// Login-Request: `DigestBytes` present.
    pub digest_bytes: bool,
    /// Login-Request: negotiation elements (`Functions`, `CapabilityList`) present;
    /// Login-Response: `Functions`/`AgreedCapabilityList` present.
    pub negotiation: bool,
    /// Login-Request: a `SystemMessageResponseList`.
    pub system_message_response: bool,
    /// Login-Response: a `Nonce`.
    pub nonce: bool,
    /// Login-Response: `CapabilityRequest`.
    pub capability_request: Option<bool>,
    /// Login-Response, KeepAlive-Response: `KeepAliveTime`, seconds.
    pub keep_alive_time: Option<u32>,
    /// An answer: the time of the device's latest request before it with the same
    /// Transaction-ID (the server heard the session no earlier than that).
    pub request_t_ms: Option<u64>,
    /// Login-Response: a `SystemMessageList`.
    pub system_message: bool,
    /// Join/Leave: the group (interned, 0..8).
    pub group: Option<u8>,
    /// UpdatePresence: the value (interned, 1..).
    pub presence: Option<u8>,
}

/// What an observation line records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObKind {
    /// A message.
    Msg(Box<Obs>),
    /// An event of the device.
    Event(EventKind),
}

/// One observation of a user's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ob {
    /// Index of the line in the log.
    pub line: usize,
    /// The line's time, ms.
    pub t_ms: u64,
    /// The device, numbered per user in order of first appearance.
    pub device: u8,
    /// What.
    pub kind: ObKind,
}

/// One user's part of a log.
#[derive(Clone, Debug)]
pub struct UserLog {
    /// The user, as the log names it.
    pub name: String,
    /// The devices, as the log names them, in order of first appearance.
    pub devices: Vec<String>,
    /// Devices (bit set) whose log records events: their crashes, restarts and losses are
    /// observed, not guessed.
    pub events_observed: u8,
    /// The observations, in log order.
    pub obs: Vec<Ob>,
    /// Session-IDs.
    pub sids: Interner,
    /// Client-IDs.
    pub cids: Interner,
    /// Transaction-IDs.
    pub tids: Interner,
    /// Groups.
    pub groups: Interner,
    /// Presence values.
    pub presence: Interner,
    /// For Session-ID `n`: the index of the first line of the log that carries it.
    pub sid_first_seen: Vec<usize>,
}

impl UserLog {
    /// For each real Client-ID (by interned number), the device whose Login-Request
    /// presented it first.
    pub fn client_id_owners(&self) -> Vec<Option<u8>> {
        let mut owner = vec![None; self.cids.len()];
        for ob in &self.obs {
            if let ObKind::Msg(o) = &ob.kind {
                if let (Some(c), Dir::ToServer) = (o.client_id, o.dir) {
                    owner[c as usize].get_or_insert(ob.device);
                }
            }
        }
        owner
    }

    /// The part of this user's log about device `d` alone (as device 0), for validating
    /// devices one by one when nothing the server does for one can be seen by another.
    pub fn device_part(&self, d: u8) -> UserLog {
        UserLog {
            name: self.name.clone(),
            devices: vec![self.devices[d as usize].clone()],
            events_observed: (self.events_observed >> d) & 1,
            obs: self
                .obs
                .iter()
                .filter(|o| o.device == d)
                .map(|o| Ob {
                    device: 0,
                    ..o.clone()
                })
                .collect(),
            sids: self.sids.clone(),
            cids: self.cids.clone(),
            tids: self.tids.clone(),
            groups: self.groups.clone(),
            presence: self.presence.clone(),
            sid_first_seen: self.sid_first_seen.clone(),
        }
    }
}

/// Where a line of the log is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    /// 1-based line in the file.
    pub line: usize,
    /// For HAR: `entry N request` or `entry N response`; empty for JSON Lines.
    pub part: String,
}

/// A log ready to validate: decoded, split by user.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The log's file.
    pub path: String,
    /// Where each line of the log is.
    pub lines: Vec<Loc>,
    /// The users, in order of first appearance.
    pub users: Vec<UserLog>,
    /// Messages in the log.
    pub messages: usize,
    /// Events in the log.
    pub events: usize,
}

impl Prepared {
    /// `file:line` of line `idx` (for HAR, with the entry part).
    pub fn locate(&self, idx: usize) -> String {
        let l = &self.lines[idx];
        if l.part.is_empty() {
            format!("{}:{}", self.path, l.line)
        } else {
            format!("{}:{} ({})", self.path, l.line, l.part)
        }
    }
}

/// A log that cannot be validated: a message the decoder refuses, or a bound of the
/// validator exceeded by the log itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct PrepareError {
    /// `file:line`.
    pub at: String,
    /// What was wrong.
    pub message: String,
}

fn interned_sid(u: &mut UserLog, s: &str, line: usize) -> u32 {
    let n = u.sids.intern(s);
    if n as usize == u.sid_first_seen.len() {
        u.sid_first_seen.push(line);
    }
    n
}

/// Decodes every message of `log` and splits it by user.
///
/// # Errors
///
/// A [`PrepareError`] at the first message the decoder refuses (with the decoder's line and
/// column inside the message), or when a user has more devices, groups or Transaction-IDs
/// than the validator tracks.
pub fn prepare(log: &Log) -> Result<Prepared, PrepareError> {
    let mut users: Vec<UserLog> = Vec::new();
    let mut user_ids: Vec<Option<String>> = Vec::new();
    let mut by_name: FxHashMap<String, usize> = FxHashMap::default();
    let mut messages = 0;
    let mut events = 0;
    let mut p = Prepared {
        path: log.path.clone(),
        lines: log
            .lines
            .iter()
            .map(|l| Loc {
                line: l.line,
                part: l.part.clone(),
            })
            .collect(),
        users: Vec::new(),
        messages: 0,
        events: 0,
    };
    for (idx, line) in log.lines.iter().enumerate() {
        let at = || p.locate(idx);
        let u = *by_name.entry(line.user.clone()).or_insert_with(|| {
            users.push(UserLog {
                name: line.user.clone(),
                devices: Vec::new(),
                events_observed: 0,
                obs: Vec::new(),
                sids: Interner::default(),
                cids: Interner::default(),
                tids: Interner::default(),
                groups: Interner::default(),
                presence: Interner::default(),
                sid_first_seen: Vec::new(),
            });
            user_ids.push(None);
            users.len() - 1
        });
        let ul = &mut users[u];
        let device = match ul.devices.iter().position(|d| *d == line.device) {
            Some(d) => d,
            None => {
                if ul.devices.len() == MAX_DEVICES_PER_USER {
                    return Err(PrepareError {
                        at: at(),
                        message: format!(
                            "user {} has more than {MAX_DEVICES_PER_USER} devices (the validator tracks at most {MAX_DEVICES_PER_USER} per user, as the model's world does); split the log",
                            line.user
                        ),
                    });
                }
                ul.devices.push(line.device.clone());
                ul.devices.len() - 1
            }
        } as u8;
        let kind = match &line.entry {
            Entry::Event(k) => {
                events += 1;
                ul.events_observed |= 1 << device;
                ObKind::Event(*k)
            }
            Entry::Message { dir, xml } => {
                messages += 1;
                let d = xml::decode(xml).map_err(|e| PrepareError {
                    at: at(),
                    message: format!(
                        "the message does not decode: line {}, column {} of the XML: expected {}, found {}",
                        e.line, e.column, e.expected, e.found
                    ),
                })?;
                let o = observe(ul, &mut user_ids[u], *dir, &d, idx).map_err(|m| PrepareError {
                    at: at(),
                    message: m,
                })?;
                ObKind::Msg(Box::new(o))
            }
        };
        ul.obs.push(Ob {
            line: idx,
            t_ms: line.t_ms,
            device,
            kind,
        });
    }
    for u in &mut users {
        // The latest request of each (device, Transaction-ID), for the answers' times.
        let mut last: FxHashMap<(u8, u16), u64> = FxHashMap::default();
        for ob in &mut u.obs {
            if let ObKind::Msg(o) = &mut ob.kind {
                if let Some(t) = o.tid {
                    match o.dir {
                        Dir::ToServer => {
                            last.insert((ob.device, t), ob.t_ms);
                        }
                        Dir::ToClient => o.request_t_ms = last.get(&(ob.device, t)).copied(),
                    }
                }
            }
        }
    }
    p.users = users;
    p.messages = messages;
    p.events = events;
    Ok(p)
}

fn observe(
    u: &mut UserLog,
    user_id: &mut Option<String>,
    dir: Dir,
    d: &Decoded,
    line: usize,
) -> Result<Obs, String> {
    let desc_sid = match d.session_type {
        Some(SessionType::Inband) => d.session_id.as_deref().map(|s| interned_sid(u, s, line)),
        Some(SessionType::Outband) | None => None,
    };
    let content_sid = d
        .content_session_id
        .as_deref()
        .map(|s| interned_sid(u, s, line));
    let tid = match d.transaction_id.as_deref() {
        Some(t) => {
            let n = u.tids.intern(t) as usize;
            if n >= MAX_TIDS {
                return Err(format!(
                    "user {} has more than {MAX_TIDS} distinct Transaction-IDs (the validator carries them in the model's 16-bit field); split the log",
                    u.name
                ));
            }
            Some(n as u16 + 1)
        }
        None => None,
    };
    let mut user_ok = true;
    if d.primitive == "Login-Request" {
        match (&user_id, &d.user_id) {
            (None, Some(id)) => *user_id = Some(id.clone()),
            (Some(first), Some(id)) => user_ok = first == id,
            (_, None) => user_ok = false,
        }
    }
    let group = match &d.group_id {
        Some(g) => {
            let n = u.groups.intern(g) as usize;
            if n >= MAX_GROUPS {
                return Err(format!(
                    "user {} names more than {MAX_GROUPS} groups (the session context is an 8-bit set)",
                    u.name
                ));
            }
            Some(n as u8)
        }
        None => None,
    };
    let presence = match &d.presence_value {
        Some(v) => {
            let n = u.presence.intern(v) as usize;
            if n >= 255 {
                return Err(format!(
                    "user {} publishes more than 254 presence values",
                    u.name
                ));
            }
            Some(n as u8 + 1)
        }
        None => None,
    };
    let login_response = d.primitive == "Login-Response";
    Ok(Obs {
        dir,
        prim: d.primitive.clone(),
        mode: d.mode.unwrap_or(Mode::Request),
        desc_sid,
        content_sid,
        tid,
        client_id: d.client_id.as_deref().map(|c| u.cids.intern(c)),
        user_ok,
        user_id: d.user_id.clone(),
        result: d.result_code,
        password: d.has_password,
        digest_schema: !d.digest_schemas.is_empty() && !login_response,
        digest_bytes: d.digest_bytes.is_some(),
        negotiation: if login_response {
            d.has_functions || d.has_agreed_capability_list
        } else {
            d.has_functions || d.has_capability_list
        },
        system_message_response: d.system_message_responses.is_some(),
        nonce: d.nonce.is_some(),
        capability_request: d.capability_request,
        keep_alive_time: d.keep_alive_time,
        request_t_ms: None,
        system_message: d.has_system_message,
        group,
        presence,
    })
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// How the model's identifiers read in a report: the real ones where the hypothesis maps them.
pub trait Names {
    /// A model Session-ID.
    fn sid(&self, s: crate::msg::SessionId) -> String;
    /// A model Client-ID.
    fn cid(&self, c: crate::msg::ClientId) -> String;
    /// A Transaction-ID of the model (a real one's number + 1, or a new one).
    fn tid(&self, t: Option<crate::msg::Tid>, request: bool) -> String;
    /// A group.
    fn group(&self, g: u8) -> String;
    /// A presence value.
    fn presence(&self, p: u8) -> String;
}

/// A model message in one line, with real identifiers where known.
pub fn describe_env(names: &dyn Names, device: &str, to_server: bool, env: &Envelope) -> String {
    let mut s = if to_server {
        format!("{device} -> server: ")
    } else {
        format!("server -> {device}: ")
    };
    s.push_str(env.body.wire_name());
    if let Some(r) = env.body.result() {
        s.push_str(&format!(" {}", r.number()));
    }
    match env.body {
        Primitive::LoginRequest(lr) => {
            s.push_str(&format!(" ClientID={}", names.cid(lr.client_id)));
            if let Some(id) = lr.session_id.or(env.session) {
                s.push_str(&format!(" SessionID={} (recovery)", names.sid(id)));
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
            s.push_str(&format!(" ClientID={}", names.cid(r.client_id)));
            if let Some(id) = r.session_id {
                s.push_str(&format!(" SessionID={}", names.sid(id)));
            }
            if r.nonce.is_some() {
                s.push_str(" Nonce");
            }
            if let Some(c) = r.capability_request {
                s.push_str(if c {
                    " CapabilityRequest=T"
                } else {
                    " CapabilityRequest=F"
                });
            }
            if r.negotiated {
                s.push_str(" +negotiated");
            }
            if r.system_message {
                s.push_str(" +SystemMessageList");
            }
        }
        Primitive::JoinGroupRequest { group } | Primitive::LeaveGroupRequest { group } => {
            s.push_str(&format!(" {}", names.group(group)));
        }
        Primitive::UpdatePresenceRequest { presence } => {
            s.push_str(&format!(" {}", names.presence(presence)));
        }
        Primitive::LogoutRequest
        | Primitive::KeepAliveRequest { .. }
        | Primitive::KeepAliveResponse { .. }
        | Primitive::ServiceRequest
        | Primitive::ServiceResponse { .. }
        | Primitive::ClientCapabilityRequest
        | Primitive::ClientCapabilityResponse { .. }
        | Primitive::JoinGroupResponse { .. }
        | Primitive::LeaveGroupResponse { .. }
        | Primitive::PollingRequest
        | Primitive::Status { .. }
        | Primitive::Disconnect { .. } => {}
    }
    if !matches!(env.body, Primitive::LoginRequest(_)) {
        if let Some(id) = env.session {
            s.push_str(&format!(" [session {}]", names.sid(id)));
        }
    }
    let is_disconnect = matches!(env.body, Primitive::Disconnect { .. });
    match env.tid {
        None => s.push_str(" (no TID)"),
        Some(_) if is_disconnect => s.push_str(" TID=(any)"),
        t => s.push_str(&format!(" TID={}", names.tid(t, to_server))),
    }
    s
}

/// An observed message in one line, in the same form as [`describe_env`].
pub fn describe_obs(u: &UserLog, device: &str, o: &Obs) -> String {
    let mut s = match o.dir {
        Dir::ToServer => format!("{device} -> server: "),
        Dir::ToClient => format!("server -> {device}: "),
    };
    s.push_str(&o.prim);
    if let Some(r) = o.result {
        s.push_str(&format!(" {r}"));
    }
    let sid = |n: u32| u.sids.name(n).to_string();
    match o.prim.as_str() {
        "Login-Request" => {
            if !o.user_ok {
                s.push_str(&format!(
                    " UserID={}",
                    o.user_id.as_deref().unwrap_or("(none)")
                ));
            }
            match o.client_id {
                Some(c) => s.push_str(&format!(" ClientID={}", u.cids.name(c))),
                None => s.push_str(" (no ClientID)"),
            }
            if let Some(id) = o.content_sid.or(o.desc_sid) {
                s.push_str(&format!(" SessionID={} (recovery)", sid(id)));
            }
            if o.digest_schema {
                s.push_str(" DigestSchema");
            }
            if o.digest_bytes {
                s.push_str(" DigestBytes");
            }
            if o.negotiation {
                s.push_str(" +negotiation");
            }
            if o.system_message_response {
                s.push_str(" +SystemMessageResponseList");
            }
        }
        "Login-Response" => {
            if let Some(c) = o.client_id {
                s.push_str(&format!(" ClientID={}", u.cids.name(c)));
            }
            if let Some(id) = o.content_sid {
                s.push_str(&format!(" SessionID={}", sid(id)));
            }
            if o.nonce {
                s.push_str(" Nonce");
            }
            if let Some(c) = o.capability_request {
                s.push_str(if c {
                    " CapabilityRequest=T"
                } else {
                    " CapabilityRequest=F"
                });
            }
            if o.negotiation {
                s.push_str(" +negotiated");
            }
            if o.system_message {
                s.push_str(" +SystemMessageList");
            }
        }
        _ => {
            if let Some(g) = o.group {
                s.push_str(&format!(" {}", u.groups.name(u32::from(g))));
            }
            if let Some(p) = o.presence {
                s.push_str(&format!(" {}", u.presence.name(u32::from(p) - 1)));
            }
        }
    }
    if o.prim != "Login-Request" {
        if let Some(id) = o.desc_sid {
            s.push_str(&format!(" [session {}]", sid(id)));
        }
    }
    match o.tid {
        Some(t) => s.push_str(&format!(" TID={}", u.tids.name(u32::from(t) - 1))),
        None => s.push_str(" (no TID)"),
    }
    s
}

/// The model's result code for an observed number.
pub fn code(n: u16) -> ResultCode {
    ResultCode::from_number(n)
}
