//! A closed world of one server and its users' devices, connected by an HTTP-like network,
//! stepped one event at a time.
//!
//! This is the driver that the model checker explores (every enabled [`Action`] is a branch)
//! and that tests script. The network follows the CSP HTTP binding: a client has at most one
//! request in flight, the answer comes back on the same connection, and the server pushes
//! Disconnect on a separate channel. A crash loses the device's volatile state, the answers
//! addressed to it and its pushes; requests it already sent still reach the server, and their
//! answers are lost with the connection.

use crate::client::{Client, ClientOut, ClientTimer, Phase, UserAction};
use crate::config::Config;
use crate::msg::{DeviceId, Envelope, SessionId, UserId};
use crate::server::{Origin, ServerOut, ServerShared, UserServer};
use arrayvec::ArrayVec;
use serde::{Deserialize, Serialize};

/// A request on its way to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InFlight {
    /// The request.
    pub env: Envelope,
    /// Its connection is gone (the sender crashed or lost the connection since): the answer
    /// will be lost.
    pub orphan: bool,
}

/// The most requests a device can have on their way to the server. A step that would send
/// one more is an exploration error ([`Step::overflow`]), never a silent drop.
pub const MAX_REQUESTS: usize = 6;

/// The most Disconnects pushed to a device and not yet taken. A push past it is an
/// exploration error ([`Step::overflow`]), never a silent drop; a test checks that no named
/// variant and no sweep of FINDINGS reaches it. (A Disconnect the device can never act on is
/// taken at once, see [`Device::inert`], so the queue holds only Disconnects that matter.)
pub const MAX_PUSHES: usize = 4;

/// A bound of the world that a step outgrew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// A device would have more than [`MAX_REQUESTS`] requests in flight.
    Requests,
    /// A device would have more than [`MAX_PUSHES`] pushed Disconnects not yet taken.
    Pushes,
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Overflow::Requests => write!(f, "a device has more than {MAX_REQUESTS} requests in flight"),
            Overflow::Pushes => write!(f, "a device has more than {MAX_PUSHES} pushed Disconnects not yet taken (with server.ttl_expiry, sessions can expire faster than the device takes them: set env.keep_alives=true or env.groups=0 and env.presence_values=0, or keep env.settle_inert_disconnects=true and client.answers_disconnect=false)"),
        }
    }
}

/// One device: its client and its links.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Device {
    /// The client state machine (with its crash-safe storage).
    pub client: Client,
    /// Requests on their way to the server, oldest first.
    pub to_server: ArrayVec<InFlight, MAX_REQUESTS>,
    /// The answer on its way back.
    pub to_client: Option<Envelope>,
    /// Disconnects pushed by the server and not yet taken, oldest first.
    pub pushes: ArrayVec<Envelope, MAX_PUSHES>,
}

impl Clone for Device {
    fn clone(&self) -> Self {
        Device {
            client: self.client,
            to_server: self.to_server.clone(),
            to_client: self.to_client,
            pushes: self.pushes.clone(),
        }
    }

    /// Copies only the messages in flight, not the queues' whole capacity.
    fn clone_from(&mut self, src: &Self) {
        self.client = src.client;
        self.to_server.clone_from(&src.to_server);
        self.to_client = src.to_client;
        self.pushes.clone_from(&src.pushes);
    }
}

/// The whole world.
#[derive(Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct World {
    /// The server, one table per user.
    pub users: Vec<UserServer>,
    /// Server values across users.
    pub shared: ServerShared,
    /// The devices; device `d` belongs to user `d / devices_per_user`.
    pub devices: Vec<Device>,
    /// Crashes still allowed.
    pub crashes_left: u8,
    /// Connection losses still allowed.
    pub losses_left: u8,
}

impl Clone for World {
    fn clone(&self) -> Self {
        World {
            users: self.users.clone(),
            shared: self.shared,
            devices: self.devices.clone(),
            crashes_left: self.crashes_left,
            losses_left: self.losses_left,
        }
    }

