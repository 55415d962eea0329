//! `imps check`: model-check variants and print the verdict matrix, with counterexamples
//! written as text, Mermaid, CSP 1.3 XML and ITF.

use crate::hugepages::Resident;
use crate::output::{entry_name, write_atomic};
use imps_model::checker::{self, graph::Progress, Options, Outcome};
use imps_model::config::ConfigError;
use imps_model::props::{Kind, Prop};
use imps_model::specs::{Entry, SpecsDir};
use imps_model::trace::Trace;
use imps_model::variant::{named_variants, resolve_variant, variants_dir, Variant, Verdict};
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
    #[arg(long, default_value_t = 50_000_000, allow_negative_numbers = true,
          value_parser = crate::cli::flags::at_least::<u64>("a number of states", 0))]
    pub max_states: u64,
    /// Print every counterexample as text (by default: the deadlocks, or all when one
    /// variant is checked).
    #[arg(long)]
    pub traces: bool,
    /// Add measurements: exploration and liveness time, states per second, peak memory per
    /// state (peak RSS of the process / states; meaningful with one variant per run).
    #[arg(long)]
    pub stats: bool,
    /// Write the verdicts found into each variant file's `[expect]` table (pins them, so that
    /// a model change that flips one makes `imps check` fail). Not with --set.
    #[arg(long)]
    pub bless: bool,
    /// Compare the verdicts with the variants' `[expect]` tables even when --set changes
    /// their knobs or bounds (by default those tables, written for the variants as they are,
    /// are set aside, and the exit code says whether any property is violated).
    #[arg(long)]
    pub expect: bool,
    /// Symmetry reduction: store one state per orbit of device and user permutations (the
    /// devices of a user are interchangeable, and so are the users). The verdicts are the
    /// same either way; `off` explores every permutation separately.
    #[arg(long, value_enum, default_value = "on")]
    pub symmetry: OnOff,
    /// Threads (default: all cores): the exploration's two stages and the two liveness
    /// checks run side by side. The result does not depend on it.
    #[arg(long, allow_negative_numbers = true,
          value_parser = crate::cli::flags::at_least::<usize>("a number of threads", 1))]
    pub threads: Option<usize>,
    /// Also write each counterexample as a validation log (`.log.jsonl`, JSON Lines of
    /// CSP 1.3 messages and device events), which `imps validate` reads.
    #[arg(long)]
    pub log: bool,
}

/// A switch.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
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

struct Stats {
    explore: Duration,
    total: Duration,
    peak_rss_bytes: Option<u64>,
    /// glibc's heaps were marked for huge pages ([`crate::hugepages`]).
    huge_pages: bool,
    /// Resident memory at the end of the exploration, and how much of it in huge pages.
    explored_resident: Option<Resident>,
}

struct Checked {
    stats: Stats,
    threads: usize,
    name: String,
    path: Option<PathBuf>,
    variant: Variant,
    outcome: Outcome,
    elapsed: Duration,
    /// Property → trace file stem, for violations.
    files: Vec<(Prop, PathBuf)>,
    /// Its `[expect]` table was set aside (--set changed its knobs or bounds).
    set_aside: bool,
}

/// The file a variant argument names, for `--bless`; `None` for a built-in variant.
fn variant_path(arg: &str, dir: &SpecsDir) -> Option<PathBuf> {
    let p = Path::new(arg);
    if arg.ends_with(".toml") || p.components().count() > 1 {
        return Some(p.to_path_buf());
    }
    match dir.entry(arg)? {
        Entry::File(path) => Some(path),
        Entry::BuiltIn { .. } => None,
    }
}

/// A variant to check: its name, file (none for a built-in variant), knobs and expectations
/// (with --set applied), and whether its `[expect]` table was set aside because --set changed
/// its knobs or bounds.
type Loaded = (String, Option<PathBuf>, Variant, bool);

