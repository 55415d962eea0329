//! The `imps` command line: `check`, `variants` and `decode`, their outputs, and their exit
//! codes on good and bad input; every command's behaviour when its stdout fails.

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

    for cmd in ["check", "sweep"] {
        let mut args = vec![cmd, "--threads", "0"];
        if cmd == "sweep" {
            args.extend(["--axis", "env.max_crashes=1,2"]);
        }
        let o = imps(&args);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        assert!(
            stderr(&o).contains("--threads") && stderr(&o).contains("from 1 up"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    let o = imps(&[
        "check",
        "--variant",
        "post-cr",
        "--set",
        "env.devices_per_user=2",
        "--max-states",
        "1000",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("exceeds the limit of 1000 states"),
        "{}",
        stderr(&o)
    );

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[expect]\nno_such_property = \"holds\"\n").unwrap();
    let o = imps(&["check", "--variant", unknown.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no_such_property"), "{}", stderr(&o));
}

/// The matrix says where the symmetry reduction was on, and why it was off elsewhere.
#[test]
fn check_says_where_symmetry_reduced() {
    let o = imps(&[
        "check",
        "--variant",
        "pre-cr",
        "--variant",
        "post-cr-session-limit",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("symmetry reduction: on for [2]")
            && stdout(&o).contains("nothing to permute (a single device)"),
        "{}",
        stdout(&o)
    );
    let o = imps(&[
        "check",
        "--variant",
        "post-cr-session-limit",
        "--symmetry",
        "off",
        "--stats",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("symmetry reduction: off (--symmetry off)"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("3420 states (3420 concrete)"),
        "{}",
        stdout(&o)
    );
    let o = imps(&["check", "--variant", "post-cr-session-limit", "--stats"]);
    assert!(
        stdout(&o).contains("1711 states (3420 concrete)"),
        "{}",
        stdout(&o)
    );
}

/// `--stats` tells how long each stage of the exploration waited for the other on two
/// threads, and gives no such figures on one, where the stages take turns.
#[test]
fn stats_give_the_stage_waits_on_two_threads() {
    for (threads, waited) in [("2", true), ("1", false)] {
        let o = imps(&[
            "check",
            "--variant",
            "post-cr-session-limit",
            "--stats",
            "--format",
            "json",
            "--threads",
            threads,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let st = &v["stats"][0];
        for key in ["generator_wait_s", "lookups_wait_s"] {
            assert_eq!(
                st[key].is_f64(),
                waited,
                "--threads {threads}: {key} in {st}"
            );
            assert_eq!(
                st[key].is_null(),
                !waited,
                "--threads {threads}: {key} in {st}"
            );
        }
        let o = imps(&[
            "check",
            "--variant",
            "post-cr-session-limit",
            "--stats",
            "--threads",
            threads,
        ]);
        assert_eq!(
            stdout(&o).contains("waiting: generator "),
            waited,
            "--threads {threads}: {}",
            stdout(&o)
        );
    }
}

/// `--stats` tells how much memory was resident at the end of the exploration and how much
/// of it in huge pages (on Linux, where the kernel gives these figures): a part of it, and
/// none when the heaps are not marked for them (unless the kernel gives huge pages to all
/// memory). The peak is not a bound: the kernel counts it lazily, by a few pages.
#[test]
fn stats_give_the_huge_pages_in_use_at_the_end_of_the_exploration() {
    let linux = cfg!(target_os = "linux");
    for tunables in ["glibc.malloc.hugetlb=0", "glibc.malloc.hugetlb=1"] {
        let run = |format: &str| {
            let o = Command::new(env!("CARGO_BIN_EXE_imps"))
                .args(["check", "--variant", "post-cr-session-limit", "--stats"])
                .args(["--format", format])
                .env("GLIBC_TUNABLES", tunables)
                .output()
                .expect("imps runs");
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            o
        };
        let v: serde_json::Value = serde_json::from_slice(&run("json").stdout).unwrap();
        let st = &v["stats"][0];
        let (rss, huge) = (
            st["explored_rss_bytes"].as_u64(),
            st["explored_huge_page_bytes"].as_u64(),
        );
        assert_eq!((rss.is_some(), huge.is_some()), (linux, linux), "{st}");
        if let (Some(rss), Some(huge)) = (rss, huge) {
            assert!(rss > 0 && huge <= rss, "{st}");
            if tunables.ends_with("=0") {
                // Nothing marked: THP mode `always` could still give some, `madvise` none.
                let always = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
                    .is_ok_and(|m| m.contains("[always]"));
                assert!(always || huge == 0, "{st}");
            }
        }
        let text = stdout(&run("text"));
        assert_eq!(
            text.contains("resident at the end of the exploration"),
            linux,
            "{text}"
        );
    }
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

/// Every command and output format, with the arguments that make it print (small and fast).
/// `DIR` stands for a scratch directory, `SHARD` for a shard file of a finished sweep.
const PRINTING: &[&[&str]] = &[
    &["variants"],
    &["variants", "--show", "pre-cr"],
    &["check", "--variant", "pre-cr", "--out", "DIR"],
    &[
        "check",
        "--variant",
        "pre-cr",
        "--format",
        "json",
        "--out",
        "DIR",
    ],
    &[
        "sweep",
        "--variant",
        "pre-cr",
        "--axis",
        "env.crash_during_login=false,true",
        "--out",
        "DIR",
    ],
    &["diff", "post-cr-one-client-id", "post-cr"],
    &[
        "diff",
        "post-cr-one-client-id",
        "post-cr",
        "--format",
        "json",
    ],
    &[
        "diff",
        "post-cr-one-client-id",
        "post-cr",
        "--format",
        "markdown",
    ],
    &["repair", "post-cr-one-client-id"],
    &["repair", "post-cr-one-client-id", "--format", "json"],
    &["repair", "post-cr-one-client-id", "--format", "markdown"],
    &["decode", "XML"],
    &[
        "simulate",
        "--scenario",
        "smoke",
        "--devices",
        "50",
        "--duration",
        "1m",
    ],
    &[
        "simulate",
        "--scenario",
        "smoke",
        "--devices",
        "50",
        "--duration",
        "1m",
        "--format",
        "json",
    ],
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
        "0/2",
    ],
    &["merge", "SHARD"],
    &["merge", "SHARD", "--format", "json"],
];

/// A scratch directory with a shard file of a finished one-unit sweep.
fn scratch_with_shard() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let o = imps(&[
        "simulate",
        "--scenario",
        "smoke",
        "--devices",
        "50",
        "--duration",
        "1m",
        "--seeds",
        "1..2",
        "--shard",
        "0/1",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let shard = dir.path().join("shard-0-of-1.jsonl");
    assert!(shard.exists());
    let shard = shard.to_str().unwrap().to_string();
    (dir, shard)
}

fn filled(args: &[&str], dir: &Path, shard: &str) -> Vec<String> {
    let xml = root().join("specs/xml/disconnect-600.xml");
    args.iter()
        .map(|a| match *a {
            "DIR" => dir.to_str().unwrap().to_string(),
            "SHARD" => shard.to_string(),
            "XML" => xml.to_str().unwrap().to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// Run the binary with `stdout` as its standard output; `None` when it ran past a minute (a
/// command that should have stopped at its first write and went on, e.g. explore serving).
fn imps_to(args: &[String], stdout: std::process::Stdio) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imps"))
        .args(args)
        .stdout(stdout)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("imps runs");
    // A guard against a hang, not a measurement: every command here ends in well under a second.
    for _ in 0..600 {
        if child.try_wait().expect("wait works").is_some() {
            return Some(child.wait_with_output().expect("imps output"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().expect("kill works");
    None
}

#[test]
fn a_full_stdout_is_an_error_naming_stdout_for_every_command() {
    let (dir, shard) = scratch_with_shard();
    for args in PRINTING {
        let args = filled(args, dir.path(), &shard);
        let full = std::fs::File::create("/dev/full").expect("/dev/full exists on Linux");
        let o = imps_to(&args, full.into()).unwrap_or_else(|| panic!("{args:?} did not stop"));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(
            e.lines().any(|l| l.starts_with("imps: error: <stdout>: ")
                && l.contains("No space left on device")),
            "{args:?}: {e}"
        );
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    let (dir, shard) = scratch_with_shard();
    for args in PRINTING {
        let args = filled(args, dir.path(), &shard);
        // The reading end is closed before the command starts: its first write fails.
        let (reader, writer) = rustix::pipe::pipe().expect("a pipe");
        drop(reader);
        let o = imps_to(&args, std::process::Stdio::from(writer))
            .unwrap_or_else(|| panic!("{args:?} did not stop"));
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {e}");
        assert!(
            !e.contains("error") && !e.contains("panicked"),
            "{args:?}: {e}"
        );
    }
}

/// `imps explore` prints its address on stdout before it serves; when stdout cannot take it,
/// it stops instead of serving an address nobody was told.
#[test]
fn explore_stops_before_serving_when_stdout_fails() {
    let port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a free port");
        l.local_addr().unwrap().port()
    };
    let args: Vec<String> = [
        "explore",
        "--variant",
        "pre-cr",
        "--port",
        &port.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let full = std::fs::File::create("/dev/full").unwrap();
    let o = imps_to(&args, full.into()).expect("explore stops on a full stdout");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("imps: error: <stdout>: "),
        "{}",
        stderr(&o)
    );
    #[cfg(unix)]
    {
        let (reader, writer) = rustix::pipe::pipe().unwrap();
        drop(reader);
        let o = imps_to(&args, writer.into()).expect("explore stops on a closed pipe");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
}

/// Run the binary under a shell that sets the umask first.
#[cfg(unix)]
fn imps_with_umask(umask: &str, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_imps"))
        .args(args)
        .output()
        .expect("sh runs imps")
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Counterexample files are created like any file the user makes (0644 less the umask, not
/// the 0600 of a temporary file), and `--bless` keeps the mode the variant file had.
#[cfg(unix)]
#[test]
fn new_files_follow_the_umask_and_a_blessed_file_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (umask, want) in [("022", 0o644), ("027", 0o640)] {
        let out = dir.path().join(umask);
        let o = imps_with_umask(
            umask,
            &[
                "check",
                "--variant",
                "pre-cr",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let f = out.join("pre-cr/no_deadlock.txt");
        assert_eq!(mode(&f), want, "umask {umask}: {:o}", mode(&f));
    }
    let variant = dir.path().join("mine.toml");
    let text = std::fs::read_to_string(root().join("specs/variants/post-cr.toml")).unwrap();
    let (head, _) = text
        .split_once("[expect]")
        .expect("post-cr has an [expect] table");
    std::fs::write(&variant, head).unwrap();
    std::fs::set_permissions(&variant, std::fs::Permissions::from_mode(0o604)).unwrap();
    let o = imps_with_umask(
        "077",
        &[
            "check",
            "--variant",
            variant.to_str().unwrap(),
            "--bless",
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let blessed = std::fs::read_to_string(&variant).unwrap();
    assert!(blessed.contains("[expect]\n") && blessed.contains("no_deadlock = \"holds\""));
    assert_eq!(mode(&variant), 0o604, "{:o}", mode(&variant));
}

/// `check` writes a variant's counterexamples to OUT/<name>/: two variants of one name (or
/// one variant twice) are refused before anything runs, instead of the second overwriting the
/// first.
#[test]
fn two_variants_of_one_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("elsewhere");
    std::fs::create_dir(&other).unwrap();
    let same_stem = other.join("pre-cr.toml");
    std::fs::copy(root().join("specs/variants/post-cr.toml"), &same_stem).unwrap();
    let out = dir.path().join("out");
    let o = imps(&[
        "check",
        "--variant",
        "pre-cr",
        "--variant",
        same_stem.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.starts_with("imps: error: --variant pre-cr and --variant ")
            && e.contains(same_stem.to_str().unwrap())
            && e.contains("both named `pre-cr`"),
        "{e}"
    );
    let o = imps(&[
        "check",
        "--variant",
        "pre-cr",
        "--variant",
        "pre-cr",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--variant pre-cr is given twice"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "nothing written");
}

/// A variant file named `...toml` has the name `..` (and `..toml` the name `.`): its
/// counterexamples would land outside --out (or loose in it). Refused.
#[test]
fn a_variant_named_dot_dot_cannot_write_outside_out() {
    let dir = tempfile::tempdir().unwrap();
    let pre = std::fs::read_to_string(root().join("specs/variants/pre-cr.toml")).unwrap();
    let out = dir.path().join("out").join("inner");
    for (file, name) in [("...toml", ".."), ("..toml", ".")] {
        let v = dir.path().join("x").join(file);
        std::fs::create_dir_all(v.parent().unwrap()).unwrap();
        std::fs::write(&v, &pre).unwrap();
        let o = imps(&[
            "check",
            "--variant",
            v.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{file}");
        let e = stderr(&o);
        assert!(
            e.contains(&format!(
                "`{name}` cannot name a file or folder under the output directory"
            )),
            "{e}"
        );
    }
    assert!(!dir.path().join("out").exists(), "nothing written");
}

/// Run `bin` with `args` in `cwd`.
fn run_in(bin: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

/// A copied (or installed) binary carries the named variants, the scenarios and the
/// requirement catalogue: it works in a directory without specs/, away from the checkout.
#[test]
fn a_copied_binary_works_in_a_directory_without_specs() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin").join("imps");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_imps"), &bin).unwrap();
    let cwd = dir.path().join("work");
    std::fs::create_dir(&cwd).unwrap();

    let o = run_in(&bin, &cwd, &["check", "--variant", "post-cr"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("expectations: all 39 met"),
        "{}",
        stdout(&o)
    );

    let o = run_in(&bin, &cwd, &["variants"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let listing = stdout(&o);
    assert!(
        listing.starts_with("Named variants (built in: specs/variants):"),
        "{listing}"
    );
    for name in ["pre-cr", "post-cr", "baraza", "post-cr-expiry"] {
        assert!(
            listing.contains(&format!("\n  {name} ")),
            "{name} in {listing}"
        );
    }

    let o = run_in(
        &bin,
        &cwd,
        &[
            "simulate",
            "--scenario",
            "smoke",
            "--devices",
            "50",
            "--duration",
            "1m",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("(scenario smoke, 50 devices, 1m; variants post-cr)"));

    let o = run_in(&bin, &cwd, &["repair", "post-cr-one-client-id"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("client.on_608"), "{}", stdout(&o));

    let o = run_in(&bin, &cwd, &["simulate", "--scenario", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("named scenarios: default, million, smoke"),
        "{}",
        stderr(&o)
    );

    // --bless has no file to write for a built-in variant: refused, not skipped.
    let o = run_in(&bin, &cwd, &["check", "--variant", "post-cr", "--bless"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("built into imps"), "{}", stderr(&o));
}

/// A specs/ directory in the current directory takes precedence over the built-in files:
/// its variants replace the named ones, its catalogue replaces the built-in catalogue.
#[test]
fn a_local_specs_directory_takes_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let variants = dir.path().join("specs/variants");
    std::fs::create_dir_all(&variants).unwrap();
    std::fs::copy(
        root().join("specs/variants/pre-cr.toml"),
        variants.join("mine.toml"),
    )
    .unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_imps"));
    let o = run_in(bin, dir.path(), &["variants"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let listing = stdout(&o);
    assert!(
        listing.starts_with("Named variants (specs/variants):\n  mine "),
        "{listing}"
    );
    assert!(!listing.contains("post-cr "), "{listing}");
    let o = run_in(bin, dir.path(), &["check", "--variant", "post-cr"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown variant `post-cr`; named variants: mine"),
        "{}",
        stderr(&o)
    );
    std::fs::write(dir.path().join("specs/requirements.toml"), "[[nonsense\n").unwrap();
    let o = run_in(bin, dir.path(), &["diff", "mine", "mine"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("imps: error: specs/requirements.toml: "),
        "{}",
        stderr(&o)
    );
}

/// An axis's bad value is reported as the axis's (`--axis K=...`), and a `--set` of a swept
/// knob is refused: every row would override it, and the header would show a value no row
/// used.
#[test]
fn sweep_names_the_axis_and_refuses_a_set_of_a_swept_knob() {
    let o = imps(&["sweep", "--axis", "server.recovery=supported,bogus"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.starts_with("imps: error: --axis server.recovery=supported,bogus: value `bogus`: ")
            && !e.contains("--set"),
        "{e}"
    );
    let o = imps(&[
        "sweep",
        "--set",
        "env.max_crashes=2",
        "--axis",
        "env.max_crashes=0,1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let e = stderr(&o);
    assert!(
        e.contains(
            "--set env.max_crashes=2: env.max_crashes is also an axis (--axis env.max_crashes=0,1)"
        ),
        "{e}"
    );
}

/// clap's errors read like every other bad input: one line, `imps: error: ...`, naming the
/// flag and what it takes; help is still help.
#[test]
fn flag_errors_are_one_line_naming_the_flag() {
    for (args, says) in [
        (
            &["check", "--format", "xml"][..],
            "invalid value 'xml' for '--format <FORMAT>' [possible values: text, json]",
        ),
        (
            &["sweep"][..],
            "the following required arguments were not provided: --axis <KEY=V1,V2,...>",
        ),
        (
            &["simulate", "--devices", "-5"][..],
            "invalid value '-5' for '--devices <N>': expected a number of devices, a whole number from 1 to 50000000, found `-5`",
        ),
        (
            &["chek"][..],
            "unrecognized subcommand 'chek'; tip: a similar subcommand exists: 'check'",
        ),
    ] {
        let o = imps(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&o), format!("imps: error: {says}\n"), "{args:?}");
    }
    let o = imps(&["check", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Usage: imps check"), "{}", stdout(&o));
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
    assert!(stderr(&o).contains("--devices"), "{}", stderr(&o));
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

/// `imps check` starts itself again with glibc's heaps marked for huge pages (Linux with
/// glibc), unless `GLIBC_TUNABLES` already says what to do about it; the restarted run has
/// the same arguments and output, and `--stats` tells which heap it ran on.
#[test]
fn check_runs_on_huge_pages_unless_the_environment_says_otherwise() {
    let run = |tunables: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_imps"));
        c.args([
            "check",
            "--variant",
            "post-cr",
            "--stats",
            "--format",
            "json",
        ]);
        match tunables {
            Some(t) => c.env("GLIBC_TUNABLES", t),
            None => c.env_remove("GLIBC_TUNABLES"),
        };
        let o = c.output().expect("imps runs");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
        assert_eq!(v["stats"][0]["states"], 121, "{v}");
        v["stats"][0]["huge_pages"]
            .as_bool()
            .expect("huge_pages reported")
    };
    let glibc = cfg!(all(target_os = "linux", target_env = "gnu"));
    assert_eq!(run(None), glibc);
    assert_eq!(run(Some("glibc.malloc.arena_max=4")), glibc);
    assert!(!run(Some("glibc.malloc.hugetlb=0")));
}