    /// Reuses the allocations of `self` (the checker clones a world per transition).
    fn clone_from(&mut self, src: &Self) {
        self.users.clone_from(&src.users);
        self.shared = src.shared;
        self.devices.clone_from(&src.devices);
        self.crashes_left = src.crashes_left;
        self.losses_left = src.losses_left;
    }
}

/// One event of the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// The device powers on (first start, or restart after a crash).
    Start(u8),
    /// The server takes the device's oldest request.
    ServerReceives(u8),
    /// The device takes the answer addressed to it.
    ClientReceives(u8),
    /// The device takes the oldest Disconnect pushed to it.
    ClientReceivesPush(u8),
    /// The device's retry timer fires.
    RetryTimer(u8),
    /// The device's keep-alive timer fires.
    KeepAliveTimer(u8),
    /// The device crashes.
    Crash(u8),
    /// The device's connection breaks (no crash).
    LoseConnection(u8),
    /// The Time-To-Live of session number `index` of `user` runs out.
    Expire {
        /// The user.
        user: u8,
        /// Index in the user's session table.
        index: u8,
    },
    /// The device's user does something.
    User(u8, UserAction),
}

impl Action {
    /// The device the action concerns, if any.
    pub const fn device(&self) -> Option<u8> {
        match *self {
            Action::Start(d)
            | Action::ServerReceives(d)
            | Action::ClientReceives(d)
            | Action::ClientReceivesPush(d)
            | Action::RetryTimer(d)
            | Action::KeepAliveTimer(d)
            | Action::Crash(d)
            | Action::LoseConnection(d)
            | Action::User(d, _) => Some(d),
            Action::Expire { .. } => None,
        }
    }

    /// The same action at device `d` (an expiry, which has no device, unchanged).
    pub const fn at_device(self, d: u8) -> Action {
        match self {
            Action::Start(_) => Action::Start(d),
            Action::ServerReceives(_) => Action::ServerReceives(d),
            Action::ClientReceives(_) => Action::ClientReceives(d),
            Action::ClientReceivesPush(_) => Action::ClientReceivesPush(d),
            Action::RetryTimer(_) => Action::RetryTimer(d),
            Action::KeepAliveTimer(_) => Action::KeepAliveTimer(d),
            Action::Crash(_) => Action::Crash(d),
            Action::LoseConnection(_) => Action::LoseConnection(d),
            Action::User(_, u) => Action::User(d, u),
            e @ Action::Expire { .. } => e,
        }
    }
}

/// What a step did: the outputs of the state machines it ran, for monitors and traces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Messages that went on the wire: (device, towards the server?, envelope).
    pub messages: ArrayVec<(u8, bool, Envelope), 4>,
    /// The client step's outputs, when a client ran.
    pub client: Option<ClientOut>,
    /// The server step's outputs, when the server ran.
    pub server: Option<ServerOut>,
    /// The request the server handled (and whether its answer was lost).
    pub request: Option<InFlight>,
    /// The components the step changed.
    pub touched: Touched,
    /// A device's request or push queue was full, so a message was not queued: the world's
    /// bound was exceeded (the checker stops with an error rather than explore a wrong
    /// world).
    pub overflow: Option<Overflow>,
}

/// The time the world passes to the core: virtual time does not advance in the checker;
/// timers fire as nondeterministic events instead.
pub const NOW_MS: u64 = 0;

/// The time passed to a Time-To-Live timer: late enough for any session to be due.
pub const EXPIRY_NOW_MS: u64 = u64::MAX;

impl World {
    /// The initial world: every device down with empty storage, no sessions.
    pub fn new(cfg: &Config) -> World {
        let per = cfg.env.devices_per_user as u32;
        let n = cfg.env.users as u32 * per;
        World {
            users: vec![UserServer::default(); cfg.env.users as usize],
            shared: ServerShared::default(),
            devices: (0..n)
                .map(|d| Device {
                    client: Client::new(UserId(d / per), DeviceId(d)),
                    to_server: ArrayVec::new(),
                    to_client: None,
                    pushes: ArrayVec::new(),
                })
                .collect(),
            crashes_left: cfg.env.max_crashes,
            losses_left: cfg.env.max_connection_losses,
        }
    }

