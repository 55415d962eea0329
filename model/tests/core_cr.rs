//! The protocol core against the CR, one test per normative statement and per knob value.
//! Each test scripts a world ([`imps_model::world::World`]) event by event and checks what
//! the CR says must (or, under a violating knob, must not) happen.

use imps_model::client::{Phase, StoreOp, UserAction};
use imps_model::codes::ResultCode;
use imps_model::config::*;
use imps_model::msg::{Envelope, Primitive, SessionId};
use imps_model::server::EndCause;
use imps_model::server::ServerEvent;
use imps_model::variant::{named_variants, resolve_variant, variants_dir};
use imps_model::world::{Action, Step, World};

struct T {
    cfg: Config,
    w: World,
    log: Vec<(u8, bool, Envelope)>,
}

impl T {
    fn new(cfg: Config) -> T {
        let w = World::new(&cfg);
        T {
            cfg,
            w,
            log: Vec::new(),
        }
    }

    fn with(sets: &[&str]) -> T {
        let mut cfg = Config::default();
        for s in sets {
            cfg.apply_set(s).unwrap();
        }
        T::new(cfg)
    }

    fn act(&mut self, a: Action) -> Step {
        let mut enabled = Vec::new();
        self.w.actions(&self.cfg, &mut enabled);
        assert!(
            enabled.contains(&a),
            "{a:?} not enabled; enabled: {enabled:?}"
        );
        let s = self.w.step(&self.cfg, a);
        self.log.extend(s.messages.iter().copied());
        s
    }

    /// Deliver everything in flight to and from device `d` until it is quiet.
    fn settle(&mut self, d: u8) -> Vec<Step> {
        let mut steps = Vec::new();
        for _ in 0..64 {
            let dev = &self.w.devices[d as usize];
            let a = if !dev.to_server.is_empty() {
                Action::ServerReceives(d)
            } else if dev.to_client.is_some() {
                Action::ClientReceives(d)
            } else if !dev.pushes.is_empty() {
                Action::ClientReceivesPush(d)
            } else {
                return steps;
            };
            steps.push(self.act(a));
        }
        panic!("device {d} did not settle");
    }

    fn login(&mut self, d: u8) {
        self.act(Action::Start(d));
        self.settle(d);
        assert!(
            self.w.holds_session(d as usize),
            "device {d} should hold a session: {:?}",
            self.phase(d)
        );
    }

    fn phase(&self, d: u8) -> Phase {
        self.w.devices[d as usize].client.phase
    }

    fn session(&self, d: u8) -> SessionId {
        self.phase(d).session().expect("device holds a session")
    }

    /// The result codes of every Login-Response sent so far, in order.
    fn login_codes(&self) -> Vec<u16> {
        self.log
            .iter()
            .filter_map(|(_, up, e)| match e.body {
                Primitive::LoginResponse(r) if !up => Some(r.result.number()),
                _ => None,
            })
            .collect()
    }

    fn sent_by_client(&self, d: u8) -> Vec<Primitive> {
        self.log
            .iter()
            .filter(|(dd, up, _)| *dd == d && *up)
            .map(|(_, _, e)| e.body)
            .collect()
    }

    fn last_login_request(&self, d: u8) -> imps_model::msg::LoginRequest {
        self.sent_by_client(d)
            .into_iter()
            .rev()
            .find_map(|p| match p {
                Primitive::LoginRequest(lr) => Some(lr),
                _ => None,
            })
            .expect("a Login-Request was sent")
    }

    fn active(&self, user: usize) -> usize {
        self.w.users[user].active_count()
    }
}

/// A crash after which the device starts again and sends its first Login-Request.
fn crash_and_restart(t: &mut T, d: u8) {
    t.act(Action::Crash(d));
    t.act(Action::Start(d));
}

// ---------------------------------------------------------------- 7.1: Client-ID uniqueness

/// CR 7.1: "If the user logs in using a Client-ID already in use, the server MUST respond to
/// the login with error code 608."
#[test]
fn reject_608_answers_a_login_with_a_client_id_in_use() {
    let mut t = T::with(&["client.stores_session_id=false"]);
    t.login(0);
    crash_and_restart(&mut t, 0);
    t.settle(0);
    assert_eq!(t.login_codes(), vec![200, 608]);
    assert_eq!(
        t.active(0),
        1,
        "the server MUST NOT allow a second session with the same Client-ID"
    );
    assert!(matches!(t.phase(0), Phase::Backoff(_)));
}

