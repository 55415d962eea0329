//! The `imps` command line: `check`, `variants` and `decode`, their outputs, and their exit
//! codes on good and bad input.

use std::path::Path;
use std::process::{Command, Output};

fn imps(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imps"))
        .args(args)
        .output()
        .expect("imps runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn check_matrix_meets_every_expectation_and_writes_counterexamples() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = imps(&["check", "--out", out]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("expectations: all"), "{text}");
    let no_deadlock = text
        .lines()
        .find(|l| l.starts_with("no_deadlock "))
        .unwrap();
    assert!(
        no_deadlock.contains("VIOLATED") && no_deadlock.contains("holds"),
        "{no_deadlock}"
    );
    for ext in ["txt", "mmd", "xml", "itf.json"] {
        let f = dir.path().join("pre-cr").join(format!("no_deadlock.{ext}"));
        assert!(f.exists(), "{} written", f.display());
    }
    let mmd = std::fs::read_to_string(dir.path().join("pre-cr/no_deadlock.mmd")).unwrap();
    assert!(mmd.starts_with("sequenceDiagram") && mmd.contains("Login-Request"));
    let itf: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("pre-cr/no_deadlock.itf.json")).unwrap(),
    )
    .unwrap();
    assert!(itf["states"].as_array().unwrap().len() > 3);
    assert!(
        !dir.path().join("post-cr/no_deadlock.txt").exists(),
        "post-cr has no deadlock"
    );
}

