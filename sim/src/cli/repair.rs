//! `imps repair V`: the smallest changes to the reading of the CR that close a hole.
//!
//! The search runs over the knob lattice around V: single knob changes first, then pairs, and
//! so on up to `--max-changes`. The candidates are the knobs the requirement catalogue marks
//! open (a MAY, a SHOULD, an implementation choice), each over the values that break no MUST.
//! A candidate is a repair when every target property holds (and not vacuously) and no
//! property that holds in V is violated. A superset of a repair is never checked, so every
//! repair is minimal; each is re-checked at the next larger bounds (one more crash, one more
//! device) to say whether it only holds at the given ones. Checks run on all cores, results
//! are collected in candidate order, and memoized by the resolved configuration.

use crate::cli::check::CheckError;
use imps_model::catalogue::{Catalogue, KnobKind};
use imps_model::checker::{self, Options, Outcome};
use imps_model::config::{knob_values, Config, KNOBS};
use imps_model::props::{Kind, Prop};
use imps_model::variant::{resolve_variant, variants_dir, Verdict};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The flags of `imps repair`.
#[derive(clap::Args, Debug)]
pub struct RepairArgs {
    /// The variant to repair (name or path).
    pub variant: String,
    /// Override a knob of the variant first: section.knob=value.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A property that must hold after the repair; repeat for several. Default: every
    /// property the variant violates.
    #[arg(long = "property", value_name = "NAME")]
    pub properties: Vec<String>,
    /// The knobs to search (comma-separated). Default: every knob the catalogue marks open.
    /// A knob the CR fixes (`must`) may be named: its only candidate value is the CR's.
    #[arg(long, value_delimiter = ',', value_name = "KNOB,...")]
    pub knobs: Vec<String>,
    /// The most knobs a repair may change.
    #[arg(long, default_value_t = 2, allow_negative_numbers = true,
          value_parser = crate::cli::flags::at_least::<usize>("a number of knob changes (a repair changes at least one knob)", 1))]
    pub max_changes: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: crate::cli::diff::DiffFormat,
    /// Give up on a candidate past this many states (it is then reported as undecided).
    #[arg(long, default_value_t = 5_000_000, allow_negative_numbers = true,
          value_parser = crate::cli::flags::at_least::<u64>("a number of states", 0))]
    pub max_states: u64,
    /// Threads checking candidates (default: every core).
    #[arg(long, allow_negative_numbers = true,
          value_parser = crate::cli::flags::at_least::<usize>("a number of threads", 1))]
    pub threads: Option<usize>,
}

/// One knob set to one value.
type Change = (String, String);

/// What a check of one configuration found.
#[derive(Clone, Debug)]
enum Checked {
    /// The verdicts.
    Done(Vec<(Prop, Verdict, bool)>),
    /// The check could not finish (a bound of the world, or the state cap).
    Undecided(String),
}

/// The checks done so far, by resolved configuration.
struct Memo {
    opts: Options,
    done: Mutex<BTreeMap<String, Checked>>,
}

impl Memo {
    fn key(cfg: &Config) -> String {
        knob_values(cfg)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn summarize(o: &Outcome) -> Vec<(Prop, Verdict, bool)> {
        o.results
            .iter()
            .map(|r| (r.prop, r.verdict, o.vacuous(r.prop)))
            .collect()
    }

    /// Check every configuration not checked yet, on `threads` threads.
    fn check_all(&self, cfgs: &[Config], threads: usize) {
        let todo: Vec<&Config> = {
            let done = self
                .done
                .lock()
                .expect("invariant: no thread panics holding the memo");
            let mut seen = std::collections::BTreeSet::new();
            cfgs.iter()
                .filter(|c| {
                    let k = Memo::key(c);
                    !done.contains_key(&k) && seen.insert(k)
                })
                .collect()
        };
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads.max(1).min(todo.len().max(1)) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(cfg) = todo.get(i) else { break };
                    let result = match checker::check(cfg, "repair", self.opts, &mut |_| {}) {
                        Ok(o) => Checked::Done(Memo::summarize(&o)),
                        Err(e) => Checked::Undecided(e.to_string()),
                    };
                    self.done
                        .lock()
                        .expect("invariant: no thread panics holding the memo")
                        .insert(Memo::key(cfg), result);
                });
            }
        });
    }

    fn get(&self, cfg: &Config) -> Checked {
        self.done
            .lock()
            .expect("invariant: no thread panics holding the memo")
            .get(&Memo::key(cfg))
            .cloned()
            .expect("invariant: a configuration is checked before it is read")
    }
}

