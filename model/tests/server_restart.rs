//! `UserServer::restart`, the fault the simulator's `server-restart` outage injects: every
//! active session of the user ends at once, without a Disconnect, and its context is kept
//! for a recovery exactly when `server.keep_context_after_termination` says so.

use imps_model::client::{Client, ClientOut, ClientTimer, Phase};
use imps_model::codes::ResultCode;
use imps_model::config::Config;
use imps_model::msg::{DeviceId, Primitive, UserId};
use imps_model::server::{Origin, ServerOut, ServerShared, UserServer};
use imps_model::variant::{resolve_variant, variants_dir};

/// Run client `c` against the server until it sends nothing more; the answers' result codes.
fn exchange(
    cfg: &Config,
    c: &mut Client,
    us: &mut UserServer,
    sh: &mut ServerShared,
    mut out: ClientOut,
) -> Vec<ResultCode> {
    let origin = Origin {
        user: c.user,
        device: c.device,
    };
    let mut codes = Vec::new();
    for _ in 0..16 {
        let Some(req) = out.send.take() else { break };
        let mut sout = ServerOut::default();
        us.handle(cfg, sh, origin, 0, &req, &mut sout);
        let reply = sout.reply.expect("every request is answered");
        codes.extend(reply.body.result());
        out = ClientOut::default();
        c.on_message(cfg, &reply, &mut out);
    }
    codes
}

fn logged_in(sets: &[&str]) -> (Config, Client, UserServer, ServerShared) {
    let mut cfg = resolve_variant("post-cr", &variants_dir()).unwrap().1.cfg;
    for s in sets {
        cfg.apply_set(s).unwrap();
    }
    let (mut us, mut sh) = (UserServer::default(), ServerShared::default());
    let mut c = Client::new(UserId(0), DeviceId(0));
    let mut out = ClientOut::default();
    c.start(&cfg, &mut out);
    exchange(&cfg, &mut c, &mut us, &mut sh, out);
    assert!(
        matches!(c.phase, Phase::Established { .. }),
        "{:?}",
        c.phase
    );
    assert_eq!((us.active_count(), sh.active_total), (1, 1));
    (cfg, c, us, sh)
}

/// After the restart, the device crashes and starts again: it asks to recover its stored
/// session.
fn crash_and_start(
    cfg: &Config,
    c: &mut Client,
    us: &mut UserServer,
    sh: &mut ServerShared,
) -> Vec<ResultCode> {
    c.crash();
    let mut out = ClientOut::default();
    c.start(cfg, &mut out);
    let asks = matches!(out.send.map(|e| e.body), Some(Primitive::LoginRequest(lr)) if lr.session_id.is_some());
    assert!(asks, "recovery first: {:?}", out.send);
    let mut codes = exchange(cfg, c, us, sh, out);
    if matches!(c.phase, Phase::Backoff(_)) {
        let mut out = ClientOut::default();
        c.on_timer(cfg, ClientTimer::Retry, &mut out);
        codes.extend(exchange(cfg, c, us, sh, out));
    }
    codes
}

#[test]
fn a_restart_that_keeps_contexts_lets_a_restarted_client_recover_its_session() {
    let (cfg, mut c, mut us, mut sh) = logged_in(&["server.keep_context_after_termination=true"]);
    assert_eq!(us.restart(&cfg, &mut sh), 1);
    assert_eq!(
        (us.active_count(), sh.active_total, us.sessions.len()),
        (0, 0, 1),
        "kept, inactive"
    );
    let codes = crash_and_start(&cfg, &mut c, &mut us, &mut sh);
    // Recovered (200, no 502); having lost its context in the crash, the post-CR client then
    // logs out and in again.
    assert_eq!(codes.first(), Some(&ResultCode::Success), "{codes:?}");
    assert!(
        !codes.contains(&ResultCode::CouldNotRecoverSession),
        "{codes:?}"
    );
    assert!(
        matches!(c.phase, Phase::Established { .. }),
        "{:?}",
        c.phase
    );
}

#[test]
fn a_restart_that_keeps_nothing_makes_the_recovery_fail_with_502_then_a_fresh_login() {
    let (cfg, mut c, mut us, mut sh) = logged_in(&["server.keep_context_after_termination=false"]);
    let id = c.phase.session();
    assert_eq!(us.restart(&cfg, &mut sh), 1);
    assert_eq!((us.sessions.len(), sh.active_total), (0, 0), "gone");
    let codes = crash_and_start(&cfg, &mut c, &mut us, &mut sh);
    assert_eq!(
        codes.first(),
        Some(&ResultCode::CouldNotRecoverSession),
        "{codes:?}"
    );
    assert!(
        matches!(c.phase, Phase::Established { .. }),
        "{:?} {codes:?}",
        c.phase
    );
    assert!(
        us.sessions.iter().all(|s| Some(s.id) != id),
        "a new session"
    );
    assert_eq!(us.restart(&cfg, &mut sh), 1);
    assert_eq!(us.restart(&cfg, &mut sh), 0, "nothing left to end");
}

#[test]
fn a_client_that_lives_on_finds_out_at_its_next_request_and_logs_in_afresh() {
    for keep in [false, true] {
        let (cfg, mut c, mut us, mut sh) =
            logged_in(&[&format!("server.keep_context_after_termination={keep}")]);
        us.restart(&cfg, &mut sh);
        let mut out = ClientOut::default();
        c.on_timer(
            &cfg,
            ClientTimer::KeepAlive {
                after_s: c.keep_alive_s,
            },
            &mut out,
        );
        let codes = exchange(&cfg, &mut c, &mut us, &mut sh, out);
        assert_eq!(codes, vec![ResultCode::NotLoggedIn], "keep {keep}");
        let mut out = ClientOut::default();
        c.on_timer(&cfg, ClientTimer::Retry, &mut out);
        let fresh = matches!(out.send.map(|e| e.body), Some(Primitive::LoginRequest(lr)) if lr.session_id.is_none());
        assert!(
            fresh,
            "keep {keep}: a 604 ends the session for the client: {:?}",
            out.send
        );
        exchange(&cfg, &mut c, &mut us, &mut sh, out);
        assert!(
            matches!(c.phase, Phase::Established { .. }),
            "keep {keep}: {:?}",
            c.phase
        );
        assert_eq!(sh.active_total, 1);
    }
}
