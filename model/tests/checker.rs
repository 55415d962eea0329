//! The checker against the CR: pinned state counts and counterexamples, one can-fail test per
//! safety property (a knob value that breaks it, and the checker finds it), the liveness checks
//! on cycles, and a cross-check of the safety verdicts with stateright's own BFS.

mod common;

use imps_model::checker::{check, Options, Outcome, PropResult};
use imps_model::config::Config;
use imps_model::props::{Kind, Prop};
use imps_model::variant::{resolve_variant, variants_dir, Verdict};
use imps_model::world::{Action, World};

fn variant(name: &str, sets: &[&str]) -> Config {
    let mut cfg = resolve_variant(name, &variants_dir()).unwrap().1.cfg;
    for s in sets {
        cfg.apply_set(s).unwrap();
    }
    cfg
}

fn run(cfg: &Config) -> Outcome {
    check(cfg, "test", Options::default(), &mut |_| {}).unwrap()
}

/// [`run`] without the symmetry reduction: every permutation of the devices stored.
fn run_unreduced(cfg: &Config) -> Outcome {
    let opts = Options {
        symmetry: false,
        ..Options::default()
    };
    check(cfg, "test", opts, &mut |_| {}).unwrap()
}

fn result(o: &Outcome, p: Prop) -> &PropResult {
    o.results
        .iter()
        .find(|r| r.prop == p)
        .expect("every property has a result")
}

fn verdict(o: &Outcome, p: Prop) -> Verdict {
    result(o, p).verdict
}

/// Pin the size of the smallest variants: a model change shows up here first.
#[test]
fn state_counts_are_pinned() {
    for (name, states, edges) in [
        ("pre-cr", 57, 90),
        ("post-cr", 121, 160),
        ("post-cr-no-recovery", 66, 99),
    ] {
        let o = run(&variant(name, &[]));
        assert_eq!((o.states, o.edges), (states, edges), "{name}");
    }
}

/// The pre-CR deadlock, pinned as the sequence of events of its shortest counterexample: a crash
/// between the Login-Request and its answer leaves a session the client never learns of, and the
/// client, refused with 503 without a reason, retries the same Client-ID forever.
#[test]
fn pre_cr_deadlock_counterexample_is_pinned() {
    let o = run(&variant("pre-cr", &[]));
    let r = result(&o, Prop::NoDeadlock);
    assert_eq!(r.verdict, Verdict::Violated);
    let t = r.trace.as_ref().unwrap();
    let actions: Vec<Action> = t.steps.iter().map(|s| s.action).collect();
    use Action::*;
    assert_eq!(
        actions,
        vec![
            Start(0),
            Crash(0),
            Start(0),
            ServerReceives(0),
            ServerReceives(0),
            ClientReceives(0),
            RetryTimer(0)
        ]
    );
    assert_eq!(t.loop_start, Some(4));
    let text = t.text();
    assert!(text.contains("Login-Response 503"), "{text}");
    assert!(text.contains("LOST"), "{text}");
    // The trace renders in every format.
    assert!(t.mermaid().starts_with("sequenceDiagram"));
    assert!(t.mermaid().contains("loop forever"));
    assert!(t.xml().contains("<WV-CSP-Message"));
    assert_eq!(
        t.itf()["states"].as_array().unwrap().len(),
        actions.len() + 1
    );
}

/// The headline: the CR removes the deadlock within post-cr's bounds, and the finding of
/// FINDINGS.md: one more crash than Client-IDs in the pool, without expiry, brings it back.
#[test]
fn post_cr_is_free_of_the_deadlock_within_its_bounds() {
    let o = run(&variant("post-cr", &[]));
    assert_eq!(verdict(&o, Prop::NoDeadlock), Verdict::Holds);
    assert_eq!(verdict(&o, Prop::EventuallyLoggedInFair), Verdict::Holds);
    assert_eq!(
        verdict(&o, Prop::ReachRecovery),
        Verdict::Holds,
        "not vacuous: recovery happens"
    );
    assert_eq!(verdict(&o, Prop::ReachLogoutAfterRecovery), Verdict::Holds);
    let o = run(&variant("post-cr", &["env.max_crashes=2"]));
    assert_eq!(verdict(&o, Prop::NoDeadlock), Verdict::Violated);
    let o = run(&variant(
        "post-cr",
        &["env.max_crashes=2", "client.client_id_pool=3"],
    ));
    assert_eq!(verdict(&o, Prop::NoDeadlock), Verdict::Holds);
    let o = run(&variant(
        "post-cr",
        &[
            "env.max_crashes=2",
            "client.on_608=retry-same",
            "client.client_id_pool=1",
            "server.ttl_expiry=true",
        ],
    ));
    assert_eq!(
        verdict(&o, Prop::NoDeadlock),
        Verdict::Holds,
        "expiry frees the orphaned Client-IDs"
    );
}

