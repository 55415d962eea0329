//! `imps validate`: the example logs of specs/logs get the verdicts their manifest records
//! (and the README table says the same); a simulator run, written as a log, is a run of its
//! variant and departs from another where that one would answer otherwise; bad input is
//! exit 2 with the file and line; the README's examples are what the commands print.

use imps_model::validate::log::{parse_jsonl, Dir, Entry};
use imps_model::validate::obs::prepare;
use imps_model::validate::{validate, Options, Validation};
use imps_model::variant::{resolve_variant, variants_dir};
use imps_model::xml;
use imps_sim::engine::scenario::{Dur, Scenario};
use imps_sim::engine::sim::{run, RunSpec};
use imps_sim::engine::vlog;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn imps(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imps"))
        .args(args)
        .output()
        .expect("imps runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn logs_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../specs/logs")).to_path_buf()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    log: Vec<LogEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogEntry {
    file: String,
    #[allow(dead_code)]
    what: String,
    #[serde(default)]
    infer_from: Vec<String>,
    #[serde(default)]
    check: Vec<Check>,
    #[serde(default)]
    pin: Vec<Pin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Check {
    variant: String,
    #[serde(default)]
    set: Vec<String>,
    verdict: String,
    line: Option<usize>,
    requirements: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pin {
    knob: String,
    value: String,
    line: usize,
}

fn manifest() -> Manifest {
    let text = std::fs::read_to_string(logs_dir().join("manifest.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

fn line_of(at: &str) -> usize {
    let tail = at.rsplit_once(':').unwrap().1;
    tail.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn example_logs_get_the_verdicts_of_their_manifest() {
    let m = manifest();
    assert!(m.log.len() >= 6, "the five stories of the CR and a HAR");
    for log in &m.log {
        let path = logs_dir().join(&log.file);
        assert!(!log.check.is_empty(), "{} has no check", log.file);
        for c in &log.check {
            let mut args = vec![
                "validate",
                path.to_str().unwrap(),
                "--variant",
                &c.variant,
                "--format",
                "json",
            ];
            for s in &c.set {
                args.extend(["--set", s]);
            }
            let o = imps(&args);
            let what = format!("{} against {} {:?}", log.file, c.variant, c.set);
            let code = if c.verdict == "conforms" { 0 } else { 1 };
            assert_eq!(o.status.code(), Some(code), "{what}: {}", text(&o));
            let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(doc["verdict"], c.verdict.as_str(), "{what}");
            let d = &doc["departure"];
            match c.verdict.as_str() {
                "conforms" => assert!(d.is_null(), "{what}: {d}"),
                _ => {
                    assert_eq!(d["line"].as_u64(), c.line.map(|l| l as u64), "{what}: {d}");
                    let reqs: Vec<String> = d["requirements"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_string())
                        .collect();
                    assert_eq!(Some(reqs), c.requirements.clone(), "{what}: {d}");
                }
            }
        }
    }
}

#[test]
fn example_logs_pin_the_knobs_of_their_manifest() {
    for log in manifest().log.iter().filter(|l| !l.pin.is_empty()) {
        let path = logs_dir().join(&log.file);
        let mut args = vec![
            "validate",
            path.to_str().unwrap(),
            "--infer",
            "--format",
            "json",
        ];
        for v in &log.infer_from {
            args.extend(["--variant", v]);
        }
        let o = imps(&args);
        assert_eq!(o.status.code(), Some(0), "{}: {}", log.file, text(&o));
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let settings = doc["settings"].as_array().unwrap();
        for pin in &log.pin {
            let found = settings.iter().any(|s| {
                s["knobs"].as_array().unwrap().iter().any(|k| {
                    k["knob"] == pin.knob.as_str()
                        && k["status"] == "pinned"
                        && k["value"] == pin.value.as_str()
                        && line_of(k["at"].as_str().unwrap()) == pin.line
                })
            });
            assert!(
                found,
                "{}: {} = {} is not pinned by line {}: {doc}",
                log.file, pin.knob, pin.value, pin.line
            );
        }
    }
}

#[test]
fn the_readme_table_is_the_manifest() {
    let readme = std::fs::read_to_string(logs_dir().join("README.md")).unwrap();
    let rows: Vec<Vec<String>> = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    let mut want = Vec::new();
    for log in manifest().log {
        for c in log.check {
            let mut variant = format!("`{}`", c.variant);
            for s in &c.set {
                variant.push_str(&format!(" `{s}`"));
            }
            let reqs = match &c.requirements {
                None => String::new(),
                Some(r) if r.is_empty() => "none".to_string(),
                Some(r) => r.join(", "),
            };
            want.push(vec![
                format!("`{}`", log.file),
                variant,
                c.verdict.clone(),
                c.line.map(|l| l.to_string()).unwrap_or_default(),
                reqs,
            ]);
        }
    }
    assert_eq!(rows, want);
}

/// A small simulated run of `variant`, every device traced, as a log.
fn sim_log(variant: &str, devices: u32) -> String {
    let variant_file = resolve_variant(variant, &variants_dir()).unwrap().1;
    let cfg = variant_file.cfg.clone();
    let scenario = Scenario {
        devices,
        duration: Dur(20 * 60_000),
        crashes_per_device_hour: 3.0,
        loss_rate: 0.002,
        restart_delay_min: Dur(2_000),
        restart_delay_max: Dur(30_000),
        backoff_cap: Dur(30_000),
        ..Scenario::default()
    };
    let all: Vec<u32> = (0..devices).collect();
    let spec = RunSpec {
        threads: 1,
        variant,
        cfg: &cfg,
        expected: variant_file.expected_violated(),
        scenario: &scenario,
        seed: 3,
        trace_devices: &all,
    };
    let out = run(&spec, &mut |_| {}).unwrap();
    vlog::jsonl(&out.log, scenario.devices_per_user)
}

fn first_departure(log: &str, variant: &str, sets: &[&str]) -> Option<usize> {
    let variant_file = resolve_variant(variant, &variants_dir()).unwrap().1;
    let cfg = variant_file.cfg.clone();
    let mut v = Validation::new(&cfg);
    for s in sets {
        v.set(s).unwrap();
    }
    let p = prepare(&parse_jsonl("sim.jsonl", log).unwrap()).unwrap();
    let r = validate(&p, &v, Options::default()).unwrap();
    r.departure.map(|d| p.lines[d.line].line)
}

#[test]
fn a_simulated_run_is_a_run_of_its_variant_with_or_without_its_events() {
    for variant in ["post-cr", "pre-cr", "post-cr-expiry"] {
        let log = sim_log(variant, 12);
        assert!(
            log.contains("\"event\":\"crash\""),
            "{variant}: the run has crashes"
        );
        assert_eq!(first_departure(&log, variant, &[]), None, "{variant}");
        // A proxy's view: the crashes, restarts and losses are to be guessed.
        let proxy: String = log
            .lines()
            .filter(|l| !l.contains("\"event\""))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(first_departure(&proxy, variant, &[]), None, "{variant}");
    }
}

#[test]
fn a_post_cr_run_departs_from_a_server_without_recovery_at_the_first_recovered_session() {
    let log = sim_log("post-cr", 12);
    // The answer to the first Login-Request that carries a Session-ID: 200 in the run, 502
    // for a server that recovers nothing. Everything before it is the same for both.
    let parsed = parse_jsonl("sim.jsonl", &log).unwrap();
    let mut asked: Option<(String, String)> = None;
    let mut expected = None;
    for l in &parsed.lines {
        let Entry::Message { dir, xml } = &l.entry else {
            continue;
        };
        let d = xml::decode(xml).unwrap();
        match (dir, &asked) {
            (Dir::ToServer, None)
                if d.primitive == "Login-Request" && d.recovery_session_id.is_some() =>
            {
                asked = Some((l.device.clone(), d.transaction_id.clone().unwrap()));
            }
            (Dir::ToClient, Some((dev, tid)))
                if *dev == l.device && d.transaction_id.as_ref() == Some(tid) =>
            {
                assert_eq!(d.result_code, Some(200), "the run recovers");
                expected = Some(l.line);
                break;
            }
            _ => {}
        }
    }
    let expected = expected.expect("the run recovers a session");
    assert_eq!(
        first_departure(&log, "post-cr", &["server.recovery=unsupported"]),
        Some(expected)
    );
}

#[test]
fn simulate_and_check_write_logs_that_validate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    let o = imps(&[
        "simulate",
        "--scenario",
        "smoke",
        "--devices",
        "6",
        "--duration",
        "10m",
        "--log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = imps(&["validate", log.to_str().unwrap(), "--variant", "post-cr"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("conforms"), "{}", text(&o));
    // A log is one run: two variants are refused before anything is written.
    let two = dir.path().join("two.jsonl");
    let o = imps(&[
        "simulate",
        "--scenario",
        "smoke",
        "--devices",
        "6",
        "--variant",
        "pre-cr",
        "--variant",
        "post-cr",
        "--log",
        two.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!two.exists());
    let out = dir.path().join("ck");
    let o = imps(&[
        "check",
        "--variant",
        "pre-cr",
        "--log",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let cx = out.join("pre-cr/no_deadlock.log.jsonl");
    let o = imps(&["validate", cx.to_str().unwrap(), "--variant", "pre-cr"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = imps(&["validate", cx.to_str().unwrap(), "--variant", "post-cr"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("CR-7.1-20"), "{}", text(&o));
}

#[test]
fn bad_input_is_exit_2_with_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(logs_dir().join("pre-cr-server-503.jsonl")).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    let cases: Vec<(&str, String, &str)> = vec![
        ("garbage.jsonl", format!("{}\nnot json\n", lines[0]), ":2: expected a JSON object"),
        (
            "dir.jsonl",
            lines[0].replace("\"to-server\"", "\"upstream\"") + "\n",
            ":1: expected \"dir\": \"to-server\" or \"to-client\", found \"upstream\"",
        ),
        (
            "xml.jsonl",
            {
                lines[1] = "{\"t_ms\": 800, \"user\": \"bob\", \"device\": \"handset\", \"dir\": \"to-client\", \"xml\": \"<WV-CSP-Message xmlns=\\\"urn:nope\\\"/>\"}";
                lines[..2].join("\n") + "\n"
            },
            ":2: the message does not decode: line 1, column 1 of the XML: expected a CSP 1.1, 1.2 or 1.3 namespace",
        ),
    ];
    for (name, body, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let o = imps(&["validate", path.to_str().unwrap(), "--variant", "post-cr"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.stdout.is_empty(), "{name}: no verdict on bad input");
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert!(
            err.contains(&format!("{}{want}", path.display())),
            "{name}: {err}"
        );
    }
    let path = logs_dir().join("pre-cr-server-503.jsonl");
    // The fault budget: the restart of the running handset (line 9) is a crash.
    let budget = |n: &str| {
        let o = imps(&[
            "validate",
            path.to_str().unwrap(),
            "--variant",
            "pre-cr",
            "--set",
            &format!("env.max_crashes={n}"),
        ]);
        (o.status.code(), text(&o))
    };
    assert_eq!(budget("1").0, Some(0), "{}", budget("1").1);
    let (code, out) = budget("0");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("DEPARTS at") && out.contains(".jsonl:9"),
        "{out}"
    );
    let o = imps(&["validate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--variant"), "{}", text(&o));
    let o = imps(&[
        "validate",
        path.to_str().unwrap(),
        "--variant",
        "post-cr",
        "--set",
        "env.max_crashes=many",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("env.max_crashes=many"), "{}", text(&o));
}

#[test]
fn passing_the_state_bound_is_exit_2_naming_it() {
    let path = logs_dir().join("post-cr-phone-crash-recovers.jsonl");
    let o = imps(&[
        "validate",
        path.to_str().unwrap(),
        "--variant",
        "post-cr",
        "--max-states",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("post-cr-phone-crash-recovers.jsonl:") && err.contains("--max-states 2"),
        "{err}"
    );
}

#[test]
fn json_reports_have_the_documented_keys_and_are_the_same_twice() {
    let path = logs_dir().join("baraza-recovery-422.jsonl");
    let args = [
        "validate",
        path.to_str().unwrap(),
        "--variant",
        "post-cr",
        "--format",
        "json",
    ];
    let a = imps(&args);
    let b = imps(&args);
    assert_eq!(a.stdout, b.stdout, "deterministic");
    let doc: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    for key in [
        "log",
        "variant",
        "verdict",
        "messages",
        "departure",
        "states_tracked_max",
    ] {
        assert!(!doc[key].is_null(), "{key} in {doc}");
    }
    for key in ["line", "observed", "allowed", "requirements"] {
        assert!(!doc["departure"][key].is_null(), "{key} in {doc}");
    }
    assert_eq!(doc["messages"], 14);
    let allowed = doc["departure"]["allowed"].as_array().unwrap();
    assert!(
        allowed
            .iter()
            .any(|a| a.as_str().unwrap().contains("Login-Response 200")),
        "post-cr recovers: {doc}"
    );
}

/// The README's trace-validation examples: each `<!-- validate-example -->` block lists
/// commands (`$ imps ...`, or the `grep -v '"event"' IN > OUT` that strips a log's events)
/// and what `imps validate` prints; they are run from the workspace root and compared.
#[test]
fn the_readme_examples_are_what_the_commands_print() {
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut blocks = 0;
    let mut lines = readme.lines();
    while let Some(l) = lines.next() {
        if l != "<!-- validate-example -->" {
            continue;
        }
        blocks += 1;
        assert_eq!(lines.next(), Some("```"));
        let mut body: Vec<&str> = Vec::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            body.push(l);
        }
        let mut i = 0;
        while i < body.len() {
            let cmd = body[i].strip_prefix("$ ").expect("a command");
            let mut want = Vec::new();
            i += 1;
            while i < body.len() && !body[i].starts_with("$ ") {
                want.push(body[i]);
                i += 1;
            }
            if let Some(rest) = cmd.strip_prefix("grep -v '\"event\"' ") {
                let (src, dst) = rest.split_once(" > ").unwrap();
                let text = std::fs::read_to_string(root.join(src)).unwrap();
                let kept: String = text
                    .lines()
                    .filter(|l| !l.contains("\"event\""))
                    .map(|l| format!("{l}\n"))
                    .collect();
                std::fs::write(root.join(dst), kept).unwrap();
                continue;
            }
            let args: Vec<&str> = cmd.strip_prefix("imps ").unwrap().split(' ').collect();
            let o = Command::new(env!("CARGO_BIN_EXE_imps"))
                .args(&args)
                .current_dir(root)
                .output()
                .unwrap();
            assert!(
                matches!(o.status.code(), Some(0 | 1)),
                "{cmd}: {}",
                text(&o)
            );
            if args[0] == "simulate" {
                continue; // its figures of speed vary; the run is what the next commands read
            }
            assert_eq!(
                String::from_utf8_lossy(&o.stdout).trim_end(),
                want.join("\n"),
                "README: {cmd}"
            );
        }
    }
    assert!(
        blocks >= 5,
        "the README's trace-validation examples are found ({blocks})"
    );
}
