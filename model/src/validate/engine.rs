//! The search: the set of model states consistent with a user's log so far.
//!
//! A hypothesis ([`Hyp`]) is a world of one user and the user's devices (the model checker's
//! own [`World`], stepped by [`World::step`]), plus the mapping from the model's Session-IDs
//! and Client-IDs to the log's, the messages the model put on the wire that the log has not
//! shown yet ([`Owed`]), and what the log says of each session's Time-To-Live ([`Clock`]).
//! For each observation the search
//!
//! 1. closes the set over **unobserved steps** ([`Search::close`]): a device taking an
//!    answer or a pushed Disconnect that makes it send nothing, a crash or a lost connection
//!    (when the device's log records no events), the server serving a request whose
//!    connection is gone (its answer is lost), the network losing such a request, a session's
//!    Time-To-Live running out ([`Search::due`]) when that pushes nothing the log must show;
//! 2. keeps the successors whose step puts the observed message on the wire, with the
//!    identifiers mapped consistently ([`Search::successors`]); a message the same step
//!    sends elsewhere (a Disconnect to another device) is owed, and must be seen before that
//!    device's next step.
//!
//! States are canonical (Session-IDs renumbered in order of appearance, the client's
//! Transaction-ID counter zeroed: the model only compares them) and deduplicated, so the set
//! stays as small as the log allows. Its size is bounded by [`Search::max_states`]; passing
//! it is an error naming the bound, never a silent drop.

use super::log::{Dir, EventKind};
use super::obs::{Ob, ObKind, Obs, UserLog};
use crate::client::{Phase, UserAction};
use crate::config::{Config, DuplicateClientId};
use crate::msg::{ClientId, Envelope, Primitive, SessionId, Tid};
use crate::world::{Action, Step, World};
use arrayvec::ArrayVec;
use rustc_hash::FxHasher;
use std::hash::{Hash, Hasher};

/// The most Session-IDs one hypothesis maps (sessions held, stored or in flight).
pub const MAX_SIDS: usize = 16;

/// The most Client-IDs one hypothesis maps.
pub const MAX_CIDS: usize = 16;

/// The most messages the model put on the wire that the log has not shown yet.
pub const MAX_OWED: usize = 4;

/// The Transaction-ID the model carries for a request whose real one is not known yet.
pub const UNKNOWN_TID: u16 = u16::MAX;

/// What the log says of a session's Time-To-Live: when a request last named it and the
/// `KeepAliveTime` the server granted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Clock {
    /// The model's Session-ID.
    pub sid: u32,
    /// No later than the server last heard from the session, ms: the time of the request
    /// of the last answer that named it.
    pub last_ms: u64,
    /// The granted `KeepAliveTime`, seconds (0: not known).
    pub keep_alive_s: u32,
}

/// A message the model put on the wire and the log has not shown yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Owed {
    /// The device at the client end.
    pub device: u8,
    /// From the device.
    pub to_server: bool,
    /// It may never show: it went to a connection that is gone.
    pub optional: bool,
    /// The message, with the model's identifiers.
    pub env: Envelope,
}

/// One model state consistent with the log so far, with its identifier mapping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Hyp {
    /// The world of this user.
    pub world: World,
    /// (model Session-ID, interned real Session-ID), sorted by the model's.
    pub sids: ArrayVec<(u32, u32), MAX_SIDS>,
    /// (model Client-ID, interned real Client-ID).
    pub cids: ArrayVec<(ClientId, u32), MAX_CIDS>,
    /// Messages owed to the log.
    pub owed: ArrayVec<Owed, MAX_OWED>,
    /// The sessions' Time-To-Live as the log shows it, sorted by Session-ID.
    pub clocks: ArrayVec<Clock, MAX_SIDS>,
    /// Devices (bit set) that have started at least once.
    pub started: u8,
    /// Devices (bit set) whose log says `restart` and whose first message since has not been
    /// seen: that message is the start's, and the device takes no other step before it.
    pub restarting: u8,
}

/// A step of the search: a step of the world, or one of the validator's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// A step of the model.
    World(Action),
    /// The network loses the oldest request of the device, whose connection is gone, before
    /// the server takes it (a real network loses requests; the checker's model does not).
    DropOrphan(u8),
    /// The server takes the device's oldest request while the other users hold every session
    /// the SAP allows (`server.max_sessions_total`: the validator sees one user at a time).
    SapFull(u8),
    /// The device restarts while it was running: a crash, then the start.
    RestartRunning(u8),
}

