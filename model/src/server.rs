//! The server's state machine, one instance per user.
//!
//! Everything the CR asks of the server concerns one user at a time (Client-ID uniqueness in
//! the scope of the user, the user's session limit, the user's merged presence), so the server
//! is sharded by user: a [`UserServer`] holds that user's sessions, and [`ServerShared`] the
//! few values that span users (the Session-ID counter and the SAP-wide session count).
//! Sans-IO: [`UserServer::handle`] takes a request, the device whose connection it came on and
//! the current time, and returns the answer (for that connection), the Disconnects to push
//! (each to the device of the session it ends) and the events of the step, as data.

use crate::codes::ResultCode;
use crate::config::{
    CapabilityRequest, Config, ContextScope, DuplicateClientId, LogoutReply, PresenceMerge,
    Recovery, SystemMessage,
};
use crate::msg::{
    ClientId, ClientIdPool, Context, DeviceId, Envelope, LoginRequest, LoginResponse, Mode,
    Primitive, SessionId, Tid, UserId,
};
use arrayvec::ArrayVec;
use serde::{Deserialize, Serialize};

/// One session as the server holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Session {
    /// The Session-ID.
    pub id: SessionId,
    /// The Client-ID it was established with.
    pub client_id: ClientId,
    /// The device whose connection established (or last recovered) the session: where the
    /// server pushes its Disconnect, and whose keep-alives keep it alive. The server knows
    /// this from the connection (HTTP binding, CIR channel), never from the Client-ID, which
    /// with `client.client_id_scope = user` names no device.
    pub device: DeviceId,
    /// Its context (joined groups, presence).
    pub ctx: Context,
    /// Active; `false`: ended, context kept for a later recovery.
    pub active: bool,
    /// When the server last heard from the session, ms of virtual time.
    pub last_active_ms: u64,
    /// The granted `KeepAliveTime`, seconds.
    pub keep_alive_s: u32,
}

/// Where a request comes from, as the server knows it from the connection it came on: the
/// user whose table handles it (the server is sharded by user) and the device at the other
/// end of the connection. Nothing here is read from the request's Client-ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
}

/// Values the server keeps across users.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerShared {
    /// The next Session-ID to hand out (never reused).
    pub next_session_id: u32,
    /// Active sessions in the whole server (for `max_sessions_total`, 609).
    pub active_total: u32,
}

/// Why the server ended a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EndCause {
    /// The client logged out.
    Logout,
    /// Its Time-To-Live ran out.
    Expired,
    /// Another login took its place (`replace-old`).
    Replaced,
}

/// Something that happened in a server step, for monitors, witnesses and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServerEvent {
    /// A session became active: a fresh login, or a recovery.
    Admitted {
        /// The session.
        session: SessionId,
        /// Its Client-ID.
        client_id: ClientId,
        /// It was a recovery of an existing session.
        recovered: bool,
    },
    /// A session ended.
    Ended {
        /// The session.
        session: SessionId,
        /// Its Client-ID.
        client_id: ClientId,
        /// Why.
        cause: EndCause,
    },
}

/// What one server step produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerOut {
    /// The answer to the request, on the same connection.
    pub reply: Option<Envelope>,
    /// Disconnects pushed to devices.
    pub pushes: ArrayVec<(DeviceId, Envelope), 2>,
    /// Events of the step.
    pub events: ArrayVec<ServerEvent, 3>,
}

impl ServerOut {
    /// Empty the outputs for reuse.
    pub fn clear(&mut self) {
        self.reply = None;
        self.pushes.clear();
        self.events.clear();
    }
}

/// The server's state for one user.
#[derive(Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserServer {
    /// The user's sessions, active and kept, in the order they were made.
    pub sessions: Vec<Session>,
    /// The groups the user is a member of (bit set).
    pub roster: u8,
    /// With `presence_merge = last-writer`: the Client-ID that updated presence last.
    pub presence_writer: Option<ClientId>,
}

impl Clone for UserServer {
    fn clone(&self) -> Self {
        UserServer {
            sessions: self.sessions.clone(),
            roster: self.roster,
            presence_writer: self.presence_writer,
        }
    }

    /// Reuses the session table's allocation.
    fn clone_from(&mut self, src: &Self) {
        self.sessions.clone_from(&src.sessions);
        self.roster = src.roster;
        self.presence_writer = src.presence_writer;
    }
}

