//! What a departure means: what the model allows at that point, which knob of the model
//! would have produced the observed message there, and which of the CR's requirements that
//! breaks, read by the property monitors of [`crate::props`].

use super::engine::{Act, Dedup, Hyp, Search};
use super::log::Dir;
use super::obs::{describe_env, Names, Ob, ObKind, Obs, UserLog};
use crate::client::{ClientOut, Phase, UserAction};
use crate::codes::ResultCode;
use crate::config::Config;
use crate::msg::{
    ClientId, Envelope, LoginRequest, LoginResponse, Primitive, SessionId, Tid, UserId,
};
use crate::props::{self, ClientInput, Kind, Prop, PropSet, ServerStep};
use crate::server::ServerOut;
use crate::world::{Action, Step};
use std::collections::BTreeSet;

/// The knobs that the CR leaves open or that real implementations set differently, with
/// their values: what `--infer` searches, and what a departure is explained by.
pub const OPEN_KNOBS: &[(&str, &[&str])] = &[
    (
        "server.duplicate_client_id",
        &["reject-608", "reject-generic", "replace-old", "allow"],
    ),
    (
        "server.recovery",
        &[
            "supported",
            "unsupported",
            "reject-422",
            "reset-context",
            "fallback-login",
        ],
    ),
    ("server.ttl_expiry", &["false", "true"]),
    ("server.keep_context_after_termination", &["false", "true"]),
    ("server.max_sessions_per_user", &["0", "1", "2", "3"]),
    ("server.sends_disconnect", &["true", "false"]),
    ("server.disconnect_has_tid", &["false", "true"]),
    ("server.logout_reply", &["status", "disconnect"]),
    (
        "server.capability_request",
        &["when-needed", "always", "never"],
    ),
    (
        "server.system_message",
        &["none", "notify", "require-response"],
    ),
    ("client.login", &["two-way", "four-way"]),
    ("client.stores_session_id", &["true", "false"]),
    ("client.recover_on_restart", &["true", "false"]),
    ("client.remove_stored_on_logout", &["true", "false"]),
    ("client.logout_after_recovery", &["true", "false"]),
    ("client.on_608", &["new-client-id", "retry-same"]),
    ("client.client_id_pool", &["1", "2", "3", "4"]),
    ("client.client_id_scope", &["device", "user"]),
    (
        "client.on_recovery_failure",
        &["fresh-login", "retry-stale-unless-502", "retry-stale"],
    ),
    (
        "client.combined_negotiation",
        &["never", "fresh-login", "always"],
    ),
    (
        "client.capability_negotiation",
        &["when-requested", "never"],
    ),
    ("client.answers_disconnect", &["false", "true"]),
];

/// The value of `knob` (`section.name`) in `cfg`, as `--set` spells it.
pub fn knob_value(cfg: &Config, knob: &str) -> String {
    crate::config::knob_values(cfg)
        .into_iter()
        .find(|(k, _)| k == knob)
        .map(|(_, v)| v.trim_matches('"').to_string())
        .unwrap_or_default()
}

/// `cfg` with one server or client knob changed (its `env` untouched, whatever it holds).
pub fn with_knob(cfg: &Config, knob: &str, value: &str) -> Option<Config> {
    let mut c = cfg.clone();
    c.env = crate::config::EnvConfig::default();
    c.apply_set(&format!("{knob}={value}")).ok()?;
    let mut out = cfg.clone();
    out.server = c.server;
    out.client = c.client;
    Some(out)
}

/// A knob change that makes the model put the observed message on the wire at the
/// departure, and what the property monitors say of the steps that do it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The knob.
    pub knob: &'static str,
    /// Its value.
    pub value: &'static str,
    /// The safety properties those steps violate (none: the change is one the CR allows).
    pub props: Vec<Prop>,
    /// With the change, where the whole log first departs (the index of the line), or `None`
    /// when it conforms: how far the change takes the log.
    pub then_departs: Option<usize>,
}

/// The model's identifiers as a hypothesis maps them to the log's.
pub struct HypNames<'a> {
    /// The hypothesis.
    pub h: &'a Hyp,
    /// The user's log.
    pub u: &'a UserLog,
}

