//! The CR's normative statements as checked properties.
//!
//! One closed enum, [`Prop`], names every property; each variant's doc comment cites the
//! requirement IDs of `specs/requirements.toml` that it checks. The predicates work on the
//! core's own types (a user's server table, a client, the outputs of one step), so the model
//! checker (over [`crate::world::World`]) and the simulator evaluate the very same code.
//!
//! Safety properties are *monitors*: a state predicate ([`check_user_state`],
//! [`check_server_totals`]) or a check of one step, seeing the state before, the
//! input, the outputs and the state after ([`check_server_step`], [`check_client_step`]).
//! Witnesses are conditions on steps that a meaningful run must reach. The two liveness
//! properties are computed over the explored state graph by [`crate::checker`].

use crate::client::{Client, ClientOut, Phase, StoreOp};
use crate::codes::ResultCode;
use crate::config::{Config, PresenceMerge, Recovery};
use crate::msg::{Envelope, Primitive};
use crate::server::{EndCause, ServerEvent, ServerOut, UserServer};
use serde::Serialize;

/// What kind of property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Nothing bad ever happens (a counterexample is a finite path).
    Safety,
    /// Something good eventually happens (a counterexample is a lasso).
    Liveness,
    /// Some reachable state shows the behaviour (so that "holds" is not vacuous).
    Witness,
}

macro_rules! props {
    ($( $(#[$doc:meta])* $name:ident = $str:literal, $kind:ident, [$($req:literal),*]; )*) => {
        /// Every property the checker evaluates.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Prop { $( $(#[$doc])* #[doc = ""] #[doc = concat!("Requirements (specs/requirements.toml): ", $($req, " ",)* "")] $name, )* }

        impl Prop {
            /// Every property, in report order.
            pub const ALL: &'static [Prop] = &[$(Prop::$name,)*];

            /// The property's name, as in reports, variant `[expect]` tables and the catalogue.
            pub const fn name(self) -> &'static str {
                match self { $(Prop::$name => $str,)* }
            }

            /// Safety, liveness or witness.
            pub const fn kind(self) -> Kind {
                match self { $(Prop::$name => Kind::$kind,)* }
            }

            /// The requirement IDs (in `specs/requirements.toml`) the property checks.
            pub const fn requirements(self) -> &'static [&'static str] {
                match self { $(Prop::$name => &[$($req),*],)* }
            }
        }
    };
}

