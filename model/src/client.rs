//! The client's state machine, one instance per device.
//!
//! Sans-IO: each input (start, a message, a timer, a user action, a crash, a lost connection)
//! is a method that fills a [`ClientOut`] with what to send, which timer to arm and which
//! storage write was made. The crash-safe part of the device is [`Client::stored`] (the
//! Session-ID record of CR 7.1.1); [`Client::crash`] keeps it and loses everything else.

use crate::codes::ResultCode;
use crate::config::{
    CapabilityNegotiation, ClientIdScope, CombinedNegotiation, Config, LoginKind, On436, On608,
    OnRecoveryFailure,
};
use crate::msg::{
    ClientId, ClientIdPool, Context, DeviceId, Envelope, LoginRequest, LoginResponse, Primitive,
    SessionId, Tid, UserId,
};
use crate::server::{digest, nonce_for};
use serde::{Deserialize, Serialize};

/// The record the client keeps in crash-safe storage: the Session-ID, and the Client-ID slot
/// the session was established with (a recovery must present the same Client-ID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stored {
    /// The stored Session-ID.
    pub session: SessionId,
    /// The Client-ID slot of that session.
    pub slot: u8,
}

/// A login attempt: what the next Login-Request will carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Attempt {
    /// Re-establish this stored session (the Login-Request carries its Session-ID).
    pub recover: Option<SessionId>,
    /// Carry the user's replies to the server's System Messages (after 436).
    pub system_reply: bool,
}

impl Attempt {
    /// A normal login.
    pub const FRESH: Attempt = Attempt {
        recover: None,
        system_reply: false,
    };
}

/// Where a login transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LoginStep {
    /// 2-way: the one Login-Request with the password is in flight.
    Password,
    /// 4-way: the first Login-Request (DigestSchema) is in flight.
    Challenge,
    /// 4-way: the second Login-Request (DigestBytes) is in flight.
    Digest,
}

/// Which negotiation request is in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Negotiation {
    /// `Service-Request`.
    Service,
    /// `ClientCapability-Request`.
    Capability,
}

/// An in-session request in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Pending {
    /// `KeepAlive-Request`.
    KeepAlive,
    /// `JoinGroup-Request`.
    Join(u8),
    /// `LeaveGroup-Request`.
    Leave(u8),
    /// `UpdatePresence-Request`.
    Presence(u8),
}

/// The client's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    /// Crashed and not yet restarted.
    Down,
    /// No session, and the user wants none.
    Idle,
    /// Waiting for the retry timer, then this attempt.
    Backoff(Attempt),
    /// A Login-Request in flight.
    LoggingIn {
        /// The attempt.
        attempt: Attempt,
        /// The step.
        step: LoginStep,
    },
    /// Logged in, negotiating (service, then capabilities when the server asked).
    Negotiating {
        /// The session; `None` when a client carries on after 436 without one.
        session: Option<SessionId>,
        /// The request in flight.
        step: Negotiation,
        /// The server asked for capability negotiation (`CapabilityRequest` T).
        capability_requested: bool,
    },
    /// In a session, nothing in flight.
    Established {
        /// The session.
        session: SessionId,
    },
    /// In a session, a request in flight.
    Busy {
        /// The session.
        session: SessionId,
        /// The request.
        pending: Pending,
    },
    /// A Logout-Request in flight.
    LoggingOut {
        /// The session.
        session: SessionId,
        /// Log in again afterwards (the logout that follows a recovery without context).
        relogin: bool,
    },
}

impl Phase {
    /// The session the client believes it holds.
    pub const fn session(&self) -> Option<SessionId> {
        match *self {
            Phase::Established { session }
            | Phase::Busy { session, .. }
            | Phase::LoggingOut { session, .. } => Some(session),
            Phase::Negotiating { session, .. } => session,
            Phase::Down | Phase::Idle | Phase::Backoff(_) | Phase::LoggingIn { .. } => None,
        }
    }