/// Before the CR the refusal does not say why.
#[test]
fn reject_generic_answers_503() {
    let mut t = T::with(&[
        "server.duplicate_client_id=reject-generic",
        "client.stores_session_id=false",
    ]);
    t.login(0);
    crash_and_restart(&mut t, 0);
    t.settle(0);
    assert_eq!(t.login_codes(), vec![200, 503]);
    assert_eq!(t.active(0), 1);
}

/// `replace-old`: the old session is ended with a Disconnect (601) to admit the new login,
/// which CR 6.6.1 forbids.
#[test]
fn replace_old_disconnects_the_old_session_to_admit_the_login() {
    let mut t = T::with(&[
        "server.duplicate_client_id=replace-old",
        "client.stores_session_id=false",
        "env.devices_per_user=1",
    ]);
    t.login(0);
    let old = t.session(0);
    crash_and_restart(&mut t, 0);
    let step = t.act(Action::ServerReceives(0));
    let sout = step.server.unwrap();
    assert!(sout.events.contains(&ServerEvent::Ended {
        session: old,
        client_id: t.w.devices[0].client.client_id(&t.cfg),
        cause: EndCause::Replaced
    }));
    assert_eq!(
        sout.pushes.len(),
        1,
        "the old session's device is sent a Disconnect"
    );
    assert!(matches!(
        sout.pushes[0].1.body,
        Primitive::Disconnect {
            result: ResultCode::ForcedLogout
        }
    ));
    assert_eq!(t.active(0), 1);
}

/// `allow`: both sessions carry the Client-ID (Baraza).
#[test]
fn allow_admits_a_duplicate_client_id() {
    let mut t = T::with(&[
        "server.duplicate_client_id=allow",
        "client.stores_session_id=false",
    ]);
    t.login(0);
    crash_and_restart(&mut t, 0);
    t.settle(0);
    assert_eq!(t.login_codes(), vec![200, 200]);
    let us = &t.w.users[0];
    assert_eq!(us.active_count(), 2);
    assert_eq!(us.sessions[0].client_id, us.sessions[1].client_id);
}

/// CR 5.1.3: a user MAY hold parallel sessions, each with its own Client-ID.
#[test]
fn parallel_sessions_of_one_user_from_two_devices() {
    let mut t = T::with(&["env.devices_per_user=2"]);
    t.login(0);
    t.login(1);
    assert_eq!(t.active(0), 2);
    assert_ne!(t.session(0), t.session(1));
}

/// CR 7.1 MAY: after 608 the client may try another Client-ID (`new-client-id`); with
/// `retry-same` it keeps its one Client-ID.
#[test]
fn on_608_new_client_id_takes_the_next_slot_of_the_pool() {
    for (knob, slot, codes) in [
        ("new-client-id", 1u8, vec![200, 608, 200]),
        ("retry-same", 0, vec![200, 608, 608]),
    ] {
        let mut t = T::with(&[
            "client.stores_session_id=false",
            "client.client_id_pool=2",
            &format!("client.on_608={knob}"),
        ]);
        t.login(0);
        crash_and_restart(&mut t, 0);
        t.settle(0);
        t.act(Action::RetryTimer(0));
        t.settle(0);
        assert_eq!(t.w.devices[0].client.slot, slot, "{knob}");
        assert_eq!(t.login_codes(), codes, "{knob}");
    }
}

/// CR 5.1.3 with Client-IDs from the application (`client.client_id_scope = user`): a user's
/// devices draw from one pool, so the second device's first Client-ID is the one the first
/// device's session holds; the server answers 608 and the device moves to the next slot.
/// With `device` scope the two devices' Client-IDs never meet.
#[test]
fn user_scope_client_ids_of_two_devices_collide() {
    for (scope, codes, second) in [
        ("user", vec![200, 608, 200], "u0/c1"),
        ("device", vec![200, 200], "dev1/c0"),
    ] {
        let mut t = T::with(&[
            "env.devices_per_user=2",
            &format!("client.client_id_scope={scope}"),
        ]);
        t.login(0);
        t.act(Action::Start(1));
        t.settle(1);
        if scope == "user" {
            assert!(matches!(t.phase(1), Phase::Backoff(_)), "{scope}");
            t.act(Action::RetryTimer(1));
            t.settle(1);
        }
        assert_eq!(t.login_codes(), codes, "{scope}");
        assert!(t.w.holds_session(1), "{scope}");
        let us = &t.w.users[0];
        let ids: Vec<String> = us
            .sessions
            .iter()
            .map(|s| s.client_id.to_string())
            .collect();
        assert_eq!(ids[1], second, "{scope}");
        assert_eq!(
            t.last_login_request(1).client_id,
            t.w.devices[1].client.client_id(&t.cfg),
            "{scope}"
        );
    }
}