/// CR 5.1.3 when a user's devices take their Client-IDs from one pool (`client.client_id_scope
/// = user`, an application-wide Client-ID): with two devices, one crash inside a login and a
/// shared pool of two, the session orphaned by the crash and the other device's session hold
/// both Client-IDs, and the crashed device is refused 608 on each of them forever; a pool of
/// three leaves it one. Two crashes exhaust a pool of three the same way. Bounds: post-cr (no
/// expiry, `client.on_608 = new-client-id`). The sizes and verdicts are what the checker
/// found; a change of the model that changes an answer fails here.
#[test]
fn shared_client_id_pool_deadlocks_with_two_devices_and_one_crash() {
    use Verdict::{Holds, Violated};
    for (pool, crashes, states, dead, fair) in [
        (2, 1, 10_332, Violated, Violated),
        (3, 1, 13_488, Holds, Holds),
        (3, 2, 76_494, Violated, Violated),
    ] {
        let pool_set = format!("client.client_id_pool={pool}");
        let crash_set = format!("env.max_crashes={crashes}");
        let cfg = variant(
            "post-cr",
            &[
                "env.devices_per_user=2",
                "client.client_id_scope=user",
                &pool_set,
                &crash_set,
            ],
        );
        let o = run(&cfg);
        let name = format!("pool {pool}, {crashes} crash(es)");
        assert_eq!(o.concrete_states, states, "{name}");
        assert_eq!(
            (
                verdict(&o, Prop::NoDeadlock),
                verdict(&o, Prop::EventuallyLoggedInFair)
            ),
            (dead, fair),
            "{name}"
        );
        assert_eq!(verdict(&o, Prop::ClientIdUniquePerUser), Holds, "{name}");
        assert_eq!(verdict(&o, Prop::Reach608), Holds, "{name}");
        if dead == Holds {
            continue;
        }
        // The trap: every Client-ID of the shared pool is held by an active session, one of
        // them the other device's, and the stuck device holds none.
        let t = result(&o, Prop::NoDeadlock).trace.as_ref().unwrap();
        let stuck = t.device.expect("the deadlock names its device") as usize;
        let w = &t.steps.last().unwrap().state;
        assert!(!w.holds_session(stuck), "{name}");
        let mut held: Vec<String> = w.users[0]
            .active()
            .map(|s| s.client_id.to_string())
            .collect();
        held.sort();
        let all: Vec<String> = (0..pool).map(|c| format!("u0/c{c}")).collect();
        assert_eq!(held, all, "{name}: {}", t.text());
        let other = w.devices[1 - stuck].client.device;
        assert!(
            w.users[0].active().any(|s| s.device == other),
            "{name}: the other device holds one of them"
        );
    }
}

/// `client.client_id_scope = device`, the default, is the model as it was before the knob:
/// the size of two devices of one user with one crash is the one the checker gave before the
/// knob existed, setting the knob explicitly changes nothing, and at these bounds (where a
/// shared pool of two deadlocks) a pool of two per device does not.
#[test]
fn device_scope_client_ids_are_the_model_before_the_knob() {
    let implicit = run_unreduced(&variant("post-cr", &["env.devices_per_user=2"]));
    let explicit = run_unreduced(&variant(
        "post-cr",
        &["env.devices_per_user=2", "client.client_id_scope=device"],
    ));
    assert_eq!((implicit.states, implicit.edges), (10_240, 24_884));
    assert_eq!(
        (explicit.states, explicit.edges),
        (implicit.states, implicit.edges)
    );
    for (a, b) in implicit.results.iter().zip(&explicit.results) {
        assert_eq!((a.prop, a.verdict), (b.prop, b.verdict));
    }
    assert_eq!(verdict(&implicit, Prop::NoDeadlock), Verdict::Holds);
    assert_eq!(
        verdict(&implicit, Prop::EventuallyLoggedInFair),
        Verdict::Holds
    );
}