impl Names for HypNames<'_> {
    fn sid(&self, s: SessionId) -> String {
        match self.h.sids.iter().find(|(m, _)| *m == s.0) {
            Some(&(_, r)) => self.u.sids.name(r).to_string(),
            None => "(a new Session-ID)".to_string(),
        }
    }

    fn cid(&self, c: ClientId) -> String {
        match self.h.cids.iter().find(|(m, _)| *m == c) {
            Some(&(_, r)) => self.u.cids.name(r).to_string(),
            None => match c.pool {
                crate::msg::ClientIdPool::Device(_) => {
                    format!(
                        "(not yet seen: Client-ID {} of the device's own)",
                        c.slot + 1
                    )
                }
                crate::msg::ClientIdPool::User(_) => {
                    format!("(not yet seen: Client-ID {} of the user's)", c.slot + 1)
                }
            },
        }
    }

    fn tid(&self, t: Option<Tid>, request: bool) -> String {
        match t {
            Some(Tid(t)) if !request && t != super::engine::UNKNOWN_TID && t > 0 => {
                self.u.tids.name(u32::from(t) - 1).to_string()
            }
            Some(_) if request => "(new)".to_string(),
            Some(_) | None => "(any)".to_string(),
        }
    }

    fn group(&self, g: u8) -> String {
        if usize::from(g) < self.u.groups.len() {
            self.u.groups.name(u32::from(g)).to_string()
        } else {
            format!("(group {g})")
        }
    }

    fn presence(&self, p: u8) -> String {
        if p >= 1 && usize::from(p) <= self.u.presence.len() {
            self.u.presence.name(u32::from(p) - 1).to_string()
        } else {
            format!("(presence {p})")
        }
    }
}

/// What the model allows for the departing line's device instead: the messages it could
/// put on the wire for that device next (either way), the messages it owes, and the events
/// it allows when the device's events are observed.
pub fn allowed(search: &Search<'_>, closed: &[Hyp], ob: &Ob) -> Vec<String> {
    let d = ob.device;
    let name = &search.user.devices[d as usize];
    let mut set: BTreeSet<String> = BTreeSet::new();
    for h in closed {
        let names = HypNames { h, u: search.user };
        for e in h.owed.iter().filter(|e| e.device == d && !e.optional) {
            set.insert(format!(
                "{} (sent by the model earlier, not yet in the log)",
                describe_env(&names, name, e.to_server, &e.env)
            ));
        }
        if h.owed.iter().any(|e| e.device == d && !e.optional) {
            continue;
        }
        for dir in [Dir::ToServer, Dir::ToClient] {
            let probe = probe_obs(dir);
            let mut acts = Vec::new();
            search.observed_actions(h, d, &probe, ob.t_ms, &mut acts);
            for act in acts {
                let Ok((_, emitted, _)) = search.apply(h, act) else {
                    continue;
                };
                for e in emitted.iter().filter(|e| e.device == d) {
                    set.insert(describe_env(&names, name, e.to_server, &e.env));
                }
            }
        }
        let restarting = h.restarting & (1 << d) != 0;
        if let (Phase::Established { session }, false) =
            (h.world.devices[d as usize].client.phase, restarting)
        {
            set.insert(format!(
                "{name} -> server: a request of the user in session {} (JoinGroup-Request, LeaveGroup-Request, UpdatePresence-Request)",
                names.sid(session)
            ));
        }
        if search.user.events_observed & (1 << d) != 0 && h.restarting & (1 << d) == 0 {
            let mut acts = Vec::new();
            h.world.devices[d as usize].actions(
                &search.cfg,
                d,
                h.world.crashes_left,
                h.world.losses_left,
                &mut acts,
            );
            for a in acts {
                match a {
                    Action::Crash(_) => {
                        set.insert(format!("{name}: event crash or restart"));
                    }
                    Action::Start(_) => {
                        set.insert(format!("{name}: event restart"));
                    }
                    Action::LoseConnection(_) => {
                        set.insert(format!("{name}: event connection-lost"));
                    }
                    _ => {}
                }
            }
        }
    }
    if set.is_empty() {
        set.insert(format!("nothing for {name} at this point"));
    }
    // The line's own way first, then the other way, then the events.
    let way = match &ob.kind {
        ObKind::Msg(o) if o.dir == Dir::ToServer => format!("{name} -> server:"),
        ObKind::Msg(_) => format!("server -> {name}:"),
        ObKind::Event(_) => format!("{name}: event"),
    };
    let mut out: Vec<String> = set.into_iter().collect();
    out.sort_by_key(|a| {
        if a.starts_with(&way) {
            0
        } else if a.starts_with(&format!("{name}: event")) {
            2
        } else {
            1
        }
    });
    out
}