impl Act {
    /// The device the step is about.
    pub const fn device(self) -> Option<u8> {
        match self {
            Act::World(a) => a.device(),
            Act::DropOrphan(d) | Act::SapFull(d) | Act::RestartRunning(d) => Some(d),
        }
    }
}

/// A message a step put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// The device at the client end.
    pub device: u8,
    /// From the device.
    pub to_server: bool,
    /// It went to a connection that is gone: the log may not show it.
    pub optional: bool,
    /// The message.
    pub env: Envelope,
}

/// A bound of the validator that the log made the search pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bound {
    /// More consistent states than [`Search::max_states`].
    States(usize),
    /// A bound of the world or of a hypothesis, in words.
    Other(String),
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::States(n) => write!(
                f,
                "more than {n} model states are consistent with the log at this point (--max-states {n}); raise it, or bound the unobserved faults with --set env.max_crashes=N and --set env.max_connection_losses=N"
            ),
            Bound::Other(s) => f.write_str(s),
        }
    }
}

/// A set of hypotheses in insertion order, without duplicates.
#[derive(Debug, Default)]
pub struct Dedup {
    items: Vec<Hyp>,
    hashes: Vec<u64>,
    table: hashbrown::HashTable<u32>,
}

fn hash_of(h: &Hyp) -> u64 {
    let mut s = FxHasher::default();
    h.hash(&mut s);
    s.finish()
}

impl Dedup {
    /// Add `h` unless it is there; returns whether it was added.
    pub fn insert(&mut self, h: Hyp) -> bool {
        let hash = hash_of(&h);
        let items = &self.items;
        if self.table.find(hash, |&i| items[i as usize] == h).is_some() {
            return false;
        }
        let hashes = &self.hashes;
        self.table
            .insert_unique(hash, self.items.len() as u32, |&i| hashes[i as usize]);
        self.items.push(h);
        self.hashes.push(hash);
        true
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The hypotheses, in insertion order.
    pub fn into_vec(self) -> Vec<Hyp> {
        self.items
    }
}

/// What a user's log needs from the search.
#[derive(Clone, Debug)]
pub struct Search<'a> {
    /// The variant, with the world sized for this user's devices.
    pub cfg: Config,
    /// The user's log.
    pub user: &'a UserLog,
    /// Crashes are unbounded (the budget is not spent).
    pub unbounded_crashes: bool,
    /// Connection losses are unbounded.
    pub unbounded_losses: bool,
    /// The network may lose a request whose connection is gone.
    pub request_loss: bool,
    /// The server has a SAP-wide session limit, which other users may fill.
    pub sap_limit: bool,
    /// The bound on the set of states.
    pub max_states: usize,
    /// Real Client-IDs (by interned number) that another device of the user presented first:
    /// when the user's devices are validated one by one (their Client-IDs come from pools of
    /// their own), a device presenting one of them departs, as it would in a world of all
    /// the user's devices, where each model Client-ID maps to one real one.
    pub foreign_cids: Vec<bool>,
}

impl Search<'_> {
    /// The Time-To-Live expiries enabled in `h` by `now_ms`. Whether a client keeps its
    /// session alive is read from the log's times ([`Search::due`]), not assumed: a session
    /// may expire whatever its device is doing, once its `KeepAliveTime` has passed since the
    /// server last heard from it.
    pub fn expiries(&self, h: &Hyp, now_ms: u64, out: &mut Vec<Action>) {
        if !self.cfg.server.ttl_expiry {
            return;
        }
        for (k, s) in h.world.users[0].sessions.iter().enumerate() {
            let a = Action::Expire {
                user: 0,
                index: k as u8,
            };
            if s.active && Self::due(h, a, now_ms) {
                out.push(a);
            }
        }
    }
}

/// What the search found for one user.
#[derive(Clone, Debug)]
pub struct UserOutcome {
    /// The index (in the user's observations) of the first one no state explains.
    pub departure: Option<usize>,
    /// At the departure: the states before the unobserved steps were closed over.
    pub frontier: Vec<Hyp>,
    /// At the departure: the states after.
    pub closed: Vec<Hyp>,
    /// The largest set of states tracked.
    pub states_tracked_max: usize,
}