    /// The device wants a session and does not hold a usable one.
    pub const fn is_seeking(&self) -> bool {
        matches!(
            self,
            Phase::Down | Phase::Backoff(_) | Phase::LoggingIn { .. }
        ) || matches!(self, Phase::LoggingOut { relogin: true, .. })
            || matches!(self, Phase::Negotiating { session: None, .. })
    }

    /// A request of the client is in flight.
    pub const fn awaiting_answer(&self) -> bool {
        matches!(
            self,
            Phase::LoggingIn { .. }
                | Phase::Negotiating { .. }
                | Phase::Busy { .. }
                | Phase::LoggingOut { .. }
        )
    }
}

/// A timer the client asks its driver to arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientTimer {
    /// Retry the login after a back-off of the driver's choosing.
    Retry,
    /// Send a keep-alive after this many seconds of idleness.
    KeepAlive {
        /// Seconds.
        after_s: u32,
    },
}

/// A write to crash-safe storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StoreOp {
    /// The record was written.
    Store(Stored),
    /// The record was removed.
    Remove,
}

/// Something that happened in a client step, for drivers' metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientNote {
    /// A session is usable (after login and negotiation, or after a recovery that kept the context).
    Established {
        /// By recovery.
        recovered: bool,
    },
    /// A login attempt was refused with this code.
    LoginRefused(ResultCode),
    /// The session is gone (Disconnect, or 600/601/604 on a request).
    SessionLost(ResultCode),
}

/// What one client step produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientOut {
    /// The message to send.
    pub send: Option<Envelope>,
    /// The timer to arm.
    pub timer: Option<ClientTimer>,
    /// The storage write made.
    pub store: Option<StoreOp>,
    /// What happened.
    pub note: Option<ClientNote>,
}

/// A user action on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UserAction {
    /// Log in (from idle).
    Login,
    /// Log out.
    Logout,
    /// Join a group.
    Join(u8),
    /// Leave a group.
    Leave(u8),
    /// Publish a presence value.
    Presence(u8),
}

/// One device's client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Client {
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// Crash-safe storage: the stored Session-ID record.
    pub stored: Option<Stored>,
    /// Volatile: the phase.
    pub phase: Phase,
    /// Volatile: the Client-ID slot in use (a restarted client starts again at slot 0, its
    /// configured Client-ID), in the device's pool or the user's (`client.client_id_scope`).
    pub slot: u8,
    /// Volatile: the session context the client remembers (`None`: none, or lost).
    pub ctx: Option<Context>,
    /// Volatile: the last Transaction-ID used (1..=999, wraps).
    pub last_tid: u16,
    /// Volatile: the granted KeepAliveTime, seconds.
    pub keep_alive_s: u32,
}

impl Client {
    /// A device that has not started yet (as after a crash, with empty storage).
    pub const fn new(user: UserId, device: DeviceId) -> Client {
        Client {
            user,
            device,
            stored: None,
            phase: Phase::Down,
            slot: 0,
            ctx: None,
            last_tid: 0,
            keep_alive_s: 0,
        }
    }

    /// The Client-ID in use: the slot in use of the device's pool, or of the user's pool
    /// shared by all the user's devices (`client.client_id_scope`).
    pub const fn client_id(&self, cfg: &Config) -> ClientId {
        let pool = match cfg.client.client_id_scope {
            ClientIdScope::Device => ClientIdPool::Device(self.device),
            ClientIdScope::User => ClientIdPool::User(self.user),
        };
        ClientId {
            pool,
            slot: self.slot,
        }
    }

    fn next_tid(&mut self) -> Tid {
        self.last_tid = self.last_tid % 999 + 1;
        Tid(self.last_tid)
    }

    fn send(&mut self, session: Option<SessionId>, body: Primitive, out: &mut ClientOut) {
        let tid = self.next_tid();
        out.send = Some(Envelope::request(session, tid, body));
    }