/// With a user-wide Client-ID, the server cannot tell the devices apart by it: `replace-old`
/// ends the first device's session when the second logs in with the same Client-ID, and the
/// Disconnect goes to the device whose connection holds that session (the first), not to
/// the one the request came from.
#[test]
fn user_scope_disconnect_goes_to_the_device_of_the_session() {
    let mut t = T::with(&[
        "env.devices_per_user=2",
        "client.client_id_scope=user",
        "server.duplicate_client_id=replace-old",
    ]);
    t.login(0);
    let old = t.session(0);
    t.act(Action::Start(1));
    let step = t.act(Action::ServerReceives(1));
    let sout = step.server.unwrap();
    assert_eq!(sout.pushes.len(), 1);
    let (to, env) = sout.pushes[0];
    assert_eq!(
        to, t.w.devices[0].client.device,
        "pushed to the old session's device"
    );
    assert_eq!(env.session, Some(old));
    assert_eq!(t.w.devices[0].pushes.len(), 1);
    assert!(t.w.devices[1].pushes.is_empty());
    t.settle(1);
    t.settle(0);
    assert!(t.w.holds_session(1));
    assert!(!t.w.holds_session(0), "the first device lost its session");
    let us = &t.w.users[0];
    assert_eq!(us.active_count(), 1);
    assert_eq!(us.sessions[0].device, t.w.devices[1].client.device);
}

// ---------------------------------------------------------------- 7.1.1: recovery

/// CR 7.1.1: the client SHOULD store the Session-ID crash-safely; a crash keeps it.
#[test]
fn session_id_is_stored_and_survives_a_crash() {
    let mut t = T::with(&[]);
    t.login(0);
    let sid = t.session(0);
    assert_eq!(t.w.devices[0].client.stored.map(|s| s.session), Some(sid));
    t.act(Action::Crash(0));
    assert_eq!(t.w.devices[0].client.stored.map(|s| s.session), Some(sid));
    assert_eq!(
        t.w.devices[0].client.ctx, None,
        "the session context is volatile"
    );
    let mut t = T::with(&["client.stores_session_id=false"]);
    t.login(0);
    assert_eq!(t.w.devices[0].client.stored, None);
}

/// CR 7.1.1: with a stored Session-ID the client re-establishes first; after a successful
/// recovery without its context it MUST log out and log in again; the recovered context is
/// the context at termination.
#[test]
fn recovery_first_then_logout_and_login_again() {
    let mut t = T::with(&[]);
    t.login(0);
    let sid = t.session(0);
    t.act(Action::User(0, UserAction::Join(0)));
    t.settle(0);
    let ctx = t.w.users[0].sessions[0].ctx;
    assert_eq!(ctx.groups, 1);
    crash_and_restart(&mut t, 0);
    assert_eq!(
        t.last_login_request(0).session_id,
        Some(sid),
        "recovery first, with the stored Session-ID"
    );
    let step = t.act(Action::ServerReceives(0));
    assert!(step
        .server
        .unwrap()
        .events
        .contains(&ServerEvent::Admitted {
            session: sid,
            client_id: t.w.devices[0].client.client_id(&t.cfg),
            recovered: true
        }));
    assert_eq!(
        t.w.users[0].sessions[0].ctx, ctx,
        "recovered context unchanged"
    );
    t.act(Action::ClientReceives(0));
    assert_eq!(
        t.phase(0),
        Phase::LoggingOut {
            session: sid,
            relogin: true
        }
    );
    t.settle(0);
    assert!(t.w.holds_session(0));
    assert_ne!(t.session(0), sid, "a fresh session after the logout");
    assert_eq!(t.login_codes(), vec![200, 200, 200]);
    assert_eq!(t.w.users[0].roster, 0, "the logout left the groups");
    assert_eq!(t.active(0), 1);
}

/// `client.logout_after_recovery = false` breaks the MUST: the client carries on in the
/// recovered session with a context it does not know.
#[test]
fn without_logout_after_recovery_the_client_stays_in_the_recovered_session() {
    let mut t = T::with(&["client.logout_after_recovery=false"]);
    t.login(0);
    let sid = t.session(0);
    crash_and_restart(&mut t, 0);
    t.settle(0);
    assert_eq!(t.phase(0), Phase::Established { session: sid });
}