/// Each safety property can fail: a knob value that breaks it (with the smallest world that
/// shows it), and the same world with the CR's behaviour, where it holds. The "holds" half
/// counts only with the witnesses of the situation the property is about ([`Prop::phase`])
/// reached in the same run: a world that never sends a Disconnect proves nothing about
/// Disconnects.
#[test]
fn every_safety_property_can_fail() {
    // (property, knobs that bring about its situation, knobs that then break it)
    type Case = (Prop, &'static [&'static str], &'static [&'static str]);
    let cases: &[Case] = &[
        (
            Prop::ClientIdUniquePerUser,
            &[],
            &["server.duplicate_client_id=allow"],
        ),
        (
            Prop::LoginWithClientIdInUseAnswered608,
            &[],
            &["server.duplicate_client_id=reject-generic"],
        ),
        (
            Prop::NoDisconnectToAdmitLogin,
            &[],
            &["server.duplicate_client_id=replace-old"],
        ),
        (
            Prop::DisconnectAlwaysSent,
            &["server.ttl_expiry=true"],
            &["server.sends_disconnect=false"],
        ),
        (
            Prop::DisconnectHasNoTransactionId,
            &["server.ttl_expiry=true"],
            &["server.disconnect_has_tid=true"],
        ),
        (
            Prop::ClientNeverAnswersDisconnect,
            // A client that answers Disconnects acts on every one, so none is taken at once:
            // no user actions, so that sessions cannot expire faster than it takes them.
            &[
                "server.ttl_expiry=true",
                "env.groups=0",
                "env.presence_values=0",
            ],
            &["client.answers_disconnect=true"],
        ),
        (
            Prop::RecoveredContextUnchanged,
            &[],
            &["server.recovery=reset-context"],
        ),
        (
            Prop::FailedRecoveryNotLoggedIn,
            &[],
            &[
                "server.recovery=fallback-login",
                "server.duplicate_client_id=allow",
            ],
        ),
        (
            Prop::RecoveryRefusalAnswered502,
            &["server.recovery=unsupported"],
            &["server.recovery=reject-422"],
        ),
        (
            Prop::LogoutAfterRecoveryWithoutContext,
            &[],
            &["client.logout_after_recovery=false"],
        ),
        (
            Prop::StoredSessionIdRemovedOnLogout,
            &["env.user_logouts=true"],
            &["client.remove_stored_on_logout=false"],
        ),
        (
            Prop::LogoutLeavesGroups,
            &["env.user_logouts=true"],
            &["server.logout_leaves_groups=false"],
        ),
        (
            Prop::LogoutAnsweredWithStatus,
            &["env.user_logouts=true"],
            &["server.logout_reply=disconnect"],
        ),
        (
            Prop::WithinSessionLimit,
            &[
                "env.devices_per_user=2",
                "env.groups=0",
                "env.presence_values=0",
                "server.max_sessions_per_user=1",
                "server.ttl_expiry=true",
                "server.keep_context_after_termination=true",
            ],
            &[
                "server.sends_disconnect=false",
                "server.limit_applies_to_recovery=false",
            ],
        ),
        (
            Prop::SessionsIndependent,
            &[
                "env.devices_per_user=2",
                "env.max_crashes=0",
                "env.presence_values=0",
            ],
            &["server.context_scope=per-user"],
        ),
        (
            Prop::PresenceMergedAcrossSessions,
            &[
                "env.devices_per_user=2",
                "env.max_crashes=0",
                "env.groups=0",
            ],
            &["server.presence_merge=last-writer"],
        ),
        (
            Prop::NoCombinedNegotiationOnRecovery,
            &[],
            &["client.combined_negotiation=always"],
        ),
        (
            Prop::NoNegotiationInFirstFourWayRequest,
            &["client.login=four-way"],
            &["client.combined_negotiation=always"],
        ),
        (
            Prop::CapabilityNegotiationWhenRequested,
            &[],
            &["client.capability_negotiation=never"],
        ),
        (
            Prop::CapabilityRequestFalseAfterNegotiation,
            &["client.combined_negotiation=fresh-login"],
            &["server.capability_request=always"],
        ),
        (
            Prop::NoLoginContinuationAfter436,
            &["server.system_message=require-response"],
            &["client.on_436=continue"],
        ),
        (
            Prop::SessionIdStoredWhenEstablished,
            &[],
            &["client.stores_session_id=false"],
        ),
        (
            Prop::RecoveryAttemptedFirst,
            &[],
            &["client.recover_on_restart=false"],
        ),
        (
            Prop::FreshLoginAfterFailedRecoveryHasNoSessionId,
            &["server.recovery=unsupported"],
            &["client.on_recovery_failure=retry-stale"],
        ),
        (
            Prop::MultipleSessionsSupported,
            &[
                "env.devices_per_user=2",
                "env.max_crashes=0",
                "env.groups=0",
                "env.presence_values=0",
            ],
            &["server.max_sessions_per_user=1"],
        ),
        (
            Prop::SessionContextDroppedAfterLogout,
            &["server.recovery=unsupported", "server.ttl_expiry=true"],
            &["server.keep_context_after_termination=true"],
        ),
    ];
    let safety: Vec<Prop> = Prop::ALL
        .iter()
        .copied()
        .filter(|p| p.kind() == Kind::Safety)
        .collect();
    for p in &safety {
        assert!(
            cases.iter().any(|(q, _, _)| q == p),
            "{} has no can-fail case",
            p.name()
        );
    }
    // The properties the review found vacuous in their "holds" half each name their phase.
    for p in [
        Prop::DisconnectAlwaysSent,
        Prop::DisconnectHasNoTransactionId,
        Prop::ClientNeverAnswersDisconnect,
        Prop::NoLoginContinuationAfter436,
        Prop::RecoveryRefusalAnswered502,
        Prop::FreshLoginAfterFailedRecoveryHasNoSessionId,
    ] {
        assert!(!p.phase().is_empty(), "{} names no phase witness", p.name());
    }
    for (p, phase, breaks) in cases {
        let sets: Vec<&str> = phase.iter().chain(breaks.iter()).copied().collect();
        let bad = run(&variant("post-cr", &sets));
        let r = result(&bad, *p);
        assert_eq!(
            r.verdict,
            Verdict::Violated,
            "{} should fail with {sets:?}",
            p.name()
        );
        let t = r.trace.as_ref().expect("a violation has a counterexample");
        assert!(
            !t.steps.is_empty() && t.steps.iter().any(|s| !s.messages.is_empty()),
            "{}",
            p.name()
        );
        // The same world with the knobs that break it put back to the CR's values holds, and
        // reaches the situation the property is about.
        let good = run(&variant("post-cr", phase));
        assert_eq!(
            verdict(&good, *p),
            Verdict::Holds,
            "{} should hold in post-cr with {phase:?}",
            p.name()
        );
        for w in p.phase() {
            assert_eq!(
                verdict(&good, *w),
                Verdict::Holds,
                "{} holds vacuously in post-cr with {phase:?}: {} is not reached",
                p.name(),
                w.name()
            );
        }
    }
}