props! {
    /// No two active sessions of a user share a Client-ID.
    ClientIdUniquePerUser = "client_id_unique_per_user", Safety, ["CR-5.1.3-06", "CR-7.1-18", "CR-7.1-19"];
    /// A login with a Client-ID in use is answered 608.
    LoginWithClientIdInUseAnswered608 = "login_with_client_id_in_use_answered_608", Safety, ["CR-5.1.3-06", "CR-7.1-20", "CR-7.1.2-01", "CR-11.4.7-01"];
    /// The server never ends a session to let a login in.
    NoDisconnectToAdmitLogin = "no_disconnect_to_admit_login", Safety, ["CR-6.6.1-09"];
    /// Whenever the server ends a session (other than by logout) it sends Disconnect.
    DisconnectAlwaysSent = "disconnect_always_sent", Safety, ["CR-6.6.1-05"];
    /// Disconnect carries no Transaction-ID.
    DisconnectHasNoTransactionId = "disconnect_has_no_transaction_id", Safety, ["CR-6.6.1-13"];
    /// The client never answers a Disconnect.
    ClientNeverAnswersDisconnect = "client_never_answers_disconnect", Safety, ["CR-6.6.1-06"];
    /// A recovered session's context is the context at termination.
    RecoveredContextUnchanged = "recovered_context_unchanged", Safety, ["CR-7.1.1-15"];
    /// The user is not logged in when a recovery fails.
    FailedRecoveryNotLoggedIn = "failed_recovery_not_logged_in", Safety, ["CR-7.1.1-17"];
    /// A recovery the server does not do is answered 502.
    RecoveryRefusalAnswered502 = "recovery_refusal_answered_502", Safety, ["CR-7.1.1-16", "CR-7.1.2-01"];
    /// After recovering a session whose context it lost, the client logs out.
    LogoutAfterRecoveryWithoutContext = "logout_after_recovery_without_context", Safety, ["CR-7.1.1-08"];
    /// The stored Session-ID is removed on logout and Disconnect.
    StoredSessionIdRemovedOnLogout = "stored_session_id_removed_on_logout", Safety, ["CR-7.1.1-02"];
    /// The user's group membership is exactly what its active sessions joined
    /// (logout leaves the groups).
    LogoutLeavesGroups = "logout_leaves_groups", Safety, ["CR-6.6.1-03"];
    /// The server answers Logout-Request with Status.
    LogoutAnsweredWithStatus = "logout_answered_with_status", Safety, ["CR-6.6.1-02", "CR-6.6.1-04"];
    /// No user holds more active sessions than the per-user limit, and the server holds no
    /// more than its total limit.
    WithinSessionLimit = "within_session_limit", Safety, ["CR-5.1.3-03"];
    /// Session contexts are independent: no request, login or expiry
    /// changes the context of a session other than the one it belongs to.
    SessionsIndependent = "sessions_independent", Safety, ["CR-5.1.3-07", "CR-5.1.3-08"];
    /// The presence of all sessions is merged into one document.
    PresenceMergedAcrossSessions = "presence_merged_across_sessions", Safety, ["CR-5.1.3-10"];
    /// No combined negotiation in a Login-Request that re-establishes a session.
    NoCombinedNegotiationOnRecovery = "no_combined_negotiation_on_recovery", Safety, ["CR-7.1-11"];
    /// No negotiation elements in the first Login-Request of a 4-way login.
    NoNegotiationInFirstFourWayRequest = "no_negotiation_in_first_four_way_request", Safety, ["CR-7.1-15"];
    /// The client negotiates capabilities when the server asks (`T`).
    CapabilityNegotiationWhenRequested = "capability_negotiation_when_requested", Safety, ["CR-7.1-08"];
    /// After a negotiation in the login, `CapabilityRequest` is `F`.
    CapabilityRequestFalseAfterNegotiation = "capability_request_false_after_negotiation", Safety, ["CR-7.1-17"];
    /// After 436 the client does not continue; it resends the login with
    /// the replies.
    NoLoginContinuationAfter436 = "no_login_continuation_after_436", Safety, ["CR-7.1-26"];
    /// The client stores the Session-ID when a session is established.
    SessionIdStoredWhenEstablished = "session_id_stored_when_established", Safety, ["CR-7.1.1-01"];
    /// With a stored Session-ID the client re-establishes first.
    RecoveryAttemptedFirst = "recovery_attempted_first", Safety, ["CR-7.1.1-03", "CR-7.1.1-04", "CR-7.1.1-06", "CR-7.1.1-07"];
    /// After a failed recovery the login carries no Session-ID.
    FreshLoginAfterFailedRecoveryHasNoSessionId = "fresh_login_after_failed_recovery_has_no_session_id", Safety, ["CR-7.1.1-18"];
    /// The server supports at least two parallel sessions per user.
    MultipleSessionsSupported = "multiple_sessions_supported", Safety, ["CR-5.1.3-01", "CR-5.1.3-02", "CR-5.1.3-05"];
    /// An ended session's context is dropped unless the server keeps it for a
    /// recovery it offers.
    SessionContextDroppedAfterLogout = "session_context_dropped_after_logout", Safety, ["CR-6.6.1-14"];
    /// The deadlock the CR is about: from every reachable state, every device that wants a
    /// session can still reach a state where it holds one.
    NoDeadlock = "no_deadlock", Liveness, ["CR-7.1-20", "CR-7.1.1-06", "CR-7.1.1-08"];
    /// On every path weakly fair to deliveries, timers and expiry, every device that wants a
    /// session eventually holds one.
    EventuallyLoggedInFair = "eventually_logged_in_fair", Liveness, ["CR-7.1.1-08", "CR-7.1.1-10"];
    /// A login is answered 608.
    Reach608 = "reach_608", Witness, ["CR-7.1-20", "CR-7.1-21", "CR-7.1.1-11", "CR-7.1.2-01", "CR-11.4.7-01"];
    /// A recovery is answered 502.
    Reach502 = "reach_502", Witness, ["CR-7.1.1-05", "CR-7.1.1-09", "CR-7.1.1-16", "CR-7.1.2-01"];
    /// A session is recovered.
    ReachRecovery = "reach_recovery", Witness, ["CR-7.1.1-12", "CR-7.1.1-13", "CR-7.1.1-14"];
    /// A client logs out of a session it recovered without its context.
    ReachLogoutAfterRecovery = "reach_logout_after_recovery", Witness, ["CR-6.6.1-01", "CR-6.6.1-04", "CR-7.1.1-08"];
    /// A 2-way login succeeds.
    ReachTwoWayLogin = "reach_two_way_login", Witness, ["CR-7.1-36", "CR-7.1-37", "CR-7.1-38"];
    /// A 4-way login succeeds.
    ReachFourWayLogin = "reach_four_way_login", Witness, ["CR-7.1-36", "CR-7.1-37", "CR-7.1-38"];
    /// A login is refused for a session limit (609 or 610).
    Reach609Or610 = "reach_609_or_610", Witness, ["CR-5.1.3-03", "CR-7.1.2-01"];
    /// A session expires.
    ReachExpiry = "reach_expiry", Witness, ["CR-6.6.1-07"];
    /// A Disconnect is sent.
    ReachDisconnect = "reach_disconnect", Witness, ["CR-6.6.1-08", "CR-6.6.1-12"];
    /// A client takes a Disconnect pushed to it (the phase `client_never_answers_disconnect`
    /// is about).
    ReachDisconnectReceived = "reach_disconnect_received", Witness, ["CR-6.6.1-06", "CR-6.6.1-12"];
    /// A login is answered 436.
    Reach436 = "reach_436", Witness, ["CR-7.1-22", "CR-7.1-23", "CR-7.1-24", "CR-7.1-25", "CR-7.1.2-01"];
}