/// An observation that only says which way (to ask the search for every step that way).
fn probe_obs(dir: Dir) -> Obs {
    Obs {
        dir,
        prim: String::new(),
        mode: crate::msg::Mode::Request,
        desc_sid: None,
        content_sid: None,
        tid: None,
        client_id: None,
        user_ok: true,
        user_id: None,
        result: None,
        password: false,
        digest_schema: false,
        digest_bytes: false,
        negotiation: false,
        system_message_response: false,
        nonce: false,
        capability_request: None,
        keep_alive_time: None,
        request_t_ms: None,
        system_message: false,
        group: None,
        presence: None,
    }
}

/// The safety properties a step violates, by the monitors the checker and the simulator use.
pub fn monitors(cfg: &Config, before: &Hyp, act: Act, after: &Hyp, step: &Step) -> PropSet {
    let mut found = PropSet::default();
    if let (Some(out), Some(d)) = (&step.client, act.device()) {
        let dev = &before.world.devices[d as usize];
        // A restart of a running device starts from the crashed client.
        let mut crashed = dev.client;
        crashed.crash();
        let b = match act {
            Act::RestartRunning(_) => &crashed,
            _ => &dev.client,
        };
        let a = &after.world.devices[d as usize].client;
        let msg: Option<Envelope> = match act {
            Act::World(Action::ClientReceives(_)) => dev.to_client,
            Act::World(Action::ClientReceivesPush(_)) => dev.pushes.first().copied(),
            _ => None,
        };
        let input = match (act, &msg) {
            (_, Some(m)) => ClientInput::Message(m),
            (Act::World(Action::Start(_)), None)
            | (Act::RestartRunning(_), None)
            | (Act::World(Action::User(_, UserAction::Login)), None) => ClientInput::Start,
            _ => ClientInput::Other,
        };
        props::check_client_step(b, input, out, a, &mut found);
    }
    if let Some(sout) = &step.server {
        let s = ServerStep {
            before: &before.world.users[0],
            request: step.request.as_ref().map(|r| &r.env),
            out: sout,
            after: &after.world.users[0],
        };
        props::check_server_step(s, &mut found);
        let mut state_after = PropSet::default();
        props::check_user_state(cfg, &after.world.users[0], &mut state_after);
        let mut state_before = PropSet::default();
        props::check_user_state(cfg, &before.world.users[0], &mut state_before);
        found.0 |= state_after.0 & !state_before.0;
    }
    found
}

fn safety(ps: PropSet) -> Vec<Prop> {
    ps.iter().filter(|p| p.kind() == Kind::Safety).collect()
}

/// The single knob changes (over [`OPEN_KNOBS`]) under which the model, from the states
/// consistent with the log before the departing observation, puts the observed message
/// on the wire; for each, the properties its steps violate (the fewest over the ways it
/// does so).
pub fn explain(search: &Search<'_>, frontier: &[Hyp], ob: &Ob) -> Vec<Explanation> {
    let ObKind::Msg(o) = &ob.kind else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &(knob, values) in OPEN_KNOBS {
        let current = knob_value(&search.cfg, knob);
        for &value in values {
            if value == current {
                continue;
            }
            let Some(cfg) = with_knob(&search.cfg, knob, value) else {
                continue;
            };
            // A user-wide pool shares the Client-IDs that a device's own pool keeps apart.
            let foreign_cids = if cfg.client.client_id_scope == crate::config::ClientIdScope::User {
                Vec::new()
            } else {
                search.foreign_cids.clone()
            };
            let alt = Search {
                cfg,
                foreign_cids,
                ..search.clone()
            };
            // The states so far were reached with the variant's scope; read them in the
            // user-wide one (each device's own Client-IDs become the user's of the same slot).
            let rescoped: Vec<Hyp>;
            let start = if knob == "client.client_id_scope" && value == "user" {
                rescoped = frontier.iter().filter_map(to_user_scope).collect();
                &rescoped[..]
            } else {
                frontier
            };
            if let Some(ps) = explains(&alt, start, ob, o) {
                out.push(Explanation {
                    knob,
                    value,
                    props: safety(ps),
                    then_departs: None,
                });
            }
        }
    }
    out
}

/// `h` with every Client-ID of a device's own pool made the user's Client-ID of the same slot;
/// `None` when two real Client-IDs would become one.
fn to_user_scope(h: &Hyp) -> Option<Hyp> {
    use crate::msg::ClientIdPool;
    let user = |c: &mut ClientId| {
        if let ClientIdPool::Device(_) = c.pool {
            c.pool = ClientIdPool::User(UserId(0));
        }
    };
    let env = |e: &mut Envelope| match &mut e.body {
        Primitive::LoginRequest(lr) => user(&mut lr.client_id),
        Primitive::LoginResponse(r) => user(&mut r.client_id),
        _ => {}
    };
    let mut n = h.clone();
    for us in &mut n.world.users {
        for s in &mut us.sessions {
            user(&mut s.client_id);
        }
        if let Some(c) = us.presence_writer.as_mut() {
            user(c);
        }
    }
    for dev in &mut n.world.devices {
        dev.to_server.iter_mut().for_each(|r| env(&mut r.env));
        dev.to_client.iter_mut().for_each(env);
    }
    n.owed.iter_mut().for_each(|o| env(&mut o.env));
    n.cids.clear();
    for &(m, r) in &h.cids {
        let mut m = m;
        user(&mut m);
        match n.cids.iter().find(|(x, _)| *x == m) {
            Some(&(_, r0)) if r0 != r => return None,
            Some(_) => {}
            None => n.cids.push((m, r)),
        }
    }
    Some(n)
}