fn load_all(args: &CheckArgs) -> Result<Vec<Loaded>, CheckError> {
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
    let mut out: Vec<Loaded> = Vec::new();
    let mut given: Vec<&str> = Vec::new();
    for n in &names {
        let (name, mut variant) =
            resolve_variant(n, &dir).map_err(|e| CheckError::BadInput(e.to_string()))?;
        // A variant's counterexamples go to OUT/<name>/: the name must be a folder under
        // OUT, and a folder of its own.
        entry_name(&name).map_err(|e| {
            CheckError::BadInput(format!(
                "--variant {n}: the variant's name (its file stem) {e}: rename the file"
            ))
        })?;
        if let Some(i) = out.iter().position(|(other, _, _, _)| *other == name) {
            let first = given[i];
            let folder = args.out.join(&name);
            return Err(CheckError::BadInput(if first == n.as_str() {
                format!(
                    "--variant {n} is given twice: check it once (its counterexamples go to {})",
                    folder.display()
                )
            } else {
                format!(
                    "--variant {first} and --variant {n} are both named `{name}`, and the counterexamples of one would overwrite the other's in {}: give each variant file its own name",
                    folder.display()
                )
            }));
        }
        let path = variant_path(n, &dir);
        if args.bless && path.is_none() {
            return Err(CheckError::BadInput(format!(
                "--bless --variant {n}: `{name}` is built into imps, there is no file to write; \
                 run in the directory that holds specs/variants/{name}.toml (the checkout) or give its path"
            )));
        }
        let before = imps_model::config::knob_values(&variant.cfg);
        variant
            .apply_sets(&args.set)
            .map_err(|e| CheckError::BadInput(format!("variant {name}: {e}")))?;
        // The [expect] table describes the variant as written: a run at other knobs or
        // bounds is judged by its verdicts alone, unless --expect asks to compare.
        let set_aside = !args.expect && imps_model::config::knob_values(&variant.cfg) != before;
        if set_aside {
            variant.expect.clear();
        }
        out.push((name, path, variant, set_aside));
        given.push(n);
    }
    Ok(out)
}

fn write_trace(dir: &Path, t: &Trace, log: bool) -> Result<PathBuf, CheckError> {
    let folder = entry_name(&t.variant).map_err(CheckError::BadInput)?;
    let stem = dir.join(folder).join(&t.property);
    let io = |path: PathBuf| move |source| CheckError::Io { path, source };
    if log {
        let path = stem.with_extension("log.jsonl");
        write_atomic(&path, t.log().as_bytes()).map_err(io(path.clone()))?;
    }
    let files: [(&str, String); 4] = [
        ("txt", t.text()),
        ("mmd", t.mermaid()),
        ("xml", t.xml()),
        (
            "itf.json",
            serde_json::to_string_pretty(&t.itf()).expect("invariant: ITF is JSON"),
        ),
    ];
    for (ext, body) in files {
        let path = stem.with_extension(ext);
        write_atomic(&path, body.as_bytes()).map_err(io(path.clone()))?;
    }
    Ok(stem)
}

/// Peak resident set size of this process (Linux: VmHWM), in bytes.
fn peak_rss_bytes() -> Option<u64> {
    crate::hugepages::kb_field(&std::fs::read_to_string("/proc/self/status").ok()?, "VmHWM")
}