/// The nonce the server issues to a Client-ID. Stateless: a keyed mix of the Client-ID, so a
/// 4-way login needs no pending state at the server.
pub const fn nonce_for(client_id: ClientId) -> u32 {
    let (owner, key) = match client_id.pool {
        ClientIdPool::Device(d) => (d.0, 0x5EED_1234),
        ClientIdPool::User(u) => (u.0, 0x05E2_1234),
    };
    let x = (owner << 8) | client_id.slot as u32;
    x.wrapping_mul(0x9E37_79B9) ^ key
}

/// The digest a client computes from its password and a nonce.
pub const fn digest(user: UserId, nonce: u32) -> u32 {
    (nonce ^ user.0.wrapping_mul(0x85EB_CA6B)).rotate_left(13)
}

/// The `KeepAliveTime` granted for a requested `TimeToLive`.
pub fn granted_keep_alive_s(cfg: &Config, ttl_s: Option<u32>) -> u32 {
    ttl_s
        .unwrap_or(cfg.server.max_keep_alive_s)
        .clamp(1, cfg.server.max_keep_alive_s)
}

fn disconnect(cfg: &Config, session: SessionId, result: ResultCode) -> Envelope {
    Envelope {
        session: Some(session),
        mode: Mode::Request,
        tid: cfg.server.disconnect_has_tid.then_some(Tid(0)),
        body: Primitive::Disconnect { result },
    }
}

impl UserServer {
    /// Active sessions of the user.
    pub fn active(&self) -> impl Iterator<Item = &Session> {
        self.sessions.iter().filter(|s| s.active)
    }

    /// Number of active sessions.
    pub fn active_count(&self) -> usize {
        self.active().count()
    }

    /// The active session with this Session-ID.
    pub fn active_session(&self, id: SessionId) -> Option<&Session> {
        self.active().find(|s| s.id == id)
    }

    /// The groups the active sessions have joined, together.
    pub fn joined_groups(&self) -> u8 {
        self.active().fold(0, |acc, s| acc | s.ctx.groups)
    }

    /// The user's presence document: (Client-ID, presence value) entries, in session order.
    pub fn presence_document(&self, cfg: &Config) -> Vec<(ClientId, u8)> {
        let published = self.active().filter(|s| s.ctx.presence != 0);
        match cfg.server.presence_merge {
            PresenceMerge::Merged => published.map(|s| (s.client_id, s.ctx.presence)).collect(),
            PresenceMerge::LastWriter => published
                .filter(|s| Some(s.client_id) == self.presence_writer)
                .map(|s| (s.client_id, s.ctx.presence))
                .take(1)
                .collect(),
        }
    }

    /// Handle one request that came from `origin` at time `now_ms`. The answer goes back on
    /// the request's connection; a session the request establishes or recovers is bound to
    /// `origin.device`.
    pub fn handle(
        &mut self,
        cfg: &Config,
        shared: &mut ServerShared,
        origin: Origin,
        now_ms: u64,
        req: &Envelope,
        out: &mut ServerOut,
    ) {
        let answer = |body| Some(Envelope::response_to(req, body));
        match req.body {
            Primitive::LoginRequest(mut lr) => {
                // Android re-establishes with the old Session-ID in the SessionDescriptor
                // (Inband) instead of a SessionID child: both ask for a recovery.
                if lr.session_id.is_none() {
                    lr.session_id = req.session;
                }
                let resp = self.login(cfg, shared, origin, now_ms, &lr, out);
                out.reply = answer(Primitive::LoginResponse(resp));
            }
            Primitive::LogoutRequest
            | Primitive::KeepAliveRequest { .. }
            | Primitive::ServiceRequest
            | Primitive::ClientCapabilityRequest
            | Primitive::JoinGroupRequest { .. }
            | Primitive::LeaveGroupRequest { .. }
            | Primitive::UpdatePresenceRequest { .. }
            | Primitive::PollingRequest => {
                let Some(idx) = req
                    .session
                    .and_then(|id| self.sessions.iter().position(|s| s.active && s.id == id))
                else {
                    out.reply = answer(Primitive::Status {
                        result: ResultCode::NotLoggedIn,
                    });
                    return;
                };
                self.sessions[idx].last_active_ms = now_ms;
                out.reply = self.in_session(cfg, shared, idx, req, out);
            }
            // Answers and notifications that a client sends (e.g. a Status answering a
            // Disconnect, which the CR forbids) need no answer from the server.
            Primitive::LoginResponse(_)
            | Primitive::KeepAliveResponse { .. }
            | Primitive::ServiceResponse { .. }
            | Primitive::ClientCapabilityResponse { .. }
            | Primitive::JoinGroupResponse { .. }
            | Primitive::LeaveGroupResponse { .. }
            | Primitive::Status { .. }
            | Primitive::Disconnect { .. } => {}
        }
    }