#[test]
fn check_json_has_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let o = imps(&[
        "check",
        "--variant",
        "pre-cr",
        "--variant",
        "post-cr",
        "--format",
        "json",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let results = doc["results"].as_array().unwrap();
    let r = results
        .iter()
        .find(|r| r["variant"] == "pre-cr" && r["property"] == "no_deadlock")
        .unwrap();
    for key in [
        "variant", "property", "kind", "verdict", "states", "bounds", "trace",
    ] {
        assert!(!r[key].is_null(), "key {key}");
    }
    assert_eq!(r["kind"], "liveness");
    assert_eq!(r["verdict"], "violated");
    assert!(Path::new(r["trace"]["mermaid"].as_str().unwrap()).exists());
    let post = results
        .iter()
        .find(|r| r["variant"] == "post-cr" && r["property"] == "no_deadlock")
        .unwrap();
    assert_eq!(post["verdict"], "holds");
}

#[test]
fn a_verdict_that_differs_from_the_expectation_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("specs/variants/post-cr.toml")).unwrap();
    let wrong = text.replace("no_deadlock = \"holds\"", "no_deadlock = \"violated\"");
    assert_ne!(text, wrong, "post-cr pins no_deadlock");
    let file = dir.path().join("post-cr-wrong.toml");
    std::fs::write(&file, wrong).unwrap();
    let o = imps(&[
        "check",
        "--variant",
        file.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("expected violated, found holds"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn bad_input_exits_2_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = imps(&["check", "--variant", "no-such-variant"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown variant `no-such-variant`") && stderr(&o).contains("post-cr"),
        "{}",
        stderr(&o)
    );

    let o = imps(&["check", "--variant", "pre-cr", "--set", "server.nope=1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown knob `nope`"), "{}", stderr(&o));

    let o = imps(&["check", "--variant", "pre-cr", "--set", "env.users=0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("at least 1"), "{}", stderr(&o));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "description = \"x\"\n[server]\nrecovery = \"sometimes\"\n",
    )
    .unwrap();
    let o = imps(&["check", "--variant", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("bad.toml") && e.contains("line 3") && e.contains("sometimes"),
        "{e}"
    );

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[expect]\nno_such_property = \"holds\"\n").unwrap();
    let o = imps(&["check", "--variant", unknown.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no_such_property"), "{}", stderr(&o));
}

#[test]
fn variants_lists_every_variant_and_knob() {
    let o = imps(&["variants"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for name in ["pre-cr", "post-cr", "baraza", "intervillage"] {
        assert!(text.contains(name), "{name}");
    }
    for knob in [
        "server.duplicate_client_id = \"reject-608\"",
        "server.recovery = \"supported\"",
        "client.on_608",
        "env.max_crashes = 1",
    ] {
        assert!(text.contains(knob), "{knob} in\n{text}");
    }
    let o = imps(&["variants", "--show", "pre-cr", "--set", "env.max_crashes=2"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("duplicate_client_id = \"reject-generic\"")
            && stdout(&o).contains("max_crashes = 2")
    );
}

#[test]
fn decode_prints_json_lines_and_rejects_bad_files() {
    let xml = root().join("specs/xml");
    let good = xml.join("login-request-recovery.xml");
    let o = imps(&[
        "decode",
        good.to_str().unwrap(),
        xml.join("disconnect-600.xml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["primitive"], "Login-Request");
    assert_eq!(lines[0]["version"], "1.3");
    for key in [
        "session_id",
        "transaction_id",
        "user_id",
        "client_id",
        "result_code",
    ] {
        assert!(lines[0].get(key).is_some(), "{key}");
    }
    assert_eq!(lines[1]["result_code"], 600);
    assert!(
        lines[1]["transaction_id"].is_null(),
        "Disconnect carries no Transaction-ID"
    );

    let bad = xml.join("bad/bad-transaction-mode.xml");
    let o = imps(&["decode", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("bad-transaction-mode.xml:") && e.contains("expected"),
        "{e}"
    );
}

#[test]
fn sweep_validates_every_axis_before_running() {
    for (args, expect) in [
        (vec!["sweep", "--axis", "env.users=1,9"], "at most 8"),
        (
            vec!["sweep", "--axis", "env.users=1,2", "--axis", "env.users=1"],
            "already an axis",
        ),
        (vec!["sweep", "--axis", "env.users=1,,2"], "none empty"),
        (
            vec!["sweep", "--axis", "expect.no_deadlock=holds"],
            "changes no verdict",
        ),
        (
            vec!["sweep", "--axis", "server.recovery=supported,bogus"],
            "bogus",
        ),
    ] {
        let o = imps(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            o.stdout.is_empty(),
            "{args:?}: nothing printed before the error"
        );
        assert!(stderr(&o).contains(expect), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn an_expectation_that_cannot_be_a_verdict_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    for (body, expect) in [
        ("[expect]\nreach_608 = \"violated\"\n", "witness"),
        ("[expect]\nno_deadlock = \"not-reached\"\n", "liveness"),
    ] {
        let f = dir.path().join("v.toml");
        std::fs::write(&f, body).unwrap();
        let o = imps(&["check", "--variant", f.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            stderr(&o).contains(expect) && stderr(&o).contains("v.toml"),
            "{}",
            stderr(&o)
        );
    }
}

/// `--set` is judged on the final configuration: the order of the overrides does not decide
/// whether a run is accepted (issue: latency_min before latency_mean was refused, the other
/// order accepted; env.max_crashes=4 before env.max_connection_losses=0 likewise).
#[test]
fn overrides_are_checked_on_the_final_configuration() {
    for sets in [
        ["scenario.latency_min=3s", "scenario.latency_mean=3s"],
        ["scenario.latency_mean=3s", "scenario.latency_min=3s"],
    ] {
        let o = imps(&[
            "simulate",
            "--scenario",
            "smoke",
            "--devices",
            "50",
            "--duration",
            "2m",
            "--set",
            sets[0],
            "--set",
            sets[1],
        ]);
        assert_eq!(o.status.code(), Some(0), "{sets:?}: {}", stderr(&o));
    }
    let dir = tempfile::tempdir().unwrap();
    for sets in [
        ["env.max_crashes=4", "env.max_connection_losses=0"],
        ["env.max_connection_losses=0", "env.max_crashes=4"],
    ] {
        let o = imps(&[
            "check",
            "--variant",
            "android-on-cr-server",
            "--out",
            dir.path().to_str().unwrap(),
            "--set",
            sets[0],
            "--set",
            sets[1],
        ]);
        assert_ne!(o.status.code(), Some(2), "{sets:?}: {}", stderr(&o));
    }
    // A bound broken by the final configuration is named with every override that made it.
    let o = imps(&[
        "check",
        "--variant",
        "post-cr",
        "--set",
        "env.max_crashes=4",
        "--set",
        "env.max_connection_losses=1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("--set env.max_crashes=4 --set env.max_connection_losses=1")
            && e.contains("at most 4"),
        "{e}"
    );
    let o = imps(&["simulate", "--devices", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--devices 0"), "{}", stderr(&o));
}

/// When --set changes a variant's knobs or bounds, its `[expect]` table (written for the
/// variant as it is) is set aside, said so in one line, and the exit code follows the
/// verdicts alone; `--expect` compares anyway.
#[test]
fn expectations_are_set_aside_at_other_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    // Expiry makes reach_expiry reachable, which post-cr's table pins as not reached; no
    // property is violated.
    let args = [
        "check",
        "--variant",
        "post-cr",
        "--out",
        out,
        "--set",
        "server.ttl_expiry=true",
    ];
    let o = imps(&args);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("expectations: set aside for post-cr"),
        "{text}"
    );
    assert!(!text.contains("expectations NOT met"), "{text}");
    let mut with = args.to_vec();
    with.push("--expect");
    let o = imps(&with);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("reach_expiry: expected not-reached, found holds"));
    // A violated property still fails the run.
    let o = imps(&[
        "check",
        "--variant",
        "post-cr",
        "--out",
        out,
        "--set",
        "env.max_crashes=2",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    // A --set that changes nothing keeps the table.
    let o = imps(&[
        "check",
        "--variant",
        "post-cr",
        "--out",
        out,
        "--set",
        "server.ttl_expiry=false",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("expectations: all"), "{}", stdout(&o));
    let o = imps(&[
        "check",
        "--variant",
        "post-cr",
        "--out",
        out,
        "--format",
        "json",
        "--set",
        "server.ttl_expiry=true",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["expectations_set_aside"], serde_json::json!(["post-cr"]));
}
