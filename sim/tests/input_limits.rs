//! Every file the `imps` command line reads is read up to its cap plus one byte: a file over
//! the cap (an endless device included) is bad input, exit 2, with an error that names the
//! file, the cap and the kind of file, and nothing is printed on stdout.

use std::path::Path;
use std::process::{Command, Output};

fn imps_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imps"));
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    cmd.args(args).output().expect("imps runs")
}

fn imps(args: &[&str]) -> Output {
    imps_in(None, args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2, nothing on stdout, and one error line naming the file and saying what was larger.
fn assert_refused(o: &Output, file: &str, expect: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(o.stdout.is_empty(), "nothing on stdout: {e}");
    assert!(e.contains(file) && e.contains(expect), "{e}");
}

/// A TOML file of `bytes` bytes: `body`, then comment lines.
fn padded_toml(path: &Path, body: &str, bytes: usize) {
    let mut text = body.to_owned();
    while text.len() < bytes {
        let line = "# padding to the size of the test\n";
        let room = bytes - text.len();
        if room >= line.len() {
            text.push_str(line);
        } else {
            text.push_str(&"#".repeat(room - 1));
            text.push('\n');
        }
    }
    assert_eq!(text.len(), bytes);
    std::fs::write(path, text).unwrap();
}

/// Without a cap, these two would read until the memory runs out.
#[test]
fn decode_and_merge_of_an_endless_file_stop_at_the_cap() {
    let zero = Path::new("/dev/zero");
    if !zero.exists() {
        return;
    }
    let o = imps(&["decode", "/dev/zero"]);
    assert_refused(
        &o,
        "/dev/zero",
        "file larger than 1 MiB (1048576 bytes), the limit for a CSP XML message",
    );
    let o = imps(&["merge", "/dev/zero"]);
    assert_refused(
        &o,
        "/dev/zero:1",
        "line longer than 16 MiB (16777216 bytes), the limit for a line of a shard file",
    );
}

#[test]
fn decode_takes_a_message_at_the_cap_and_refuses_one_byte_more() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/xml/polling-request.xml"),
    )
    .unwrap();
    let at_cap = dir.path().join("at-cap.xml");
    let pad = imps_model::xml::MAX_MESSAGE_BYTES - sample.len();
    std::fs::write(&at_cap, format!("{sample}{}", " ".repeat(pad))).unwrap();
    let o = imps(&["decode", at_cap.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let over = dir.path().join("over.xml");
    std::fs::write(&over, format!("{sample}{}", " ".repeat(pad + 1))).unwrap();
    let o = imps(&["decode", over.to_str().unwrap()]);
    assert_refused(&o, "over.xml", "file larger than 1 MiB (1048576 bytes)");
}

#[test]
fn a_variant_file_over_one_mib_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let body = "description = \"a variant padded with comments\"\n";
    let at_cap = dir.path().join("at-cap.toml");
    padded_toml(&at_cap, body, 1 << 20);
    let o = imps(&["variants", "--show", at_cap.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let over = dir.path().join("over.toml");
    padded_toml(&over, body, (1 << 20) + 1);
    let o = imps(&["check", "--variant", over.to_str().unwrap()]);
    assert_refused(
        &o,
        "over.toml",
        "file larger than 1 MiB (1048576 bytes), the limit for a variant file",
    );
}

#[test]
fn a_scenario_file_over_one_mib_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let over = dir.path().join("over.toml");
    padded_toml(&over, "[scenario]\ndevices = 10\n", (1 << 20) + 1);
    let o = imps(&[
        "simulate",
        "--variant",
        "post-cr",
        "--scenario",
        over.to_str().unwrap(),
    ]);
    assert_refused(
        &o,
        "over.toml",
        "file larger than 1 MiB (1048576 bytes), the limit for a scenario file",
    );
}

/// `specs/requirements.toml` under the current directory is the catalogue `imps diff` reads.
#[test]
fn a_catalogue_over_one_mib_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("specs")).unwrap();
    padded_toml(
        &dir.path().join("specs/requirements.toml"),
        "",
        (1 << 20) + 1,
    );
    let o = imps_in(Some(dir.path()), &["diff", "pre-cr", "post-cr"]);
    assert_refused(
        &o,
        "requirements.toml",
        "file larger than 1 MiB (1048576 bytes), the limit for the requirement catalogue",
    );
}

/// Shard files are read line by line: a line over its cap is refused with its number, and a
/// line that is not JSON still names its line.
#[test]
fn merge_names_the_line_of_a_shard_file() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dir.path().join("shard-0-of-1.jsonl");
    std::fs::write(&shard, "\n\r\nnot json\n").unwrap();
    let o = imps(&["merge", shard.to_str().unwrap()]);
    assert_refused(&o, "shard-0-of-1.jsonl:3", "not a unit record");
    let long = "x".repeat((16 << 20) + 1);
    std::fs::write(&shard, format!("\n{long}\n")).unwrap();
    let o = imps(&["merge", shard.to_str().unwrap()]);
    assert_refused(&o, "shard-0-of-1.jsonl:2", "line longer than 16 MiB");
}
