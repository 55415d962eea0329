//! Storms: a correlated outage (`scenario.outage_*`), the server's load it causes, and what
//! getting back in costs, pre-CR against post-CR on the same devices.

mod common;

use common::imps;
use serde_json::Value;

/// Half of 1,000 devices hit at 5 minutes, with no other fault and no user action, so that
/// a re-entry's messages are exactly those of the way back in.
fn storm(kind: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let kind = format!("scenario.outage_kind={kind}");
    let o = imps(
        &[
            "simulate",
            "--variant",
            "pre-cr",
            "--variant",
            "post-cr",
            "--scenario",
            "smoke",
            "--devices",
            "1000",
            "--duration",
            "10m",
            "--set",
            "scenario.crashes_per_device_hour=0",
            "--set",
            "scenario.loss_rate=0",
            "--set",
            "scenario.user_actions_per_device_hour=0",
            "--set",
            "scenario.outage_at=5m",
            "--set",
            "scenario.outage_fraction=0.5",
            "--set",
            &kind,
            "--format",
            "json",
        ],
        dir.path(),
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn a_crash_storm_traps_pre_cr_and_post_cr_gets_back_by_recovery_logout_and_login() {
    let v = storm("crash");
    let (pre, post) = (&v["runs"][0], &v["runs"][1]);
    for r in [pre, post] {
        for key in [
            "server_peak_requests_per_s",
            "requests_by_primitive",
            "time_to_99pct_sessions_ms",
            "messages_per_reentry",
        ] {
            assert!(r.get(key).is_some(), "{key} missing");
        }
        let hit = r["storm"]["devices_hit"].as_u64().unwrap();
        assert!((400..600).contains(&hit), "about half of 1,000: {hit}");
        assert!(
            r["requests_by_primitive"]["Login-Request"]["total"]
                .as_u64()
                .unwrap()
                > 0
        );
    }
    assert_eq!(
        pre["storm"]["devices_back"], 0,
        "pre-cr: the old session holds the Client-ID"
    );
    assert!(pre["time_to_99pct_sessions_ms"].is_null());
    assert!(pre["messages_per_reentry"].is_null());
    assert_eq!(post["storm"]["devices_back"], post["storm"]["devices_hit"]);
    let t = post["time_to_99pct_sessions_ms"].as_u64().unwrap();
    // Restarts are 2 s to 30 s after the crash in the smoke scenario; then a few round trips.
    assert!((2_000..=40_000).contains(&t), "{t}");
    assert_eq!(t % 1000, 0, "to the whole second");
    // Recovery (2), logout (2), login (2), service and capability negotiation (4).
    assert_eq!(post["messages_per_reentry"].as_f64(), Some(10.0));
    assert!(
        post["requests_by_primitive"]["Logout-Request"]["total"]
            .as_u64()
            .unwrap()
            >= t / 1000
    );
    let c = &v["comparison"][0]["messages_per_reentry"];
    assert!(c["baseline"].is_null() && c["ratio"].is_null(), "{c}");
}

#[test]
fn after_a_connection_loss_post_cr_recovers_with_its_context_in_one_round_trip() {
    let v = storm("connection-loss");
    let post = &v["runs"][1];
    assert_eq!(post["messages_per_reentry"].as_f64(), Some(2.0), "{post}");
    assert_eq!(v["runs"][0]["storm"]["devices_back"], 0);
}

#[test]
fn after_a_server_restart_both_log_in_afresh_at_the_same_cost() {
    let v = storm("server-restart");
    let (pre, post) = (&v["runs"][0], &v["runs"][1]);
    // The next keep-alive gets 604 (2), then login (2) and negotiation (4).
    assert_eq!(pre["messages_per_reentry"].as_f64(), Some(8.0), "{pre}");
    assert_eq!(post["messages_per_reentry"].as_f64(), Some(8.0));
    assert!(post["sessions"]["ended_restart"].as_u64().unwrap() > 400);
    assert_eq!(
        v["comparison"][0]["messages_per_reentry"]["ratio"].as_f64(),
        Some(1.0)
    );
}

#[test]
fn bad_outage_knobs_are_refused_naming_the_knob() {
    let dir = tempfile::tempdir().unwrap();
    for (set, want) in [
        (
            "scenario.outage_fraction=1.5",
            "scenario.outage_fraction: expected a share in 0..=1, found 1.5",
        ),
        ("scenario.outage_kind=flood", "scenario.outage_kind"),
        (
            "scenario.partition_users=0",
            "scenario.partition_users: expected at least 1, found 0",
        ),
    ] {
        let o = imps(&["simulate", "--set", set], dir.path());
        assert_eq!(o.status.code(), Some(2), "{set}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(want) && err.lines().count() == 1,
            "{set}: {err}"
        );
    }
    let o = imps(
        &[
            "simulate",
            "--duration",
            "10m",
            "--set",
            "scenario.outage_fraction=0.1",
            "--set",
            "scenario.outage_at=10m",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "scenario.outage_at: the outage would hit at 10m, not within the faulty phase"
        ),
        "{err}"
    );
}