/// Whether `alt` explains the observation from `frontier`; the fewest properties violated
/// on the way, if so.
fn explains(alt: &Search<'_>, frontier: &[Hyp], ob: &Ob, o: &Obs) -> Option<PropSet> {
    // The unobserved steps under the changed knob, with the monitors' findings on the way.
    let mut seen = Dedup::default();
    let mut states: Vec<(Hyp, PropSet)> = Vec::new();
    for h in frontier {
        if seen.insert(h.clone()) {
            states.push((h.clone(), PropSet::default()));
        }
    }
    let mut i = 0;
    let mut acts = Vec::new();
    while i < states.len() && states.len() <= alt.max_states {
        let (h, ps) = states[i].clone();
        acts.clear();
        alt.hidden_actions(&h, ob.t_ms, &mut acts);
        for &act in &acts {
            let Ok((mut n, emitted, step)) = alt.apply(&h, act) else {
                continue;
            };
            if emitted.iter().any(|e| !e.optional) {
                continue;
            }
            let found = monitors(&alt.cfg, &h, act, &n, &step);
            for e in &emitted {
                if Search::owe(&mut n, e).is_err() {
                    continue;
                }
            }
            if Search::canonical(&mut n).is_err() {
                continue;
            }
            if seen.insert(n.clone()) {
                states.push((n, PropSet(ps.0 | found.0)));
            }
        }
        i += 1;
    }
    let mut best: Option<PropSet> = None;
    let mut consider = |ps: PropSet| {
        let better = match best {
            None => true,
            Some(b) => ps.iter().count() < b.iter().count(),
        };
        if better {
            best = Some(ps);
        }
    };
    for (h, ps) in &states {
        let mut one = Dedup::default();
        // Owed messages are the same under any knob: only new steps can explain.
        if h.owed.iter().any(|e| e.device == ob.device && !e.optional) {
            continue;
        }
        let mut acts = Vec::new();
        alt.observed_actions(h, ob.device, o, ob.t_ms, &mut acts);
        for act in acts {
            let Ok((n, emitted, step)) = alt.apply(h, act) else {
                continue;
            };
            if alt.match_emitted(&n, &emitted, ob, o, &mut one).is_err() || one.is_empty() {
                continue;
            }
            let found = monitors(&alt.cfg, h, act, &n, &step);
            consider(PropSet(ps.0 | found.0));
            one = Dedup::default();
        }
    }
    best
}