    /// The user a device belongs to.
    pub fn user_of(&self, device: u8) -> usize {
        self.devices[device as usize].client.user.0 as usize
    }

    /// The device wants a session: it is not idle by its user's choice.
    pub fn wants_session(&self, device: usize) -> bool {
        !matches!(self.devices[device].client.phase, Phase::Idle)
    }

    /// The device holds a usable session.
    pub fn holds_session(&self, device: usize) -> bool {
        matches!(
            self.devices[device].client.phase,
            Phase::Established { .. } | Phase::Busy { .. }
        )
    }

    /// Every action enabled in this state, in a fixed order: each device's
    /// ([`Device::actions`]), then the Time-To-Live expiries ([`expiry_actions`]).
    pub fn actions(&self, cfg: &Config, out: &mut Vec<Action>) {
        for (d, dev) in self.devices.iter().enumerate() {
            dev.actions(cfg, d as u8, self.crashes_left, self.losses_left, out);
        }
        for (u, us) in self.users.iter().enumerate() {
            expiry_actions(cfg, u as u8, us, |d| &self.devices[d], out);
        }
    }

    /// Whether nothing keeps `session` alive, so that its Time-To-Live can run out (see
    /// [`Device::keeps_alive`]).
    pub fn silent(&self, cfg: &Config, session: &crate::server::Session) -> bool {
        !self.devices[session.device.0 as usize].keeps_alive(cfg, session.id)
    }

    fn post(&mut self, d: usize, out: &ClientOut, step: &mut Step) {
        if let Some(env) = out.send {
            let sent = self.devices[d]
                .to_server
                .try_push(InFlight { env, orphan: false });
            if sent.is_err() {
                step.overflow = Some(Overflow::Requests);
                return;
            }
            step.messages.push((d as u8, true, env));
        }
    }

    /// Record the server's outputs of a step and deliver its pushes (the reply, if any,
    /// went to device `d` already).
    fn deliver_server_out(&mut self, cfg: &Config, d: usize, sout: &ServerOut, step: &mut Step) {
        if let Some(reply) = sout.reply {
            step.messages.push((d as u8, false, reply));
        }
        for &(to, env) in &sout.pushes {
            step.touched.devices |= 1 << to.0;
            step.messages.push((to.0 as u8, false, env));
            if !self.devices[to.0 as usize].push(cfg, env) {
                step.overflow = Some(Overflow::Pushes);
            }
        }
    }