/// Time since the first call, for the explorer's stage waits (`--stats`).
fn monotonic() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// Progress on stderr; at the end of the exploration, its time in `explored` and, when
/// `resident` is given, the process's resident memory there.
fn progress_printer<'a>(
    name: &'a str,
    explored: &'a std::cell::Cell<Option<Instant>>,
    resident: Option<&'a std::cell::Cell<Option<Resident>>>,
) -> impl FnMut(Progress) + 'a {
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut last = Instant::now();
    move |p: Progress| {
        let now = Instant::now();
        if p.done {
            explored.set(Some(now));
            if let Some(r) = resident {
                r.set(crate::hugepages::resident());
            }
            return;
        }
        if now.duration_since(start) < Duration::from_secs(1)
            || now.duration_since(last) < Duration::from_millis(if tty { 250 } else { 10_000 })
        {
            return;
        }
        last = now;
        let rate = p.states as f64 / now.duration_since(start).as_secs_f64();
        let line = format!(
            "[{}] {} states, {} edges, depth {}, {:.0} states/s",
            imps_model::io::escape_controls(name),
            p.states,
            p.edges,
            p.depth,
            rate
        );
        // Progress is a courtesy: a failed stderr does not stop the check.
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
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
    for (name, path, variant, set_aside) in variants {
        let cfg = &variant.cfg;
        let start = Instant::now();
        let (explored, resident) = (std::cell::Cell::new(None), std::cell::Cell::new(None));
        let mut progress = progress_printer(&name, &explored, args.stats.then_some(&resident));
        let opts = Options {
            max_states: args.max_states,
            liveness: true,
            symmetry: args.symmetry == OnOff::On,
            threads: args.threads.unwrap_or_else(checker::all_cores),
            clock: args.stats.then_some(monotonic as fn() -> Duration),
        };
        let outcome = checker::check(cfg, &name, opts, &mut progress).map_err(|e| {
            CheckError::BadInput(format!(
                "variant {name}: {e} (bounds: {})",
                checker::bounds(cfg)
            ))
        })?;
        if std::io::stderr().is_terminal() {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
        let elapsed = start.elapsed();
        drop(progress);
        let stats = Stats {
            explore: explored.get().map_or(elapsed, |t| t.duration_since(start)),
            total: elapsed,
            peak_rss_bytes: peak_rss_bytes(),
            huge_pages: crate::hugepages::in_effect(),
            explored_resident: resident.get(),
        };
        let mut files = Vec::new();
        for r in &outcome.results {
            if let Some(t) = &r.trace {
                files.push((r.prop, write_trace(&args.out, t, args.log)?));
            }
        }
        checked.push(Checked {
            stats,
            threads: opts.threads,
            name,
            path,
            variant,
            outcome,
            elapsed,
            files,
            set_aside,
        });
    }
    let mismatches: usize = checked
        .iter()
        .map(|c| {
            c.outcome
                .results
                .iter()
                .filter(|r| c.variant.expected(r.prop).is_some_and(|e| e != r.verdict))
                .count()
        })
        .sum();
    if args.bless {
        for c in &checked {
            if let Some(path) = &c.path {
                bless(path, &c.outcome).map_err(|source| CheckError::Io {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        return Ok(0);
    }
    let io = |source| CheckError::Io {
        path: "<stdout>".into(),
        source,
    };
    match args.format {
        Format::Json => {
            let mut doc = json_report(&checked);
            doc["expectations_set_aside"] = checked
                .iter()
                .filter(|c| c.set_aside)
                .map(|c| json!(c.name))
                .collect();
            if args.stats {
                doc["stats"] = checked.iter().map(stats_json).collect();
            }
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&doc).expect("invariant: JSON")
            )
            .map_err(io)?;
        }
        Format::Text => text_report(&checked, args, out).map_err(io)?,
    }
    // A variant whose expectations were set aside fails on any violated safety or liveness
    // property.
    let violated = checked.iter().filter(|c| c.set_aside).any(|c| {
        c.outcome
            .results
            .iter()
            .any(|r| r.prop.kind() != Kind::Witness && r.verdict == Verdict::Violated)
    });
    Ok(u8::from(mismatches > 0 || violated))
}

/// Replace the `[expect]` table of a variant file with the verdicts found, keeping the rest
/// of the file as written.
fn bless(path: &Path, outcome: &Outcome) -> std::io::Result<()> {
    let text = imps_model::io::read_capped_string(path, imps_model::io::Cap::VARIANT_FILE)
        .map_err(std::io::Error::other)?;
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
    while kept
        .last()
        .is_some_and(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
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
                "expected": c.variant.expected(r.prop).map(Verdict::as_str),
                "requirements": r.prop.requirements(),
                "states": c.outcome.states,
                "concrete_states": c.outcome.concrete_states,
                "symmetry": c.outcome.symmetry,
                "edges": c.outcome.edges,
                "bounds": checker::bounds(&c.variant.cfg),
            });
            if c.outcome.vacuous(r.prop) {
                let names: Vec<&str> = c
                    .outcome
                    .unreached_phase(r.prop)
                    .iter()
                    .map(|w| w.name())
                    .collect();
                v["vacuous_without"] = json!(names);
            }
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

fn stats_json(c: &Checked) -> serde_json::Value {
    let explore_s = c.stats.explore.as_secs_f64();
    json!({
        "variant": c.name,
        "states": c.outcome.states,
        "concrete_states": c.outcome.concrete_states,
        "edges": c.outcome.edges,
        "threads": c.threads,
        "explore_s": explore_s,
        "total_s": c.stats.total.as_secs_f64(),
        "states_per_s": c.outcome.states as f64 / explore_s.max(1e-9),
        "concrete_states_per_s": c.outcome.concrete_states as f64 / explore_s.max(1e-9),
        "peak_rss_bytes": c.stats.peak_rss_bytes,
        "bytes_per_state": c.stats.peak_rss_bytes.map(|b| b as f64 / c.outcome.states.max(1) as f64),
        "huge_pages": c.stats.huge_pages,
        "explored_rss_bytes": c.stats.explored_resident.map(|r| r.rss),
        "explored_huge_page_bytes": c.stats.explored_resident.map(|r| r.huge),
        "generator_wait_s": c.outcome.waits.map(|w| w.generator.as_secs_f64()),
        "lookups_wait_s": c.outcome.waits.map(|w| w.lookups.as_secs_f64()),
    })
}

fn cell(v: Verdict) -> &'static str {
    match v {
        Verdict::Holds => "holds",
        Verdict::Violated => "VIOLATED",
        Verdict::NotReached => "not reached",
    }
}

fn text_report(checked: &[Checked], args: &CheckArgs, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "imps check: {} variant(s); a verdict holds only within the bounds shown",
        checked.len()
    )?;
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
            checker::bounds(&c.variant.cfg)
        )?;
    }
    let reduced: Vec<String> = (0..checked.len())
        .filter(|&i| checked[i].outcome.symmetry)
        .map(|i| format!("[{}]", i + 1))
        .collect();
    if args.symmetry == OnOff::Off {
        writeln!(out, "symmetry reduction: off (--symmetry off): every permutation of the devices is a state of its own")?;
    } else if reduced.len() == checked.len() {
        writeln!(out, "symmetry reduction: on; states are one per orbit of device and user permutations (--stats shows the concrete states they stand for)")?;
    } else if reduced.is_empty() {
        writeln!(
            out,
            "symmetry reduction: off, nothing to permute (a single device)"
        )?;
    } else {
        writeln!(
            out,
            "symmetry reduction: on for {} (states are one per orbit of device and user permutations; --stats shows the concrete states they stand for); off for the others, nothing to permute (a single device)",
            reduced.join(" ")
        )?;
    }
    if args.stats {
        writeln!(out)?;
        for c in checked {
            let st = stats_json(c);
            writeln!(
                out,
                "stats {}: explored {} states ({} concrete), {} edges in {:.3} s ({:.0} states/s, {:.0} concrete/s, {} thread(s){}); total {:.3} s; peak RSS {} ({} bytes/state); huge pages {}{}",
                c.name,
                c.outcome.states,
                c.outcome.concrete_states,
                c.outcome.edges,
                c.stats.explore.as_secs_f64(),
                st["states_per_s"].as_f64().unwrap_or(0.0),
                st["concrete_states_per_s"].as_f64().unwrap_or(0.0),
                c.threads,
                c.outcome.waits.map_or(String::new(), |w| format!(
                    "; waiting: generator {:.3} s, look-ups {:.3} s",
                    w.generator.as_secs_f64(),
                    w.lookups.as_secs_f64()
                )),
                c.stats.total.as_secs_f64(),
                c.stats.peak_rss_bytes.map_or("?".to_string(), |b| format!("{:.1} MB", b as f64 / 1e6)),
                st["bytes_per_state"].as_f64().map_or("?".to_string(), |b| format!("{b:.1}")),
                if c.stats.huge_pages { "on" } else { "off" },
                c.stats.explored_resident.map_or(String::new(), |r| format!(
                    " ({:.1} of {:.1} MB resident at the end of the exploration)",
                    r.huge as f64 / 1e6,
                    r.rss as f64 / 1e6
                )),
            )?;
        }
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
                    let mark = match c.variant.expected(p) {
                        Some(e) if e != r.verdict => "!",
                        _ => "",
                    };
                    let word = if c.outcome.vacuous(p) {
                        "vacuous"
                    } else {
                        cell(r.verdict)
                    };
                    format!("{word}{mark}")
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
            if let Some(e) = c.variant.expected(r.prop) {
                if e != r.verdict {
                    mism.push(format!(
                        "{} {}: expected {}, found {}",
                        c.name,
                        r.prop.name(),
                        e.as_str(),
                        r.verdict.as_str()
                    ));
                }
            }
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "vacuous: the property holds, but the run never reached the situation it is about (its witness, below, is not reached)"
    )?;
    writeln!(
        out,
        "witnesses never reached (a 'holds' that depends on them may be vacuous in that variant):"
    )?;
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
        let exts = if args.log {
            ".txt .mmd .xml .itf.json .log.jsonl"
        } else {
            ".txt .mmd .xml .itf.json"
        };
        writeln!(
            out,
            "{} counterexamples ({} files each: {exts}) under {}:",
            total,
            exts.split(' ').count(),
            args.out.display()
        )?;
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
    let aside: Vec<&str> = checked
        .iter()
        .filter(|c| c.set_aside)
        .map(|c| c.name.as_str())
        .collect();
    if !aside.is_empty() {
        writeln!(
            out,
            "expectations: set aside for {} (--set changes the knobs or bounds their [expect] tables were written for; the exit code says whether a safety or liveness property is violated; --expect compares anyway)",
            aside.join(", ")
        )?;
    }
    if aside.len() == checked.len() {
        // Nothing was compared.
    } else if mism.is_empty() {
        let n: usize = checked.iter().map(|c| c.variant.expect.len()).sum();
        writeln!(out, "expectations: all {n} met")?;
    } else {
        writeln!(
            out,
            "expectations NOT met ({}), marked ! above:",
            mism.len()
        )?;
        for m in mism {
            writeln!(out, "  {m}")?;
        }
    }
    Ok(())
}