    fn in_session(
        &mut self,
        cfg: &Config,
        shared: &mut ServerShared,
        idx: usize,
        req: &Envelope,
        out: &mut ServerOut,
    ) -> Option<Envelope> {
        let ok = ResultCode::Success;
        let body = match req.body {
            Primitive::LogoutRequest => {
                let s = self.sessions.remove(idx);
                shared.active_total = shared.active_total.saturating_sub(1);
                if cfg.server.logout_leaves_groups {
                    self.roster = self.joined_groups();
                }
                out.events.push(ServerEvent::Ended {
                    session: s.id,
                    client_id: s.client_id,
                    cause: EndCause::Logout,
                });
                match cfg.server.logout_reply {
                    LogoutReply::Status => Primitive::Status { result: ok },
                    LogoutReply::Disconnect => {
                        let mut d = disconnect(cfg, s.id, ok);
                        d.mode = Mode::Response;
                        return Some(d);
                    }
                }
            }
            Primitive::KeepAliveRequest { ttl_s } => {
                let granted =
                    granted_keep_alive_s(cfg, ttl_s.or(Some(self.sessions[idx].keep_alive_s)));
                self.sessions[idx].keep_alive_s = granted;
                Primitive::KeepAliveResponse {
                    result: ok,
                    keep_alive_s: Some(granted),
                }
            }
            Primitive::ServiceRequest => Primitive::ServiceResponse { result: ok },
            Primitive::ClientCapabilityRequest => {
                Primitive::ClientCapabilityResponse { result: ok }
            }
            Primitive::JoinGroupRequest { group } => {
                self.update_ctx(cfg, idx, |c| c.groups |= 1 << group);
                self.roster |= 1 << group;
                Primitive::JoinGroupResponse { result: ok }
            }
            Primitive::LeaveGroupRequest { group } => {
                self.update_ctx(cfg, idx, |c| c.groups &= !(1 << group));
                self.roster = self.joined_groups();
                Primitive::LeaveGroupResponse { result: ok }
            }
            Primitive::UpdatePresenceRequest { presence } => {
                self.update_ctx(cfg, idx, |c| c.presence = presence);
                self.presence_writer = Some(self.sessions[idx].client_id);
                Primitive::Status { result: ok }
            }
            Primitive::PollingRequest => Primitive::Status { result: ok },
            Primitive::LoginRequest(_)
            | Primitive::LoginResponse(_)
            | Primitive::KeepAliveResponse { .. }
            | Primitive::ServiceResponse { .. }
            | Primitive::ClientCapabilityResponse { .. }
            | Primitive::JoinGroupResponse { .. }
            | Primitive::LeaveGroupResponse { .. }
            | Primitive::Status { .. }
            | Primitive::Disconnect { .. } => {
                unreachable!("invariant: in_session is only called for in-session requests")
            }
        };
        Some(Envelope::response_to(req, body))
    }

    fn update_ctx(&mut self, cfg: &Config, idx: usize, f: impl Fn(&mut Context)) {
        match cfg.server.context_scope {
            ContextScope::PerSession => f(&mut self.sessions[idx].ctx),
            ContextScope::PerUser => self
                .sessions
                .iter_mut()
                .filter(|s| s.active)
                .for_each(|s| f(&mut s.ctx)),
        }
    }