    /// Run one action. The action must be enabled ([`World::actions`]).
    pub fn step(&mut self, cfg: &Config, action: Action) -> Step {
        let mut step = Step::default();
        if let Some(d) = action.device() {
            step.touched.devices |= 1 << d;
        }
        match action {
            Action::ServerReceives(d) => step.touched.users |= 1 << self.user_of(d),
            Action::Expire { user, .. } => step.touched.users |= 1 << user,
            _ => {}
        }
        let mut out = ClientOut::default();
        match action {
            Action::Start(d) => {
                self.devices[d as usize].client.start(cfg, &mut out);
            }
            Action::ServerReceives(d) => {
                let dev = &mut self.devices[d as usize];
                let us = &mut self.users[dev.client.user.0 as usize];
                let (req, sout) = dev.serve(cfg, us, &mut self.shared);
                self.deliver_server_out(cfg, d as usize, &sout, &mut step);
                step.request = Some(req);
                step.server = Some(sout);
                return step;
            }
            Action::ClientReceives(d) => {
                let dev = &mut self.devices[d as usize];
                let env = dev
                    .to_client
                    .take()
                    .expect("invariant: ClientReceives is enabled only with an answer in flight");
                dev.client.on_message(cfg, &env, &mut out);
            }
            Action::ClientReceivesPush(d) => {
                let dev = &mut self.devices[d as usize];
                let env = dev.pushes.remove(0);
                dev.client.on_message(cfg, &env, &mut out);
            }
            Action::RetryTimer(d) => {
                self.devices[d as usize]
                    .client
                    .on_timer(cfg, ClientTimer::Retry, &mut out)
            }
            Action::KeepAliveTimer(d) => {
                let c = &mut self.devices[d as usize].client;
                let after_s = c.keep_alive_s;
                c.on_timer(cfg, ClientTimer::KeepAlive { after_s }, &mut out);
            }
            Action::Crash(d) => {
                self.crashes_left -= 1;
                let dev = &mut self.devices[d as usize];
                dev.client.crash();
                dev.to_client = None;
                dev.pushes.clear();
                dev.to_server.iter_mut().for_each(|r| r.orphan = true);
            }
            Action::LoseConnection(d) => {
                self.losses_left -= 1;
                let dev = &mut self.devices[d as usize];
                dev.to_client = None;
                dev.to_server.iter_mut().for_each(|r| r.orphan = true);
                dev.client.connection_lost(&mut out);
            }
            Action::Expire { user, index } => {
                let us = &mut self.users[user as usize];
                let id: SessionId = us.sessions[index as usize].id;
                let mut sout = ServerOut::default();
                us.expire(cfg, &mut self.shared, EXPIRY_NOW_MS, id, &mut sout);
                self.deliver_server_out(cfg, usize::MAX, &sout, &mut step);
                step.server = Some(sout);
                return step;
            }
            Action::User(d, a) => self.devices[d as usize]
                .client
                .user_action(cfg, a, &mut out),
        }
        let d = action
            .device()
            .expect("invariant: every client action names a device") as usize;
        self.post(d, &out, &mut step);
        self.devices[d].settle_pushes(cfg);
        step.client = Some(out);
        step
    }
}

/// Where a Session-ID sits: in a user's session table, or in a device.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Table(usize),
    Device(usize),
}

/// Visit every Session-ID in the world, user by user in a fixed order: the user's session
/// table first, then each of the user's devices in the order of
/// [`Device::visit_session_ids`].
fn visit_session_ids(
    w: &mut World,
    per_user: usize,
    mut f: impl FnMut(usize, Place, &mut SessionId),
) {
    for (u, us) in w.users.iter_mut().enumerate() {
        for s in &mut us.sessions {
            f(u, Place::Table(u), &mut s.id);
        }
        for (d, dev) in w
            .devices
            .iter_mut()
            .enumerate()
            .skip(u * per_user)
            .take(per_user)
        {
            dev.visit_session_ids(|s| f(u, Place::Device(d), s));
        }
    }
}

/// The Time-To-Live expiries enabled for `user`'s table `us`: one per active session that
/// nothing keeps alive. `device(d)` is device `d` of the world.
pub fn expiry_actions<'a>(
    cfg: &Config,
    user: u8,
    us: &UserServer,
    device: impl Fn(usize) -> &'a Device,
    out: &mut Vec<Action>,
) {
    if !cfg.server.ttl_expiry {
        return;
    }
    for (k, s) in us.sessions.iter().enumerate() {
        if s.active && !device(s.device.0 as usize).keeps_alive(cfg, s.id) {
            out.push(Action::Expire {
                user,
                index: k as u8,
            });
        }
    }
}

