//! The simulator end to end: reproducibility, the CR's headline result at a small scale,
//! sharded sweeps, the report files, and bad input.

mod common;

use common::imps;
use imps_model::variant::{resolve_variant, variants_dir};
use imps_sim::engine::scenario::{resolve_scenario, scenarios_dir, Scenario};
use imps_sim::engine::sim::{run, RunSpec};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn smoke() -> Scenario {
    resolve_scenario("smoke", &scenarios_dir())
        .unwrap()
        .1
        .scenario
}

fn digest(variant: &str, sc: &Scenario, seed: u64) -> String {
    let variant_file = resolve_variant(variant, &variants_dir()).unwrap().1;
    let cfg = variant_file.cfg.clone();
    let spec = RunSpec {
        threads: 1,
        variant,
        cfg: &cfg,
        expected: variant_file.expected_violated(),
        scenario: sc,
        seed,
        trace_devices: &[],
    };
    run(&spec, &mut |_| {}).unwrap().result.digest
}

#[test]
fn a_seed_reproduces_the_run_and_another_seed_does_not() {
    let sc = Scenario {
        devices: 500,
        ..smoke()
    };
    let a = digest("post-cr", &sc, 7);
    assert_eq!(a, digest("post-cr", &sc, 7));
    assert_ne!(a, digest("post-cr", &sc, 8));
    assert_ne!(a, digest("pre-cr", &sc, 7));
}

/// Pins the event sequence of a small run: a change of the engine, the scenario defaults or the
/// protocol core that changes what happens shows up here. Update the digest deliberately.
#[test]
fn the_digest_of_a_small_run_is_pinned() {
    let sc = Scenario {
        devices: 200,
        ..smoke()
    };
    let variant_file = resolve_variant("post-cr", &variants_dir()).unwrap().1;
    let cfg = variant_file.cfg.clone();
    let spec = RunSpec {
        threads: 1,
        variant: "post-cr",
        cfg: &cfg,
        expected: variant_file.expected_violated(),
        scenario: &sc,
        seed: 1,
        trace_devices: &[],
    };
    let r = run(&spec, &mut |_| {}).unwrap().result;
    assert_eq!(
        (
            r.events,
            r.faults.crashes,
            r.trapped_devices,
            r.slow_devices
        ),
        (13007, 191, 0, 0)
    );
    assert_eq!(r.digest, "c5670ce0d5184eb6");
}

#[test]
fn check_determinism_runs_twice_and_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let o = imps(
        &[
            "simulate",
            "--scenario",
            "smoke",
            "--devices",
            "300",
            "--check-determinism",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("digests match"), "{}", stderr(&o));
}