/// A connection loss without a crash: the client remembers the context, re-establishes and
/// carries on without logging out.
#[test]
fn recovery_with_context_carries_on() {
    let mut t = T::with(&["env.max_connection_losses=1"]);
    t.login(0);
    let sid = t.session(0);
    t.act(Action::LoseConnection(0));
    t.act(Action::RetryTimer(0));
    t.settle(0);
    assert_eq!(t.phase(0), Phase::Established { session: sid });
    assert!(!t.sent_by_client(0).contains(&Primitive::LogoutRequest));
}

/// CR 7.1.1: a server that does not recover answers the first Login-Request 502, the user is
/// not logged in, and the client logs in normally without the Session-ID.
#[test]
fn unsupported_recovery_answers_502_and_the_client_logs_in_without_session_id() {
    let mut t = T::with(&[
        "server.recovery=unsupported",
        "client.on_608=new-client-id",
        "client.client_id_pool=2",
    ]);
    t.login(0);
    crash_and_restart(&mut t, 0);
    let before = t.active(0);
    let step = t.act(Action::ServerReceives(0));
    assert!(
        step.server.unwrap().events.is_empty(),
        "the user MUST NOT be logged in after a failed recovery"
    );
    assert_eq!(t.active(0), before);
    let step = t.act(Action::ClientReceives(0));
    assert_eq!(step.client.unwrap().store, Some(StoreOp::Remove));
    assert_eq!(t.last_login_request(0).session_id, None);
    assert_eq!(t.login_codes(), vec![200, 502]);
}

/// 502 comes on the first Login-Request of a 4-way login too.
#[test]
fn unsupported_recovery_answers_the_first_four_way_request() {
    let mut t = T::with(&["server.recovery=unsupported", "client.login=four-way"]);
    t.login(0);
    crash_and_restart(&mut t, 0);
    assert!(t.last_login_request(0).digest_schema);
    t.act(Action::ServerReceives(0));
    assert_eq!(t.login_codes().last(), Some(&502));
}

/// `reject-422` (Baraza): the refusal is 422, not 502. The CR client logs in fresh; the
/// Android client retries the stale Session-ID.
#[test]
fn reject_422_and_the_clients_answers_to_it() {
    let mut t = T::with(&["server.recovery=reject-422"]);
    t.login(0);
    crash_and_restart(&mut t, 0);
    t.act(Action::ServerReceives(0));
    t.act(Action::ClientReceives(0));
    assert_eq!(t.login_codes(), vec![200, 422]);
    assert_eq!(t.last_login_request(0).session_id, None, "fresh-login");

    let mut t = T::with(&[
        "server.recovery=reject-422",
        "client.on_recovery_failure=retry-stale-unless-502",
    ]);
    t.login(0);
    let sid = t.session(0);
    crash_and_restart(&mut t, 0);
    t.settle(0);
    t.act(Action::RetryTimer(0));
    assert_eq!(
        t.last_login_request(0).session_id,
        Some(sid),
        "Android retries the stale Session-ID"
    );
    assert_eq!(t.w.devices[0].client.stored.map(|s| s.session), Some(sid));
}

/// `retry-stale` ignores even 502 (violating 7.1.1).
#[test]
fn retry_stale_retries_after_502() {
    let mut t = T::with(&[
        "server.recovery=unsupported",
        "client.on_recovery_failure=retry-stale",
    ]);
    t.login(0);
    let sid = t.session(0);
    crash_and_restart(&mut t, 0);
    t.settle(0);
    t.act(Action::RetryTimer(0));
    assert_eq!(t.last_login_request(0).session_id, Some(sid));
}

/// `reset-context` recovers the session with an empty context (violating 7.1.1).
#[test]
fn reset_context_recovers_with_an_empty_context() {
    let mut t = T::with(&["server.recovery=reset-context"]);
    t.login(0);
    t.act(Action::User(0, UserAction::Join(0)));
    t.settle(0);
    crash_and_restart(&mut t, 0);
    t.act(Action::ServerReceives(0));
    assert_eq!(t.w.users[0].sessions[0].ctx.groups, 0);
}

/// `fallback-login` answers 502 but logs the user in (violating 7.1.1).
#[test]
fn fallback_login_answers_502_but_logs_in() {
    let mut t = T::with(&[
        "server.recovery=fallback-login",
        "server.duplicate_client_id=allow",
    ]);
    t.login(0);
    crash_and_restart(&mut t, 0);
    let step = t.act(Action::ServerReceives(0));
    assert_eq!(t.login_codes().last(), Some(&502));
    assert!(matches!(
        step.server.unwrap().events[0],
        ServerEvent::Admitted {
            recovered: false,
            ..
        }
    ));
    assert_eq!(t.active(0), 2);
}