impl Device {
    /// The actions of device `d` (this device) enabled in a world with these crash and
    /// connection-loss budgets left, in a fixed order.
    pub fn actions(
        &self,
        cfg: &Config,
        d: u8,
        crashes_left: u8,
        losses_left: u8,
        out: &mut Vec<Action>,
    ) {
        let env = &cfg.env;
        let phase = self.client.phase;
        if phase == Phase::Down {
            out.push(Action::Start(d));
        }
        if !self.to_server.is_empty() {
            out.push(Action::ServerReceives(d));
        }
        if self.to_client.is_some() {
            out.push(Action::ClientReceives(d));
        }
        if !self.pushes.is_empty() {
            out.push(Action::ClientReceivesPush(d));
        }
        match phase {
            Phase::Backoff(_) => out.push(Action::RetryTimer(d)),
            Phase::Established { .. } => {
                if env.keep_alives {
                    out.push(Action::KeepAliveTimer(d));
                }
                for g in 0..env.groups {
                    let joined = self.client.ctx.is_some_and(|c| c.groups & (1 << g) != 0);
                    out.push(Action::User(
                        d,
                        if joined {
                            UserAction::Leave(g)
                        } else {
                            UserAction::Join(g)
                        },
                    ));
                }
                for p in 1..=env.presence_values {
                    if self.client.ctx.is_none_or(|c| c.presence != p) {
                        out.push(Action::User(d, UserAction::Presence(p)));
                    }
                }
                if env.user_logouts {
                    out.push(Action::User(d, UserAction::Logout));
                }
            }
            Phase::Idle => out.push(Action::User(d, UserAction::Login)),
            Phase::Down
            | Phase::LoggingIn { .. }
            | Phase::Negotiating { .. }
            | Phase::Busy { .. }
            | Phase::LoggingOut { .. } => {}
        }
        let in_login = matches!(phase, Phase::LoggingIn { .. });
        if crashes_left > 0 && phase != Phase::Down && (env.crash_during_login || !in_login) {
            out.push(Action::Crash(d));
        }
        if losses_left > 0
            && (phase.awaiting_answer() || phase.session().is_some())
            && (env.loss_during_login || !in_login)
        {
            out.push(Action::LoseConnection(d));
        }
    }

    /// Whether the device keeps `session` alive, so that its Time-To-Live cannot run out: it
    /// uses the session (a live request or answer refers to it, or it holds the session
    /// and sends keep-alives, `env.keep_alives`). A device that crashed or moved on does
    /// not. Time is abstract in the checker, so this is what stands for "the keep-alive
    /// stopped" (CR 6.6.1).
    pub fn keeps_alive(&self, cfg: &Config, session: SessionId) -> bool {
        let refers = |e: &Envelope| {
            e.session == Some(session)
                || matches!(e.body, crate::msg::Primitive::LoginResponse(r) if r.session_id == Some(session))
        };
        if self.to_server.iter().any(|r| !r.orphan && refers(&r.env))
            || self.to_client.as_ref().is_some_and(refers)
        {
            return true;
        }
        match self.client.phase {
            Phase::Established { session: s } if s == session => cfg.env.keep_alives,
            phase => phase.session() == Some(session),
        }
    }

    /// A Disconnect pushed by the server arrives (a device that is down has no connection
    /// to take it; one the device can never act on is taken at once, see [`Device::inert`]).
    /// Returns false, and queues nothing, when [`MAX_PUSHES`] are waiting already: the
    /// world's bound is exceeded.
    #[must_use]
    pub fn push(&mut self, cfg: &Config, env: Envelope) -> bool {
        if self.client.phase == Phase::Down || self.inert(cfg, &env) {
            return true;
        }
        self.pushes.try_push(env).is_ok()
    }

    /// Whether taking this pushed Disconnect can change nothing, now or later, so that the
    /// device may take it at once (`env.settle_inert_disconnects`): it names a session the
    /// device refers to nowhere (not stored, not held or recovered, in no message in
    /// flight), and the client does not answer Disconnects. The server never hands out a
    /// Session-ID twice and only names a session to the device in answers to requests that
    /// name it, so the device can never learn that session again; the client ignores a
    /// Disconnect of a session it does not know, and no property reads one.
    pub fn inert(&self, cfg: &Config, env: &Envelope) -> bool {
        cfg.env.settle_inert_disconnects
            && !cfg.client.answers_disconnect
            && matches!(env.body, crate::msg::Primitive::Disconnect { .. })
            && env.session.is_some_and(|s| !self.refers_to(s))
    }