/// The flags of `imps sweep`.
#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// The variant every combination starts from (name or path).
    #[arg(long, default_value = "post-cr")]
    pub variant: String,
    /// Override a knob in every combination: section.knob=value.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A knob and the values to try: section.knob=v1,v2,... Repeat: every combination runs.
    #[arg(long = "axis", value_name = "KEY=V1,V2,...", required = true)]
    pub axes: Vec<String>,
    /// The properties to tabulate (default: no_deadlock and eventually_logged_in_fair);
    /// violated safety properties are listed in any case.
    #[arg(long = "property", value_name = "NAME")]
    pub properties: Vec<String>,
    /// Where the counterexamples of the tabulated properties go.
    #[arg(long, default_value = "target/imps/sweep")]
    pub out: PathBuf,
    /// Give up past this many states per combination.
    #[arg(long, default_value_t = 50_000_000, allow_negative_numbers = true,
          value_parser = crate::cli::flags::at_least::<u64>("a number of states", 0))]
    pub max_states: u64,
    /// Symmetry reduction: store one state per orbit of device and user permutations (the
    /// devices of a user are interchangeable, and so are the users). The verdicts are the
    /// same either way; `off` explores every permutation separately.
    #[arg(long, value_enum, default_value = "on")]
    pub symmetry: OnOff,
    /// Threads (default: all cores): the exploration's two stages and the two liveness
    /// checks run side by side. The result does not depend on it.
    #[arg(long, allow_negative_numbers = true,
          value_parser = crate::cli::flags::at_least::<usize>("a number of threads", 1))]
    pub threads: Option<usize>,
}

