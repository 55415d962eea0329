//! Trace validation against the checker: every counterexample, written as a log, is a run of
//! its own variant; a counterexample of one variant departs from another at the first line
//! where replaying its steps there gives another message; and the identifiers, times and
//! bounds the validator enforces each turn a run into a departure when broken.

use imps_model::checker::{check, replay, Options as CheckOptions};
use imps_model::config::Config;
use imps_model::props::Prop;
use imps_model::trace::Trace;
use imps_model::validate::engine::Bound;
use imps_model::validate::log::parse_jsonl;
use imps_model::validate::obs::prepare;
use imps_model::validate::{validate, Options, Report, ValidateError, Validation};
use imps_model::variant::{named_variants, resolve_variant, variants_dir};
use imps_model::world::Action;

fn variant(name: &str, sets: &[&str]) -> Config {
    let mut cfg = resolve_variant(name, &variants_dir()).unwrap().1.cfg;
    for s in sets {
        cfg.apply_set(s).unwrap();
    }
    cfg
}

fn run(log: &str, cfg: &Config, opts: Options) -> Result<Report, ValidateError> {
    let p = prepare(&parse_jsonl("t.jsonl", log).unwrap()).unwrap();
    validate(&p, &Validation::new(cfg), opts)
}

fn verdict(log: &str, cfg: &Config) -> Option<String> {
    run(log, cfg, Options::default())
        .unwrap()
        .departure
        .map(|d| d.at)
}

fn trace_of(cfg: &Config, actions: &[Action]) -> Trace {
    let (initial, steps) = replay(cfg, actions);
    Trace {
        variant: "test".into(),
        property: "test".into(),
        title: String::new(),
        bounds: String::new(),
        initial,
        steps,
        loop_start: None,
        device: None,
    }
}

/// Line `n` (1-based) of a log, with `from` replaced by `to` (which must occur).
fn edit(log: &str, n: usize, from: &str, to: &str) -> String {
    let mut lines: Vec<String> = log.lines().map(str::to_string).collect();
    assert!(
        lines[n - 1].contains(from),
        "line {n} has {from}: {}",
        lines[n - 1]
    );
    lines[n - 1] = lines[n - 1].replacen(from, to, 1);
    lines.join("\n") + "\n"
}

/// The 1-based line of the first log line containing all of `parts`.
fn line_of(log: &str, parts: &[&str]) -> usize {
    log.lines()
        .position(|l| parts.iter().all(|p| l.contains(p)))
        .expect("the line is there")
        + 1
}

use imps_model::client::UserAction;
use Action::{ClientReceives as CR, ServerReceives as SR, Start};

/// Login, service and capability negotiation of device `d` (post-CR, two-way).
fn login(d: u8) -> Vec<Action> {
    vec![Start(d), SR(d), CR(d), SR(d), CR(d), SR(d), CR(d)]
}

#[test]
fn every_counterexample_is_a_run_of_its_own_variant() {
    let mut logs = 0;
    for (name, _) in named_variants(&variants_dir()).unwrap() {
        let cfg = resolve_variant(&name, &variants_dir()).unwrap().1.cfg;
        let outcome = check(&cfg, &name, CheckOptions::default(), &mut |_| {}).unwrap();
        for r in &outcome.results {
            let Some(t) = &r.trace else { continue };
            let log = t.log();
            assert_eq!(
                verdict(&log, &cfg),
                None,
                "{name}/{} does not validate against {name}:\n{log}",
                r.prop.name()
            );
            logs += 1;
        }
    }
    assert!(
        logs >= 10,
        "only {logs} counterexamples: the test would be vacuous"
    );
}

#[test]
fn a_pre_cr_counterexample_departs_from_post_cr_where_replaying_it_there_first_differs() {
    let pre = variant("pre-cr", &[]);
    let post = variant("post-cr", &[]);
    let outcome = check(&pre, "pre-cr", CheckOptions::default(), &mut |_| {}).unwrap();
    let trace = outcome
        .results
        .iter()
        .find(|r| r.prop == Prop::NoDeadlock)
        .and_then(|r| r.trace.clone())
        .expect("pre-cr deadlocks");
    let log = trace.log();
    assert_eq!(verdict(&log, &pre), None);
    // The same steps under post-cr, written the same way: the first line that differs is
    // where a run of post-cr can no longer be the log (no hidden step helps: each message
    // here follows from the ones before).
    let actions: Vec<Action> = trace.steps.iter().map(|s| s.action).collect();
    let replayed = trace_of(&post, &actions).log();
    let first_diff = log
        .lines()
        .zip(replayed.lines())
        .position(|(a, b)| a != b)
        .expect("pre-cr and post-cr differ along this trace")
        + 1;
    let report = run(&log, &post, Options::default()).unwrap();
    let d = report.departure.expect("departs from post-cr");
    assert_eq!(d.at, format!("t.jsonl:{first_diff}"), "{d:?}");
    assert!(
        d.requirements().contains(&"CR-7.1-20"),
        "the 503 breaks 7.1's 608: {:?}",
        d.requirements()
    );
}