/// `client.recover_on_restart = false` (Android after a reboot): the stored Session-ID is
/// ignored and the client logs in with its configured Client-ID.
#[test]
fn without_recover_on_restart_the_client_logs_in_fresh() {
    let mut t = T::with(&["client.recover_on_restart=false"]);
    t.login(0);
    crash_and_restart(&mut t, 0);
    assert_eq!(t.last_login_request(0).session_id, None);
    t.settle(0);
    assert_eq!(t.login_codes(), vec![200, 608]);
}

/// A crash after the Login-Request was sent and before its answer: the request still reaches
/// the server, which makes a session; the answer is lost with the connection.
#[test]
fn crash_between_login_request_and_answer_orphans_a_session() {
    let mut t = T::with(&["client.stores_session_id=false"]);
    t.act(Action::Start(0));
    t.act(Action::Crash(0));
    let step = t.act(Action::ServerReceives(0));
    assert!(step.request.unwrap().orphan);
    assert_eq!(t.active(0), 1, "the server made a session");
    assert_eq!(t.w.devices[0].to_client, None, "its answer is lost");
    t.act(Action::Start(0));
    t.settle(0);
    assert_eq!(
        t.login_codes(),
        vec![200, 608],
        "the orphaned session blocks the Client-ID"
    );
}

// ---------------------------------------------------------------- 6.6: logout, Disconnect

/// CR 6.6.1: the server answers Logout with Status, removes the user from the joined groups,
/// and the client removes its stored Session-ID.
#[test]
fn logout_answers_status_leaves_groups_and_removes_the_stored_id() {
    let mut t = T::with(&["env.user_logouts=true"]);
    t.login(0);
    t.act(Action::User(0, UserAction::Join(0)));
    t.settle(0);
    assert_eq!(t.w.users[0].roster, 1);
    t.act(Action::User(0, UserAction::Logout));
    let steps = t.settle(0);
    assert!(matches!(
        steps[0].server.as_ref().unwrap().reply.unwrap().body,
        Primitive::Status {
            result: ResultCode::Success
        }
    ));
    assert_eq!(t.w.users[0].roster, 0);
    assert_eq!(t.active(0), 0);
    assert_eq!(t.w.devices[0].client.stored, None);
    assert_eq!(t.phase(0), Phase::Idle);
}

/// Knobs that break 6.6.1 / 7.1.1 at logout.
#[test]
fn logout_knobs_that_break_the_cr() {
    let mut t = T::with(&[
        "env.user_logouts=true",
        "server.logout_leaves_groups=false",
        "server.logout_reply=disconnect",
        "client.remove_stored_on_logout=false",
    ]);
    t.login(0);
    t.act(Action::User(0, UserAction::Join(0)));
    t.settle(0);
    t.act(Action::User(0, UserAction::Logout));
    let steps = t.settle(0);
    assert!(matches!(
        steps[0].server.as_ref().unwrap().reply.unwrap().body,
        Primitive::Disconnect { .. }
    ));
    assert_eq!(t.w.users[0].roster, 1, "still a member of the group");
    assert!(
        t.w.devices[0].client.stored.is_some(),
        "stored Session-ID kept"
    );
    assert_eq!(
        t.phase(0),
        Phase::Idle,
        "a CSP 1.1 Disconnect still ends the logout"
    );
}

/// CR 6.6.1: an expired session is ended with a Disconnect (600) that carries no
/// Transaction-ID; the client does not answer it and removes its stored Session-ID.
#[test]
fn expiry_sends_disconnect_without_transaction_id_and_the_client_does_not_answer() {
    let mut t = T::with(&["server.ttl_expiry=true"]);
    t.login(0);
    let step = t.act(Action::Expire { user: 0, index: 0 });
    let sout = step.server.unwrap();
    let (_, d) = sout.pushes[0];
    assert_eq!(
        d.body,
        Primitive::Disconnect {
            result: ResultCode::SessionExpired
        }
    );
    assert_eq!(d.tid, None);
    let step = t.act(Action::ClientReceivesPush(0));
    let out = step.client.unwrap();
    assert_eq!(out.send, None, "the client MUST NOT answer a Disconnect");
    assert_eq!(out.store, Some(StoreOp::Remove));
    assert!(matches!(t.phase(0), Phase::Backoff(_)));
}