/// A repair found, with what was checked about it.
struct Repair {
    changes: Vec<Change>,
    /// "max_crashes=3" → holds / violated / undecided.
    next_bounds: Vec<(String, String)>,
}

fn apply(base: &Config, changes: &[Change]) -> Result<Config, CheckError> {
    let mut cfg = base.clone();
    let sets: Vec<String> = changes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    cfg.apply_sets(&sets)
        .map_err(|e| CheckError::BadInput(e.to_string()))?;
    Ok(cfg)
}

/// Whether a check's verdicts repair the targets without breaking anything that held.
fn is_repair(c: &Checked, targets: &[Prop], held: &[Prop]) -> bool {
    let Checked::Done(rs) = c else { return false };
    let verdict = |p: Prop| rs.iter().find(|r| r.0 == p).map(|r| (r.1, r.2));
    targets
        .iter()
        .all(|&p| verdict(p) == Some((Verdict::Holds, false)))
        && held
            .iter()
            .all(|&p| verdict(p).is_some_and(|(v, _)| v != Verdict::Violated))
}

/// Every combination of `k` of the knobs (indices, increasing).
fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut idx: Vec<usize> = (0..k).collect();
    if k == 0 || k > n {
        return out;
    }
    loop {
        out.push(idx.clone());
        let mut i = k;
        while i > 0 && idx[i - 1] == n - k + i - 1 {
            i -= 1;
        }
        if i == 0 {
            return out;
        }
        idx[i - 1] += 1;
        for j in i..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// The value a knob has in `cfg`, as `apply_set` reads it.
fn value_of(cfg: &Config, key: &str) -> String {
    knob_values(cfg)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim_matches('"').to_string())
        .unwrap_or_default()
}