impl Prop {
    /// The witnesses that show a run reached the situation a safety property is about: a
    /// "holds" without them is vacuous (a variant where no Disconnect is ever sent cannot
    /// break `disconnect_has_no_transaction_id`). Empty where every run is in that
    /// situation (a login, a session) or where no witness names it exactly.
    pub const fn phase(self) -> &'static [Prop] {
        match self {
            Prop::DisconnectAlwaysSent | Prop::DisconnectHasNoTransactionId => {
                &[Prop::ReachDisconnect]
            }
            Prop::ClientNeverAnswersDisconnect => &[Prop::ReachDisconnectReceived],
            Prop::RecoveredContextUnchanged | Prop::NoCombinedNegotiationOnRecovery => {
                &[Prop::ReachRecovery]
            }
            Prop::RecoveryRefusalAnswered502
            | Prop::FreshLoginAfterFailedRecoveryHasNoSessionId => &[Prop::Reach502],
            Prop::LogoutAfterRecoveryWithoutContext => &[Prop::ReachLogoutAfterRecovery],
            Prop::NoNegotiationInFirstFourWayRequest => &[Prop::ReachFourWayLogin],
            Prop::NoLoginContinuationAfter436 => &[Prop::Reach436],
            Prop::ClientIdUniquePerUser
            | Prop::LoginWithClientIdInUseAnswered608
            | Prop::NoDisconnectToAdmitLogin
            | Prop::FailedRecoveryNotLoggedIn
            | Prop::StoredSessionIdRemovedOnLogout
            | Prop::LogoutLeavesGroups
            | Prop::LogoutAnsweredWithStatus
            | Prop::WithinSessionLimit
            | Prop::SessionsIndependent
            | Prop::PresenceMergedAcrossSessions
            | Prop::CapabilityNegotiationWhenRequested
            | Prop::CapabilityRequestFalseAfterNegotiation
            | Prop::SessionIdStoredWhenEstablished
            | Prop::RecoveryAttemptedFirst
            | Prop::MultipleSessionsSupported
            | Prop::SessionContextDroppedAfterLogout
            | Prop::NoDeadlock
            | Prop::EventuallyLoggedInFair
            | Prop::Reach608
            | Prop::Reach502
            | Prop::ReachRecovery
            | Prop::ReachLogoutAfterRecovery
            | Prop::ReachTwoWayLogin
            | Prop::ReachFourWayLogin
            | Prop::Reach609Or610
            | Prop::ReachExpiry
            | Prop::ReachDisconnect
            | Prop::ReachDisconnectReceived
            | Prop::Reach436 => &[],
        }
    }

    /// The property of this name.
    pub fn from_name(name: &str) -> Option<Prop> {
        Prop::ALL.iter().copied().find(|p| p.name() == name)
    }

    const fn bit(self) -> u64 {
        1 << self as u32
    }
}