/// Run `imps sweep`: check every combination of the axes' values and print a Markdown table.
pub fn sweep(args: &SweepArgs, out: &mut dyn Write) -> Result<u8, CheckError> {
    let bad = |m: String| CheckError::BadInput(m);
    let (base_name, mut base) =
        resolve_variant(&args.variant, &variants_dir()).map_err(|e| bad(e.to_string()))?;
    base.apply_sets(&args.set).map_err(|e| bad(e.to_string()))?;
    // The sweep's verdicts are its table: the variant's [expect] has no part in it.
    let base = base.cfg;
    let mut axes: Vec<(String, Vec<String>)> = Vec::new();
    for a in &args.axes {
        let (k, vs) = a
            .split_once('=')
            .ok_or_else(|| bad(format!("--axis {a}: expected section.knob=v1,v2,...")))?;
        let k = k.trim();
        let values: Vec<String> = vs.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(bad(format!(
                "--axis {a}: expected a comma-separated list of values, with none empty"
            )));
        }
        if k.starts_with("expect.") {
            return Err(bad(format!("--axis {a}: expected a knob of [server], [client] or [env]; [expect] changes no verdict")));
        }
        if axes.iter().any(|(other, _)| other == k) {
            return Err(bad(format!("--axis {a}: {k} is already an axis")));
        }
        axes.push((k.to_string(), values));
    }
    // A --set of a swept knob would be overridden by every row, and the header would show a
    // value no row used.
    for s in &args.set {
        let key = s.split_once('=').map_or(s.as_str(), |(k, _)| k).trim();
        if let Some((_, values)) = axes.iter().find(|(k, _)| k == key) {
            return Err(bad(format!(
                "--set {s}: {key} is also an axis (--axis {key}={}), which sets it in every row: give it one or the other",
                values.join(",")
            )));
        }
    }
    let props: Vec<Prop> = if args.properties.is_empty() {
        vec![Prop::NoDeadlock, Prop::EventuallyLoggedInFair]
    } else {
        args.properties
            .iter()
            .map(|n| {
                Prop::from_name(n).ok_or_else(|| bad(format!("--property {n}: no such property")))
            })
            .collect::<Result<_, _>>()?
    };
    // Every combination, first axis slowest.
    let mut combos: Vec<Vec<usize>> = vec![Vec::new()];
    for (_, values) in &axes {
        combos = combos
            .into_iter()
            .flat_map(|c| (0..values.len()).map(move |i| [c.clone(), vec![i]].concat()))
            .collect();
    }
    // Every combination is a valid variant before any runs (a bad value fails at once).
    let mut configs = Vec::with_capacity(combos.len());
    for (row, combo) in combos.iter().enumerate() {
        let mut cfg = base.clone();
        for (a, &i) in combo.iter().enumerate() {
            let (k, values) = &axes[a];
            cfg.apply_set_unvalidated(&format!("{k}={}", values[i]))
                .map_err(|e| {
                    let why = match e {
                        ConfigError::Invalid { message, .. } => message,
                        other => other.to_string(),
                    };
                    bad(format!(
                        "--axis {}: value `{}`: {why}",
                        args.axes[a], values[i]
                    ))
                })?;
        }
        // Each value may be good alone and the combination not (with the --set values too).
        cfg.validate().map_err(|why| {
            let values: Vec<String> = combo
                .iter()
                .enumerate()
                .map(|(a, &i)| format!("{}={}", axes[a].0, axes[a].1[i]))
                .collect();
            bad(format!(
                "--axis: combination {} ({}): {why}",
                row + 1,
                values.join(" ")
            ))
        })?;
        configs.push(cfg);
    }
    let io = |source| CheckError::Io {
        path: "<stdout>".into(),
        source,
    };
    writeln!(
        out,
        "Sweep over `{base_name}`{}: {} combinations",
        if args.set.is_empty() {
            String::new()
        } else {
            format!(" with {}", args.set.join(" "))
        },
        combos.len()
    )
    .map_err(io)?;
    writeln!(out).map_err(io)?;
    let mut header = String::from("| # |");
    let mut rule = String::from("|---|");
    for (k, _) in &axes {
        header.push_str(&format!(" {k} |"));
        rule.push_str("---|");
    }
    header.push_str(" states |");
    rule.push_str("---:|");
    for p in &props {
        header.push_str(&format!(" {} |", p.name()));
        rule.push_str("---|");
    }
    header.push_str(" other safety violations |");
    rule.push_str("---|");
    writeln!(out, "{header}\n{rule}").map_err(io)?;
    let mut traces = Vec::new();
    for (row, combo) in combos.iter().enumerate() {
        let cfg = &configs[row];
        let mut line = format!("| {} |", row + 1);
        for (a, &i) in combo.iter().enumerate() {
            line.push_str(&format!(" {} |", axes[a].1[i]));
        }
        let name = format!("{base_name}-sweep-{}", row + 1);
        let opts = Options {
            max_states: args.max_states,
            liveness: true,
            symmetry: args.symmetry == OnOff::On,
            threads: args.threads.unwrap_or_else(checker::all_cores),
            clock: None,
        };
        let o = checker::check(cfg, &name, opts, &mut |_| {})
            .map_err(|e| bad(format!("combination {}: {e}", row + 1)))?;
        line.push_str(&format!(" {} |", o.states));
        for p in &props {
            let r = o
                .results
                .iter()
                .find(|r| r.prop == *p)
                .expect("invariant: every property has a result");
            line.push_str(&format!(" {} |", cell(r.verdict)));
            if let Some(t) = &r.trace {
                traces.push((row + 1, write_trace(&args.out, t, false)?));
            }
        }
        let others: Vec<&str> = o
            .results
            .iter()
            .filter(|r| {
                r.prop.kind() == Kind::Safety
                    && r.verdict == Verdict::Violated
                    && !props.contains(&r.prop)
            })
            .map(|r| r.prop.name())
            .collect();
        line.push_str(&format!(
            " {} |",
            if others.is_empty() {
                "-".to_string()
            } else {
                others.join(", ")
            }
        ));
        writeln!(out, "{line}").map_err(io)?;
    }
    writeln!(out).map_err(io)?;
    writeln!(out, "bounds (besides the axes): {}", checker::bounds(&base)).map_err(io)?;
    if !traces.is_empty() {
        writeln!(
            out,
            "\ncounterexamples, under the --out directory (.txt .mmd .xml .itf.json each):"
        )
        .map_err(io)?;
        for (row, stem) in traces {
            let rel = stem.strip_prefix(&args.out).unwrap_or(&stem);
            writeln!(out, "- row {row}: `{}`", rel.display()).map_err(io)?;
        }
    }
    Ok(0)
}