/// The model message of an observation, with the identifiers the hypothesis maps (a new
/// one for an identifier it does not know yet).
fn obs_to_env(h: &Hyp, u: &UserLog, cfg: &Config, d: u8, o: &Obs) -> Option<Envelope> {
    let mut fresh = h.world.shared.next_session_id;
    let mut sid = |r: u32| {
        h.sids
            .iter()
            .find(|(_, x)| *x == r)
            .map(|&(m, _)| SessionId(m))
            .unwrap_or_else(|| {
                fresh += 1;
                SessionId(fresh - 1)
            })
    };
    let cid = |r: Option<u32>| {
        r.and_then(|r| h.cids.iter().find(|(_, x)| *x == r).map(|&(m, _)| m))
            .unwrap_or_else(|| h.world.devices[d as usize].client.client_id(cfg))
    };
    let code = |n: Option<u16>| ResultCode::from_number(n.unwrap_or(200));
    let _ = u;
    let body = match o.prim.as_str() {
        "Login-Request" => Primitive::LoginRequest(LoginRequest {
            user: UserId(0),
            client_id: cid(o.client_id),
            session_id: o.content_sid.or(o.desc_sid).map(&mut sid),
            password: o.password,
            digest_schema: o.digest_schema,
            digest_bytes: o.digest_bytes.then_some(0),
            ttl_s: None,
            negotiation: o.negotiation,
            system_message_response: o.system_message_response.then_some(true),
        }),
        "Login-Response" => Primitive::LoginResponse(LoginResponse {
            client_id: cid(o.client_id),
            result: code(o.result),
            nonce: o.nonce.then_some(0),
            session_id: o.content_sid.map(&mut sid),
            keep_alive_s: None,
            capability_request: o.capability_request,
            negotiated: o.negotiation,
            system_message: o.system_message,
        }),
        "Logout-Request" => Primitive::LogoutRequest,
        "KeepAlive-Request" => Primitive::KeepAliveRequest { ttl_s: None },
        "KeepAlive-Response" => Primitive::KeepAliveResponse {
            result: code(o.result),
            keep_alive_s: None,
        },
        "Service-Request" => Primitive::ServiceRequest,
        "Service-Response" => Primitive::ServiceResponse {
            result: code(o.result),
        },
        "ClientCapability-Request" => Primitive::ClientCapabilityRequest,
        "ClientCapability-Response" => Primitive::ClientCapabilityResponse {
            result: code(o.result),
        },
        "JoinGroup-Request" => Primitive::JoinGroupRequest {
            group: o.group.unwrap_or(0),
        },
        "JoinGroup-Response" => Primitive::JoinGroupResponse {
            result: code(o.result),
        },
        "LeaveGroup-Request" => Primitive::LeaveGroupRequest {
            group: o.group.unwrap_or(0),
        },
        "LeaveGroup-Response" => Primitive::LeaveGroupResponse {
            result: code(o.result),
        },
        "UpdatePresence-Request" => Primitive::UpdatePresenceRequest {
            presence: o.presence.unwrap_or(1),
        },
        "Polling-Request" => Primitive::PollingRequest,
        "Status" => Primitive::Status {
            result: code(o.result),
        },
        "Disconnect" => Primitive::Disconnect {
            result: code(o.result),
        },
        _ => return None,
    };
    let session = if o.prim == "Login-Request" {
        None
    } else {
        o.desc_sid.map(&mut sid)
    };
    Some(Envelope {
        session,
        mode: o.mode,
        tid: o.tid.map(Tid),
        body,
    })
}

/// When no knob explains a departure: the monitors run on the observed message itself, as
/// if the model's device or server had sent it in each state consistent with the log (the
/// properties flagged in every such state).
pub fn forced(search: &Search<'_>, closed: &[Hyp], ob: &Ob) -> Vec<Prop> {
    let ObKind::Msg(o) = &ob.kind else {
        return Vec::new();
    };
    let d = ob.device;
    let mut common: Option<PropSet> = None;
    for h in closed {
        if Search::blocked(h, d) {
            continue;
        }
        let Some(env) = obs_to_env(h, search.user, &search.cfg, d, o) else {
            continue;
        };
        let dev = &h.world.devices[d as usize];
        let mut found = PropSet::default();
        match o.dir {
            Dir::ToClient => {
                let Some(req) = dev.to_server.first() else {
                    continue;
                };
                let out = ServerOut {
                    reply: Some(env),
                    ..ServerOut::default()
                };
                let us = &h.world.users[0];
                props::check_server_step(
                    ServerStep {
                        before: us,
                        request: Some(&req.env),
                        out: &out,
                        after: us,
                    },
                    &mut found,
                );
            }
            Dir::ToServer => {
                let out = ClientOut {
                    send: Some(env),
                    ..ClientOut::default()
                };
                let input = match (&dev.to_client, dev.client.phase) {
                    (Some(m), _) => ClientInput::Message(m),
                    (None, Phase::Down | Phase::Idle) => ClientInput::Start,
                    (None, _) => ClientInput::Other,
                };
                props::check_client_step(&dev.client, input, &out, &dev.client, &mut found);
            }
        }
        common = Some(match common {
            None => found,
            Some(c) => PropSet(c.0 & found.0),
        });
    }
    common.map(safety).unwrap_or_default()
}

/// The requirement IDs of properties, in the CR's order (by section, then number) and
/// without repeats.
pub fn requirements(props: &[Prop]) -> Vec<&'static str> {
    let set: BTreeSet<((Vec<u32>, u32), &'static str)> = props
        .iter()
        .flat_map(|p| p.requirements().iter().copied())
        .map(|id| {
            // `CR-<section>-<NN>`: by section (numerically, 7.1 before 7.1.1), then NN.
            let (section, nn) = id.rsplit_once('-').unwrap_or((id, ""));
            let section: Vec<u32> = section
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse().ok())
                .collect();
            ((section, nn.parse::<u32>().unwrap_or(0)), id)
        })
        .collect();
    set.into_iter().map(|(_, id)| id).collect()
}