    fn login(
        &mut self,
        cfg: &Config,
        shared: &mut ServerShared,
        Origin { user, device }: Origin,
        now_ms: u64,
        lr: &LoginRequest,
        out: &mut ServerOut,
    ) -> LoginResponse {
        let cid = lr.client_id;
        let mut resp = LoginResponse {
            client_id: cid,
            result: ResultCode::Success,
            nonce: None,
            session_id: None,
            keep_alive_s: None,
            capability_request: None,
            negotiated: false,
            system_message: false,
        };
        let refuse = |mut r: LoginResponse, code| {
            r.result = code;
            r.keep_alive_s = None;
            r.capability_request = None;
            r.negotiated = false;
            r
        };
        let recovery_refused = match cfg.server.recovery {
            Recovery::Unsupported | Recovery::FallbackLogin => {
                Some(ResultCode::CouldNotRecoverSession)
            }
            Recovery::Reject422 => Some(ResultCode::SessionUserClientMismatch),
            Recovery::Supported | Recovery::ResetContext => None,
        };
        let credentials = lr.password || lr.digest_bytes.is_some();
        if !credentials {
            // First request of a 4-way login. A recovery the server will not do is refused
            // here: CR 7.1.1 wants 502 on the first Login-Request.
            if let Some(sid) = lr.session_id {
                if let Some(code) = recovery_refused {
                    if cfg.server.recovery != Recovery::FallbackLogin {
                        return refuse(resp, code);
                    }
                } else if !self.sessions.iter().any(|s| s.id == sid) {
                    return refuse(resp, ResultCode::CouldNotRecoverSession);
                }
            }
            if !lr.digest_schema {
                return refuse(resp, ResultCode::NoMatchingDigestScheme);
            }
            resp.result = ResultCode::Unauthorized;
            resp.nonce = Some(nonce_for(cid));
            return resp;
        }
        if let Some(bytes) = lr.digest_bytes {
            if !lr.password && bytes != digest(user, nonce_for(cid)) {
                return refuse(resp, ResultCode::InvalidPassword);
            }
        }
        match (cfg.server.system_message, lr.system_message_response) {
            (SystemMessage::RequireResponse, None) => {
                resp.system_message = true;
                return refuse(resp, ResultCode::SystemMessageResponseRequired);
            }
            (SystemMessage::RequireResponse, Some(false)) => {
                return refuse(resp, ResultCode::TooManyNonConformantReplies)
            }
            (SystemMessage::RequireResponse, Some(true))
            | (SystemMessage::None | SystemMessage::Notify, _) => {}
        }
        let ka = granted_keep_alive_s(cfg, lr.ttl_s);
        resp.keep_alive_s = Some(ka);
        resp.negotiated = lr.negotiation;
        resp.capability_request = Some(match cfg.server.capability_request {
            CapabilityRequest::WhenNeeded => !lr.negotiation,
            CapabilityRequest::Always => true,
            CapabilityRequest::Never => false,
        });
        resp.system_message = cfg.server.system_message == SystemMessage::Notify;

        if let Some(sid) = lr.session_id {
            if let Some(code) = recovery_refused {
                if cfg.server.recovery == Recovery::FallbackLogin {
                    // The bug this knob models: refuse the recovery, log the user in anyway.
                    if let Err(code) = self.admit(cfg, shared, cid, false, out) {
                        return refuse(resp, code);
                    }
                    let id = self.create(shared, cid, device, now_ms, ka, out);
                    resp.session_id = Some(id);
                }
                return refuse(resp, code);
            }
            let Some(idx) = self.sessions.iter().position(|s| s.id == sid) else {
                return refuse(resp, ResultCode::CouldNotRecoverSession);
            };
            if self.sessions[idx].client_id != cid {
                return refuse(resp, ResultCode::SessionUserClientMismatch);
            }
            if !self.sessions[idx].active {
                let check_limits = cfg.server.limit_applies_to_recovery;
                if let Err(code) = self.admit(cfg, shared, cid, check_limits, out) {
                    return refuse(resp, code);
                }
                // `admit` may have removed sessions: find ours again.
                let idx = self
                    .sessions
                    .iter()
                    .position(|s| s.id == sid)
                    .expect("invariant: admit keeps kept sessions of this Client-ID");
                self.sessions[idx].active = true;
                shared.active_total += 1;
                self.roster |= self.sessions[idx].ctx.groups;
            }
            let idx = self
                .sessions
                .iter()
                .position(|s| s.id == sid)
                .expect("invariant: recovered session present");
            let s = &mut self.sessions[idx];
            s.device = device;
            s.last_active_ms = now_ms;
            s.keep_alive_s = ka;
            if cfg.server.recovery == Recovery::ResetContext {
                s.ctx = Context::default();
                self.roster = self.joined_groups();
            }
            out.events.push(ServerEvent::Admitted {
                session: sid,
                client_id: cid,
                recovered: true,
            });
            resp.session_id = Some(sid);
            return resp;
        }

        if let Err(code) = self.admit(cfg, shared, cid, true, out) {
            return refuse(resp, code);
        }
        // A fresh login by this Client-ID: its kept contexts can no longer be recovered.
        self.sessions.retain(|s| s.active || s.client_id != cid);
        resp.session_id = Some(self.create(shared, cid, device, now_ms, ka, out));
        resp
    }

