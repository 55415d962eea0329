//! `specs/FINDINGS.md` quotes the output of `imps sweep` and a few counterexamples; this test
//! re-runs every sweep and fails when a table or a quoted trace no longer matches what the
//! checker finds. `IMPS_BLESS_FINDINGS=1` rewrites them instead.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).to_path_buf()
}

/// Run one sweep; return its output (the table and the list of counterexample files).
fn sweep(args: &str, out: &Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imps"));
    cmd.arg("sweep")
        .args(args.split_whitespace())
        .arg("--out")
        .arg(out);
    let o = cmd.output().expect("imps runs");
    assert!(
        o.status.success(),
        "imps sweep {args}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn findings_match_what_the_checker_finds() {
    let path = root().join("specs/FINDINGS.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let bless = std::env::var_os("IMPS_BLESS_FINDINGS").is_some();
    // The counterexamples go where FINDINGS.md says they are: target/imps/findings/<table>.
    let findings = root().join("target/imps/findings");
    let mut out: Vec<String> = Vec::new();
    let mut lines = doc.lines().peekable();
    let mut n = 0;
    let mut problems = Vec::new();
    let mut pending_trace: Option<PathBuf> = None;
    while let Some(line) = lines.next() {
        out.push(line.to_string());
        if let Some(args) = line
            .strip_prefix("<!-- sweep: ")
            .and_then(|l| l.strip_suffix(" -->"))
        {
            n += 1;
            let dir = findings.join(n.to_string());
            let table = sweep(args, &dir);
            let mut old = Vec::new();
            for l in lines.by_ref() {
                if l == "<!-- end -->" {
                    break;
                }
                old.push(l);
            }
            if old.join("\n").trim() != table {
                problems.push(format!("table {n} (`imps sweep {args}`) differs:\n{table}"));
            }
            out.push(table);
            out.push("<!-- end -->".to_string());
            continue;
        }
        if let Some(start) = line.find("`target/imps/findings/") {
            let rel = &line[start + "`target/imps/findings/".len()..];
            let rel = &rel[..rel.find('`').unwrap()];
            pending_trace = Some(findings.join(rel));
        }
        if line == "```" {
            if let Some(file) = pending_trace.take() {
                let fresh = std::fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                let mut old = Vec::new();
                for l in lines.by_ref() {
                    if l == "```" {
                        break;
                    }
                    old.push(l);
                }
                if old.join("\n").trim() != fresh.trim() {
                    problems.push(format!("quoted trace {} differs:\n{fresh}", file.display()));
                }
                out.push(fresh.trim().to_string());
                out.push("```".to_string());
            }
        }
    }
    assert!(n >= 5, "FINDINGS.md has its sweeps");
    if bless {
        std::fs::write(&path, out.join("\n") + "\n").unwrap();
    } else {
        assert!(
            problems.is_empty(),
            "FINDINGS.md is stale (IMPS_BLESS_FINDINGS=1 rewrites it):\n{}",
            problems.join("\n\n")
        );
    }
}