/// Run `imps repair`.
pub fn run(args: &RepairArgs, out: &mut dyn Write) -> Result<u8, CheckError> {
    let bad = |m: String| CheckError::BadInput(m);
    if args.max_changes == 0 {
        return Err(bad(
            "--max-changes 0: expected 1 or more (a repair changes at least one knob)".into(),
        ));
    }
    if args.threads == Some(0) {
        return Err(bad("--threads 0: expected 1 or more".into()));
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let (name, mut base) =
        resolve_variant(&args.variant, &variants_dir()).map_err(|e| bad(e.to_string()))?;
    base.apply_sets(&args.set).map_err(|e| bad(e.to_string()))?;
    // A repair is judged by the verdicts it finds, not by the variant's [expect].
    let base = base.cfg;
    let catalogue = Catalogue::find().map_err(|e| bad(e.to_string()))?;
    let mut targets = Vec::new();
    for p in &args.properties {
        let prop = Prop::from_name(p).ok_or_else(|| {
            let known: Vec<&str> = Prop::ALL
                .iter()
                .filter(|p| p.kind() != Kind::Witness)
                .map(|p| p.name())
                .collect();
            bad(format!(
                "--property {p}: unknown property; expected one of: {}",
                known.join(", ")
            ))
        })?;
        if prop.kind() == Kind::Witness {
            return Err(bad(format!(
                "--property {p}: a witness is reached or not, it is not repaired; expected a safety or liveness property"
            )));
        }
        targets.push(prop);
    }
    // The knobs to search, each with its candidate values.
    let mut knobs: Vec<(String, Vec<String>)> = Vec::new();
    let names: Vec<String> = if args.knobs.is_empty() {
        catalogue
            .knob
            .iter()
            .filter(|k| k.kind == KnobKind::Open)
            .map(|k| k.key.clone())
            .collect()
    } else {
        args.knobs.iter().map(|k| k.trim().to_string()).collect()
    };
    for k in &names {
        if !KNOBS.iter().any(|d| d.key == k) {
            let known: Vec<&str> = catalogue.knob.iter().map(|k| k.key.as_str()).collect();
            return Err(bad(format!(
                "--knobs {k}: unknown knob; expected one of: {}",
                known.join(", ")
            )));
        }
        let entry = catalogue.knob(k).ok_or_else(|| {
            bad(format!(
                "--knobs {k}: not a reading of the CR (the env.* knobs are the checker's bounds)"
            ))
        })?;
        let current = value_of(&base, k);
        let values: Vec<String> =
            match entry.kind {
                KnobKind::Open => entry
                    .values
                    .iter()
                    .filter(|v| **v != current)
                    .cloned()
                    .collect(),
                KnobKind::Must => {
                    let cr = value_of(&Config::default(), k);
                    if cr == current {
                        Vec::new()
                    } else {
                        vec![cr]
                    }
                }
                KnobKind::Tuning | KnobKind::Environment => {
                    return Err(bad(format!(
                    "--knobs {k}: a {} knob, no reading of the CR; expected an open or a must knob",
                    if entry.kind == KnobKind::Tuning { "tuning" } else { "environment" }
                )))
                }
            };
        if !values.is_empty() && !knobs.iter().any(|(other, _)| other == k) {
            knobs.push((k.clone(), values));
        }
    }
    let memo = Memo {
        opts: Options {
            max_states: args.max_states,
            // Candidates are checked side by side, each on one thread.
            threads: 1,
            ..Options::default()
        },
        done: Mutex::new(BTreeMap::new()),
    };
    memo.check_all(std::slice::from_ref(&base), threads);
    let base_results = match memo.get(&base) {
        Checked::Done(rs) => rs,
        Checked::Undecided(e) => return Err(bad(format!("variant {name}: {e}"))),
    };
    let violated: Vec<Prop> = base_results
        .iter()
        .filter(|r| r.1 == Verdict::Violated)
        .map(|r| r.0)
        .collect();
    let held: Vec<Prop> = base_results
        .iter()
        .filter(|r| r.0.kind() != Kind::Witness && r.1 == Verdict::Holds)
        .map(|r| r.0)
        .collect();
    if targets.is_empty() {
        targets = violated.clone();
    }
    let header = Header {
        variant: name.clone(),
        sets: args.set.clone(),
        bounds: checker::bounds(&base),
        targets: targets.clone(),
        knobs: knobs.iter().map(|(k, _)| k.clone()).collect(),
    };
    if targets.iter().all(|p| !violated.contains(p)) {
        let text = header.nothing(args.format);
        out.write_all(text.as_bytes()).map_err(stdout_err)?;
        return Ok(0);
    }
    // Breadth-first over the number of changes; supersets of repairs are skipped.
    let mut repairs: Vec<Vec<Change>> = Vec::new();
    let mut undecided: Vec<(Vec<Change>, String)> = Vec::new();
    let mut checked = 0usize;
    for size in 1..=args.max_changes {
        let mut level: Vec<Vec<Change>> = Vec::new();
        for combo in combinations(knobs.len(), size) {
            let mut sets: Vec<Vec<Change>> = vec![Vec::new()];
            for &i in &combo {
                let (k, vs) = &knobs[i];
                sets = sets
                    .into_iter()
                    .flat_map(|s| {
                        vs.iter().map(move |v| {
                            let mut s = s.clone();
                            s.push((k.clone(), v.clone()));
                            s
                        })
                    })
                    .collect();
            }
            level.extend(
                sets.into_iter()
                    .filter(|s| !repairs.iter().any(|r| r.iter().all(|c| s.contains(c)))),
            );
        }
        let cfgs: Vec<Config> = level
            .iter()
            .map(|s| apply(&base, s))
            .collect::<Result<_, _>>()?;
        memo.check_all(&cfgs, threads);
        checked += level.len();
        for (s, cfg) in level.into_iter().zip(&cfgs) {
            match memo.get(cfg) {
                c @ Checked::Done(_) if is_repair(&c, &targets, &held) => repairs.push(s),
                Checked::Done(_) => {}
                Checked::Undecided(e) => undecided.push((s, e)),
            }
        }
    }
    // Minimality, checked rather than assumed: no proper subset of a repair is one.
    for r in &repairs {
        for k in 1..r.len() {
            for sub in combinations(r.len(), k) {
                let s: Vec<Change> = sub.iter().map(|&i| r[i].clone()).collect();
                let cfg = apply(&base, &s)?;
                memo.check_all(std::slice::from_ref(&cfg), threads);
                assert!(
                    !is_repair(&memo.get(&cfg), &targets, &held),
                    "invariant: the search skips every superset of a repair, so {r:?} has no repairing subset"
                );
            }
        }
    }
    // The next larger bounds: one more crash, one more device.
    let next = |cfg: &Config| -> Vec<(String, Config)> {
        let mut v = Vec::new();
        let mut c = cfg.clone();
        c.env.max_crashes += 1;
        v.push((format!("env.max_crashes={}", c.env.max_crashes), c));
        let mut c = cfg.clone();
        c.env.devices_per_user += 1;
        v.push((
            format!("env.devices_per_user={}", c.env.devices_per_user),
            c,
        ));
        v
    };
    let mut bigger: Vec<Config> = Vec::new();
    for r in &repairs {
        let cfg = apply(&base, r)?;
        bigger.extend(
            next(&cfg)
                .into_iter()
                .filter(|(_, c)| c.validate().is_ok())
                .map(|(_, c)| c),
        );
    }
    memo.check_all(&bigger, threads);
    let mut found = Vec::new();
    for r in &repairs {
        let cfg = apply(&base, r)?;
        let next_bounds = next(&cfg)
            .into_iter()
            .map(|(label, c)| {
                let word = if let Err(e) = c.validate() {
                    format!("not checked ({e})")
                } else {
                    match memo.get(&c) {
                        c @ Checked::Done(_) if is_repair(&c, &targets, &held) => {
                            "holds".to_string()
                        }
                        Checked::Done(_) => "VIOLATED".to_string(),
                        Checked::Undecided(e) => format!("undecided ({e})"),
                    }
                };
                (label, word)
            })
            .collect();
        found.push(Repair {
            changes: r.clone(),
            next_bounds,
        });
    }
    let text = header.report(
        &found,
        &undecided,
        checked,
        args.max_changes,
        &catalogue,
        args.format,
    );
    out.write_all(text.as_bytes()).map_err(stdout_err)?;
    Ok(u8::from(found.is_empty()))
}

fn stdout_err(source: std::io::Error) -> CheckError {
    CheckError::Io {
        path: "<stdout>".into(),
        source,
    }
}

struct Header {
    variant: String,
    sets: Vec<String>,
    bounds: String,
    targets: Vec<Prop>,
    knobs: Vec<String>,
}

/// The level changes a knob change suggests, for each MAY, SHOULD or RECOMMENDED statement the
/// knob concerns (the MUSTs stand as they are): made a MUST when the value takes it, left
/// untaken when it does not, made precise for an implementation choice (a pool size).
fn suggestions(catalogue: &Catalogue, (k, v): &Change) -> Vec<String> {
    let Some(entry) = catalogue.knob(k) else {
        return Vec::new();
    };
    entry
        .requirements
        .iter()
        .filter_map(|id| catalogue.requirement(id))
        .filter(|r| !r.level.starts_with("MUST"))
        .map(|r| match &entry.takes {
            Some(t) if t == v => format!("{} {} → MUST: {k} = {v}", r.id, r.level),
            Some(_) => format!("{} {}, not taken: {k} = {v}", r.id, r.level),
            None => format!("{} {}, made precise: {k} = {v}", r.id, r.level),
        })
        .collect()
}

impl Header {
    fn title(&self) -> String {
        let sets = if self.sets.is_empty() {
            String::new()
        } else {
            format!(" with {}", self.sets.join(" "))
        };
        format!("imps repair: {}{sets}", self.variant)
    }

    fn nothing(&self, format: crate::cli::diff::DiffFormat) -> String {
        use crate::cli::diff::DiffFormat;
        let msg = format!(
            "nothing to repair: {} violates none of the properties asked for within its bounds ({})",
            self.variant, self.bounds
        );
        match format {
            DiffFormat::Json => {
                serde_json::to_string_pretty(&json!({
                    "variant": self.variant,
                    "bounds": self.bounds,
                    "targets": self.targets.iter().map(|p| p.name()).collect::<Vec<_>>(),
                    "repairs": [],
                    "nothing_to_repair": true,
                }))
                .expect("invariant: JSON serializes")
                    + "\n"
            }
            DiffFormat::Text | DiffFormat::Markdown => format!("{msg}\n"),
        }
    }

    fn report(
        &self,
        found: &[Repair],
        undecided: &[(Vec<Change>, String)],
        checked: usize,
        max_changes: usize,
        catalogue: &Catalogue,
        format: crate::cli::diff::DiffFormat,
    ) -> String {
        use crate::cli::diff::DiffFormat;
        let targets: Vec<&str> = self.targets.iter().map(|p| p.name()).collect();
        let changes = |r: &Repair| {
            r.changes
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let bounded = |r: &Repair| r.next_bounds.iter().any(|(_, w)| w != "holds");
        let mut s = String::new();
        match format {
            DiffFormat::Json => {
                let rs: Vec<_> = found
                    .iter()
                    .map(|r| {
                        json!({
                            "changes": r.changes.iter().map(|(k, v)| json!({"knob": k, "value": v, "requirements": catalogue.knob_requirements(k)})).collect::<Vec<_>>(),
                            "suggestions": r.changes.iter().flat_map(|c| suggestions(catalogue, c)).collect::<Vec<_>>(),
                            "minimal": true,
                            "next_bounds": r.next_bounds.iter().map(|(b, w)| json!({"bounds": b, "verdict": w})).collect::<Vec<_>>(),
                            "bounded": bounded(r),
                        })
                    })
                    .collect();
                let un: Vec<_> = undecided
                    .iter()
                    .map(|(c, e)| json!({"changes": c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), "why": e}))
                    .collect();
                s = serde_json::to_string_pretty(&json!({
                    "variant": self.variant,
                    "bounds": self.bounds,
                    "targets": targets,
                    "knobs": self.knobs,
                    "max_changes": max_changes,
                    "candidates_checked": checked,
                    "repairs": rs,
                    "undecided": un,
                }))
                .expect("invariant: JSON serializes")
                    + "\n";
            }
            DiffFormat::Text => {
                let _ = writeln!(s, "{}", self.title());
                let _ = writeln!(s, "bounds: {}", self.bounds);
                let _ = writeln!(s, "to hold: {}", targets.join(", "));
                let _ = writeln!(
                    s,
                    "searched: {} knobs, up to {max_changes} changes, {checked} candidates (supersets of repairs skipped)",
                    self.knobs.len()
                );
                let _ = writeln!(s);
                if found.is_empty() {
                    let _ = writeln!(s, "no repair within {max_changes} changes");
                }
                for (i, r) in found.iter().enumerate() {
                    let _ = writeln!(s, "{:>3}. {}", i + 1, changes(r));
                    for sug in r.changes.iter().flat_map(|c| suggestions(catalogue, c)) {
                        let _ = writeln!(s, "       {sug}");
                    }
                    let next: Vec<String> = r
                        .next_bounds
                        .iter()
                        .map(|(b, w)| format!("{b}: {w}"))
                        .collect();
                    let _ = writeln!(
                        s,
                        "       minimal (no subset repairs); {}; at the next bounds: {}",
                        if bounded(r) {
                            "bounded: it does not hold at every next bound"
                        } else {
                            "it still holds one crash and one device further"
                        },
                        next.join(", ")
                    );
                }
                for (c, e) in undecided {
                    let c: Vec<String> = c.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    let _ = writeln!(s, "undecided: {}: {e}", c.join(", "));
                }
            }
            DiffFormat::Markdown => {
                let _ = writeln!(
                    s,
                    "Minimal repairs of `{}` (`{}`), within `{}`, for {}:",
                    self.variant,
                    self.title(),
                    self.bounds,
                    targets
                        .iter()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let _ = writeln!(s);
                if found.is_empty() {
                    let _ = writeln!(s, "none within {max_changes} changes.");
                }
                let _ = writeln!(
                    s,
                    "| # | change | suggested wording | one crash more | one device more |"
                );
                let _ = writeln!(s, "|---|---|---|---|---|");
                for (i, r) in found.iter().enumerate() {
                    let sug: Vec<String> = r
                        .changes
                        .iter()
                        .flat_map(|c| suggestions(catalogue, c))
                        .collect();
                    let w = |n: usize| {
                        r.next_bounds
                            .get(n)
                            .map_or(String::new(), |(_, w)| w.clone())
                    };
                    let _ = writeln!(
                        s,
                        "| {} | `{}` | {} | {} | {} |",
                        i + 1,
                        changes(r),
                        if sug.is_empty() {
                            "-".to_string()
                        } else {
                            sug.join("; ")
                        },
                        w(0),
                        w(1)
                    );
                }
            }
        }
        s
    }
}
