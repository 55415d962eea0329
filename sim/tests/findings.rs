//! `specs/FINDINGS.md` and the README quote the output of `imps sweep` and a few
//! counterexamples; this test re-runs every sweep and fails when a table or a quoted trace no
//! longer matches what the checker finds. `IMPS_BLESS_FINDINGS=1` rewrites them instead.
//!
//! A sweep is marked `<!-- sweep: ARGS -->` ... `<!-- end -->`; its counterexamples go to
//! `target/imps/<dir>/<n>` (n counts the document's sweeps from 1). Any other command's output
//! is marked `<!-- run: ARGS -->` ... `<!-- end -->` (`imps ARGS`, exit 0 or 1). A code block
//! after a line naming `target/imps/<dir>/...` quotes that file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).to_path_buf()
}

/// Run one sweep; return its output (the table and the list of counterexample files).
fn sweep(args: &[String], out: &Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imps"));
    cmd.arg("sweep").args(args).arg("--out").arg(out);
    let o = cmd.output().expect("imps runs");
    assert!(
        o.status.success(),
        "imps sweep {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// The sweeps of a document, in order.
fn sweeps(doc: &str) -> Vec<Vec<String>> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("<!-- sweep: ")?.strip_suffix(" -->"))
        .map(|a| a.split_whitespace().map(String::from).collect())
        .collect()
}

/// Re-run the sweeps and quoted traces of `doc` (relative to the workspace), writing the
/// counterexamples under `target/imps/<dir>`; return the problems found.
fn check_doc(doc: &str, dir: &str, bless: bool) -> Vec<String> {
    let path = root().join(doc);
    let text = std::fs::read_to_string(&path).unwrap();
    let base = root().join("target/imps").join(dir);
    let marker = format!("`target/imps/{dir}/");
    let mut out: Vec<String> = Vec::new();
    let mut lines = text.lines().peekable();
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
            let args: Vec<String> = args.split_whitespace().map(String::from).collect();
            let table = sweep(&args, &base.join(n.to_string()));
            let mut old = Vec::new();
            for l in lines.by_ref() {
                if l == "<!-- end -->" {
                    break;
                }
                old.push(l);
            }
            if old.join("\n").trim() != table {
                problems.push(format!(
                    "{doc}: table {n} (`imps sweep {args:?}`) differs:\n{table}"
                ));
            }
            out.push(table);
            out.push("<!-- end -->".to_string());
            continue;
        }
        if let Some(args) = line
            .strip_prefix("<!-- run: ")
            .and_then(|l| l.strip_suffix(" -->"))
        {
            let o = Command::new(env!("CARGO_BIN_EXE_imps"))
                .args(args.split_whitespace())
                .output()
                .expect("imps runs");
            assert!(
                matches!(o.status.code(), Some(0 | 1)),
                "imps {args}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let fresh = String::from_utf8(o.stdout).unwrap().trim().to_string();
            let mut old = Vec::new();
            for l in lines.by_ref() {
                if l == "<!-- end -->" {
                    break;
                }
                old.push(l);
            }
            if old.join("\n").trim() != fresh {
                problems.push(format!("{doc}: `imps {args}` differs:\n{fresh}"));
            }
            out.push(fresh);
            out.push("<!-- end -->".to_string());
            continue;
        }
        if let Some(start) = line.find(&marker) {
            let rel = &line[start + marker.len()..];
            let rel = &rel[..rel.find('`').unwrap()];
            pending_trace = Some(base.join(rel));
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
                    problems.push(format!(
                        "{doc}: quoted trace {} differs:\n{fresh}",
                        file.display()
                    ));
                }
                out.push(fresh.trim().to_string());
                out.push("```".to_string());
            }
        }
    }
    assert!(n >= 1, "{doc} has its sweeps");
    if bless {
        std::fs::write(&path, out.join("\n") + "\n").unwrap();
    }
    problems
}

#[test]
fn findings_and_readme_match_what_the_checker_finds() {
    let bless = std::env::var_os("IMPS_BLESS_FINDINGS").is_some();
    let mut problems = check_doc("specs/FINDINGS.md", "findings", bless);
    problems.extend(check_doc("README.md", "readme", bless));
    assert!(
        bless || problems.is_empty(),
        "FINDINGS.md or README.md is stale (IMPS_BLESS_FINDINGS=1 rewrites them):\n{}",
        problems.join("\n\n")
    );
}

/// FINDINGS' suggested wording claims that the server's expiry closes every deadlock of the
/// tables its `<!-- expiry-closes: N... -->` marker lists: each of those sweeps, with its
/// expiry axis replaced by `--set server.ttl_expiry=true`, has no liveness violation.
#[test]
fn expiry_closes_the_deadlocks_findings_says_it_closes() {
    let doc = std::fs::read_to_string(root().join("specs/FINDINGS.md")).unwrap();
    let all = sweeps(&doc);
    let listed: Vec<usize> = doc
        .lines()
        .find_map(|l| l.strip_prefix("<!-- expiry-closes: ")?.strip_suffix(" -->"))
        .expect("FINDINGS.md lists the sweeps that expiry closes")
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(!listed.is_empty());
    let base = root().join("target/imps/findings-expiry");
    for n in listed {
        let mut args: Vec<String> = Vec::new();
        let mut it = all[n - 1].iter();
        while let Some(a) = it.next() {
            let v = it.next().expect("every flag of a sweep has a value");
            if !(a == "--axis" && v.starts_with("server.ttl_expiry=")) {
                args.push(a.clone());
                args.push(v.clone());
            }
        }
        args.extend(["--set".to_string(), "server.ttl_expiry=true".to_string()]);
        let table = sweep(&args, &base.join(n.to_string()));
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
        assert!(rows.len() > 2, "sweep {n} has rows");
        for row in rows {
            assert!(!row.contains("VIOLATED"), "sweep {n} with expiry: {row}");
        }
    }
}