    /// Decide whether a session for `cid` may become active: the duplicate Client-ID policy,
    /// then the session limits.
    fn admit(
        &mut self,
        cfg: &Config,
        shared: &mut ServerShared,
        cid: ClientId,
        check_limits: bool,
        out: &mut ServerOut,
    ) -> Result<(), ResultCode> {
        if let Some(idx) = self
            .sessions
            .iter()
            .position(|s| s.active && s.client_id == cid)
        {
            match cfg.server.duplicate_client_id {
                DuplicateClientId::Reject608 => return Err(ResultCode::ClientIdNotUnique),
                DuplicateClientId::RejectGeneric => return Err(ResultCode::ServiceUnavailable),
                DuplicateClientId::ReplaceOld => self.end(
                    cfg,
                    shared,
                    idx,
                    EndCause::Replaced,
                    ResultCode::ForcedLogout,
                    out,
                ),
                DuplicateClientId::Allow => {}
            }
        }
        if check_limits {
            let max_user = cfg.server.max_sessions_per_user as usize;
            if max_user > 0 && self.active_count() >= max_user {
                return Err(ResultCode::UserSessionLimit);
            }
            let max_total = cfg.server.max_sessions_total;
            if max_total > 0 && shared.active_total >= max_total {
                return Err(ResultCode::SapSessionLimit);
            }
        }
        Ok(())
    }

    fn create(
        &mut self,
        shared: &mut ServerShared,
        cid: ClientId,
        device: DeviceId,
        now_ms: u64,
        ka: u32,
        out: &mut ServerOut,
    ) -> SessionId {
        let id = SessionId(shared.next_session_id);
        shared.next_session_id += 1;
        shared.active_total += 1;
        self.sessions.push(Session {
            id,
            client_id: cid,
            device,
            ctx: Context::default(),
            active: true,
            last_active_ms: now_ms,
            keep_alive_s: ka,
        });
        out.events.push(ServerEvent::Admitted {
            session: id,
            client_id: cid,
            recovered: false,
        });
        id
    }

    /// End the active session at `idx` by the server's decision: push Disconnect (when the
    /// server does), keep the context when configured, update the roster.
    fn end(
        &mut self,
        cfg: &Config,
        shared: &mut ServerShared,
        idx: usize,
        cause: EndCause,
        code: ResultCode,
        out: &mut ServerOut,
    ) {
        let s = self.sessions[idx];
        if cfg.server.keep_context_after_termination {
            self.sessions[idx].active = false;
        } else {
            self.sessions.remove(idx);
        }
        shared.active_total = shared.active_total.saturating_sub(1);
        self.roster = self.joined_groups();
        if cfg.server.sends_disconnect {
            out.pushes.push((s.device, disconnect(cfg, s.id, code)));
        }
        out.events.push(ServerEvent::Ended {
            session: s.id,
            client_id: s.client_id,
            cause,
        });
    }

    /// The Time-To-Live timer of `session` fired at `now_ms`: expire it if the server expires
    /// sessions and nothing was heard from it for its KeepAliveTime. Returns whether it ended.
    pub fn expire(
        &mut self,
        cfg: &Config,
        shared: &mut ServerShared,
        now_ms: u64,
        session: SessionId,
        out: &mut ServerOut,
    ) -> bool {
        if !cfg.server.ttl_expiry {
            return false;
        }
        let Some(idx) = self
            .sessions
            .iter()
            .position(|s| s.active && s.id == session)
        else {
            return false;
        };
        let s = &self.sessions[idx];
        if now_ms
            < s.last_active_ms
                .saturating_add(u64::from(s.keep_alive_s) * 1000)
        {
            return false;
        }
        self.end(
            cfg,
            shared,
            idx,
            EndCause::Expired,
            ResultCode::SessionExpired,
            out,
        );
        true
    }

    /// The server restarts (a fault the simulator injects; no protocol step does this): every
    /// active session of the user ends at once, with no Disconnect (nobody is left to send
    /// one). With `server.keep_context_after_termination` the sessions are kept, inactive,
    /// with their contexts, so that their clients can recover them; otherwise they are gone.
    /// Returns the number of sessions ended (a user may hold more than a step's
    /// [`ServerOut::events`] can carry, so the restart reports a count, not events).
    pub fn restart(&mut self, cfg: &Config, shared: &mut ServerShared) -> u32 {
        let mut ended = 0;
        for s in self.sessions.iter_mut().filter(|s| s.active) {
            s.active = false;
            ended += 1;
            shared.active_total = shared.active_total.saturating_sub(1);
        }
        if !cfg.server.keep_context_after_termination {
            self.sessions.retain(|s| s.active);
        }
        self.roster = self.joined_groups();
        ended
    }

    /// When the Time-To-Live timer of `session` is due, ms (for drivers that schedule it).
    pub fn ttl_deadline_ms(&self, session: SessionId) -> Option<u64> {
        self.active_session(session)
            .map(|s| s.last_active_ms + u64::from(s.keep_alive_s) * 1000)
    }
}