/// A set of properties (violated ones, or reached witnesses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PropSet(pub u64);

impl PropSet {
    /// Add a property.
    pub fn insert(&mut self, p: Prop) {
        self.0 |= p.bit();
    }

    /// Add `p` when `bad` holds.
    pub fn flag(&mut self, p: Prop, bad: bool) {
        if bad {
            self.insert(p);
        }
    }

    /// Whether `p` is in the set.
    pub const fn contains(self, p: Prop) -> bool {
        self.0 & p.bit() != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The properties in the set, in report order.
    pub fn iter(self) -> impl Iterator<Item = Prop> {
        // `Prop::ALL` lists the properties in declaration order, so bit i is `Prop::ALL[i]`
        // and the set bits in increasing order are the report order.
        let mut bits = self.0;
        std::iter::from_fn(move || {
            let i = bits.trailing_zeros() as usize;
            bits &= bits.wrapping_sub(1);
            Prop::ALL.get(i).copied()
        })
    }
}

/// State invariants of one user's server table.
pub fn check_user_state(cfg: &Config, us: &UserServer, found: &mut PropSet) {
    let active = &us.sessions;
    let dup = active.iter().enumerate().any(|(i, a)| {
        a.active
            && active[i + 1..]
                .iter()
                .any(|b| b.active && b.client_id == a.client_id)
    });
    found.flag(Prop::ClientIdUniquePerUser, dup);
    let max = cfg.server.max_sessions_per_user as usize;
    found.flag(Prop::WithinSessionLimit, max > 0 && us.active_count() > max);
    found.flag(Prop::LogoutLeavesGroups, us.roster != us.joined_groups());
    // The merged document lists every active session that published a presence value.
    let published = us
        .sessions
        .iter()
        .filter(|s| s.active && s.ctx.presence != 0);
    let merged = match cfg.server.presence_merge {
        PresenceMerge::Merged => true,
        PresenceMerge::LastWriter => {
            let doc = us.presence_document(cfg);
            doc.len() == published.clone().count()
                && doc
                    .iter()
                    .zip(published)
                    .all(|(&(c, p), s)| c == s.client_id && p == s.ctx.presence)
        }
    };
    found.flag(Prop::PresenceMergedAcrossSessions, !merged);
    let recovers = matches!(
        cfg.server.recovery,
        Recovery::Supported | Recovery::ResetContext
    );
    found.flag(
        Prop::SessionContextDroppedAfterLogout,
        !recovers && us.sessions.iter().any(|s| !s.active),
    );
}

/// The server-wide limit (609): no more active sessions than `server.max_sessions_total`.
pub fn check_server_totals(cfg: &Config, active_total: u32, found: &mut PropSet) {
    let max = cfg.server.max_sessions_total;
    found.flag(Prop::WithinSessionLimit, max > 0 && active_total > max);
}

/// The input of a client step, as the monitors need to see it.
#[derive(Clone, Copy, Debug)]
pub enum ClientInput<'a> {
    /// Power on, or the user logs in from idle.
    Start,
    /// A message from the server.
    Message(&'a Envelope),
    /// Anything else: a timer, a user action, a lost connection.
    Other,
}

/// Monitors of one client step.
pub fn check_client_step(
    before: &Client,
    input: ClientInput<'_>,
    out: &ClientOut,
    after: &Client,
    found: &mut PropSet,
) {
    if let Some(Primitive::LoginRequest(lr)) = out.send.map(|e| e.body) {
        found.flag(
            Prop::NoCombinedNegotiationOnRecovery,
            lr.session_id.is_some() && lr.negotiation,
        );
        let first_four_way = lr.digest_schema && !lr.password && lr.digest_bytes.is_none();
        found.flag(
            Prop::NoNegotiationInFirstFourWayRequest,
            first_four_way && lr.negotiation,
        );
    }
    if let (
        Phase::Negotiating {
            session: Some(_),
            step: crate::client::Negotiation::Service,
            capability_requested: true,
        },
        Phase::Established { .. },
    ) = (before.phase, after.phase)
    {
        found.insert(Prop::CapabilityNegotiationWhenRequested);
    }
    match input {
        ClientInput::Start => {
            if before.phase == Phase::Down && before.stored.is_some() {
                let recovers = matches!(out.send.map(|e| e.body), Some(Primitive::LoginRequest(lr)) if lr.session_id.is_some());
                found.flag(Prop::RecoveryAttemptedFirst, !recovers);
            }
        }
        ClientInput::Message(env) => {
            if let Primitive::Disconnect { .. } = env.body {
                // A new Login-Request (after a logout completed this way) is not an answer.
                let answered = out
                    .send
                    .is_some_and(|e| !matches!(e.body, Primitive::LoginRequest(_)));
                found.flag(Prop::ClientNeverAnswersDisconnect, answered);
            }
            let ended = before.phase.session().is_some() && after.phase.session().is_none();
            if ended {
                found.flag(
                    Prop::StoredSessionIdRemovedOnLogout,
                    after.stored.is_some() && after.stored == before.stored,
                );
            }
            // A Disconnect of the stored session, whatever the client was doing.
            if let Primitive::Disconnect { .. } = env.body {
                let of_stored =
                    env.session.is_some() && before.stored.map(|s| s.session) == env.session;
                found.flag(
                    Prop::StoredSessionIdRemovedOnLogout,
                    of_stored && after.stored.is_some() && after.stored == before.stored,
                );
            }
            if let (Phase::LoggingIn { attempt, .. }, Primitive::LoginResponse(r)) =
                (before.phase, env.body)
            {
                let sent = out.send.map(|e| e.body);
                if r.result == ResultCode::SystemMessageResponseRequired {
                    let resent = matches!(sent, Some(Primitive::LoginRequest(lr)) if lr.system_message_response.is_some());
                    found.flag(Prop::NoLoginContinuationAfter436, !resent);
                }
                if r.result.is_success() && r.session_id.is_some() {
                    match attempt.recover {
                        Some(_) if before.ctx.is_none() => {
                            found.flag(
                                Prop::LogoutAfterRecoveryWithoutContext,
                                sent != Some(Primitive::LogoutRequest),
                            );
                        }
                        Some(_) => {}
                        None => {
                            let stored = matches!(out.store, Some(StoreOp::Store(s)) if Some(s.session) == r.session_id);
                            found.flag(Prop::SessionIdStoredWhenEstablished, !stored);
                        }
                    }
                }
                if attempt.recover.is_some() && r.result == ResultCode::CouldNotRecoverSession {
                    let carries_id = matches!(sent, Some(Primitive::LoginRequest(lr)) if lr.session_id.is_some())
                        || matches!(after.phase, Phase::Backoff(a) if a.recover.is_some());
                    found.flag(
                        Prop::FreshLoginAfterFailedRecoveryHasNoSessionId,
                        carries_id,
                    );
                }
            }
        }
        ClientInput::Other => {}
    }
}

/// What the monitors see of one server step.
#[derive(Clone, Copy, Debug)]
pub struct ServerStep<'a> {
    /// The user's table before the step.
    pub before: &'a UserServer,
    /// The request handled; `None` for a Time-To-Live expiry.
    pub request: Option<&'a Envelope>,
    /// The outputs.
    pub out: &'a ServerOut,
    /// The user's table after the step.
    pub after: &'a UserServer,
}