    fn store(&mut self, op: StoreOp, out: &mut ClientOut) {
        self.stored = match op {
            StoreOp::Store(s) => Some(s),
            StoreOp::Remove => None,
        };
        out.store = Some(op);
    }

    /// Power on (first start, or restart after a crash) or, from idle, the user logs in.
    /// With a stored Session-ID and `client.recover_on_restart`, the client re-establishes
    /// that session first (CR 7.1.1); otherwise it logs in normally.
    pub fn start(&mut self, cfg: &Config, out: &mut ClientOut) {
        match self.phase {
            Phase::Down | Phase::Idle => {}
            Phase::Backoff(_)
            | Phase::LoggingIn { .. }
            | Phase::Negotiating { .. }
            | Phase::Established { .. }
            | Phase::Busy { .. }
            | Phase::LoggingOut { .. } => return,
        }
        let attempt = match self.stored {
            Some(s) if cfg.client.recover_on_restart => {
                self.slot = s.slot;
                Attempt {
                    recover: Some(s.session),
                    system_reply: false,
                }
            }
            Some(_) | None => Attempt::FRESH,
        };
        self.login(cfg, attempt, out);
    }

    /// The device crashed: everything but the stored record is lost.
    pub fn crash(&mut self) {
        *self = Client {
            stored: self.stored,
            ..Client::new(self.user, self.device)
        };
    }

    /// The connection broke without a crash: the answer in flight is lost, the client keeps
    /// its context and re-establishes its session when it has one stored.
    pub fn connection_lost(&mut self, out: &mut ClientOut) {
        match self.phase {
            Phase::LoggingIn { attempt, .. } => {
                self.phase = Phase::Backoff(attempt);
                out.timer = Some(ClientTimer::Retry);
            }
            Phase::Negotiating { .. }
            | Phase::Established { .. }
            | Phase::Busy { .. }
            | Phase::LoggingOut { .. } => {
                match self.stored {
                    Some(s) => {
                        self.slot = s.slot;
                        let a = Attempt {
                            recover: Some(s.session),
                            system_reply: false,
                        };
                        self.phase = Phase::Backoff(a);
                    }
                    None => {
                        self.ctx = None;
                        self.phase = Phase::Backoff(Attempt::FRESH);
                    }
                }
                out.timer = Some(ClientTimer::Retry);
            }
            Phase::Down | Phase::Idle | Phase::Backoff(_) => {}
        }
    }

    fn login(&mut self, cfg: &Config, attempt: Attempt, out: &mut ClientOut) {
        let step = match cfg.client.login {
            LoginKind::TwoWay => LoginStep::Password,
            LoginKind::FourWay => LoginStep::Challenge,
        };
        self.send_login(cfg, attempt, step, None, out);
    }

    fn send_login(
        &mut self,
        cfg: &Config,
        attempt: Attempt,
        step: LoginStep,
        nonce: Option<u32>,
        out: &mut ClientOut,
    ) {
        let completes = step != LoginStep::Challenge;
        let negotiation = match cfg.client.combined_negotiation {
            CombinedNegotiation::Never => false,
            CombinedNegotiation::FreshLogin => attempt.recover.is_none() && completes,
            CombinedNegotiation::Always => true,
        };
        let lr = LoginRequest {
            user: self.user,
            client_id: self.client_id(cfg),
            session_id: attempt.recover,
            password: step == LoginStep::Password,
            digest_schema: step == LoginStep::Challenge,
            digest_bytes: match step {
                LoginStep::Digest => Some(digest(
                    self.user,
                    nonce.unwrap_or_else(|| nonce_for(self.client_id(cfg))),
                )),
                LoginStep::Password | LoginStep::Challenge => None,
            },
            ttl_s: Some(cfg.client.ttl_s),
            negotiation,
            system_message_response: attempt
                .system_reply
                .then_some(cfg.client.system_message_replies_conform),
        };
        self.phase = Phase::LoggingIn { attempt, step };
        self.send(None, Primitive::LoginRequest(lr), out);
    }

