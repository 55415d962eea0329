//! The simulator end to end: reproducibility, the CR's headline result at a small scale,
//! sharded sweeps, the report files, and bad input.

use imps_model::config::{resolve_variant, variants_dir};
use imps_sim::engine::scenario::{resolve_scenario, scenarios_dir, Scenario};
use imps_sim::engine::sim::{run, RunSpec};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn imps(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imps"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the imps binary runs")
}

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
    let (_, cfg) = resolve_variant(variant, &variants_dir()).unwrap();
    let spec = RunSpec {
        variant,
        cfg: &cfg,
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
    let (_, cfg) = resolve_variant("post-cr", &variants_dir()).unwrap();
    let spec = RunSpec {
        variant: "post-cr",
        cfg: &cfg,
        scenario: &sc,
        seed: 1,
        trace_devices: &[],
    };
    let r = run(&spec, &mut |_| {}).unwrap().result;
    assert_eq!(
        (r.events, r.faults.crashes, r.stuck_devices),
        (13007, 191, 0)
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
fn pre_cr_leaves_devices_stuck_and_post_cr_recovers_them_all() {
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
        "stuck devices exit with 1: {}",
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
    assert!(pre["stuck_devices"].as_u64().unwrap() > 100, "{pre}");
    assert_eq!(post["stuck_devices"], 0, "{post}");
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
    assert!(cmp["stuck_devices"]["diff"].as_i64().unwrap() < 0);
    for key in [
        "seed",
        "variant",
        "devices",
        "sim_duration_s",
        "events",
        "events_per_s",
        "stuck_devices",
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
        out.contains("stuck         none") && out.contains("digest"),
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
        &["--devices 0", "scenario.devices"],
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
