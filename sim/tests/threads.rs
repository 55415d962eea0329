//! `imps simulate --threads N`: the same output, digests included, for every number of
//! threads, on scenarios that exercise every way partitions are added up (trapped devices,
//! recoveries, expiry, each kind of outage, a run stopped by a violation, a SAP-wide session
//! limit that couples users); and a run cut into partitions tells the same story as one that
//! is not (only the digest and the partition-local event numbers differ).

mod common;

use common::imps;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// The JSON output without the wall-clock figures.
fn json(o: &Output) -> Value {
    let mut v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    let runs: Vec<&mut Value> = match v.get_mut("runs") {
        Some(Value::Array(rs)) => rs.iter_mut().collect(),
        _ => vec![&mut v],
    };
    for r in runs {
        let r = r.as_object_mut().unwrap();
        r.remove("wall_s");
        r.remove("events_per_s");
    }
    v
}

/// Run `args` with 1, 2 and 3 threads; the outputs must be equal. Returns the output and the
/// exit code.
fn same_for_every_thread_count(args: &[&str]) -> (Value, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    let mut first: Option<(Value, Option<i32>)> = None;
    for n in ["1", "2", "3"] {
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--format", "json", "--threads", n]);
        let o = imps(&a, dir.path());
        let got = (json(&o), o.status.code());
        match &first {
            None => first = Some(got),
            Some(f) => assert!(
                *f == got,
                "{args:?}: --threads {n} differs from --threads 1:\n{}\nvs\n{}",
                f.0,
                got.0
            ),
        }
    }
    first.unwrap()
}

fn small(extra: &[&'static str]) -> Vec<&'static str> {
    let mut a = vec![
        "simulate",
        "--scenario",
        "smoke",
        "--devices",
        "600",
        "--duration",
        "10m",
        "--set",
        "scenario.partition_users=40",
    ];
    a.extend(extra);
    a
}

/// Every value, recursively, except the keys that name the partitioning.
fn strip(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in ["digest", "config_hash", "replay", "first_event"] {
                m.remove(k);
            }
            m.values_mut().for_each(strip);
        }
        Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

#[test]
fn pre_and_post_cr_give_the_same_output_for_every_thread_count() {
    let (v, code) =
        same_for_every_thread_count(&small(&["--variant", "pre-cr", "--variant", "post-cr"]));
    assert_eq!(code, Some(1), "pre-cr traps devices");
    let trapped = v["runs"][0]["trapped_devices"].as_u64().unwrap();
    assert!(trapped > 50, "{trapped}");
    // Cut into 8 partitions or not at all: the same figures.
    let dir = tempfile::tempdir().unwrap();
    let mut whole = small(&[
        "--variant",
        "pre-cr",
        "--variant",
        "post-cr",
        "--format",
        "json",
    ]);
    whole.truncate(7);
    whole.extend([
        "--variant",
        "pre-cr",
        "--variant",
        "post-cr",
        "--format",
        "json",
    ]);
    let mut one = json(&imps(&whole, dir.path()));
    let mut cut = v.clone();
    strip(&mut one);
    strip(&mut cut);
    assert_eq!(one, cut, "one partition and eight tell the same story");
    assert_ne!(v["runs"][0]["digest"], Value::Null);
}

#[test]
fn expiry_and_every_kind_of_outage_give_the_same_output_for_every_thread_count() {
    for kind in ["crash", "connection-loss", "server-restart"] {
        let set = format!("scenario.outage_kind={kind}");
        let set: &'static str = Box::leak(set.into_boxed_str());
        let (v, _) = same_for_every_thread_count(&small(&[
            "--variant",
            "post-cr-expiry",
            "--set",
            "scenario.outage_at=5m",
            "--set",
            "scenario.outage_fraction=0.5",
            "--set",
            set,
        ]));
        let hit = v["storm"]["devices_hit"].as_u64().unwrap();
        assert!(hit > 150, "{kind}: {hit} devices hit");
        assert!(
            v["server_peak_requests_per_s"].as_u64().unwrap() > 0,
            "{kind}"
        );
    }
}

#[test]
fn a_run_stopped_by_a_violation_stops_every_partition_at_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let post = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/variants/post-cr.toml"),
    )
    .unwrap();
    let allow = post.replace(
        "duplicate_client_id = \"reject-608\"",
        "duplicate_client_id = \"allow\"",
    );
    let path = dir.path().join("allow.toml");
    std::fs::write(&path, allow).unwrap();
    let path: &'static str = Box::leak(path.display().to_string().into_boxed_str());
    let (v, code) = same_for_every_thread_count(&small(&["--variant", path]));
    assert_eq!(code, Some(1));
    assert_eq!(v["stopped"][0][1], "client_id_unique_per_user", "{v}");
    assert!(
        v["trapped_devices"].is_null(),
        "a stopped run is not classified"
    );
}

#[test]
fn a_sap_wide_session_limit_runs_as_one_partition_and_says_so() {
    let (v, _) = same_for_every_thread_count(&small(&["--set", "server.max_sessions_total=500"]));
    assert!(v["result_codes"]["609"].as_u64().unwrap_or(0) > 0, "{v}");
    let dir = tempfile::tempdir().unwrap();
    let mut a = small(&["--set", "server.max_sessions_total=500", "--threads", "2"]);
    a.extend(["--format", "json"]);
    let o = imps(&a, dir.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("server.max_sessions_total = 500 couples every user's sessions")
            && err.contains("one partition, on one thread"),
        "{err}"
    );
}

#[test]
fn more_threads_than_partitions_use_fewer_and_say_so_and_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = imps(
        &[
            "simulate",
            "--scenario",
            "smoke",
            "--devices",
            "200",
            "--duration",
            "5m",
            "--threads",
            "4",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("4 threads asked, but variant post-cr's runs have 1 partition")
            && err.contains("using 1"),
        "{err}"
    );
    let o = imps(&["simulate", "--threads", "0"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--threads")
            && err
                .contains("expected a number of threads, a whole number from 1 to 1024, found `0`"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}