/// The deadlock check is exact on cycles: a client that retries the same refused login
/// forever is a cycle with no way out, found as a trap with its cycle; with expiry the same
/// cycle has a way out and the check says so.
#[test]
fn deadlock_check_is_exact_on_cycles() {
    let stuck = run(&variant("post-cr-one-client-id", &[]));
    let r = result(&stuck, Prop::NoDeadlock);
    assert_eq!(r.verdict, Verdict::Violated);
    let t = r.trace.as_ref().unwrap();
    let cycle: Vec<Action> = t.steps[t.loop_start.unwrap()..]
        .iter()
        .map(|s| s.action)
        .collect();
    assert!(
        cycle.contains(&Action::RetryTimer(0)),
        "stuck in the retry cycle: {cycle:?}"
    );
    assert!(t.text().contains("608"));
    let freed = run(&variant(
        "post-cr-one-client-id",
        &["server.ttl_expiry=true"],
    ));
    assert_eq!(verdict(&freed, Prop::NoDeadlock), Verdict::Holds);
    assert_eq!(
        verdict(&freed, Prop::EventuallyLoggedInFair),
        Verdict::Holds
    );
}

/// Pins both liveness verdicts of the real-server variants: Baraza (duplicates accepted) and
/// interVillage (last login wins) cannot deadlock on a Client-ID, at the price of the safety
/// properties they break; the Android client against a server that does not recover can.
#[test]
fn liveness_verdicts_of_the_real_server_variants() {
    for (name, dead, fair) in [
        ("baraza", Verdict::Holds, Verdict::Holds),
        ("intervillage", Verdict::Holds, Verdict::Holds),
        ("android-on-cr-server", Verdict::Violated, Verdict::Violated),
    ] {
        let o = run(&variant(name, &[]));
        assert_eq!(
            (
                verdict(&o, Prop::NoDeadlock),
                verdict(&o, Prop::EventuallyLoggedInFair)
            ),
            (dead, fair),
            "{name}"
        );
    }
}

/// The fair check finds a livelock that the plain deadlock check cannot: from every state a
/// session is still reachable, yet a weakly fair path avoids it forever.
#[test]
fn fair_check_finds_a_livelock_the_deadlock_check_misses() {
    // A client that carries on after 436 without a session gets 604 and starts over, forever
    // (the user never replies to the System Message).
    let o = run(&variant(
        "post-cr",
        &[
            "server.system_message=require-response",
            "client.on_436=continue",
        ],
    ));
    assert_eq!(verdict(&o, Prop::EventuallyLoggedInFair), Verdict::Violated);
    let r = result(&o, Prop::EventuallyLoggedInFair);
    let t = r.trace.as_ref().unwrap();
    assert!(t.loop_start.is_some());
    assert!(t.text().contains("436"), "{}", t.text());
}

