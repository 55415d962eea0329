//! `imps check`: model-check variants and print the verdict matrix, with counterexamples
//! written as text, Mermaid, CSP 1.3 XML and ITF.

use crate::output::write_atomic;
use imps_model::checker::{self, graph::Progress, Options, Outcome};
use imps_model::config::{named_variants, resolve_variant, variants_dir, Config, Verdict};
use imps_model::props::{Kind, Prop};
use imps_model::trace::Trace;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The flags of `imps check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// A variant (name under specs/variants/ or path to a TOML file); repeat for several.
    /// Default: every named variant.
    #[arg(long = "variant", value_name = "NAME|PATH")]
    pub variants: Vec<String>,
    /// Override a knob in every variant checked: section.knob=value.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Where counterexample files go.
    #[arg(long, default_value = "target/imps")]
    pub out: PathBuf,
    /// Give up past this many states per variant.
    #[arg(long, default_value_t = 50_000_000)]
    pub max_states: u64,
    /// Print every counterexample as text (by default: the deadlocks, or all when one
    /// variant is checked).
    #[arg(long)]
    pub traces: bool,
    /// Write the verdicts found into each variant file's `[expect]` table (pins them, so that
    /// a model change that flips one makes `imps check` fail). Not with --set.
    #[arg(long)]
    pub bless: bool,
}

/// Output formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A table for people.
    Text,
    /// One JSON document `{"results": [...]}`.
    Json,
}

/// Why `imps check` could not run.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A variant, flag or expectation is wrong.
    #[error("{0}")]
    BadInput(String),
    /// Writing output failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

struct Checked {
    name: String,
    path: Option<PathBuf>,
    cfg: Config,
    outcome: Outcome,
    elapsed: Duration,
    /// Property → trace file stem, for violations.
    files: Vec<(Prop, PathBuf)>,
}

fn expected(cfg: &Config, p: Prop) -> Option<Verdict> {
    cfg.expect.get(p.name()).copied()
}

fn variant_path(arg: &str, dir: &Path) -> PathBuf {
    let p = Path::new(arg);
    if arg.ends_with(".toml") || p.components().count() > 1 {
        p.to_path_buf()
    } else {
        dir.join(format!("{arg}.toml"))
    }
}

fn load_all(args: &CheckArgs) -> Result<Vec<(String, PathBuf, Config)>, CheckError> {
    let dir = variants_dir();
    let names: Vec<String> = if args.variants.is_empty() {
        named_variants(&dir)
            .map_err(|e| CheckError::BadInput(e.to_string()))?
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    } else {
        args.variants.clone()
    };
    let mut out = Vec::new();
    for n in names {
        let (name, mut cfg) = resolve_variant(&n, &dir).map_err(|e| CheckError::BadInput(e.to_string()))?;
        let path = variant_path(&n, &dir);
        for s in &args.set {
            cfg.apply_set(s).map_err(|e| CheckError::BadInput(e.to_string()))?;
        }
        for key in cfg.expect.keys() {
            if Prop::from_name(key).is_none() {
                let known: Vec<&str> = Prop::ALL.iter().map(|p| p.name()).collect();
                return Err(CheckError::BadInput(format!(
                    "variant {name}: [expect] names an unknown property `{key}`; expected one of: {}",
                    known.join(", ")
                )));
            }
        }
        out.push((name, path, cfg));
    }
    Ok(out)
}

fn write_trace(dir: &Path, t: &Trace) -> Result<PathBuf, CheckError> {
    let stem = dir.join(&t.variant).join(&t.property);
    let io = |path: PathBuf| move |source| CheckError::Io { path, source };
    let files: [(&str, String); 4] = [
        ("txt", t.text()),
        ("mmd", t.mermaid()),
        ("xml", t.xml()),
        ("itf.json", serde_json::to_string_pretty(&t.itf()).expect("invariant: ITF is JSON")),
    ];
    for (ext, body) in files {
        let path = stem.with_extension(ext);
        write_atomic(&path, body.as_bytes()).map_err(io(path.clone()))?;
    }
    Ok(stem)
}

fn progress_printer(name: &str) -> impl FnMut(Progress) + '_ {
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last = Instant::now();
    move |p: Progress| {
        let now = Instant::now();
        if now.duration_since(start) < Duration::from_secs(1) || now.duration_since(last) < Duration::from_millis(if tty { 250 } else { 10_000 }) {
            return;
        }
        last = now;
        let rate = p.states as f64 / now.duration_since(start).as_secs_f64();
        let line = format!("[{name}] {} states, {} edges, depth {}, {:.0} states/s", p.states, p.edges, p.depth, rate);
        if tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }
}

/// Run `imps check`. Returns the process exit code: 0 when every verdict matches the variant's
/// expectations, 1 when one does not.
pub fn run(args: &CheckArgs, out: &mut dyn Write) -> Result<u8, CheckError> {
    if args.bless && !args.set.is_empty() {
        return Err(CheckError::BadInput("--bless writes the verdicts of the variant files as they are: it cannot be combined with --set".into()));
    }
    let variants = load_all(args)?;
    let mut checked = Vec::new();
    for (name, path, cfg) in variants {
        let start = Instant::now();
        let mut progress = progress_printer(&name);
        let opts = Options {
            max_states: args.max_states,
            liveness: true,
        };
        let outcome = checker::check(&cfg, &name, opts, &mut progress)
            .map_err(|e| CheckError::BadInput(format!("variant {name}: {e} (bounds: {})", checker::bounds(&cfg))))?;
        if std::io::stderr().is_terminal() {
            eprint!("\r\x1b[K");
        }
        let elapsed = start.elapsed();
        drop(progress);
        let mut files = Vec::new();
        for r in &outcome.results {
            if let Some(t) = &r.trace {
                files.push((r.prop, write_trace(&args.out, t)?));
            }
        }
        checked.push(Checked {
            name,
            path: Some(path),
            cfg,
            outcome,
            elapsed,
            files,
        });
    }
    let mismatches: usize = checked
        .iter()
        .map(|c| {
            c.outcome
                .results
                .iter()
                .filter(|r| expected(&c.cfg, r.prop).is_some_and(|e| e != r.verdict))
                .count()
        })
        .sum();
    if args.bless {
        for c in &checked {
            if let Some(path) = &c.path {
                bless(path, &c.outcome).map_err(|source| CheckError::Io { path: path.clone(), source })?;
            }
        }
        return Ok(0);
    }
    let io = |source| CheckError::Io { path: "<stdout>".into(), source };
    match args.format {
        Format::Json => {
            let doc = json_report(&checked);
            writeln!(out, "{}", serde_json::to_string_pretty(&doc).expect("invariant: JSON")).map_err(io)?;
        }
        Format::Text => text_report(&checked, args, out).map_err(io)?,
    }
    Ok(if mismatches == 0 { 0 } else { 1 })
}

/// Replace the `[expect]` table of a variant file with the verdicts found, keeping the rest
/// of the file as written.
fn bless(path: &Path, outcome: &Outcome) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let mut kept = Vec::new();
    let mut in_expect = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_expect = t == "[expect]";
        }
        if !in_expect {
            kept.push(line);
        }
    }
    while kept.last().is_some_and(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        kept.pop();
    }
    let mut out = kept.join("\n");
    out.push_str("\n\n[expect]\n# Written by `imps check --bless` from the verdicts the checker found (within the\n# [env] bounds); `imps check` fails when one of them changes.\n");
    for r in &outcome.results {
        out.push_str(&format!("{} = \"{}\"\n", r.prop.name(), r.verdict.as_str()));
    }
    write_atomic(path, out.as_bytes())
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::Safety => "safety",
        Kind::Liveness => "liveness",
        Kind::Witness => "witness",
    }
}

fn json_report(checked: &[Checked]) -> serde_json::Value {
    let mut results = Vec::new();
    for c in checked {
        for r in &c.outcome.results {
            let mut v = json!({
                "variant": c.name,
                "property": r.prop.name(),
                "kind": kind_str(r.prop.kind()),
                "verdict": r.verdict.as_str(),
                "expected": expected(&c.cfg, r.prop).map(Verdict::as_str),
                "requirements": r.prop.requirements(),
                "states": c.outcome.states,
                "edges": c.outcome.edges,
                "bounds": checker::bounds(&c.cfg),
            });
            if let Some((_, stem)) = c.files.iter().find(|(p, _)| *p == r.prop) {
                let f = |ext: &str| stem.with_extension(ext).display().to_string();
                v["trace"] = json!({ "text": f("txt"), "mermaid": f("mmd"), "xml": f("xml"), "itf": f("itf.json") });
                if let Some(t) = &r.trace {
                    v["trace"]["steps"] = json!(t.steps.len());
                    v["trace"]["loop_start"] = json!(t.loop_start);
                }
            }
            results.push(v);
        }
    }
    json!({ "results": results })
}

fn cell(v: Verdict) -> &'static str {
    match v {
        Verdict::Holds => "holds",
        Verdict::Violated => "VIOLATED",
        Verdict::NotReached => "not reached",
    }
}

fn text_report(checked: &[Checked], args: &CheckArgs, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "imps check: {} variant(s); a verdict holds only within the bounds shown", checked.len())?;
    writeln!(out)?;
    for (i, c) in checked.iter().enumerate() {
        writeln!(
            out,
            "{:<5} {:<28} {:>10} states {:>11} edges {:>8.2} s   {}",
            format!("[{}]", i + 1),
            c.name,
            c.outcome.states,
            c.outcome.edges,
            c.elapsed.as_secs_f64(),
            checker::bounds(&c.cfg)
        )?;
    }
    writeln!(out)?;
    let w = Prop::ALL.iter().map(|p| p.name().len()).max().unwrap_or(0) + 1;
    write!(out, "{:<w$}", "property")?;
    for i in 0..checked.len() {
        write!(out, " {:<12}", format!("[{}]", i + 1))?;
    }
    writeln!(out)?;
    for &p in Prop::ALL {
        write!(out, "{:<w$}", p.name())?;
        for c in checked {
            let r = c.outcome.results.iter().find(|r| r.prop == p);
            let s = match r {
                Some(r) => {
                    let mark = match expected(&c.cfg, p) {
                        Some(e) if e != r.verdict => "!",
                        _ => "",
                    };
                    format!("{}{mark}", cell(r.verdict))
                }
                None => "-".to_string(),
            };
            write!(out, " {s:<12}")?;
        }
        writeln!(out)?;
    }
    let mut mism = Vec::new();
    for c in checked {
        for r in &c.outcome.results {
            if let Some(e) = expected(&c.cfg, r.prop) {
                if e != r.verdict {
                    mism.push(format!("{} {}: expected {}, found {}", c.name, r.prop.name(), e.as_str(), r.verdict.as_str()));
                }
            }
        }
    }
    writeln!(out)?;
    writeln!(out, "witnesses never reached (a 'holds' that depends on them may be vacuous in that variant):")?;
    for c in checked {
        let unreached: Vec<&str> = c
            .outcome
            .results
            .iter()
            .filter(|r| r.verdict == Verdict::NotReached)
            .map(|r| r.prop.name())
            .collect();
        if !unreached.is_empty() {
            writeln!(out, "  {:<28} {}", c.name, unreached.join(", "))?;
        }
    }
    writeln!(out)?;
    let total: usize = checked.iter().map(|c| c.files.len()).sum();
    if total > 0 {
        writeln!(out, "counterexamples ({} files each: .txt .mmd .xml .itf.json) under {}:", total, args.out.display())?;
        for c in checked {
            for (p, stem) in &c.files {
                writeln!(out, "  {:<24} {:<44} {}", c.name, p.name(), stem.display())?;
            }
        }
        writeln!(out)?;
    }
    let all = args.traces || checked.len() == 1;
    for c in checked {
        for r in &c.outcome.results {
            if let Some(t) = &r.trace {
                if all || r.prop == Prop::NoDeadlock {
                    writeln!(out, "{}", t.text())?;
                }
            }
        }
    }
    if mism.is_empty() {
        let n: usize = checked.iter().map(|c| c.cfg.expect.len()).sum();
        writeln!(out, "expectations: all {n} met")?;
    } else {
        writeln!(out, "expectations NOT met ({}), marked ! above:", mism.len())?;
        for m in mism {
            writeln!(out, "  {m}")?;
        }
    }
    Ok(())
}