    /// A timer fired.
    pub fn on_timer(&mut self, cfg: &Config, timer: ClientTimer, out: &mut ClientOut) {
        match (timer, self.phase) {
            (ClientTimer::Retry, Phase::Backoff(attempt)) => self.login(cfg, attempt, out),
            (ClientTimer::KeepAlive { .. }, Phase::Established { session }) => {
                self.phase = Phase::Busy {
                    session,
                    pending: Pending::KeepAlive,
                };
                let ttl_s = Some(cfg.client.ttl_s);
                self.send(Some(session), Primitive::KeepAliveRequest { ttl_s }, out);
            }
            // A stale timer: the phase moved on since it was armed.
            (ClientTimer::Retry | ClientTimer::KeepAlive { .. }, _) => {}
        }
    }

    /// A user action. Actions that do not fit the phase are ignored.
    pub fn user_action(&mut self, cfg: &Config, action: UserAction, out: &mut ClientOut) {
        match (action, self.phase) {
            (UserAction::Login, Phase::Idle) => self.start(cfg, out),
            (UserAction::Logout, Phase::Established { session }) => {
                self.phase = Phase::LoggingOut {
                    session,
                    relogin: false,
                };
                self.send(Some(session), Primitive::LogoutRequest, out);
            }
            (UserAction::Join(g), Phase::Established { session }) => {
                self.phase = Phase::Busy {
                    session,
                    pending: Pending::Join(g),
                };
                self.send(Some(session), Primitive::JoinGroupRequest { group: g }, out);
            }
            (UserAction::Leave(g), Phase::Established { session }) => {
                self.phase = Phase::Busy {
                    session,
                    pending: Pending::Leave(g),
                };
                self.send(
                    Some(session),
                    Primitive::LeaveGroupRequest { group: g },
                    out,
                );
            }
            (UserAction::Presence(p), Phase::Established { session }) => {
                self.phase = Phase::Busy {
                    session,
                    pending: Pending::Presence(p),
                };
                self.send(
                    Some(session),
                    Primitive::UpdatePresenceRequest { presence: p },
                    out,
                );
            }
            (
                UserAction::Login
                | UserAction::Logout
                | UserAction::Join(_)
                | UserAction::Leave(_)
                | UserAction::Presence(_),
                _,
            ) => {}
        }
    }

    fn established(&mut self, session: SessionId, recovered: bool, out: &mut ClientOut) {
        self.phase = Phase::Established { session };
        out.timer = Some(ClientTimer::KeepAlive {
            after_s: self.keep_alive_s,
        });
        out.note = Some(ClientNote::Established { recovered });
    }

    /// The session is gone (Disconnect, or 600/601/604): drop it and its context, remove the
    /// stored Session-ID (CR 7.1.1), and log in again after a back-off.
    fn session_lost(&mut self, cfg: &Config, code: ResultCode, out: &mut ClientOut) {
        if cfg.client.remove_stored_on_logout && self.stored.is_some() {
            self.store(StoreOp::Remove, out);
        }
        self.ctx = None;
        self.phase = Phase::Backoff(Attempt::FRESH);
        out.timer = Some(ClientTimer::Retry);
        out.note = Some(ClientNote::SessionLost(code));
    }

    fn logged_out(&mut self, cfg: &Config, relogin: bool, out: &mut ClientOut) {
        if cfg.client.remove_stored_on_logout && self.stored.is_some() {
            self.store(StoreOp::Remove, out);
        }
        self.ctx = None;
        if relogin {
            self.login(cfg, Attempt::FRESH, out);
        } else {
            self.phase = Phase::Idle;
        }
    }