    /// Take at once the pushed Disconnects that have become inert ([`Device::inert`]).
    pub fn settle_pushes(&mut self, cfg: &Config) {
        if self.pushes.is_empty() || !cfg.env.settle_inert_disconnects {
            return;
        }
        let keep: ArrayVec<Envelope, MAX_PUSHES> = self
            .pushes
            .iter()
            .filter(|p| !self.inert(cfg, p))
            .copied()
            .collect();
        self.pushes = keep;
    }

    /// Whether the device refers to `session` anywhere but in its pushed Disconnects: its
    /// crash-safe storage, its phase, its requests in flight, the answer in flight.
    pub fn refers_to(&self, session: SessionId) -> bool {
        let names = |e: &Envelope| {
            e.session == Some(session)
                || match e.body {
                    crate::msg::Primitive::LoginRequest(lr) => lr.session_id == Some(session),
                    crate::msg::Primitive::LoginResponse(r) => r.session_id == Some(session),
                    _ => false,
                }
        };
        let c = &self.client;
        let in_phase = match c.phase {
            Phase::Backoff(a) | Phase::LoggingIn { attempt: a, .. } => a.recover == Some(session),
            Phase::Negotiating { session: s, .. } => s == Some(session),
            Phase::Established { session: s }
            | Phase::Busy { session: s, .. }
            | Phase::LoggingOut { session: s, .. } => s == session,
            Phase::Down | Phase::Idle => false,
        };
        in_phase
            || c.stored.is_some_and(|st| st.session == session)
            || self.to_server.iter().any(|r| names(&r.env))
            || self.to_client.as_ref().is_some_and(names)
    }

    /// The server takes the device's oldest request and handles it for user table `us`;
    /// the answer goes back on the request's connection, unless that is gone. Returns the
    /// request and the server's outputs (its pushes to other devices are not delivered).
    pub fn serve(
        &mut self,
        cfg: &Config,
        us: &mut UserServer,
        shared: &mut ServerShared,
    ) -> (InFlight, ServerOut) {
        let req = self.to_server.remove(0);
        let mut sout = ServerOut::default();
        let origin = Origin {
            user: self.client.user,
            device: self.client.device,
        };
        us.handle(cfg, shared, origin, NOW_MS, &req.env, &mut sout);
        if let Some(reply) = sout.reply {
            if !req.orphan {
                self.to_client = Some(reply);
            }
        }
        self.settle_pushes(cfg);
        (req, sout)
    }

    /// Visit every Session-ID the device holds, in a fixed order: stored record, phase,
    /// requests in flight, answer in flight, pushes. Canonicalization numbers IDs in this
    /// order.
    pub fn visit_session_ids(&mut self, mut f: impl FnMut(&mut SessionId)) {
        fn env_ids(e: &mut Envelope, f: &mut impl FnMut(&mut SessionId)) {
            if let Some(s) = e.session.as_mut() {
                f(s);
            }
            match &mut e.body {
                crate::msg::Primitive::LoginRequest(lr) => {
                    if let Some(s) = lr.session_id.as_mut() {
                        f(s);
                    }
                }
                crate::msg::Primitive::LoginResponse(r) => {
                    if let Some(s) = r.session_id.as_mut() {
                        f(s);
                    }
                }
                _ => {}
            }
        }
        let c = &mut self.client;
        if let Some(st) = c.stored.as_mut() {
            f(&mut st.session);
        }
        match &mut c.phase {
            Phase::Backoff(a) | Phase::LoggingIn { attempt: a, .. } => {
                if let Some(s) = a.recover.as_mut() {
                    f(s);
                }
            }
            Phase::Negotiating { session, .. } => {
                if let Some(s) = session.as_mut() {
                    f(s);
                }
            }
            Phase::Established { session }
            | Phase::Busy { session, .. }
            | Phase::LoggingOut { session, .. } => f(session),
            Phase::Down | Phase::Idle => {}
        }
        for r in &mut self.to_server {
            env_ids(&mut r.env, &mut f);
        }
        if let Some(e) = self.to_client.as_mut() {
            env_ids(e, &mut f);
        }
        for e in &mut self.pushes {
            env_ids(e, &mut f);
        }
    }