/// Each witness is reached by some variant, so none of them is dead code.
#[test]
fn every_witness_is_reachable() {
    let configs = [
        variant("post-cr", &[]),
        variant("post-cr-system-message", &[]),
        variant("post-cr-session-limit", &[]),
        variant("post-cr-no-recovery", &[]),
        variant("post-cr-expiry", &[]),
    ];
    let outcomes: Vec<Outcome> = configs.iter().map(run).collect();
    for p in Prop::ALL.iter().filter(|p| p.kind() == Kind::Witness) {
        assert!(
            outcomes.iter().any(|o| verdict(o, *p) == Verdict::Holds),
            "{} is never reached",
            p.name()
        );
    }
}

/// The safety verdicts agree with stateright's own breadth-first checker over the same world.
#[test]
fn safety_verdicts_agree_with_stateright() {
    use imps_model::checker::sr::CrModel;
    use stateright::{Checker, Model};
    for (name, sets) in [
        ("pre-cr", vec![]),
        ("post-cr", vec![]),
        ("baraza", vec![]),
        ("intervillage", vec![]),
        (
            "post-cr",
            vec![
                "server.recovery=reset-context",
                "client.combined_negotiation=always",
            ],
        ),
    ] {
        let cfg = variant(name, &sets);
        let ours = run(&cfg);
        let sr = CrModel { cfg }.checker().spawn_bfs().join();
        for r in &ours.results {
            if r.prop.kind() == Kind::Liveness {
                continue;
            }
            let found = sr.discovery(r.prop.name()).is_some();
            let expect = match r.prop.kind() {
                Kind::Safety => r.verdict == Verdict::Violated,
                Kind::Witness => r.verdict == Verdict::Holds,
                Kind::Liveness => unreachable!(),
            };
            assert_eq!(found, expect, "{name} {sets:?}: {}", r.prop.name());
        }
    }
}

/// Canonical Session-IDs stay unique within each user's table in every explored state, also
/// with several users (each user's IDs are renumbered on its own, and the server's counter
/// must pass all of them).
#[test]
fn canonical_session_ids_stay_unique_with_several_users() {
    use imps_model::checker::graph::explore;
    // Both configurations gave duplicate IDs (and more states) when the renumbering of one
    // user reset the other users' counts. The state counts are pinned from the checker.
    for (sets, states) in [
        (
            vec![
                "env.users=2",
                "env.max_crashes=2",
                "env.groups=0",
                "env.presence_values=0",
            ],
            2086,
        ),
        (
            vec![
                "env.users=2",
                "server.ttl_expiry=true",
                "env.groups=0",
                "env.presence_values=0",
            ],
            1584,
        ),
        (
            vec![
                "env.users=2",
                "server.ttl_expiry=true",
                "env.groups=0",
                "env.presence_values=0",
                "env.settle_inert_disconnects=false",
            ],
            2112,
        ),
    ] {
        let cfg = variant("post-cr", &sets);
        let g = explore(&cfg, u64::MAX, &mut |_| {}).unwrap();
        assert_eq!(g.len(), states, "{sets:?}");
        for us in &g.users.items {
            let mut ids: Vec<u32> = us.sessions.iter().map(|s| s.id.0).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(
                ids.len(),
                us.sessions.len(),
                "{sets:?}: duplicate Session-IDs in {us:?}"
            );
        }
        let o = run(&cfg);
        assert_eq!(
            verdict(&o, Prop::SessionsIndependent),
            Verdict::Holds,
            "{sets:?}"
        );
    }
}

/// The lasso shown for `eventually_logged_in_fair` is itself weakly fair: every fair action
/// enabled in all the states of its cycle is taken on the cycle.
#[test]
fn the_fair_counterexample_cycle_is_weakly_fair() {
    for (name, sets) in [
        (
            "post-cr",
            vec![
                "server.system_message=require-response",
                "client.on_436=continue",
            ],
        ),
        ("pre-cr", vec![]),
        ("android-on-cr-server", vec![]),
    ] {
        let cfg = variant(name, &sets);
        let o = run(&cfg);
        let r = result(&o, Prop::EventuallyLoggedInFair);
        let t = r.trace.as_ref().expect("violated with a lasso");
        common::assert_weakly_fair_cycle(&cfg, t, &format!("{name} {sets:?}"));
    }
}