impl Search<'_> {
    /// The world before the log: every device down, nothing stored.
    pub fn initial(&self) -> Hyp {
        let mut world = World::new(&self.cfg);
        self.reset_budgets(&mut world);
        Hyp {
            world,
            sids: ArrayVec::new(),
            cids: ArrayVec::new(),
            owed: ArrayVec::new(),
            clocks: ArrayVec::new(),
            started: 0,
            restarting: 0,
        }
    }

    fn reset_budgets(&self, w: &mut World) {
        if self.unbounded_crashes {
            w.crashes_left = u8::MAX;
        }
        if self.unbounded_losses {
            w.losses_left = u8::MAX;
        }
    }

    fn events_observed(&self, d: u8) -> bool {
        self.user.events_observed & (1 << d) != 0
    }

    /// Whether the device owes the log a message it must show before the device's next step
    /// (or restarts, and its next step is the start).
    pub fn blocked(h: &Hyp, d: u8) -> bool {
        h.restarting & (1 << d) != 0 || h.owed.iter().any(|o| o.device == d && !o.optional)
    }

    /// The world's own enabled actions of device `d`.
    fn world_actions(&self, h: &Hyp, d: u8) -> Vec<Action> {
        let mut v = Vec::new();
        h.world.devices[d as usize].actions(
            &self.cfg,
            d,
            h.world.crashes_left,
            h.world.losses_left,
            &mut v,
        );
        v
    }

    fn front_orphan(h: &Hyp, d: u8) -> bool {
        h.world.devices[d as usize]
            .to_server
            .first()
            .is_some_and(|r| r.orphan)
    }

    fn front_login(h: &Hyp, d: u8) -> bool {
        h.world.devices[d as usize]
            .to_server
            .first()
            .is_some_and(|r| matches!(r.env.body, Primitive::LoginRequest(_)))
    }

    /// The steps that show nothing in the log by themselves (they are kept when every message
    /// they put on the wire may go unseen).
    pub fn hidden_actions(&self, h: &Hyp, now_ms: u64, out: &mut Vec<Act>) {
        for d in 0..h.world.devices.len() as u8 {
            if Self::blocked(h, d) {
                continue;
            }
            for a in self.world_actions(h, d) {
                match a {
                    Action::ClientReceives(_) | Action::ClientReceivesPush(_) => {
                        out.push(Act::World(a))
                    }
                    Action::Crash(_) | Action::LoseConnection(_) => {
                        if !self.events_observed(d) {
                            out.push(Act::World(a));
                        }
                    }
                    Action::ServerReceives(_) => {
                        if Self::front_orphan(h, d) {
                            out.push(Act::World(a));
                            if self.request_loss {
                                out.push(Act::DropOrphan(d));
                            }
                            if self.sap_limit && Self::front_login(h, d) {
                                out.push(Act::SapFull(d));
                            }
                        }
                    }
                    Action::Start(_)
                    | Action::RetryTimer(_)
                    | Action::KeepAliveTimer(_)
                    | Action::Expire { .. }
                    | Action::User(..) => {}
                }
            }
        }
        let mut exp = Vec::new();
        self.expiries(h, now_ms, &mut exp);
        out.extend(exp.into_iter().map(Act::World));
    }

    /// Whether an expiry may have happened by `now_ms`: the session's `KeepAliveTime` (as the
    /// log shows it) has passed since the last line that kept it alive. A session the log
    /// never named, or whose `KeepAliveTime` it never showed, may expire at any time.
    pub fn due(h: &Hyp, a: Action, now_ms: u64) -> bool {
        let Action::Expire { index, .. } = a else {
            return true;
        };
        let sid = h.world.users[0].sessions[index as usize].id.0;
        match h.clocks.iter().find(|c| c.sid == sid) {
            Some(c) if c.keep_alive_s > 0 => {
                now_ms >= c.last_ms.saturating_add(u64::from(c.keep_alive_s) * 1000)
            }
            Some(_) | None => true,
        }
    }

    /// Record what an observed answer says of its session's Time-To-Live: the server heard
    /// the session when it took the request (no earlier than the request went out), a
    /// successful Login-Response starts it, and a `KeepAliveTime` sets it. (A request alone
    /// proves nothing: the network may have lost it.)
    fn note_time(n: &mut Hyp, o: &Obs) {
        if o.dir == Dir::ToServer || o.prim == "Disconnect" {
            return;
        }
        let login = o.prim == "Login-Response";
        let ok = o.result.is_some_and(|c| (200..300).contains(&c));
        let real = if login { o.content_sid } else { o.desc_sid };
        let (Some(real), Some(t_ms)) = (real, o.request_t_ms) else {
            return;
        };
        let Some(&(sid, _)) = n.sids.iter().find(|(_, r)| *r == real) else {
            return;
        };
        let alive = ok || !login;
        let i = match n.clocks.iter().position(|c| c.sid == sid) {
            Some(i) => i,
            None => {
                if !alive || n.clocks.is_full() {
                    return;
                }
                n.clocks.push(Clock {
                    sid,
                    last_ms: t_ms,
                    keep_alive_s: 0,
                });
                n.clocks.sort_unstable_by_key(|c| c.sid);
                n.clocks
                    .iter()
                    .position(|c| c.sid == sid)
                    .expect("invariant: just added")
            }
        };
        let c = &mut n.clocks[i];
        if alive {
            c.last_ms = c.last_ms.max(t_ms);
        }
        if let Some(ka) = o.keep_alive_time {
            c.keep_alive_s = ka;
        }
    }

    /// The steps that may put the observed message of device `d` on the wire.
    pub fn observed_actions(&self, h: &Hyp, d: u8, o: &Obs, now_ms: u64, out: &mut Vec<Act>) {
        if h.restarting & (1 << d) != 0 {
            if o.dir == Dir::ToServer {
                let acts = self.world_actions(h, d);
                if acts.contains(&Action::Start(d)) {
                    out.push(Act::World(Action::Start(d)));
                } else if acts.contains(&Action::Crash(d)) {
                    out.push(Act::RestartRunning(d));
                }
            }
            return;
        }
        match o.dir {
            Dir::ToServer => {
                for a in self.world_actions(h, d) {
                    match a {
                        Action::Start(_) => {
                            if !self.events_observed(d) || h.started & (1 << d) == 0 {
                                out.push(Act::World(a));
                            }
                        }
                        Action::RetryTimer(_)
                        | Action::KeepAliveTimer(_)
                        | Action::ClientReceives(_)
                        | Action::ClientReceivesPush(_)
                        | Action::User(..) => out.push(Act::World(a)),
                        Action::ServerReceives(_)
                        | Action::Crash(_)
                        | Action::LoseConnection(_)
                        | Action::Expire { .. } => {}
                    }
                }
                if let Phase::Established { .. } = h.world.devices[d as usize].client.phase {
                    let user = match (o.prim.as_str(), o.group, o.presence) {
                        ("JoinGroup-Request", Some(g), _) => Some(UserAction::Join(g)),
                        ("LeaveGroup-Request", Some(g), _) => Some(UserAction::Leave(g)),
                        ("UpdatePresence-Request", _, Some(p)) => Some(UserAction::Presence(p)),
                        _ => None,
                    };
                    if let Some(u) = user {
                        out.push(Act::World(Action::User(d, u)));
                    }
                }
            }
            Dir::ToClient => {
                let replaces = self.cfg.server.duplicate_client_id == DuplicateClientId::ReplaceOld
                    && self.cfg.server.sends_disconnect;
                for e in 0..h.world.devices.len() as u8 {
                    if (e != d && !replaces) || Self::blocked(h, e) {
                        continue;
                    }
                    if !h.world.devices[e as usize].to_server.is_empty() {
                        out.push(Act::World(Action::ServerReceives(e)));
                        if self.sap_limit && Self::front_login(h, e) {
                            out.push(Act::SapFull(e));
                        }
                    }
                }
                if self.cfg.server.sends_disconnect {
                    let mut exp = Vec::new();
                    self.expiries(h, now_ms, &mut exp);
                    let us = &h.world.users[0];
                    for a in exp {
                        if let Action::Expire { index, .. } = a {
                            if us.sessions[index as usize].device.0 == u32::from(d) {
                                out.push(Act::World(a));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Apply a step to a copy of `h`: the new hypothesis (owed messages of the touched devices
    /// that may go unseen are forgotten), what the step put on the wire, and the world's step.
    ///
    /// # Errors
    ///
    /// When the step outgrows a bound of the world (requests in flight, pushes).
    pub fn apply(&self, h: &Hyp, act: Act) -> Result<(Hyp, ArrayVec<Emitted, 4>, Step), Bound> {
        let mut n = h.clone();
        let overflow = |s: &Step| match s.overflow {
            Some(o) => Err(Bound::Other(o.to_string())),
            None => Ok(()),
        };
        let mut served: Option<u8> = None;
        if let Some(d) = act.device() {
            n.restarting &= !(1 << d);
        }
        let step = match act {
            Act::World(a) => {
                let s = n.world.step(&self.cfg, a);
                overflow(&s)?;
                if let Action::ServerReceives(d) = a {
                    served = Some(d);
                }
                if let Action::Start(d) = a {
                    n.started |= 1 << d;
                }
                s
            }
            Act::DropOrphan(d) => {
                n.world.devices[d as usize].to_server.remove(0);
                let mut s = Step::default();
                s.touched.devices |= 1 << d;
                s
            }
            Act::SapFull(d) => {
                let own = n.world.shared.active_total;
                n.world.shared.active_total = self.cfg.server.max_sessions_total.max(own);
                let s = n.world.step(&self.cfg, Action::ServerReceives(d));
                overflow(&s)?;
                n.world.shared.active_total = n.world.users[0].active_count() as u32;
                served = Some(d);
                s
            }
            Act::RestartRunning(d) => {
                let c = n.world.step(&self.cfg, Action::Crash(d));
                overflow(&c)?;
                let mut s = n.world.step(&self.cfg, Action::Start(d));
                overflow(&s)?;
                n.started |= 1 << d;
                s.touched = s.touched.union(c.touched);
                s
            }
        };
        self.reset_budgets(&mut n.world);
        let mut touched = step.touched.devices;
        if let Some(d) = act.device() {
            touched |= 1 << d;
        }
        n.owed
            .retain(|o| !(o.optional && touched & (1 << o.device) != 0));
        let mut emitted = ArrayVec::new();
        if let (Some(out), Some(d)) = (&step.client, act.device()) {
            if let Some(env) = out.send {
                emitted.push(Emitted {
                    device: d,
                    to_server: true,
                    optional: false,
                    env,
                });
                if let Some(last) = n.world.devices[d as usize].to_server.last_mut() {
                    last.env.tid = Some(Tid(UNKNOWN_TID));
                }
            }
        }
        if let Some(sout) = &step.server {
            if let (Some(reply), Some(d)) = (sout.reply, served) {
                emitted.push(Emitted {
                    device: d,
                    to_server: false,
                    optional: step.request.is_some_and(|r| r.orphan),
                    env: reply,
                });
            }
            for &(to, env) in &sout.pushes {
                let down = n.world.devices[to.0 as usize].client.phase == Phase::Down;
                emitted.push(Emitted {
                    device: to.0 as u8,
                    to_server: false,
                    optional: down,
                    env,
                });
            }
        }
        Ok((n, emitted, step))
    }

    /// Add a message the log must (or may) still show.
    pub fn owe(n: &mut Hyp, e: &Emitted) -> Result<(), Bound> {
        n.owed
            .try_push(Owed {
                device: e.device,
                to_server: e.to_server,
                optional: e.optional,
                env: e.env,
            })
            .map_err(|_| {
                Bound::Other(format!(
                    "more than {MAX_OWED} messages of the model not yet seen in the log"
                ))
            })
    }

    /// Put `h` in canonical form: Session-IDs renumbered in order of appearance (the table,
    /// then each device, then the owed messages), the mapping renumbered with them and
    /// forgetting IDs that appear nowhere any more, the clients' Transaction-ID counters
    /// zeroed.
    ///
    /// # Errors
    ///
    /// When more Session-IDs are alive than the mapping holds.
    pub fn canonical(h: &mut Hyp) -> Result<(), Bound> {
        for dev in &mut h.world.devices {
            dev.client.last_tid = 0;
        }
        let mut order: Vec<u32> = Vec::new();
        let mut identity = true;
        visit_sids(h, &mut |s| {
            if !order.contains(&s.0) {
                if s.0 != order.len() as u32 {
                    identity = false;
                }
                order.push(s.0);
            }
        });
        if !identity {
            visit_sids(h, &mut |s| {
                let to = order
                    .iter()
                    .position(|&x| x == s.0)
                    .expect("invariant: every Session-ID was visited");
                s.0 = to as u32;
            });
        }
        let mut sids: ArrayVec<(u32, u32), MAX_SIDS> = ArrayVec::new();
        for &(m, r) in &h.sids {
            if let Some(to) = order.iter().position(|&x| x == m) {
                sids.push((to as u32, r));
            }
        }
        sids.sort_unstable();
        h.sids = sids;
        let mut clocks: ArrayVec<Clock, MAX_SIDS> = ArrayVec::new();
        for c in &h.clocks {
            if let Some(to) = order.iter().position(|&x| x == c.sid) {
                clocks.push(Clock {
                    sid: to as u32,
                    ..*c
                });
            }
        }
        clocks.sort_unstable_by_key(|c| c.sid);
        h.clocks = clocks;
        h.world.shared.next_session_id = order.len() as u32;
        if order.len() > 4 * MAX_SIDS {
            return Err(Bound::Other(format!(
                "more than {} Session-IDs alive in one state of the model",
                4 * MAX_SIDS
            )));
        }
        Ok(())
    }

    /// Map model Session-ID `m` to real `r` (interned), consistently: a model ID maps to one
    /// real ID and back, and a model ID seen for the first time takes a real ID the log has
    /// not shown before line `k` (the model never hands out a Session-ID twice).
    fn bind_sid(&self, n: &mut Hyp, m: SessionId, r: u32, k: usize) -> Result<bool, Bound> {
        if let Some(&(_, r0)) = n.sids.iter().find(|(x, _)| *x == m.0) {
            return Ok(r0 == r);
        }
        if n.sids.iter().any(|(_, x)| *x == r) {
            return Ok(false);
        }
        if self.user.sid_first_seen[r as usize] < k {
            return Ok(false);
        }
        n.sids.try_push((m.0, r)).map_err(|_| {
            Bound::Other(format!(
                "more than {MAX_SIDS} Session-IDs mapped in one state of the model"
            ))
        })?;
        n.sids.sort_unstable();
        Ok(true)
    }

    fn bind_opt_sid(
        &self,
        n: &mut Hyp,
        m: Option<SessionId>,
        r: Option<u32>,
        k: usize,
    ) -> Result<bool, Bound> {
        match (m, r) {
            (None, None) => Ok(true),
            (Some(m), Some(r)) => self.bind_sid(n, m, r, k),
            (Some(_), None) | (None, Some(_)) => Ok(false),
        }
    }

    fn bind_cid(&self, n: &mut Hyp, m: ClientId, r: u32) -> Result<bool, Bound> {
        if self.foreign_cids.get(r as usize).copied().unwrap_or(false) {
            return Ok(false);
        }
        if let Some(&(_, r0)) = n.cids.iter().find(|(x, _)| *x == m) {
            return Ok(r0 == r);
        }
        if n.cids.iter().any(|(_, x)| *x == r) {
            return Ok(false);
        }
        n.cids.try_push((m, r)).map_err(|_| {
            Bound::Other(format!(
                "more than {MAX_CIDS} Client-IDs mapped in one state of the model"
            ))
        })?;
        Ok(true)
    }

    /// Whether the model's message `env` is the observed one `o` (on line `k`), mapping
    /// the identifiers into `n` on the way (on a mismatch `n` is left half-mapped: match on a
    /// copy).
    pub fn match_env(&self, n: &mut Hyp, env: &Envelope, o: &Obs, k: usize) -> Result<bool, Bound> {
        if env.body.wire_name() != o.prim || env.mode != o.mode {
            return Ok(false);
        }
        let disconnect = matches!(env.body, Primitive::Disconnect { .. });
        match o.dir {
            Dir::ToServer => {
                if o.tid.is_none() {
                    return Ok(false);
                }
            }
            Dir::ToClient if disconnect => {
                if env.tid.is_some() != o.tid.is_some() {
                    return Ok(false);
                }
            }
            Dir::ToClient => match env.tid {
                Some(Tid(t)) if t != UNKNOWN_TID => {
                    if o.tid != Some(t) {
                        return Ok(false);
                    }
                }
                Some(_) => {}
                None => {
                    if o.tid.is_some() {
                        return Ok(false);
                    }
                }
            },
        }
        match env.body {
            Primitive::LoginRequest(lr) => {
                if let (Some(a), Some(b)) = (o.content_sid, o.desc_sid) {
                    if a != b {
                        return Ok(false);
                    }
                }
                if !o.user_ok
                    || lr.password != o.password
                    || lr.digest_schema != o.digest_schema
                    || lr.digest_bytes.is_some() != o.digest_bytes
                    || lr.negotiation != o.negotiation
                    || lr.system_message_response.is_some() != o.system_message_response
                {
                    return Ok(false);
                }
                let Some(c) = o.client_id else {
                    return Ok(false);
                };
                let recovery = lr.session_id.or(env.session);
                Ok(
                    self.bind_opt_sid(n, recovery, o.content_sid.or(o.desc_sid), k)?
                        && self.bind_cid(n, lr.client_id, c)?,
                )
            }
            Primitive::LoginResponse(r) => {
                if Some(r.result.number()) != o.result
                    || r.nonce.is_some() != o.nonce
                    || (r.capability_request == Some(true)) != (o.capability_request == Some(true))
                    || r.negotiated != o.negotiation
                    || r.system_message != o.system_message
                {
                    return Ok(false);
                }
                if let Some(c) = o.client_id {
                    if !self.bind_cid(n, r.client_id, c)? {
                        return Ok(false);
                    }
                }
                self.bind_opt_sid(n, r.session_id, o.content_sid, k)
            }
            body => {
                if body.result().map(|c| c.number()) != o.result {
                    return Ok(false);
                }
                let same = match body {
                    Primitive::JoinGroupRequest { group }
                    | Primitive::LeaveGroupRequest { group } => o.group == Some(group),
                    Primitive::UpdatePresenceRequest { presence } => o.presence == Some(presence),
                    _ => true,
                };
                Ok(same && self.bind_opt_sid(n, env.session, o.desc_sid, k)?)
            }
        }
    }

    /// Record the observed Transaction-ID on the request the device just sent (the last one
    /// in its queue), so that its answer must carry it.
    fn stamp_tid(n: &mut Hyp, d: u8, o: &Obs) {
        if let (Some(t), Some(last)) = (o.tid, n.world.devices[d as usize].to_server.last_mut()) {
            last.env.tid = Some(Tid(t));
        }
    }

    /// The successors of `h` that explain observation `ob`, into `out`.
    ///
    /// # Errors
    ///
    /// When a bound is passed.
    pub fn successors(&self, h: &Hyp, ob: &Ob, out: &mut Dedup) -> Result<(), Bound> {
        let (d, k) = (ob.device, ob.line);
        match &ob.kind {
            ObKind::Msg(o) => {
                let to_server = o.dir == Dir::ToServer;
                for (i, e) in h.owed.iter().enumerate() {
                    if e.device != d || e.to_server != to_server {
                        continue;
                    }
                    let mut n = h.clone();
                    if self.match_env(&mut n, &e.env, o, k)? {
                        n.owed.remove(i);
                        if to_server {
                            Self::stamp_tid(&mut n, d, o);
                        }
                        Self::note_time(&mut n, o);
                        Self::canonical(&mut n)?;
                        out.insert(n);
                    }
                }
                if h.owed.iter().any(|e| e.device == d && !e.optional) {
                    return Ok(());
                }
                let mut acts = Vec::new();
                self.observed_actions(h, d, o, ob.t_ms, &mut acts);
                for act in acts {
                    let (n, emitted, _) = self.apply(h, act)?;
                    self.match_emitted(&n, &emitted, ob, o, out)?;
                }
            }
            ObKind::Event(kind) => {
                if Self::blocked(h, d) {
                    return Ok(());
                }
                let acts = self.world_actions(h, d);
                let has = |a: Action| acts.contains(&a);
                let act = match kind {
                    EventKind::Crash => {
                        has(Action::Crash(d)).then_some(Act::World(Action::Crash(d)))
                    }
                    EventKind::Restart => {
                        // The start is taken with the message it sends (so that a knob
                        // that changes that message can explain it).
                        if has(Action::Start(d)) || has(Action::Crash(d)) {
                            let mut n = h.clone();
                            n.owed.retain(|o| !(o.optional && o.device == d));
                            n.restarting |= 1 << d;
                            out.insert(n);
                        }
                        None
                    }
                    EventKind::ConnectionLost => {
                        if has(Action::LoseConnection(d)) {
                            Some(Act::World(Action::LoseConnection(d)))
                        } else {
                            // Nothing in flight and no session: the loss changes nothing.
                            let mut n = h.clone();
                            n.owed.retain(|o| !(o.optional && o.device == d));
                            out.insert(n);
                            None
                        }
                    }
                };
                if let Some(act) = act {
                    let (mut n, emitted, _) = self.apply(h, act)?;
                    for e in &emitted {
                        Self::owe(&mut n, e)?;
                    }
                    Self::canonical(&mut n)?;
                    out.insert(n);
                }
            }
        }
        Ok(())
    }

    /// Keep the variants of `n` in which one of the step's messages is the observed one and
    /// the others are owed.
    pub fn match_emitted(
        &self,
        n: &Hyp,
        emitted: &[Emitted],
        ob: &Ob,
        o: &Obs,
        out: &mut Dedup,
    ) -> Result<(), Bound> {
        let (d, k) = (ob.device, ob.line);
        let to_server = o.dir == Dir::ToServer;
        for (j, e) in emitted.iter().enumerate() {
            if e.device != d || e.to_server != to_server {
                continue;
            }
            let mut m = n.clone();
            if !self.match_env(&mut m, &e.env, o, k)? {
                continue;
            }
            if to_server {
                Self::stamp_tid(&mut m, d, o);
            }
            Self::note_time(&mut m, o);
            for (jj, other) in emitted.iter().enumerate() {
                if jj != j {
                    Self::owe(&mut m, other)?;
                }
            }
            Self::canonical(&mut m)?;
            out.insert(m);
        }
        Ok(())
    }

    /// Close `frontier` over the unobserved steps ([`Search::hidden_actions`] whose messages
    /// may all go unseen).
    ///
    /// # Errors
    ///
    /// When the set passes [`Search::max_states`] or a step a bound of the world.
    pub fn close(&self, frontier: Vec<Hyp>, now_ms: u64) -> Result<Vec<Hyp>, Bound> {
        let mut set = Dedup::default();
        for h in frontier {
            set.insert(h);
        }
        let mut acts = Vec::new();
        let mut fresh = Vec::new();
        let mut i = 0;
        while i < set.items.len() {
            let h = &set.items[i];
            acts.clear();
            self.hidden_actions(h, now_ms, &mut acts);
            for &act in &acts {
                let (mut n, emitted, _) = self.apply(h, act)?;
                if emitted.iter().any(|e| !e.optional) {
                    continue;
                }
                for e in &emitted {
                    Self::owe(&mut n, e)?;
                }
                Self::canonical(&mut n)?;
                fresh.push(n);
            }
            for n in fresh.drain(..) {
                set.insert(n);
            }
            if set.len() > self.max_states {
                return Err(Bound::States(self.max_states));
            }
            i += 1;
        }
        Ok(set.into_vec())
    }

    /// Run the search over the user's whole log.
    ///
    /// # Errors
    ///
    /// When a bound is passed, with the index of the observation where it happened.
    pub fn run(&self) -> Result<UserOutcome, (usize, Bound)> {
        let mut frontier = vec![self.initial()];
        let mut max = 1;
        for (k, ob) in self.user.obs.iter().enumerate() {
            let closed = self.close(frontier.clone(), ob.t_ms).map_err(|b| (k, b))?;
            max = max.max(closed.len());
            let mut next = Dedup::default();
            for h in &closed {
                self.successors(h, ob, &mut next).map_err(|b| (k, b))?;
                if next.len() > self.max_states {
                    return Err((k, Bound::States(self.max_states)));
                }
            }
            if next.is_empty() {
                return Ok(UserOutcome {
                    departure: Some(k),
                    frontier,
                    closed,
                    states_tracked_max: max,
                });
            }
            max = max.max(next.len());
            frontier = next.into_vec();
        }
        Ok(UserOutcome {
            departure: None,
            frontier: Vec::new(),
            closed: Vec::new(),
            states_tracked_max: max,
        })
    }
}

/// Visit every Session-ID of a hypothesis in a fixed order: the user's table, each device
/// ([`crate::world::Device::visit_session_ids`]), then the owed messages.
fn visit_sids(h: &mut Hyp, f: &mut impl FnMut(&mut SessionId)) {
    for us in &mut h.world.users {
        for s in &mut us.sessions {
            f(&mut s.id);
        }
    }
    for dev in &mut h.world.devices {
        dev.visit_session_ids(&mut *f);
    }
    for o in &mut h.owed {
        env_sids(&mut o.env, f);
    }
}

fn env_sids(e: &mut Envelope, f: &mut impl FnMut(&mut SessionId)) {
    if let Some(s) = e.session.as_mut() {
        f(s);
    }
    match &mut e.body {
        Primitive::LoginRequest(lr) => {
            if let Some(s) = lr.session_id.as_mut() {
                f(s);
            }
        }
        Primitive::LoginResponse(r) => {
            if let Some(s) = r.session_id.as_mut() {
                f(s);
            }
        }
        _ => {}
    }
}