    /// Zero the Transaction-IDs (the client's counter and those of the messages in flight);
    /// returns whether any was not zero.
    pub fn zero_tids(&mut self) -> bool {
        let mut changed = self.client.last_tid != 0;
        self.client.last_tid = 0;
        let mut zero = |e: &mut Envelope| {
            if e.tid.is_some_and(|t| t.0 != 0) {
                e.tid = Some(crate::msg::Tid(0));
                changed = true;
            }
        };
        self.to_server.iter_mut().for_each(|r| zero(&mut r.env));
        self.to_client.iter_mut().for_each(&mut zero);
        self.pushes.iter_mut().for_each(zero);
        changed
    }
}

/// Which components of a world a step or a canonicalization changed (bit masks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Bit d: device d.
    pub devices: u8,
    /// Bit u: user u's session table.
    pub users: u8,
}

impl Touched {
    /// Both sets together.
    pub const fn union(self, other: Touched) -> Touched {
        Touched {
            devices: self.devices | other.devices,
            users: self.users | other.users,
        }
    }
}

impl World {
    /// Put the world in canonical form, so that states that differ only in names the protocol
    /// never interprets are one state: Session-IDs are renumbered per user in order of first
    /// appearance (the protocol only compares them for equality, and a user's devices only
    /// ever see that user's sessions), Transaction-IDs are zeroed (the HTTP binding matches an
    /// answer to its request by connection), and the server's Session-ID counter is set past
    /// every ID in use.
    ///
    /// Returns the components it changed.
    pub fn canonicalize(&mut self) -> Touched {
        self.canonicalize_touched(Touched {
            devices: u8::MAX,
            users: u8::MAX,
        })
    }

    /// [`World::canonicalize`] for a world that was canonical before a step that changed only
    /// the `touched` components: the other devices' Transaction-IDs are zero already.
    pub fn canonicalize_touched(&mut self, touched_by_step: Touched) -> Touched {
        let per_user = if self.users.is_empty() {
            0
        } else {
            self.devices.len() / self.users.len()
        };
        // First pass: a user's IDs are canonical exactly when each ID seen for the first time
        // is the count of distinct IDs before it (then every smaller ID was seen already).
        let mut next = [0u32; 8];
        let mut odd = 0u8;
        visit_session_ids(self, per_user, |u, _, s| {
            if s.0 == next[u] {
                next[u] += 1;
            } else if s.0 > next[u] {
                odd |= 1 << u;
            }
        });
        let mut touched = Touched::default();
        if odd != 0 {
            let mut map: Vec<(usize, u32, u32)> = Vec::new();
            // Renumber the users found out of order; the others' counts stand (the server's
            // Session-ID counter must pass every user's IDs).
            for (u, n) in next.iter_mut().enumerate() {
                if odd & (1 << u) != 0 {
                    *n = 0;
                }
            }
            visit_session_ids(self, per_user, |u, at, s| {
                if odd & (1 << u) == 0 {
                    return;
                }
                let to = match map.iter().find(|(mu, from, _)| *mu == u && *from == s.0) {
                    Some(&(_, _, to)) => to,
                    None => {
                        let to = next[u];
                        next[u] += 1;
                        map.push((u, s.0, to));
                        to
                    }
                };
                if s.0 != to {
                    s.0 = to;
                    match at {
                        Place::Table(u) => touched.users |= 1 << u,
                        Place::Device(d) => touched.devices |= 1 << d,
                    }
                }
            });
        }
        self.shared.next_session_id = next.iter().copied().max().unwrap_or(0);
        for (d, dev) in self.devices.iter_mut().enumerate() {
            if touched_by_step.devices & (1 << d) == 0 {
                continue;
            }
            if dev.zero_tids() {
                touched.devices |= 1 << d;
            }
        }
        touched
    }
}