/// Knobs that break the Disconnect rules, and expiry switched off.
#[test]
fn disconnect_knobs() {
    let mut t = T::with(&[
        "server.ttl_expiry=true",
        "server.disconnect_has_tid=true",
        "client.answers_disconnect=true",
    ]);
    t.login(0);
    let step = t.act(Action::Expire { user: 0, index: 0 });
    assert!(step.server.unwrap().pushes[0].1.tid.is_some());
    let step = t.act(Action::ClientReceivesPush(0));
    assert!(matches!(
        step.client.unwrap().send.unwrap().body,
        Primitive::Status { .. }
    ));

    let mut t = T::with(&["server.ttl_expiry=true", "server.sends_disconnect=false"]);
    t.login(0);
    let step = t.act(Action::Expire { user: 0, index: 0 });
    assert!(
        step.server.unwrap().pushes.is_empty(),
        "Baraza deletes silently"
    );
    assert_eq!(t.active(0), 0);

    let t = T::with(&["server.ttl_expiry=false"]);
    let mut enabled = Vec::new();
    t.w.actions(&t.cfg, &mut enabled);
    assert!(!enabled.iter().any(|a| matches!(a, Action::Expire { .. })));
}

/// A server that keeps an expired session's context lets the client recover it.
#[test]
fn kept_context_is_recovered_after_expiry() {
    let mut t = T::with(&[
        "server.ttl_expiry=true",
        "server.keep_context_after_termination=true",
        "server.sends_disconnect=false",
    ]);
    t.login(0);
    let sid = t.session(0);
    t.act(Action::User(0, UserAction::Join(0)));
    t.settle(0);
    t.act(Action::Expire { user: 0, index: 0 });
    assert_eq!(t.active(0), 0);
    assert_eq!(t.w.users[0].sessions.len(), 1, "context kept");
    crash_and_restart(&mut t, 0);
    t.act(Action::ServerReceives(0));
    assert_eq!(t.w.users[0].active_session(sid).unwrap().ctx.groups, 1);
}

// ---------------------------------------------------------------- 5.1.3: limits, context, presence

/// 5.1.3 MAY limit: past `max_sessions_per_user` the answer is 610; past
/// `max_sessions_total`, 609.
#[test]
fn session_limits_answer_610_and_609() {
    let mut t = T::with(&["env.devices_per_user=2", "server.max_sessions_per_user=1"]);
    t.login(0);
    t.act(Action::Start(1));
    t.settle(1);
    assert_eq!(t.login_codes(), vec![200, 610]);
    let mut t = T::with(&["env.users=2", "server.max_sessions_total=1"]);
    t.login(0);
    t.act(Action::Start(1));
    t.settle(1);
    assert_eq!(t.login_codes(), vec![200, 609]);
}

/// `limit_applies_to_recovery = false`: recovering a kept session can exceed the limit.
#[test]
fn recovery_can_exceed_the_limit_when_the_limit_does_not_apply_to_it() {
    for (applies, code, active) in [(true, 610, 1), (false, 200, 2)] {
        let mut t = T::with(&[
            "env.devices_per_user=2",
            "server.max_sessions_per_user=1",
            "server.ttl_expiry=true",
            "server.keep_context_after_termination=true",
            "server.sends_disconnect=false",
            &format!("server.limit_applies_to_recovery={applies}"),
        ]);
        t.login(0);
        t.act(Action::Expire { user: 0, index: 0 });
        t.login(1);
        crash_and_restart(&mut t, 0);
        t.act(Action::ServerReceives(0));
        assert_eq!(t.login_codes().last(), Some(&code));
        assert_eq!(t.active(0), active);
    }
}

/// 5.1.3: the contexts of parallel sessions are independent (`per-session`); `per-user`
/// shares one context.
#[test]
fn session_contexts_are_independent_per_session() {
    for (scope, other_groups) in [("per-session", 0), ("per-user", 1)] {
        let mut t = T::with(&[
            "env.devices_per_user=2",
            &format!("server.context_scope={scope}"),
        ]);
        t.login(0);
        t.login(1);
        t.act(Action::User(0, UserAction::Join(0)));
        t.settle(0);
        assert_eq!(t.w.users[0].sessions[1].ctx.groups, other_groups, "{scope}");
    }
}