/// The explorer steps most successors as rewrites of their parent's components, from memos
/// of each step's effect; the reference steps whole worlds. Both must give the same graph,
/// state for state and edge for edge, with the same first violations and witnesses, on
/// every named variant and on configurations that exercise every kind of step (Disconnect
/// pushes, expiries, connection losses, keep-alives, user logouts, several users, limits).
#[test]
fn component_steps_give_the_whole_world_graph() {
    use imps_model::checker::graph::explore_with;
    let mut configs: Vec<(String, Config)> = imps_model::variant::named_variants(&variants_dir())
        .unwrap()
        .into_iter()
        .map(|(name, _)| {
            let cfg = variant(&name, &[]);
            (name, cfg)
        })
        // The headline variants (three devices, two users) are millions of states unreduced;
        // their steps are the same kinds as those of the configurations below.
        .filter(|(_, cfg)| cfg.env.users as u32 * cfg.env.devices_per_user as u32 <= 2)
        .collect();
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    let extra: &[(&str, &[&str])] = &[
        (
            "pre-cr",
            &["server.duplicate_client_id=replace-old", "env.users=2"],
        ),
        (
            "post-cr",
            &[
                "server.ttl_expiry=true",
                "env.keep_alives=true",
                "env.max_connection_losses=1",
                "env.user_logouts=true",
            ],
        ),
        (
            "post-cr",
            &[
                "env.users=2",
                "server.max_sessions_total=1",
                "server.ttl_expiry=true",
                "env.groups=0",
                "env.presence_values=0",
            ],
        ),
        (
            "post-cr",
            &["server.duplicate_client_id=allow", "env.max_crashes=2"],
        ),
        (
            "post-cr",
            &[
                "env.users=2",
                "env.devices_per_user=2",
                "env.groups=0",
                "env.presence_values=0",
                "env.max_crashes=0",
                "server.ttl_expiry=true",
            ],
        ),
        (
            "post-cr",
            &[
                "env.devices_per_user=2",
                "server.keep_context_after_termination=true",
                "env.user_logouts=true",
                "env.groups=0",
                "server.context_scope=per-user",
                "server.presence_merge=last-writer",
                "server.disconnect_has_tid=true",
                "server.duplicate_client_id=replace-old",
            ],
        ),
        (
            "post-cr",
            &[
                "env.users=2",
                "server.max_sessions_per_user=1",
                "server.keep_context_after_termination=true",
                "server.limit_applies_to_recovery=false",
                "server.ttl_expiry=true",
                "env.groups=0",
                "env.presence_values=0",
            ],
        ),
        (
            "post-cr",
            &[
                "env.users=2",
                "env.devices_per_user=2",
                "env.groups=0",
                "env.presence_values=0",
                "client.client_id_pool=1",
            ],
        ),
        // A user's devices sharing one Client-ID pool: same-slot logins collide (608), a
        // replaced or expired session's Disconnect goes to the device bound to it (not the
        // one the request came from), a fresh login drops another device's kept context of
        // the same Client-ID, and the presence writer is a Client-ID of either device.
        (
            "post-cr",
            &["env.devices_per_user=2", "client.client_id_scope=user"],
        ),
        (
            "post-cr",
            &[
                "env.devices_per_user=2",
                "client.client_id_scope=user",
                "server.duplicate_client_id=replace-old",
                "server.ttl_expiry=true",
                "env.groups=0",
                "env.presence_values=0",
            ],
        ),
        (
            "post-cr",
            &[
                "env.devices_per_user=2",
                "client.client_id_scope=user",
                "env.max_crashes=0",
                "server.keep_context_after_termination=true",
                "env.user_logouts=true",
                "env.groups=0",
                "server.presence_merge=last-writer",
                "server.duplicate_client_id=replace-old",
            ],
        ),
    ];
    for (name, sets) in extra {
        configs.push((format!("{name} {sets:?}"), variant(name, sets)));
    }
    for (name, cfg) in &configs {
        let fast = explore_with(cfg, u64::MAX, &mut |_| {}, false).unwrap();
        let whole = explore_with(cfg, u64::MAX, &mut |_| {}, true).unwrap();
        // Both explorers share the pipeline, the visited set and the state array: the size of
        // a two-users-of-two-devices graph is pinned as well (the explorer before component
        // steps gave the same), so that a fault they share shows too.
        if cfg.env.users == 2 && cfg.env.devices_per_user == 2 && cfg.env.max_crashes == 0 {
            assert_eq!((fast.len(), fast.edge_count()), (37_249, 148_996), "{name}");
        }
        assert_eq!(fast.len(), whole.len(), "{name}: states");
        assert_eq!(fast.targets, whole.targets, "{name}: edges");
        assert_eq!(fast.offsets, whole.offsets, "{name}: edge offsets");
        assert_eq!(fast.levels, whole.levels, "{name}: BFS levels");
        assert_eq!(fast.violated, whole.violated, "{name}: first violations");
        assert_eq!(fast.reached, whole.reached, "{name}: first witnesses");
        let (mut a, mut b) = (World::new(cfg), World::new(cfg));
        for s in 0..fast.len() as u32 {
            fast.decode(s, &mut a);
            whole.decode(s, &mut b);
            assert_eq!(a, b, "{name}: state {s} differs");
        }
    }
}

