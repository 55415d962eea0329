//! `imps diff` and `imps repair`: what a change request changes, and the smallest change to
//! its reading that closes a hole; their outputs and exit codes on good and bad input.

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

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// The CR turns the pre-CR deadlock into a verdict that holds, and the first step where the
/// two readings part is the server's answer to the Client-ID in use: 503 before, 608 after.
#[test]
fn diff_pre_cr_post_cr_shows_the_deadlock_fixed_and_where_they_part() {
    let o = imps(&["diff", "pre-cr", "post-cr"]);
    assert_eq!(o.status.code(), Some(1), "verdicts differ: {}", stderr(&o));
    let text = stdout(&o);
    let row = text
        .lines()
        .find(|l| l.starts_with("no_deadlock "))
        .unwrap();
    assert!(
        row.contains("violated") && row.contains("holds") && row.contains("changed"),
        "{row}"
    );
    // The changed properties come first.
    let first = text
        .lines()
        .skip_while(|l| !l.starts_with("property"))
        .nth(1)
        .unwrap();
    assert!(first.contains("<- changed"), "{first}");
    assert!(
        text.contains("Login-Response 503 TID=1 in pre-cr, server -> dev0: Login-Response 608 TID=1 in post-cr"),
        "{text}"
    );
    assert!(
        text.contains("post-cr reaches reach_recovery; pre-cr never does"),
        "{text}"
    );
    assert!(
        text.contains("server.duplicate_client_id: \"reject-generic\" -> \"reject-608\"")
            && text.contains("CR-7.1-20 (MUST)"),
        "{text}"
    );

    let o = imps(&["diff", "pre-cr", "post-cr", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    let dep = v["departures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["property"] == "no_deadlock")
        .unwrap();
    assert_eq!(dep["violated_in"], "pre-cr");
    let at = dep["step"].as_u64().unwrap();
    assert!(at > 1, "they part after the common start: {dep}");
    assert!(
        dep["other_side"][0].as_str().unwrap().contains("608"),
        "{dep}"
    );
    assert!(dep["mermaid"]
        .as_str()
        .unwrap()
        .starts_with("sequenceDiagram"));
    assert!(v["witnesses_only_in_b"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("reach_recovery")));

    let o = imps(&["diff", "pre-cr", "post-cr", "--format", "markdown"]);
    let md = stdout(&o);
    assert!(md.starts_with("### `imps diff pre-cr post-cr`"), "{md}");
    assert!(md.contains("```mermaid\nsequenceDiagram"), "{md}");
}

/// A variant compared with itself agrees on every verdict: exit 0, nothing changed.
#[test]
fn diff_of_a_variant_with_itself_agrees() {
    let o = imps(&["diff", "post-cr", "post-cr"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("<- changed"));
    assert!(stdout(&o).contains("knobs: none differ"));
}

/// With two crashes inside logins, post-CR's minimal repairs include the server's expiry (a
/// SHOULD made a MUST) and a larger Client-ID pool; no repair breaks a property that held,
/// and each is re-checked one crash and one device further.
#[test]
fn repair_post_cr_with_two_crashes_finds_expiry_and_a_larger_pool() {
    let o = imps(&[
        "repair",
        "post-cr",
        "--set",
        "env.max_crashes=2",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let repairs = v["repairs"].as_array().unwrap();
    let single = |knob: &str, value: &str| {
        repairs.iter().any(|r| {
            let c = r["changes"].as_array().unwrap();
            c.len() == 1 && c[0]["knob"] == knob && c[0]["value"] == value
        })
    };
    assert!(single("server.ttl_expiry", "true"), "{v}");
    assert!(
        single("client.client_id_pool", "3") || single("client.client_id_pool", "4"),
        "{v}"
    );
    let expiry = repairs
        .iter()
        .find(|r| r["changes"][0]["knob"] == "server.ttl_expiry")
        .unwrap();
    assert!(expiry["suggestions"][0]
        .as_str()
        .unwrap()
        .contains("CR-6.6.1-07 SHOULD → MUST"));
    assert_eq!(expiry["next_bounds"].as_array().unwrap().len(), 2);
    // Every repair, re-checked here, makes both liveness properties hold and breaks nothing
    // that post-cr keeps.
    let base = json(&imps(&[
        "check",
        "--variant",
        "post-cr",
        "--set",
        "env.max_crashes=2",
        "--format",
        "json",
    ]));
    let held: Vec<String> = base["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] != "witness" && r["verdict"] == "holds")
        .map(|r| r["property"].as_str().unwrap().to_string())
        .collect();
    for r in repairs {
        let mut args = vec![
            "check",
            "--variant",
            "post-cr",
            "--set",
            "env.max_crashes=2",
        ];
        let sets: Vec<String> = r["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{}={}",
                    c["knob"].as_str().unwrap(),
                    c["value"].as_str().unwrap()
                )
            })
            .collect();
        for s in &sets {
            args.extend(["--set", s.as_str()]);
        }
        args.extend(["--format", "json"]);
        let out = json(&imps(&args));
        for res in out["results"].as_array().unwrap() {
            let p = res["property"].as_str().unwrap();
            if p == "no_deadlock" || p == "eventually_logged_in_fair" || held.iter().any(|h| h == p)
            {
                assert_ne!(res["verdict"], "violated", "{sets:?} breaks {p}");
            }
        }
    }
}

/// Bad input is refused with exit 2 and a message naming what was expected; a variant with
/// nothing violated has nothing to repair (exit 0).
#[test]
fn repair_and_diff_refuse_bad_input() {
    for (args, says) in [
        (
            &["repair", "post-cr", "--max-changes", "0"][..],
            "'--max-changes <MAX_CHANGES>': expected a number of knob changes (a repair changes at least one knob), a whole number from 1 up",
        ),
        (
            &["repair", "pre-cr", "--property", "no_such_thing"][..],
            "unknown property",
        ),
        (
            &["repair", "pre-cr", "--property", "reach_608"][..],
            "a witness",
        ),
        (
            &["repair", "pre-cr", "--knobs", "server.nope"][..],
            "unknown knob",
        ),
        (
            &["repair", "pre-cr", "--knobs", "env.max_crashes"][..],
            "bounds",
        ),
        (
            &["repair", "pre-cr", "--knobs", "client.ttl_s"][..],
            "tuning",
        ),
        (
            &["diff", "pre-cr", "no-such-variant"][..],
            "no-such-variant",
        ),
        (
            &["diff", "pre-cr", "post-cr", "--set", "server.nope=1"][..],
            "server.nope",
        ),
    ] {
        let o = imps(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        let e = stderr(&o);
        assert!(e.contains(says) && e.lines().count() == 1, "{args:?}: {e}");
    }
    let o = imps(&["repair", "post-cr"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("nothing to repair"),
        "{}",
        stdout(&o)
    );
}

/// Naming a knob the CR fixes searches only its CR value: Baraza's silent expiry is repaired
/// by sending the Disconnect the CR requires.
#[test]
fn repair_of_a_must_knob_restores_the_cr_value() {
    let o = imps(&[
        "repair",
        "baraza",
        "--property",
        "disconnect_always_sent",
        "--knobs",
        "server.sends_disconnect",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        v["repairs"][0]["changes"][0]["knob"],
        "server.sends_disconnect"
    );
    assert_eq!(v["repairs"][0]["changes"][0]["value"], "true");
}