/// 5.1.3: the presence of all sessions is merged into one document (`merged`);
/// `last-writer` keeps only the last update.
#[test]
fn presence_is_merged_across_sessions() {
    for (merge, entries) in [("merged", 2), ("last-writer", 1)] {
        let mut t = T::with(&[
            "env.devices_per_user=2",
            "env.presence_values=2",
            &format!("server.presence_merge={merge}"),
        ]);
        t.login(0);
        t.login(1);
        t.act(Action::User(0, UserAction::Presence(1)));
        t.settle(0);
        t.act(Action::User(1, UserAction::Presence(2)));
        t.settle(1);
        assert_eq!(
            t.w.users[0].presence_document(&t.cfg).len(),
            entries,
            "{merge}"
        );
    }
}

// ---------------------------------------------------------------- 7.1: login forms, negotiation

/// 7.1: the server supports 2-way and 4-way logins; 4-way is a challenge (401 with a Nonce)
/// and a digest.
#[test]
fn login_two_way_and_four_way_supported() {
    let mut t = T::with(&["client.login=four-way"]);
    t.login(0);
    assert_eq!(t.login_codes(), vec![401, 200]);
    let reqs: Vec<_> = t
        .sent_by_client(0)
        .into_iter()
        .filter_map(|p| match p {
            Primitive::LoginRequest(lr) => Some(lr),
            _ => None,
        })
        .collect();
    assert!(reqs[0].digest_schema && !reqs[0].password && reqs[0].digest_bytes.is_none());
    assert!(reqs[1].digest_bytes.is_some() && !reqs[1].password);
    let mut t = T::with(&["client.login=two-way"]);
    t.login(0);
    assert_eq!(t.login_codes(), vec![200]);
    assert!(t.last_login_request(0).password);
}

/// 7.1: a client MUST choose one access control: every Login-Request carries either the
/// password or the digest schema/bytes, never both.
#[test]
fn client_chooses_one_access_control() {
    for kind in ["two-way", "four-way"] {
        let mut t = T::with(&[&format!("client.login={kind}")]);
        t.login(0);
        for p in t.sent_by_client(0) {
            if let Primitive::LoginRequest(lr) = p {
                assert!(
                    lr.password != (lr.digest_schema || lr.digest_bytes.is_some()),
                    "{kind}: {lr:?}"
                );
            }
        }
    }
}

/// A wrong digest is refused with 409.
#[test]
fn wrong_digest_is_refused() {
    let mut t = T::with(&["client.login=four-way"]);
    t.act(Action::Start(0));
    t.act(Action::ServerReceives(0));
    t.act(Action::ClientReceives(0));
    let inflight = &mut t.w.devices[0].to_server[0];
    if let Primitive::LoginRequest(lr) = &mut inflight.env.body {
        lr.digest_bytes = Some(lr.digest_bytes.unwrap() ^ 1);
    }
    t.act(Action::ServerReceives(0));
    assert_eq!(t.login_codes(), vec![401, 409]);
}

/// 7.1: service negotiation after login, capability negotiation when the server asks (T).
#[test]
fn negotiation_after_login() {
    let mut t = T::with(&[]);
    t.login(0);
    let sent = t.sent_by_client(0);
    assert_eq!(sent[1], Primitive::ServiceRequest);
    assert_eq!(sent[2], Primitive::ClientCapabilityRequest);
    let mut t = T::with(&["client.capability_negotiation=never"]);
    t.login(0);
    assert!(!t
        .sent_by_client(0)
        .contains(&Primitive::ClientCapabilityRequest));
    let mut t = T::with(&["server.capability_request=never"]);
    t.login(0);
    assert!(!t
        .sent_by_client(0)
        .contains(&Primitive::ClientCapabilityRequest));
}

/// 7.1: the combined login+negotiation is used on fresh logins only (never on a
/// re-establishment), not in the first 4-way request; after it the server answers
/// `CapabilityRequest` F (`when-needed`), or T (`always`, violating).
#[test]
fn combined_negotiation() {
    let mut t = T::with(&[
        "client.combined_negotiation=fresh-login",
        "client.login=four-way",
    ]);
    t.login(0);
    let reqs: Vec<_> = t
        .sent_by_client(0)
        .into_iter()
        .filter_map(|p| match p {
            Primitive::LoginRequest(lr) => Some(lr),
            _ => None,
        })
        .collect();
    assert!(!reqs[0].negotiation && reqs[1].negotiation);
    assert_eq!(t.sent_by_client(0).len(), 2, "no separate negotiation");
    crash_and_restart(&mut t, 0);
    assert!(
        !t.last_login_request(0).negotiation,
        "never on a re-establishment"
    );

    let mut t = T::with(&[
        "client.combined_negotiation=always",
        "server.capability_request=always",
    ]);
    t.login(0);
    assert!(t.last_login_request(0).negotiation);
    assert!(t
        .sent_by_client(0)
        .contains(&Primitive::ClientCapabilityRequest));
    crash_and_restart(&mut t, 0);
    assert!(t.last_login_request(0).negotiation && t.last_login_request(0).session_id.is_some());
}