    /// A message from the server.
    pub fn on_message(&mut self, cfg: &Config, env: &Envelope, out: &mut ClientOut) {
        if let Primitive::Disconnect { result } = env.body {
            if cfg.client.answers_disconnect {
                // What CR 6.6.1 forbids: answering the Disconnect.
                self.send(
                    env.session,
                    Primitive::Status {
                        result: ResultCode::Success,
                    },
                    out,
                );
            }
            match self.phase {
                Phase::LoggingOut { session, relogin }
                    if env.session.is_none_or(|s| s == session) =>
                {
                    self.logged_out(cfg, relogin, out)
                }
                phase => {
                    if phase.session().is_some()
                        && env.session.is_none_or(|s| Some(s) == phase.session())
                    {
                        self.session_lost(cfg, result, out);
                    } else if env.session.is_some()
                        && self.stored.map(|st| st.session) == env.session
                        && cfg.client.remove_stored_on_logout
                    {
                        // The stored session was disconnected while the client did not hold
                        // it (logging in, backing off): CR 7.1.1 still wants it removed.
                        self.store(StoreOp::Remove, out);
                    }
                }
            }
            return;
        }
        let code = env.body.result().unwrap_or(ResultCode::Success);
        let lost = matches!(
            code,
            ResultCode::SessionExpired | ResultCode::ForcedLogout | ResultCode::NotLoggedIn
        );
        match (self.phase, env.body) {
            (Phase::LoggingIn { attempt, step }, Primitive::LoginResponse(r)) => {
                self.on_login_response(cfg, attempt, step, &r, out)
            }
            (Phase::LoggingOut { relogin, .. }, Primitive::Status { .. }) => {
                self.logged_out(cfg, relogin, out)
            }
            (Phase::Negotiating { session: None, .. }, _) => {
                // Carried on after 436 without a session: the server refuses; start over.
                self.phase = Phase::Backoff(Attempt::FRESH);
                out.timer = Some(ClientTimer::Retry);
                out.note = Some(ClientNote::LoginRefused(code));
            }
            (Phase::Negotiating { .. } | Phase::Busy { .. }, _) if lost => {
                self.session_lost(cfg, code, out)
            }
            (
                Phase::Negotiating {
                    session: Some(session),
                    step,
                    capability_requested,
                },
                _,
            ) => {
                let ask_caps = capability_requested
                    && step == Negotiation::Service
                    && cfg.client.capability_negotiation == CapabilityNegotiation::WhenRequested;
                if ask_caps {
                    self.phase = Phase::Negotiating {
                        session: Some(session),
                        step: Negotiation::Capability,
                        capability_requested,
                    };
                    self.send(Some(session), Primitive::ClientCapabilityRequest, out);
                } else {
                    self.established(session, false, out);
                }
            }
            (Phase::Busy { session, pending }, _) => {
                if code.is_success() {
                    let ctx = self.ctx.get_or_insert_with(Context::default);
                    match pending {
                        Pending::Join(g) => ctx.groups |= 1 << g,
                        Pending::Leave(g) => ctx.groups &= !(1 << g),
                        Pending::Presence(p) => ctx.presence = p,
                        Pending::KeepAlive => {
                            if let Primitive::KeepAliveResponse {
                                keep_alive_s: Some(ka),
                                ..
                            } = env.body
                            {
                                self.keep_alive_s = ka;
                            }
                        }
                    }
                }
                self.phase = Phase::Established { session };
                out.timer = Some(ClientTimer::KeepAlive {
                    after_s: self.keep_alive_s,
                });
            }
            // Anything else is stale or unsolicited: ignore it.
            (
                Phase::Down
                | Phase::Idle
                | Phase::Backoff(_)
                | Phase::LoggingIn { .. }
                | Phase::Established { .. }
                | Phase::LoggingOut { .. },
                _,
            ) => {}
        }
    }