/// A configuration whose states outgrow what the world can hold stops the exploration with an
/// error that says which bound, never a panic and never a silent drop: with expiry and a client
/// that answers Disconnects (so it acts on every one), sessions expire faster than the device
/// takes their Disconnects, and the push queue overflows; so it does, without user actions,
/// when Disconnects the device can never act on are kept.
#[test]
fn outgrowing_the_world_is_an_error_not_a_panic() {
    use imps_model::checker::graph::{explore, ExploreError};
    for (name, sets) in [
        (
            "post-cr",
            &[
                "server.ttl_expiry=true",
                "client.answers_disconnect=true",
                "env.max_connection_losses=1",
            ][..],
        ),
        (
            "post-cr-expiry",
            &["env.settle_inert_disconnects=false"][..],
        ),
    ] {
        match explore(&variant(name, sets), u64::MAX, &mut |_| {}) {
            Err(ExploreError::ModelBound { what }) => {
                assert!(what.contains("4 pushed Disconnects"), "{what}")
            }
            other => panic!("expected a bound error, got {:?}", other.map(|g| g.len())),
        }
    }
}

/// A way out of a trap must be the protocol's own: with two phones of one user, a limit of
/// two sessions and users who may log out, a crash inside a login leaves an orphan that holds
/// a slot, and the crashed phone gets 608, then 610 on its second Client-ID, forever, unless
/// the other phone's user happens to log out. That is a deadlock: the trap's cycle is made of
/// protocol steps only, and the state is a trap although a path through the other user's
/// logout does lead to a session.
#[test]
fn a_way_out_that_needs_another_users_choice_is_no_way_out() {
    use imps_model::checker::graph::explore;
    use imps_model::checker::liveness::{
        can_reach_session, device_flags, first_trap, EdgeKinds, WayOut,
    };
    let cfg = variant(
        "post-cr",
        &[
            "env.devices_per_user=2",
            "env.groups=0",
            "env.presence_values=0",
            "server.max_sessions_per_user=2",
            "env.user_logouts=true",
        ],
    );
    // Unreduced, to compare with the unreduced graph below.
    let o = run_unreduced(&cfg);
    let r = result(&o, Prop::NoDeadlock);
    assert_eq!(r.verdict, Verdict::Violated);
    assert_eq!(verdict(&o, Prop::EventuallyLoggedInFair), Verdict::Violated);
    let t = r.trace.as_ref().unwrap();
    let d = t.device.expect("a deadlock names its device");
    for s in &t.steps[t.loop_start.unwrap()..] {
        assert_eq!(
            WayOut::of(&s.action).devices() & (1 << d),
            1 << d,
            "the stuck cycle takes only protocol steps: {:?}",
            s.action
        );
    }
    assert!(t.text().contains("610"), "{}", t.text());
    // Following every edge (new faults and other users' choices included), the trap can
    // still reach a session: only the protocol-steps reading calls it a trap.
    let g = explore(&cfg, u64::MAX, &mut |_| {}).unwrap();
    let flags = device_flags(&g, 2);
    let kinds = EdgeKinds::new(&g);
    let good = can_reach_session(&g, &flags, &kinds);
    let (trap, dev) = first_trap(&g, &flags, &good).unwrap();
    assert_eq!(dev, d);
    let anything = imps_model::checker::liveness::bfs_path(
        trap,
        &imps_model::checker::liveness::all_edges(&g),
        &|_| true,
        &|s| flags.holds(&g, s) & (1 << d) != 0,
        false,
    );
    assert!(
        anything.is_some(),
        "some path through another user's logout gets the device in"
    );
}