#[test]
fn pre_cr_leaves_devices_trapped_and_post_cr_recovers_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let o = imps(
        &[
            "simulate",
            "--scenario",
            "smoke",
            "--variant",
            "pre-cr",
            "--variant",
            "post-cr",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "trapped devices exit with 1: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).starts_with("imps simulate: seed 1, config "),
        "{}",
        stderr(&o)
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let runs = v["runs"].as_array().unwrap();
    let (pre, post) = (&runs[0], &runs[1]);
    assert_eq!(pre["variant"], "pre-cr");
    // Before the CR, a device whose Client-ID an orphaned session holds is trapped: every login
    // is refused and nothing ends the session.
    assert!(pre["trapped_devices"].as_u64().unwrap() > 100, "{pre}");
    assert_eq!(
        pre["stuck_devices"].as_u64().unwrap(),
        pre["trapped_devices"].as_u64().unwrap() + pre["slow_devices"].as_u64().unwrap()
    );
    assert_eq!(post["stuck_devices"], 0, "{post}");
    assert_eq!(post["trapped_devices"], 0, "{post}");
    assert!(pre["result_codes"]["503"].as_u64().unwrap() > 0);
    assert!(post["logins"]["recoveries_succeeded"].as_u64().unwrap() > 0);
    assert!(
        pre["orphan_sessions_peak"].as_u64().unwrap()
            > post["orphan_sessions_peak"].as_u64().unwrap()
    );
    let replay = pre["stuck"][0]["replay"].as_str().unwrap();
    assert!(
        replay.starts_with("imps simulate --variant pre-cr --scenario smoke")
            && replay.contains("--trace-device"),
        "{replay}"
    );
    let cmp = &v["comparison"][0];
    assert_eq!(
        cmp["same_crashes"], true,
        "the variants saw the same crashes"
    );
    assert!(cmp["trapped_devices"]["diff"].as_i64().unwrap() < 0);
    // pre-cr stores no Session-ID and recovers nothing: no percentiles, not zeros.
    assert_eq!(pre["time_to_recover_ms"]["count"], 0, "{pre}");
    assert!(cmp["time_to_recover_p50_ms"]["baseline"].is_null(), "{cmp}");
    assert!(
        cmp["time_to_recover_p50_ms"]["variant"].as_u64().unwrap() > 0,
        "{cmp}"
    );
    for key in [
        "seed",
        "variant",
        "devices",
        "sim_duration_s",
        "events",
        "events_per_s",
        "stuck_devices",
        "trapped_devices",
        "slow_devices",
        "logins",
        "result_codes",
        "time_to_recover_ms",
        "orphan_sessions_peak",
        "digest",
    ] {
        assert!(post.get(key).is_some(), "missing {key}");
    }
    for key in ["p50", "p90", "p99", "max"] {
        assert!(
            post["time_to_recover_ms"].get(key).is_some(),
            "missing {key}"
        );
    }
}

/// A run stopped by a safety violation ends before its liveness phase: it reports that it was
/// stopped and by which property, never "none" trapped or a 0 in the paired table; and a
/// variant that recovered no session has no recovery percentiles, not zeros.
#[test]
fn a_stopped_run_and_a_run_without_recoveries_report_no_made_up_figures() {
    let dir = tempfile::tempdir().unwrap();
    let post = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/variants/post-cr.toml"),
    )
    .unwrap();
    let allow = post.replace(
        "duplicate_client_id = \"reject-608\"",
        "duplicate_client_id = \"allow\"",
    );
    assert_ne!(post, allow);
    std::fs::write(dir.path().join("allow.toml"), allow).unwrap();
    let args = [
        "simulate",
        "--scenario",
        "smoke",
        "--devices",
        "300",
        "--duration",
        "10m",
        "--variant",
        "pre-cr",
        "--variant",
        "./allow.toml",
    ];
    let o = imps(&args, dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    let allow_part = &text[text.find("variant allow").unwrap()..text.find("paired:").unwrap()];
    assert!(
        allow_part.contains("STOPPED       seed 1: safety invariant client_id_unique_per_user")
            && allow_part.contains("not measured")
            && !allow_part.contains("trapped       none")
            && !allow_part.contains("slow          none"),
        "{allow_part}"
    );
    let row = |name: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no row {name}: {text}"));
        line[line.find(name).unwrap() + name.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    // pre-cr completed (its trapped devices counted), allow was stopped.
    let trapped = row("trapped devices");
    assert_eq!(trapped[1..], ["stopped", "stopped"], "{text}");
    assert!(trapped[0].parse::<u64>().unwrap() > 0, "{text}");
    assert_eq!(row("slow devices")[1..], ["stopped", "stopped"], "{text}");
    assert!(
        !text.contains("trapped in both"),
        "no overlap of a stopped run: {text}"
    );
    // Neither variant recovered a session (pre-cr stores no Session-ID; allow stopped early).
    assert_eq!(row("recovery p50 (ms)"), ["-", "-", "-"], "{text}");
    assert_eq!(row("recovery p99 (ms)"), ["-", "-", "-"], "{text}");
    assert!(
        text.contains("allow seed 1 was stopped by safety invariant client_id_unique_per_user"),
        "{text}"
    );
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let o = imps(&json_args, dir.path());
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let allow = &v["runs"][1];
    assert!(allow["trapped_devices"].is_null(), "{allow}");
    assert!(allow["slow_devices"].is_null(), "{allow}");
    assert_eq!(allow["stopped"][0][1], "client_id_unique_per_user");
    let cmp = &v["comparison"][0];
    assert!(cmp["trapped_devices"]["variant"].is_null(), "{cmp}");
    assert!(
        cmp["trapped_devices"]["baseline"].as_u64().unwrap() > 0,
        "{cmp}"
    );
    assert!(cmp["time_to_recover_p50_ms"]["baseline"].is_null(), "{cmp}");
}

/// A variant file's own `[env]` table is the checker's bounds, not an error: only an explicit
/// `--set env.KNOB=...` is refused.
#[test]
fn a_variant_whose_file_sets_env_bounds_simulates() {
    let dir = tempfile::tempdir().unwrap();
    let o = imps(
        &[
            "simulate",
            "--scenario",
            "smoke",
            "--variant",
            "post-cr-two-crashes",
            "--devices",
            "50",
            "--duration",
            "5m",
        ],
        dir.path(),
    );
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("variant post-cr-two-crashes"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn post_cr_alone_exits_zero_with_the_seed_and_config_first() {
    let dir = tempfile::tempdir().unwrap();
    let o = imps(
        &[
            "simulate",
            "--scenario",
            "smoke",
            "--devices",
            "400",
            "--duration",
            "10m",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("imps simulate: seed 1, config "), "{out}");
    assert!(
        out.contains("trapped       none")
            && out.contains("slow          none")
            && out.contains("digest"),
        "{out}"
    );
}

fn without_timing(mut v: Value) -> Value {
    for r in v["runs"].as_array_mut().unwrap() {
        let r = r.as_object_mut().unwrap();
        r.remove("wall_s");
        r.remove("events_per_s");
    }
    v
}

#[test]
fn shards_merged_equal_the_unsharded_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "--scenario",
        "smoke",
        "--devices",
        "200",
        "--duration",
        "10m",
        "--variant",
        "pre-cr",
        "--variant",
        "post-cr",
        "--seeds",
        "3..6",
    ];
    let mut files = Vec::new();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let mut args = vec!["simulate"];
        args.extend(common);
        args.extend(["--shard", &shard, "--out", "shards"]);
        let o = imps(&args, dir.path());
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
        files.push(format!("shards/shard-{k}-of-3.jsonl"));
    }
    let mut merge = vec!["merge", "--format", "json"];
    merge.extend(files.iter().map(String::as_str));
    let merged = imps(&merge, dir.path());
    assert_eq!(
        merged.status.code(),
        Some(1),
        "pre-cr leaves devices stuck: {}",
        stderr(&merged)
    );
    let mut full = vec!["simulate"];
    full.extend(common);
    full.extend(["--format", "json"]);
    let unsharded = imps(&full, dir.path());
    let a: Value = serde_json::from_str(&stdout(&merged)).unwrap();
    let b: Value = serde_json::from_str(&stdout(&unsharded)).unwrap();
    assert_eq!(a["runs"][0]["seeds"], serde_json::json!([3, 6]));
    assert_eq!(without_timing(a), without_timing(b));
    // A damaged record (seeds out of order, or far too many) is refused, not a crash.
    let text = std::fs::read_to_string(dir.path().join(&files[0])).unwrap();
    for forged in ["[6,3]", "[1,1000000000000000000]"] {
        let bad = text.replace("\"seeds\":[3,6]", &format!("\"seeds\":{forged}"));
        assert_ne!(bad, text, "the record carries its seeds");
        std::fs::write(dir.path().join("forged.jsonl"), bad).unwrap();
        let o = imps(&["merge", "forged.jsonl"], dir.path());
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("forged.jsonl") && stderr(&o).contains("seeds"),
            "{}",
            stderr(&o)
        );
    }
    // A shard missing, or a shard twice, is refused.
    let o = imps(&["merge", &files[0], &files[1]], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("units missing"), "{}", stderr(&o));
    let o = imps(
        &["merge", &files[0], &files[0], &files[1], &files[2]],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("ran twice"), "{}", stderr(&o));
}

#[test]
fn out_writes_the_report_plots_and_device_traces() {
    let dir = tempfile::tempdir().unwrap();
    let o = imps(
        &[
            "simulate",
            "--scenario",
            "smoke",
            "--devices",
            "300",
            "--duration",
            "10m",
            "--variant",
            "pre-cr",
            "--variant",
            "post-cr",
            "--out",
            "r",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = dir.path().join("r");
    let mut files: Vec<String> = std::fs::read_dir(&r)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "comparison.svg",
            "load.svg",
            "report.md",
            "sessions.svg",
            "time-to-recover.svg"
        ]
    );
    let md = std::fs::read_to_string(r.join("report.md")).unwrap();
    assert!(
        md.contains("## Paired comparison")
            && md.contains("![")
            && md.contains("scenario.crashes_per_device_hour"),
        "{md}"
    );
    assert!(std::fs::read_to_string(r.join("sessions.svg"))
        .unwrap()
        .starts_with("<svg"));
    // The same run writes the same files.
    let first = std::fs::read(r.join("report.md")).unwrap();
    imps(
        &[
            "simulate",
            "--scenario",
            "smoke",
            "--devices",
            "300",
            "--duration",
            "10m",
            "--variant",
            "pre-cr",
            "--variant",
            "post-cr",
            "--out",
            "r",
        ],
        dir.path(),
    );
    assert_eq!(first, std::fs::read(r.join("report.md")).unwrap());

    let o = imps(
        &[
            "simulate",
            "--scenario",
            "smoke",
            "--devices",
            "300",
            "--duration",
            "10m",
            "--variant",
            "pre-cr",
            "--trace-device",
            "5",
            "--out",
            "t",
        ],
        dir.path(),
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let mmd = std::fs::read_to_string(dir.path().join("t/device-5.mmd")).unwrap();
    assert!(
        mmd.starts_with("sequenceDiagram") && mmd.contains("Login-Request"),
        "{mmd}"
    );
    let xml = std::fs::read_to_string(dir.path().join("t/device-5.xml")).unwrap();
    assert!(
        xml.contains("<!-- t=") && xml.contains("<WV-CSP-Message"),
        "{xml}"
    );
}

fn bad(args: &[&str], dir: &Path, wanted: &[&str]) {
    let o = imps(args, dir);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let e = stderr(&o);
    for w in wanted {
        assert!(e.contains(w), "{args:?}: `{w}` not in: {e}");
    }
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn bad_input_exits_2_naming_the_place_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("broken.toml"),
        "[scenario]\ndevices = 100\ncrash_rate = 2\n",
    )
    .unwrap();
    bad(
        &["simulate", "--scenario", "broken.toml", "--out", "o"],
        p,
        &["broken.toml", "line 3", "crash_rate", "expected"],
    );
    std::fs::write(p.join("typed.toml"), "[scenario]\nduration = 90\n").unwrap();
    bad(
        &["simulate", "--scenario", "typed.toml"],
        p,
        &["typed.toml", "line 2", "expected a duration"],
    );
    bad(
        &["simulate", "--duration", "1 hour"],
        p,
        &["--duration", "expected a duration"],
    );
    bad(&["simulate", "--duration", "90"], p, &["--duration", "90s"]);
    bad(
        &["simulate", "--set", "scenario.nope=1"],
        p,
        &["--set scenario.nope=1", "unknown knob `nope`"],
    );
    bad(
        &["simulate", "--set", "server.recovery=maybe"],
        p,
        &["--set server.recovery=maybe", "maybe"],
    );
    bad(
        &["simulate", "--set", "network.loss=1"],
        p,
        &["--set network.loss=1", "scenario"],
    );
    bad(
        &["simulate", "--set", "scenario.loss_rate=0.9"],
        p,
        &["scenario.loss_rate", "0..=0.5"],
    );
    bad(
        &[
            "simulate",
            "--set",
            "scenario.liveness_ttls=1",
            "--set",
            "scenario.restart_delay_max=1h",
        ],
        p,
        &["scenario.liveness_ttls", "liveness phase"],
    );
    // The issue's reproducer: one TTL is shorter than the wait for an orphaned session to
    // expire, so the liveness phase would end before a device that is not trapped is back.
    bad(
        &[
            "simulate",
            "--variant",
            "post-cr-expiry",
            "--devices",
            "10",
            "--set",
            "scenario.restart_delay_max=5s",
            "--set",
            "scenario.backoff_cap=30s",
            "--set",
            "scenario.liveness_ttls=1",
        ],
        p,
        &["scenario.liveness_ttls", "server.ttl_expiry", "at least 2"],
    );
    // Devices that would power on after the faulty phase (or never) are refused, not counted
    // as devices without a session; the order of --set and --duration does not matter.
    bad(
        &[
            "simulate",
            "--devices",
            "10",
            "--set",
            "scenario.start_spread=2h",
            "--duration",
            "1h",
        ],
        p,
        &["scenario.start_spread", "scenario.duration"],
    );
    // A checker bound is refused, naming what plays its part in the simulator (it used to be
    // accepted and ignored: post-cr with env.max_crashes=2 gave post-cr's digest).
    bad(
        &["simulate", "--set", "env.max_crashes=2"],
        p,
        &[
            "--set env.max_crashes=2",
            "model-checker bound",
            "scenario.crashes_per_device_hour",
        ],
    );
    bad(
        &["simulate", "--set", "env.devices_per_user=2"],
        p,
        &["env.devices_per_user", "scenario.devices_per_user"],
    );
    bad(
        &["simulate", "--set", "env.nope=1"],
        p,
        &["--set env.nope=1", "unknown knob `nope`"],
    );
    bad(
        &["simulate", "--set", "scenario.devices_per_user=5"],
        p,
        &["scenario.devices_per_user", "expected 1..=4"],
    );
    bad(
        &["simulate", "--scenario", "no-such-scenario"],
        p,
        &["--scenario", "no-such-scenario", "default"],
    );
    bad(
        &["simulate", "--variant", "no-such-variant"],
        p,
        &["--variant no-such-variant", "post-cr"],
    );
    bad(&["simulate", "--seeds", "9..3"], p, &["--seeds", "A..B"]);
    bad(&["simulate", "--shard", "2/2"], p, &["--shard", "K/N"]);
    bad(
        &["simulate", "--devices", "0"],
        p,
        &["--devices", "from 1 to 50000000"],
    );
    bad(
        &["simulate", "--devices", "10", "--trace-device", "10"],
        p,
        &["--trace-device 10", "no such device"],
    );
    std::fs::write(p.join("junk.jsonl"), "{\"not\": \"a record\"}\n").unwrap();
    bad(
        &["merge", "junk.jsonl"],
        p,
        &["junk.jsonl:1", "unit record"],
    );
    assert!(!p.join("o").exists(), "nothing written on bad input");
}

/// The scenario of the issue's reproducer (30 crashes per device-hour, slow network, a restart
/// within 5 s, back-off capped at 30 s) at `devices` devices for `duration`.
fn reproducer(devices: u32, duration: &str) -> Scenario {
    let mut sc = Scenario::default();
    for s in [
        "scenario.crashes_per_device_hour=30",
        "scenario.latency_mean=1s",
        "scenario.latency_min=200ms",
        "scenario.restart_delay_min=1s",
        "scenario.restart_delay_max=5s",
        "scenario.backoff_cap=30s",
    ] {
        sc.apply_set(s).unwrap();
    }
    sc.devices = devices;
    sc.duration = duration.parse().unwrap();
    sc.start_spread = "1m".parse().unwrap();
    sc
}

/// The verdict of the checker on a variant's `no_deadlock`, by running it.
fn checker_deadlocks(cfg: &imps_model::config::Config) -> bool {
    let o = imps_model::checker::check(
        cfg,
        "test",
        imps_model::checker::Options::default(),
        &mut |_| {},
    )
    .unwrap();
    o.results
        .iter()
        .find(|x| x.prop == imps_model::props::Prop::NoDeadlock)
        .expect("no_deadlock has a verdict")
        .verdict
        == imps_model::variant::Verdict::Violated
}

/// The issue's reproducer itself (10,000 devices, one hour, one TTL of liveness), through the
/// library past the refusal: every device it leaves without a session is slow. About a minute
/// in a debug build: `cargo test -p imps-sim --test simulate -- --ignored --nocapture`.
#[test]
#[ignore]
fn the_issue_reproducer_at_full_scale_has_no_trapped_device() {
    let variant_file = resolve_variant("post-cr-expiry", &variants_dir())
        .unwrap()
        .1;
    let cfg = variant_file.cfg.clone();
    let mut sc = reproducer(10_000, "1h");
    sc.liveness_ttls = 1;
    let spec = RunSpec {
        threads: 1,
        variant: "post-cr-expiry",
        cfg: &cfg,
        expected: variant_file.expected_violated(),
        scenario: &sc,
        seed: 1,
        trace_devices: &[],
    };
    let r = run(&spec, &mut |_| {}).unwrap().result;
    eprintln!(
        "reproducer, liveness 1 TTL: {} trapped, {} slow, digest {}",
        r.trapped_devices, r.slow_devices, r.digest
    );
    assert!(r.slow_devices > 0);
    assert_eq!(r.trapped_devices > 0, checker_deadlocks(&cfg));
    let long = Scenario {
        liveness_ttls: 2,
        ..sc.clone()
    };
    long.check_variant("post-cr-expiry", &cfg).unwrap();
    let r = run(&spec_with(&spec, &long), &mut |_| {}).unwrap().result;
    eprintln!(
        "reproducer, liveness 2 TTLs: {} trapped, {} slow, digest {}",
        r.trapped_devices, r.slow_devices, r.digest
    );
    assert_eq!(r.trapped_devices > 0, checker_deadlocks(&cfg));
}

fn spec_with<'a>(spec: &RunSpec<'a>, sc: &'a Scenario) -> RunSpec<'a> {
    RunSpec {
        threads: 1,
        scenario: sc,
        ..*spec
    }
}

/// The issue's reproducer: with a liveness phase of one TTL, post-cr-expiry (which the checker
/// proves deadlock-free) left devices without a session, and the run failed. The scenario is
/// now refused; run anyway through the library, the devices it leaves without a session are
/// classified, and none is trapped exactly when the checker finds no deadlock.
#[test]
fn a_liveness_phase_too_short_leaves_slow_devices_not_trapped_ones() {
    let variant_file = resolve_variant("post-cr-expiry", &variants_dir())
        .unwrap()
        .1;
    let cfg = variant_file.cfg.clone();
    let mut sc = reproducer(1000, "20m");
    sc.liveness_ttls = 1;
    assert!(sc.check_variant("post-cr-expiry", &cfg).is_err(), "refused");
    let spec = RunSpec {
        threads: 1,
        variant: "post-cr-expiry",
        cfg: &cfg,
        expected: variant_file.expected_violated(),
        scenario: &sc,
        seed: 1,
        trace_devices: &[],
    };
    let r = run(&spec, &mut |_| {}).unwrap().result;
    assert!(
        r.slow_devices > 0,
        "the short phase ends before some are back"
    );
    assert_eq!(r.trapped_devices > 0, checker_deadlocks(&cfg));
}

/// Slow devices (without a session at the end, not trapped) are reported and do not fail a
/// run; a trapped one does. Checked through `imps merge` on a shard's record edited to say so.
#[test]
fn slow_devices_do_not_fail_a_run_and_trapped_ones_do() {
    let dir = tempfile::tempdir().unwrap();
    let o = imps(
        &[
            "simulate",
            "--scenario",
            "smoke",
            "--devices",
            "100",
            "--duration",
            "5m",
            "--shard",
            "0/1",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut rec: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(rec["result"]["trapped_devices"], 0);
    assert_eq!(rec["result"]["slow_devices"], 0);
    rec["result"]["slow_devices"] = 2.into();
    rec["result"]["slow_device_ids"] = serde_json::json!([3, 7]);
    std::fs::write(dir.path().join("slow.jsonl"), rec.to_string()).unwrap();
    let o = imps(&["merge", "slow.jsonl"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("slow          2 devices")
            && stdout(&o).contains("trapped       none")
            && stdout(&o).contains("--trace-device 3"),
        "{}",
        stdout(&o)
    );
    rec["result"]["trapped_devices"] = 1.into();
    rec["result"]["trapped_device_ids"] = serde_json::json!([5]);
    std::fs::write(dir.path().join("trapped.jsonl"), rec.to_string()).unwrap();
    let o = imps(&["merge", "trapped.jsonl"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("TRAPPED       1 devices") && stdout(&o).contains("--trace-device 5"),
        "{}",
        stdout(&o)
    );
}

/// `scenario.max_crashes_per_user` bounds the crashes of each user, as `env.max_crashes` bounds
/// the checker's world; 0 leaves the Poisson process alone (the same run as before the knob).
#[test]
fn crashes_can_be_capped_per_user() {
    let variant_file = resolve_variant("post-cr", &variants_dir()).unwrap().1;
    let cfg = variant_file.cfg.clone();
    let base = Scenario {
        devices: 400,
        duration: "10m".parse().unwrap(),
        crashes_per_device_hour: 60.0,
        ..smoke()
    };
    let crashes = |sc: &Scenario| {
        let spec = RunSpec {
            threads: 1,
            variant: "post-cr",
            cfg: &cfg,
            expected: variant_file.expected_violated(),
            scenario: sc,
            seed: 3,
            trace_devices: &[],
        };
        let r = run(&spec, &mut |_| {}).unwrap().result;
        (r.faults.crashes, r.users)
    };
    let (free, users) = crashes(&base);
    assert!(free > 2 * u64::from(users), "{free} crashes, {users} users");
    for cap in [1u32, 2] {
        let (n, _) = crashes(&Scenario {
            max_crashes_per_user: cap,
            ..base.clone()
        });
        assert!(
            n <= u64::from(cap * users) && n > u64::from(users) / 2,
            "cap {cap}: {n}"
        );
    }
}

/// A harsh scenario within a variant's own bounds: its users and devices per user, at most
/// `env.max_crashes` crashes per user (the checker's world is one user), no message lost (the
/// simulator's losses have no per-user cap, and no named variant allows more than one), its
/// groups and presence values; and otherwise harsh: a crash every few seconds until the cap is
/// reached, so that crashes hit logins in flight, on a slow network.
fn at_the_variants_bounds(cfg: &imps_model::config::Config, devices: u32) -> Scenario {
    assert!(
        cfg.env.crash_during_login,
        "the simulator's crashes hit logins too: a variant bounding them away needs a knob"
    );
    assert!(!cfg.env.user_logouts, "simulated users never log out");
    let mut sc = Scenario {
        devices,
        devices_per_user: u32::from(cfg.env.devices_per_user),
        duration: "5m".parse().unwrap(),
        start_spread: "30s".parse().unwrap(),
        crashes_per_device_hour: 900.0,
        max_crashes_per_user: u32::from(cfg.env.max_crashes),
        loss_rate: 0.0,
        latency_min: "500ms".parse().unwrap(),
        latency_mean: "1s".parse().unwrap(),
        latency_max: "3s".parse().unwrap(),
        restart_delay_min: "1s".parse().unwrap(),
        restart_delay_max: "5s".parse().unwrap(),
        backoff_cap: "10s".parse().unwrap(),
        user_actions_per_device_hour: 60.0,
        groups: cfg.env.groups,
        presence_values: cfg.env.presence_values,
        samples: 2,
        ..Scenario::default()
    };
    let ttl = Scenario::ttl_ms(cfg);
    sc.liveness_ttls = sc.liveness_need_ms(cfg).div_ceil(ttl) as u32;
    sc
}

/// The two drivers agree: for every named variant, the model checker's `no_deadlock` verdict
/// (found by running the checker) is violated exactly when a harsh simulation within the
/// variant's bounds leaves trapped devices, on a few seeds.
#[test]
fn checker_and_simulator_agree_on_deadlock() {
    let dir = variants_dir();
    let seeds = 1..=3u64;
    let mut table = Vec::new();
    for (name, _) in imps_model::variant::named_variants(&dir).unwrap() {
        let variant_file = resolve_variant(&name, &dir).unwrap().1;
        let cfg = variant_file.cfg.clone();
        let deadlocks = checker_deadlocks(&cfg);
        let sc = at_the_variants_bounds(&cfg, 1000);
        sc.check_variant(&name, &cfg)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let trapped: Vec<u64> = seeds
            .clone()
            .map(|seed| {
                let spec = RunSpec {
                    threads: 1,
                    variant: &name,
                    cfg: &cfg,
                    expected: variant_file.expected_violated(),
                    scenario: &sc,
                    seed,
                    trace_devices: &[],
                };
                let r = run(&spec, &mut |_| {}).unwrap().result;
                assert!(!r.stopped(), "{name} seed {seed}: {:?}", r.stopped_by);
                r.trapped_devices
            })
            .collect();
        table.push((name, deadlocks, trapped));
    }
    for (name, deadlocks, trapped) in &table {
        eprintln!(
            "{name:<28} no_deadlock {:<9} trapped per seed {trapped:?}",
            if *deadlocks { "VIOLATED" } else { "holds" }
        );
    }
    let disagree: Vec<&(String, bool, Vec<u64>)> = table
        .iter()
        .filter(|(_, deadlocks, trapped)| {
            if *deadlocks {
                trapped.iter().sum::<u64>() == 0
            } else {
                trapped.iter().any(|&t| t > 0)
            }
        })
        .collect();
    assert!(disagree.is_empty(), "the drivers disagree on {disagree:?}");
    assert!(table.iter().any(|(_, d, _)| *d) && table.iter().any(|(_, d, _)| !*d));
}

/// A negative number is a bad value of its flag, with the range, not clap's "unexpected
/// argument '-1'"; `scenario.seed` takes the same range as `--seed` (0 to 2^63 - 1, the
/// largest a TOML file holds), and so do the ends of `--seeds`.
#[test]
fn a_negative_or_too_large_number_names_its_flag_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let seeds = "a seed, a whole number from 0 to 9223372036854775807";
    for (args, wanted) in [
        (
            &["simulate", "--seed", "-1"][..],
            &["'--seed <N>'", seeds][..],
        ),
        (
            &["simulate", "--seed", "9223372036854775808"],
            &["'--seed <N>'", seeds],
        ),
        (
            &["simulate", "--set", "scenario.seed=-1"],
            &["scenario.seed", seeds],
        ),
        (
            &["simulate", "--set", "scenario.seed=9223372036854775808"],
            &["scenario.seed", seeds],
        ),
        (
            &["simulate", "--seeds", "-1..3"],
            &["'--seeds <A..B>'", "from 0 to 9223372036854775807"],
        ),
        (
            &["simulate", "--seeds", "1..=9223372036854775808"],
            &["'--seeds <A..B>'", "from 0 to 9223372036854775807"],
        ),
        (
            &["simulate", "--devices", "-5"],
            &["'--devices <N>'", "from 1 to 50000000"],
        ),
        (
            &["simulate", "--trace-device", "-1"],
            &["'--trace-device <ID>'", "from 0"],
        ),
        (
            &["simulate", "--duration", "-5m"],
            &["'--duration <DURATION>'", "expected a duration"],
        ),
        (
            &["simulate", "--shard", "-1/4"],
            &["'--shard <K/N>'", "0 <= K < N"],
        ),
        (
            &["check", "--max-states", "-1"],
            &["'--max-states <MAX_STATES>'", "from 0 up"],
        ),
        (
            &["repair", "pre-cr", "--threads", "-2"],
            &["'--threads <THREADS>'", "from 1 up"],
        ),
        (
            &["explore", "--port", "-1"],
            &["'--port <PORT>'", "from 1 to 65535"],
        ),
    ] {
        let o = imps(args, p);
        assert!(
            !stderr(&o).contains("unexpected argument"),
            "{args:?}: {}",
            stderr(&o)
        );
        bad(args, p, wanted);
    }
    // The largest seed runs, from the flag and from the scenario alike.
    for args in [
        &[
            "simulate",
            "--devices",
            "10",
            "--duration",
            "1m",
            "--seed",
            "9223372036854775807",
        ][..],
        &[
            "simulate",
            "--devices",
            "10",
            "--duration",
            "1m",
            "--set",
            "scenario.seed=9223372036854775807",
        ],
    ] {
        let o = imps(args, p);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).starts_with("imps simulate: seed 9223372036854775807,"));
    }
}

/// A report over several seeds says which figures are sums and which are the largest of any
/// one seed; a single run's report says neither.
#[test]
fn a_report_over_seeds_labels_peaks_as_maxima_and_end_figures_as_sums() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seeds: &str, out: &str| {
        let o = imps(
            &[
                "simulate",
                "--scenario",
                "smoke",
                "--devices",
                "50",
                "--duration",
                "1m",
                "--variant",
                "pre-cr",
                "--variant",
                "post-cr",
                "--seeds",
                seeds,
                "--out",
                out,
            ],
            dir.path(),
        );
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
        let md = std::fs::read_to_string(dir.path().join(out).join("report.md")).unwrap();
        (stdout(&o), md)
    };
    let (text, md) = run("1..4", "three");
    assert!(
        text.contains("live peak ") && text.contains(" (largest of 3 seeds); orphaned peak "),
        "{text}"
    );
    assert!(text.contains(" (sum of 3 seeds)\n"), "{text}");
    assert!(text.contains("orphaned peak (max)"), "{text}");
    assert!(text.contains("over 3 seeds: the orphaned peak is the largest of any one seed"));
    assert!(
        md.contains("| orphaned sessions peak (largest of 3 seeds) / at end (sum of 3 seeds) |"),
        "{md}"
    );
    let (text, md) = run("1..2", "one");
    assert!(
        !text.contains("seeds)") && !text.contains("(max)"),
        "{text}"
    );
    assert!(md.contains("| orphaned sessions peak / at end |"), "{md}");
}

/// A record whose figures are too large to add up (damaged or forged) is refused with its
/// file and line, not summed into a wrapped number (or a panic).
#[test]
fn merge_refuses_sums_that_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let o = imps(
        &[
            "simulate",
            "--scenario",
            "smoke",
            "--devices",
            "50",
            "--duration",
            "1m",
            "--seeds",
            "1..3",
            "--shard",
            "0/1",
            "--out",
            ".",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("shard-0-of-1.jsonl")).unwrap();
    let huge = 1u64 << 63;
    let forged: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["result"]["events"] = serde_json::json!(huge);
            v.to_string()
        })
        .collect();
    std::fs::write(dir.path().join("forged.jsonl"), forged.join("\n") + "\n").unwrap();
    let o = imps(&["merge", "forged.jsonl"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.starts_with("imps: error: forged.jsonl:2: post-cr: events summed over the seeds overflows 64 bits at seed 2"),
        "{e}"
    );
    assert!(o.stdout.is_empty(), "nothing printed before the error");
    // A histogram count past 64 bits is refused where it is read.
    let mut v: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    v["result"]["time_to_recover_ms"] =
        serde_json::json!({"count": 1, "max": 5, "buckets": [[5, u64::MAX], [6, 2]]});
    std::fs::write(dir.path().join("hist.jsonl"), v.to_string() + "\n").unwrap();
    let o = imps(&["merge", "hist.jsonl"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("hist.jsonl:1") && stderr(&o).contains("overflow"),
        "{}",
        stderr(&o)
    );
}

/// A shard writes each unit's line as soon as the unit is done: an interrupted shard keeps the
/// units it finished, and a rerun runs only the others. A file of another sweep is refused
/// and left as it is.
#[test]
fn an_interrupted_shard_keeps_its_finished_units_and_a_rerun_skips_them() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "simulate",
        "--scenario",
        "smoke",
        "--devices",
        "50",
        "--duration",
        "1m",
        "--variant",
        "pre-cr",
        "--variant",
        "post-cr",
        "--seeds",
        "1..3",
        "--shard",
        "1/2",
        "--out",
        "out",
    ];
    let o = imps(&args, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let file = dir.path().join("out/shard-1-of-2.jsonl");
    let full = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    assert_eq!(lines.len(), 2, "units 1 and 3 (post-cr, seeds 1 and 2)");
    // As an interruption leaves it: the first unit done, the second cut short mid-line. The
    // first unit's wall time is marked, to see that the rerun keeps its line.
    let mut first: Value = serde_json::from_str(lines[0]).unwrap();
    first["result"]["wall_ms"] = serde_json::json!(987_654_321u64);
    let kept = first.to_string();
    std::fs::write(&file, format!("{kept}\n{}", &lines[1][..200])).unwrap();
    let o = imps(&["merge", "out/shard-1-of-2.jsonl"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("out/shard-1-of-2.jsonl:2: ") && stderr(&o).contains("cut short"),
        "{}",
        stderr(&o)
    );
    let o = imps(&args, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already holds 1 of this shard's units"),
        "{}",
        stderr(&o)
    );
    let resumed = std::fs::read_to_string(&file).unwrap();
    let resumed: Vec<&str> = resumed.lines().collect();
    assert_eq!(resumed.len(), 2);
    assert_eq!(resumed[0], kept, "the finished unit was not run again");
    let strip = |l: &str| {
        let mut v: Value = serde_json::from_str(l).unwrap();
        v["result"]["wall_ms"] = Value::Null;
        v
    };
    assert_eq!(
        strip(resumed[1]),
        strip(lines[1]),
        "the cut unit ran again, the same"
    );
    // The resumed file merges like any other (with shard 0/2).
    let mut zero = args.to_vec();
    let at = zero.len() - 3;
    zero[at] = "0/2";
    let o = imps(&zero, dir.path());
    assert_eq!(
        o.status.code(),
        Some(1),
        "pre-cr traps devices: {}",
        stderr(&o)
    );
    let o = imps(
        &["merge", "out/shard-0-of-2.jsonl", "out/shard-1-of-2.jsonl"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Another configuration in the same folder is refused; the file is untouched.
    let before = std::fs::read_to_string(&file).unwrap();
    let mut other = args.to_vec();
    other[4] = "60";
    let o = imps(&other, dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("out/shard-1-of-2.jsonl:1: a unit of another sweep")
            && stderr(&o).contains("remove it"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}