    fn on_login_response(
        &mut self,
        cfg: &Config,
        attempt: Attempt,
        step: LoginStep,
        r: &LoginResponse,
        out: &mut ClientOut,
    ) {
        let code = r.result;
        if step == LoginStep::Challenge && code == ResultCode::Unauthorized && r.nonce.is_some() {
            self.send_login(cfg, attempt, LoginStep::Digest, r.nonce, out);
            return;
        }
        if code.is_success() {
            let Some(session) = r.session_id else {
                self.retry(attempt, code, out);
                return;
            };
            self.keep_alive_s = r.keep_alive_s.unwrap_or(self.keep_alive_s);
            if attempt.recover.is_some() {
                match self.ctx {
                    Some(_) => self.established(session, true, out),
                    None if cfg.client.logout_after_recovery => {
                        // CR 7.1.1: recovered without the context: log out, then in again.
                        self.phase = Phase::LoggingOut {
                            session,
                            relogin: true,
                        };
                        self.send(Some(session), Primitive::LogoutRequest, out);
                    }
                    None => {
                        self.ctx = Some(Context::default());
                        self.established(session, true, out);
                    }
                }
                return;
            }
            self.ctx = Some(Context::default());
            if cfg.client.stores_session_id {
                let rec = Stored {
                    session,
                    slot: self.slot,
                };
                self.store(StoreOp::Store(rec), out);
            }
            let capability_requested = r.capability_request == Some(true);
            let negotiate_caps = capability_requested
                && cfg.client.capability_negotiation == CapabilityNegotiation::WhenRequested;
            if r.negotiated && !negotiate_caps {
                self.established(session, false, out);
            } else {
                let step = if r.negotiated {
                    Negotiation::Capability
                } else {
                    Negotiation::Service
                };
                let body = match step {
                    Negotiation::Service => Primitive::ServiceRequest,
                    Negotiation::Capability => Primitive::ClientCapabilityRequest,
                };
                self.phase = Phase::Negotiating {
                    session: Some(session),
                    step,
                    capability_requested,
                };
                self.send(Some(session), body, out);
            }
            return;
        }
        out.note = Some(ClientNote::LoginRefused(code));
        if code == ResultCode::SystemMessageResponseRequired {
            match cfg.client.on_436 {
                On436::ResendWithResponse => {
                    let a = Attempt {
                        system_reply: true,
                        ..attempt
                    };
                    let first = match cfg.client.login {
                        LoginKind::TwoWay => LoginStep::Password,
                        LoginKind::FourWay => step,
                    };
                    self.send_login(cfg, a, first, Some(nonce_for(self.client_id(cfg))), out);
                }
                On436::Continue => {
                    self.phase = Phase::Negotiating {
                        session: None,
                        step: Negotiation::Service,
                        capability_requested: false,
                    };
                    self.send(None, Primitive::ServiceRequest, out);
                }
            }
            return;
        }
        if attempt.recover.is_some() {
            let fresh = match cfg.client.on_recovery_failure {
                OnRecoveryFailure::FreshLogin => true,
                OnRecoveryFailure::RetryStaleUnless502 => {
                    code == ResultCode::CouldNotRecoverSession
                }
                OnRecoveryFailure::RetryStale => false,
            };
            if fresh {
                // CR 7.1.1: log in normally, without the Session-ID; the stored one is useless.
                if self.stored.is_some() {
                    self.store(StoreOp::Remove, out);
                }
                self.slot = 0;
                self.ctx = None;
                self.login(cfg, Attempt::FRESH, out);
                out.note = Some(ClientNote::LoginRefused(code));
            } else {
                self.retry(attempt, code, out);
            }
            return;
        }
        if code == ResultCode::ClientIdNotUnique && cfg.client.on_608 == On608::NewClientId {
            self.slot = (self.slot + 1) % cfg.client.client_id_pool;
        }
        self.retry(Attempt::FRESH, code, out);
    }

    fn retry(&mut self, attempt: Attempt, code: ResultCode, out: &mut ClientOut) {
        self.phase = Phase::Backoff(Attempt {
            system_reply: false,
            ..attempt
        });
        out.timer = Some(ClientTimer::Retry);
        out.note = Some(ClientNote::LoginRefused(code));
    }
}