/// The weak-fairness search runs one crash and loss budget at a time, which is exact only
/// if no edge gives a budget back: along every edge both budgets stay or go down, and the
/// graphs hold states of several budgets (so the test is not vacuous).
#[test]
fn budgets_never_grow_along_an_edge() {
    use imps_model::checker::graph::explore;
    use imps_model::checker::liveness::budget;
    for sets in [
        &[
            "env.devices_per_user=2",
            "env.max_crashes=2",
            "client.client_id_pool=3",
        ][..],
        &["env.max_crashes=1", "env.max_connection_losses=2"][..],
    ] {
        let g = explore(&variant("post-cr", sets), u64::MAX, &mut |_| {}).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for s in 0..g.len() as u32 {
            let (c, l) = budget(&g, s);
            seen.insert((c, l));
            for &t in g.succ(s) {
                let (tc, tl) = budget(&g, t);
                assert!(
                    tc <= c && tl <= l,
                    "{sets:?}: {s} {:?} -> {t} {:?}",
                    (c, l),
                    (tc, tl)
                );
            }
        }
        assert!(seen.len() >= 3, "{sets:?}: budgets {seen:?}");
    }
}

/// Every edge kind is what its action is: crashes and losses are no way out for anyone, a
/// user action only for its own device, everything else for every device.
#[test]
fn way_out_kinds_of_actions() {
    use imps_model::checker::liveness::WayOut;
    use imps_model::client::UserAction;
    assert_eq!(WayOut::of(&Action::Crash(1)).devices(), 0);
    assert_eq!(WayOut::of(&Action::LoseConnection(0)).devices(), 0);
    assert_eq!(
        WayOut::of(&Action::User(2, UserAction::Logout)).devices(),
        0b100
    );
    for a in [
        Action::Start(0),
        Action::ServerReceives(1),
        Action::ClientReceives(1),
        Action::ClientReceivesPush(1),
        Action::RetryTimer(0),
        Action::KeepAliveTimer(0),
        Action::Expire { user: 0, index: 0 },
    ] {
        assert_eq!(WayOut::of(&a).devices(), u8::MAX, "{a:?}");
    }
}

/// No named variant fills a device's request or push queue: the bounds are big enough that
/// the exploration error they raise never decides a published verdict.
#[test]
fn no_named_variant_fills_a_queue() {
    use imps_model::checker::graph::{explore_opts, ExploreOptions};
    use imps_model::variant::named_variants;
    use imps_model::world::{MAX_PUSHES, MAX_REQUESTS};
    for (name, _) in named_variants(&variants_dir()).unwrap() {
        // Reduced: the components are the same, one state per orbit.
        let opts = ExploreOptions {
            max_states: u64::MAX,
            symmetry: true,
            whole_worlds: false,
            threads: 1,
            clock: None,
        };
        let g = explore_opts(&variant(&name, &[]), &opts, &mut |_| {}).unwrap();
        let pushes = g.devices.items.iter().map(|d| d.pushes.len()).max();
        let requests = g.devices.items.iter().map(|d| d.to_server.len()).max();
        assert!(pushes < Some(MAX_PUSHES), "{name}: {pushes:?} pushes");
        assert!(
            requests < Some(MAX_REQUESTS),
            "{name}: {requests:?} requests"
        );
    }
}

/// Taking at once a Disconnect the device can never act on changes no verdict and no
/// witness: on configurations where the queue holds every push either way, both readings
/// give the same results (and the reduction removes states).
#[test]
fn taking_inert_disconnects_at_once_changes_no_verdict() {
    let configs: &[(&str, &[&str])] = &[
        ("post-cr-expiry", &["env.groups=0", "env.presence_values=0"]),
        (
            "post-cr-expiry-two-crashes",
            &["env.groups=0", "env.presence_values=0"],
        ),
        ("post-cr-expiry", &["env.keep_alives=true"]),
        ("post-cr-session-limit", &[]),
        ("intervillage", &[]),
        ("intervillage", &["env.devices_per_user=2"]),
        (
            "post-cr",
            &[
                "server.ttl_expiry=true",
                "env.keep_alives=true",
                "env.devices_per_user=2",
            ],
        ),
        (
            "post-cr",
            &[
                "server.ttl_expiry=true",
                "server.recovery=unsupported",
                "env.groups=0",
                "env.presence_values=0",
                "env.max_crashes=2",
            ],
        ),
    ];
    let mut fewer = false;
    for (name, sets) in configs {
        let mut off: Vec<&str> = sets.to_vec();
        off.push("env.settle_inert_disconnects=false");
        let (a, b) = (run(&variant(name, sets)), run(&variant(name, &off)));
        let verdicts = |o: &Outcome| o.results.iter().map(|r| r.verdict).collect::<Vec<_>>();
        assert_eq!(verdicts(&a), verdicts(&b), "{name} {sets:?}");
        assert!(a.states <= b.states, "{name} {sets:?}");
        fewer |= a.states < b.states;
    }
    assert!(fewer, "the reduction removes states somewhere");
}