/// 7.1: 436 asks for the user's replies; the client resends the login with them; non-conformant
/// replies get 607; `notify` sends a System Message with a successful login.
#[test]
fn system_message_flow() {
    let mut t = T::with(&["server.system_message=require-response"]);
    t.login(0);
    assert_eq!(t.login_codes(), vec![436, 200]);
    assert_eq!(t.last_login_request(0).system_message_response, Some(true));
    let mut t = T::with(&[
        "server.system_message=require-response",
        "client.system_message_replies_conform=false",
    ]);
    t.act(Action::Start(0));
    t.settle(0);
    assert_eq!(t.login_codes(), vec![436, 607]);
    let mut t = T::with(&[
        "server.system_message=require-response",
        "client.on_436=continue",
    ]);
    t.act(Action::Start(0));
    t.settle(0);
    assert_eq!(
        t.sent_by_client(0)[1],
        Primitive::ServiceRequest,
        "carried on after 436"
    );
    let mut t = T::with(&["server.system_message=notify"]);
    t.login(0);
    assert!(t
        .log
        .iter()
        .any(|(_, _, e)| matches!(e.body, Primitive::LoginResponse(r) if r.system_message)));
}

/// Keep-alive: the TimeToLive asked for is clamped to the server's maximum.
#[test]
fn keep_alive_time_is_granted_within_the_server_maximum() {
    let mut t = T::with(&[
        "env.keep_alives=true",
        "client.ttl_s=900",
        "server.max_keep_alive_s=300",
    ]);
    t.login(0);
    assert_eq!(t.w.devices[0].client.keep_alive_s, 300);
    t.act(Action::KeepAliveTimer(0));
    let steps = t.settle(0);
    assert!(matches!(
        steps[0].server.as_ref().unwrap().reply.unwrap().body,
        Primitive::KeepAliveResponse {
            keep_alive_s: Some(300),
            ..
        }
    ));
    assert!(t.w.holds_session(0));
}

/// Every shipped variant parses.
#[test]
fn every_named_variant_parses() {
    let dir = variants_dir();
    let named = named_variants(&dir).unwrap();
    assert!(named.len() >= 5);
    for (name, _) in named {
        let cfg = resolve_variant(&name, &dir)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .1
            .cfg;
        assert!(!cfg.description.is_empty(), "{name} has a description");
    }
    let pre = resolve_variant("pre-cr", &dir).unwrap().1.cfg;
    assert_eq!(
        pre.server.duplicate_client_id,
        DuplicateClientId::RejectGeneric
    );
    assert!(!pre.client.stores_session_id && !pre.server.ttl_expiry);
    assert_eq!(pre.server.recovery, Recovery::Unsupported);
    let post = resolve_variant("post-cr", &dir).unwrap().1.cfg;
    assert_eq!(post.server, ServerConfig::default());
    assert!(resolve_variant("no-such-variant", &dir)
        .unwrap_err()
        .to_string()
        .contains("post-cr"));
}

/// CR 7.1.1: the stored Session-ID is removed upon Disconnect even when the Disconnect comes
/// while the client is not using the session (it restarted and is logging in again).
#[test]
fn disconnect_of_the_stored_session_removes_it_while_logging_in() {
    let mut t = T::with(&["server.ttl_expiry=true"]);
    t.login(0);
    let sid = t.session(0);
    t.act(Action::Crash(0));
    t.act(Action::Start(0));
    assert!(matches!(t.phase(0), Phase::LoggingIn { .. }));
    t.act(Action::Expire { user: 0, index: 0 });
    let step = t.act(Action::ClientReceivesPush(0));
    assert_eq!(step.client.unwrap().store, Some(StoreOp::Remove));
    assert_eq!(
        t.w.devices[0].client.stored, None,
        "stored #{} removed",
        sid.0
    );
}

/// `client.capability_negotiation = never` also holds after a combined negotiation that the
/// server answers with CapabilityRequest T.
#[test]
fn capability_negotiation_never_after_combined_login() {
    let mut t = T::with(&[
        "client.combined_negotiation=fresh-login",
        "server.capability_request=always",
        "client.capability_negotiation=never",
    ]);
    t.login(0);
    assert!(!t
        .sent_by_client(0)
        .contains(&Primitive::ClientCapabilityRequest));
}
