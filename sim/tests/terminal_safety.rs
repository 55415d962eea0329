//! Error messages quote their input (a variant name, a knob, a file name, the text of an XML
//! element, a TOML line). Whatever control characters the input holds, an error is one line
//! on stderr with none of them raw: a terminal shows it as it is, and an `ESC ]0;...` cannot
//! set its title nor a `CR` rewrite the line.

use std::path::Path;
use std::process::{Command, Output};

/// Escape, operating system command (set the window title), bell, carriage return, vertical
/// tab, DEL and a C1 control (CSI).
const NASTY: &str = "\u{1b}]0;owned\u{7}\r\u{b}\u{7f}\u{9b}2J";

fn imps(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_imps"))
        .args(args)
        .output()
        .expect("imps runs")
}

/// Exit 2 and exactly one line on stderr, `imps: error: ...`, without a control character.
fn one_clean_error_line(o: &Output) -> String {
    let e = String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8");
    assert_eq!(o.status.code(), Some(2), "{e:?}");
    let line = e
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("ends with a newline: {e:?}"));
    assert!(!line.contains('\n'), "one line: {e:?}");
    assert!(
        !line.chars().any(char::is_control),
        "no control character: {e:?}"
    );
    assert!(line.starts_with("imps: error: "), "{e:?}");
    line.to_owned()
}

#[test]
fn a_variant_name_with_control_characters() {
    let o = imps(&["check", "--variant", &format!("x{NASTY}")]);
    let line = one_clean_error_line(&o);
    assert!(
        line.contains("unknown variant `x\\u{1b}]0;owned\\u{7}\\r\\u{b}\\u{7f}\\u{9b}2J`"),
        "{line}"
    );
}

#[test]
fn a_knob_with_control_characters() {
    let o = imps(&[
        "check",
        "--variant",
        "post-cr",
        "--set",
        &format!("server.no{NASTY}pe=1"),
    ]);
    let line = one_clean_error_line(&o);
    assert!(line.contains("unknown knob `no\\u{1b}]0;owned"), "{line}");
    let o = imps(&[
        "simulate",
        "--variant",
        "post-cr",
        "--set",
        &format!("scenario.devices=1{NASTY}"),
    ]);
    one_clean_error_line(&o);
}

/// The file name, and an element name and text of the XML, all hold control characters.
#[test]
fn an_xml_file_with_control_characters_in_its_name_and_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let sample = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/xml/polling-request.xml"),
    )
    .unwrap();
    for (name, xml) in [
        (
            "mode",
            sample.replace(">Request<", &format!(">Re{NASTY}quest<")),
        ),
        (
            "element",
            sample.replace("<Polling-Request/>", &format!("<Poll{NASTY}ing/>")),
        ),
        (
            "end-tag",
            sample.replace("</Session>", &format!("</Ses{NASTY}sion>")),
        ),
    ] {
        let file = dir.path().join(format!("{name}{NASTY}.xml"));
        std::fs::write(&file, xml).unwrap();
        let o = imps(&["decode", file.to_str().unwrap()]);
        let line = one_clean_error_line(&o);
        assert!(line.contains(&format!("{name}\\u{{1b}}]0;owned")), "{line}");
    }
}

/// The toml crate quotes the offending line over several lines; here it is one line, and the
/// control characters of the quoted line are escaped.
#[test]
fn a_variant_file_with_control_characters_in_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.toml");
    std::fs::write(&file, format!("[server]\nrecovery = 'some{NASTY}times'\n")).unwrap();
    let o = imps(&["check", "--variant", file.to_str().unwrap()]);
    let line = one_clean_error_line(&o);
    assert!(
        line.contains("v.toml: line 2, column 17: invalid literal string (in \"recovery = 'some\\u{1b}]0;owned"),
        "{line}"
    );
    // Written as TOML escapes, they are valid TOML, and the value the error quotes holds them.
    std::fs::write(
        &file,
        "[server]\nrecovery = \"some\\u001b]0;owned\\u0007\\r\\u000btimes\"\n",
    )
    .unwrap();
    let o = imps(&["check", "--variant", file.to_str().unwrap()]);
    let line = one_clean_error_line(&o);
    assert!(
        line.contains(
            "v.toml: line 2, column 12: unknown variant `some\\u{1b}]0;owned\\u{7}\\r\\u{b}times`"
        ),
        "{line}"
    );
    let file = dir.path().join("s.toml");
    std::fs::write(&file, format!("[scenario]\ndevices = 1{NASTY}\n")).unwrap();
    let o = imps(&[
        "simulate",
        "--variant",
        "post-cr",
        "--scenario",
        file.to_str().unwrap(),
    ]);
    let line = one_clean_error_line(&o);
    assert!(line.contains("s.toml: line 2, column "), "{line}");
}

/// clap's own errors quote the unknown argument: one `imps: error:` line, with no control
/// character.
#[test]
fn an_unknown_flag_with_control_characters() {
    let o = imps(&["check", &format!("--bogus{NASTY}")]);
    let e = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(o.status.code(), Some(2), "{e:?}");
    assert!(
        e.starts_with("imps: error: unexpected argument '--bogus") && e.lines().count() == 1,
        "{e:?}"
    );
    assert!(
        !e.chars().any(|c| c.is_control() && c != '\n'),
        "no control character but line ends: {e:?}"
    );
    let o = imps(&["--help"]);
    assert_eq!(o.status.code(), Some(0), "--help prints as clap prints it");
    assert!(String::from_utf8_lossy(&o.stdout).contains("Usage: imps"));
}