#[test]
fn a_session_id_the_server_hands_out_twice_departs() {
    let mut cfg = variant("post-cr", &["env.user_logouts=true"]);
    cfg.env.user_logouts = true;
    let mut acts = login(0);
    acts.extend([
        Action::User(0, UserAction::Logout),
        SR(0),
        CR(0),
        Action::User(0, UserAction::Login),
        SR(0),
    ]);
    let log = trace_of(&cfg, &acts).log();
    assert_eq!(verdict(&log, &cfg), None);
    let n = log.lines().count();
    let reused = edit(&log, n, "imps.example#1", "imps.example#0");
    assert_eq!(verdict(&reused, &cfg), Some(format!("t.jsonl:{n}")));
}

#[test]
fn an_answer_must_carry_its_request_s_transaction_id() {
    let cfg = variant("post-cr", &[]);
    let log = trace_of(&cfg, &login(0)).log();
    assert_eq!(verdict(&log, &cfg), None);
    let n = line_of(&log, &["Service-Response"]);
    let bad = edit(
        &log,
        n,
        "<TransactionID>2</TransactionID>",
        "<TransactionID>7</TransactionID>",
    );
    assert_eq!(verdict(&bad, &cfg), Some(format!("t.jsonl:{n}")));
}

#[test]
fn a_device_may_not_present_another_device_s_own_client_id() {
    let cfg = variant("post-cr", &["env.devices_per_user=2"]);
    let mut acts = login(0);
    acts.extend(login(1));
    let log = trace_of(&cfg, &acts).log();
    assert_eq!(verdict(&log, &cfg), None);
    let n = line_of(&log, &["dev1", "Login-Request"]);
    let shared = edit(&log, n, "imps://dev1/c0", "imps://dev0/c0");
    assert_eq!(verdict(&shared, &cfg), Some(format!("t.jsonl:{n}")));
    // With one Client-ID pool for the user's devices it is the model's own behaviour.
    let user = variant(
        "post-cr",
        &["env.devices_per_user=2", "client.client_id_scope=user"],
    );
    let mut acts = login(0);
    acts.extend([Start(1), SR(1)]);
    let log = trace_of(&user, &acts).log();
    assert!(log.contains("imps://u0/c0"));
    assert_eq!(verdict(&log, &user), None);
}

#[test]
fn a_session_expires_only_once_its_keep_alive_time_has_passed() {
    let cfg = variant("post-cr-expiry", &[]);
    let mut acts = login(0);
    acts.push(Action::Expire { user: 0, index: 0 });
    let log = trace_of(&cfg, &acts).log();
    let n = line_of(&log, &["Disconnect"]);
    assert!(log.contains("<KeepAliveTime>120</KeepAliveTime>"));
    assert_eq!(verdict(&log, &cfg), None, "a day later: due");
    // The same Disconnect a second after the last answer: 120 s had not passed.
    let line: serde_json::Value = serde_json::from_str(log.lines().nth(n - 1).unwrap()).unwrap();
    let t_ms = line["t_ms"].as_u64().unwrap();
    let early = edit(&log, n, &format!("\"t_ms\":{t_ms}"), "\"t_ms\":1700");
    assert_eq!(verdict(&early, &cfg), Some(format!("t.jsonl:{n}")));
    // Without expiry in the variant, never.
    assert_eq!(
        verdict(&log, &variant("post-cr", &[])),
        Some(format!("t.jsonl:{n}"))
    );
}

#[test]
fn passing_the_state_bound_is_an_error_that_names_it() {
    let cfg = variant("post-cr", &[]);
    // Without its events the log leaves the crashes and losses to guess: several states.
    let log: String = trace_of(&cfg, &login(0))
        .log()
        .lines()
        .filter(|l| !l.contains("\"event\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(verdict(&log, &cfg), None);
    let opts = Options {
        max_states: 1,
        ..Options::default()
    };
    let e = run(&log, &cfg, opts).unwrap_err();
    assert_eq!(e.bound, Bound::States(1));
    assert!(e.to_string().contains("--max-states 1"), "{e}");
    assert!(e.at.starts_with("t.jsonl:"), "{e}");
}

#[test]
fn a_session_limit_couples_a_user_s_devices_and_the_sap_limit_is_left_to_the_other_users() {
    // Three devices, two sessions per user: the third login gets 610.
    let limited = variant(
        "post-cr",
        &["env.devices_per_user=3", "server.max_sessions_per_user=2"],
    );
    let mut acts = login(0);
    acts.extend(login(1));
    acts.extend([Start(2), SR(2)]);
    let log = trace_of(&limited, &acts).log();
    assert!(log.contains("<Code>610</Code>"));
    assert_eq!(verdict(&log, &limited), None);
    let n = line_of(&log, &["<Code>610</Code>"]);
    let unlimited = variant("post-cr", &["env.devices_per_user=3"]);
    assert_eq!(verdict(&log, &unlimited), Some(format!("t.jsonl:{n}")));
    // A SAP-wide limit of 2 gives 609 at the same point: whoever holds the other sessions,
    // the validator lets them be there.
    let sap = variant(
        "post-cr",
        &["env.devices_per_user=3", "server.max_sessions_total=2"],
    );
    let log = trace_of(&sap, &acts).log();
    assert!(log.contains("<Code>609</Code>"));
    assert_eq!(verdict(&log, &sap), None);
    let single: String = log
        .lines()
        .filter(|l| l.contains("\"dev2\""))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(verdict(&single, &sap), None, "other users may fill the SAP");
    assert!(verdict(&single, &unlimited).is_some());
}