/// Monitors of one server step.
pub fn check_server_step(s: ServerStep<'_>, found: &mut PropSet) {
    let reply = s.out.reply;
    let disconnects = s.out.pushes.iter().map(|(_, e)| e).chain(reply.iter());
    for e in disconnects {
        if let Primitive::Disconnect { .. } = e.body {
            found.flag(Prop::DisconnectHasNoTransactionId, e.tid.is_some());
        }
    }
    // Sessions that were active before and are not after.
    let logout_of = match s.request {
        Some(Envelope {
            body: Primitive::LogoutRequest,
            session,
            ..
        }) => *session,
        _ => None,
    };
    for gone in s
        .before
        .active()
        .filter(|b| s.after.active_session(b.id).is_none())
    {
        if Some(gone.id) == logout_of {
            continue;
        }
        let pushed = s.out.pushes.iter().any(|(d, e)| {
            *d == gone.device
                && e.session == Some(gone.id)
                && matches!(e.body, Primitive::Disconnect { .. })
        });
        found.flag(Prop::DisconnectAlwaysSent, !pushed);
        if let Some(Primitive::LoginRequest(_)) = s.request.map(|r| r.body) {
            found.insert(Prop::NoDisconnectToAdmitLogin);
        }
    }
    // Only the request's own session (or the session a login recovers) may change context.
    let own = s.request.and_then(|r| match r.body {
        Primitive::LoginRequest(lr) => lr.session_id.or(r.session),
        _ => r.session,
    });
    for b in s.before.sessions.iter().filter(|b| Some(b.id) != own) {
        if let Some(a) = s.after.sessions.iter().find(|a| a.id == b.id) {
            found.flag(Prop::SessionsIndependent, a.ctx != b.ctx);
        }
    }
    let Some(req) = s.request else { return };
    match (req.body, reply.map(|r| r.body)) {
        (Primitive::LogoutRequest, Some(body)) => {
            let had_session = req
                .session
                .is_some_and(|id| s.before.active_session(id).is_some());
            found.flag(
                Prop::LogoutAnsweredWithStatus,
                had_session && !matches!(body, Primitive::Status { .. }),
            );
        }
        (Primitive::LoginRequest(mut lr), Some(Primitive::LoginResponse(r))) => {
            // As the server reads it: a Session-ID in the descriptor asks for a recovery too.
            lr.session_id = lr.session_id.or(req.session);
            let credentials = lr.password || lr.digest_bytes.is_some();
            let system_message = matches!(
                r.result,
                ResultCode::SystemMessageResponseRequired | ResultCode::TooManyNonConformantReplies
            );
            if r.result.is_success() && r.negotiated {
                found.flag(
                    Prop::CapabilityRequestFalseAfterNegotiation,
                    r.capability_request != Some(false),
                );
            }
            match lr.session_id {
                None => {
                    let in_use = s.before.active().any(|x| x.client_id == lr.client_id);
                    if credentials && in_use && !system_message {
                        found.flag(
                            Prop::LoginWithClientIdInUseAnswered608,
                            r.result != ResultCode::ClientIdNotUnique,
                        );
                    }
                    if r.result == ResultCode::UserSessionLimit {
                        found.flag(Prop::MultipleSessionsSupported, s.before.active_count() < 2);
                    }
                }
                Some(sid) => {
                    let refused = !r.result.is_success()
                        && r.result != ResultCode::Unauthorized
                        && !system_message;
                    if refused {
                        let admitted = s
                            .after
                            .active()
                            .any(|a| s.before.active_session(a.id).is_none());
                        found.flag(Prop::FailedRecoveryNotLoggedIn, admitted);
                        let separately_named = match r.result {
                            ResultCode::CouldNotRecoverSession
                            | ResultCode::ClientIdNotUnique
                            | ResultCode::SapSessionLimit
                            | ResultCode::UserSessionLimit => true,
                            ResultCode::SessionUserClientMismatch => s
                                .before
                                .sessions
                                .iter()
                                .any(|x| x.id == sid && x.client_id != lr.client_id),
                            _ => false,
                        };
                        found.flag(Prop::RecoveryRefusalAnswered502, !separately_named);
                    }
                    if r.result.is_success() {
                        let before = s
                            .before
                            .sessions
                            .iter()
                            .find(|x| x.id == sid)
                            .map(|x| x.ctx);
                        let after = s.after.sessions.iter().find(|x| x.id == sid).map(|x| x.ctx);
                        found.flag(Prop::RecoveredContextUnchanged, before != after);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Witnesses reached by one server step.
pub fn server_witnesses(s: ServerStep<'_>, seen: &mut PropSet) {
    for e in s
        .out
        .pushes
        .iter()
        .map(|(_, e)| e)
        .chain(s.out.reply.iter())
    {
        if let Primitive::Disconnect { .. } = e.body {
            seen.insert(Prop::ReachDisconnect);
        }
    }
    for ev in &s.out.events {
        match ev {
            ServerEvent::Admitted {
                recovered: true, ..
            } => seen.insert(Prop::ReachRecovery),
            ServerEvent::Ended {
                cause: EndCause::Expired,
                ..
            } => seen.insert(Prop::ReachExpiry),
            ServerEvent::Admitted {
                recovered: false, ..
            }
            | ServerEvent::Ended { .. } => {}
        }
    }
    if let (Some(Primitive::LoginRequest(lr)), Some(Primitive::LoginResponse(r))) =
        (s.request.map(|r| r.body), s.out.reply.map(|r| r.body))
    {
        match r.result {
            ResultCode::ClientIdNotUnique => seen.insert(Prop::Reach608),
            ResultCode::CouldNotRecoverSession if lr.session_id.is_some() => {
                seen.insert(Prop::Reach502)
            }
            ResultCode::SapSessionLimit | ResultCode::UserSessionLimit => {
                seen.insert(Prop::Reach609Or610)
            }
            ResultCode::SystemMessageResponseRequired => seen.insert(Prop::Reach436),
            ResultCode::Success if lr.password => seen.insert(Prop::ReachTwoWayLogin),
            ResultCode::Success if lr.digest_bytes.is_some() => {
                seen.insert(Prop::ReachFourWayLogin)
            }
            _ => {}
        }
    }
}

/// Witnesses reached by one client step on `input`.
pub fn client_witnesses(
    before: &Client,
    input: ClientInput<'_>,
    out: &ClientOut,
    seen: &mut PropSet,
) {
    if let ClientInput::Message(env) = input {
        if let Primitive::Disconnect { .. } = env.body {
            seen.insert(Prop::ReachDisconnectReceived);
        }
    }
    if let (Phase::LoggingIn { attempt, .. }, Some(Primitive::LogoutRequest)) =
        (before.phase, out.send.map(|e| e.body))
    {
        if attempt.recover.is_some() {
            seen.insert(Prop::ReachLogoutAfterRecovery);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prop_set_iterates_in_report_order() {
        for (i, &p) in Prop::ALL.iter().enumerate() {
            assert_eq!(p.bit(), 1 << i, "{} is not bit {i}", p.name());
        }
        let mut set = PropSet::default();
        for &p in Prop::ALL.iter().rev().step_by(3) {
            set.insert(p);
        }
        let want: Vec<Prop> = Prop::ALL
            .iter()
            .copied()
            .filter(|&p| set.contains(p))
            .collect();
        assert_eq!(set.iter().collect::<Vec<_>>(), want);
        assert_eq!(PropSet::default().iter().count(), 0);
    }
}
