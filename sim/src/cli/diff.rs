//! `imps diff A B`: what a change request changes. Both variants are checked within the same
//! bounds; the report lists, per property, the verdict on each side (the ones that changed
//! first), replays each counterexample on the other side to find the first step where the two
//! readings part, and lists the witnesses only one side reaches and the knobs that differ, with
//! the CR requirements they concern.

use crate::cli::check::CheckError;
use imps_model::catalogue::Catalogue;
use imps_model::checker::{self, Options, Outcome};
use imps_model::config::{knob_values, Config};
use imps_model::props::{Kind, Prop};
use imps_model::trace::{Trace, TraceStep};
use imps_model::variant::{resolve_variant, variants_dir, Verdict};
use imps_model::world::World;
use serde_json::json;
use std::fmt::Write as _;
use std::io::Write;

/// The flags of `imps diff`.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The variant before the change (name or path).
    pub a: String,
    /// The variant after the change (name or path).
    pub b: String,
    /// Override a knob on both sides: section.knob=value.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output format: text, json, or markdown (a section to paste into a CR review).
    #[arg(long, value_enum, default_value = "text")]
    pub format: DiffFormat,
    /// Give up past this many states per side.
    #[arg(long, default_value_t = 50_000_000, allow_negative_numbers = true,
          value_parser = crate::cli::flags::at_least::<u64>("a number of states", 0))]
    pub max_states: u64,
}

/// Output formats of `imps diff`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffFormat {
    /// For people.
    Text,
    /// One JSON document.
    Json,
    /// A Markdown section with a Mermaid diagram per change.
    Markdown,
}

/// One side of the comparison.
struct Side {
    name: String,
    cfg: Config,
    outcome: Outcome,
}

/// Where a counterexample of one side parts from the other side.
struct Departure {
    prop: Prop,
    /// The side whose counterexample is replayed: 0 for A, 1 for B.
    from: usize,
    /// The counterexample.
    trace: Trace,
    /// The steps both sides take alike before they part, with the other side's rendering of
    /// each (identical up to `step`).
    other: Vec<TraceStep>,
    /// Index of the first step that differs; `None` when the other side takes every step
    /// alike (it judges the same run differently).
    step: Option<usize>,
    /// What the other side does at that step (empty when the step is not possible there).
    other_lines: Vec<String>,
}

fn load(name: &str, sets: &[String]) -> Result<(String, Config), CheckError> {
    let bad = |e: String| CheckError::BadInput(e);
    let (name, mut variant) =
        resolve_variant(name, &variants_dir()).map_err(|e| bad(e.to_string()))?;
    variant
        .apply_sets(sets)
        .map_err(|e| bad(format!("variant {name}: {e}")))?;
    Ok((name, variant.cfg))
}

/// Replay the actions of `trace` on `cfg` and find where it parts from the trace.
fn depart(trace: &Trace, cfg: &Config) -> (Vec<TraceStep>, Option<usize>, Vec<String>) {
    let mut w = World::new(cfg);
    let mut enabled = Vec::new();
    let mut steps = Vec::new();
    for (i, st) in trace.steps.iter().enumerate() {
        enabled.clear();
        w.actions(cfg, &mut enabled);
        if !enabled.contains(&st.action) {
            return (steps, Some(i), Vec::new());
        }
        let before = w.clone();
        let step = w.step(cfg, st.action);
        let other = TraceStep::new(cfg, &before, st.action, &step, &w);
        let differs = other.lines() != st.lines();
        let lines = other.lines();
        steps.push(other);
        if differs {
            return (steps, Some(i), lines);
        }
    }
    (steps, None, Vec::new())
}

fn side_name(sides: &[Side; 2], i: usize) -> &str {
    &sides[i].name
}

/// Run `imps diff`.
pub fn run(args: &DiffArgs, out: &mut dyn Write) -> Result<u8, CheckError> {
    let (na, ca) = load(&args.a, &args.set)?;
    let (nb, mut cb) = load(&args.b, &args.set)?;
    // The same bounds on both sides: A's, with --set applied to both.
    let own_bounds = (cb.env != ca.env).then(|| checker::bounds(&cb));
    cb.env = ca.env.clone();
    let catalogue = Catalogue::find().map_err(|e| CheckError::BadInput(e.to_string()))?;
    let opts = Options {
        max_states: args.max_states,
        ..Options::default()
    };
    let check = |name: &str, cfg: &Config| {
        checker::check(cfg, name, opts, &mut |_| {})
            .map_err(|e| CheckError::BadInput(format!("variant {name}: {e}")))
    };
    let oa = check(&na, &ca)?;
    let ob = check(&nb, &cb)?;
    let sides = [
        Side {
            name: na,
            cfg: ca,
            outcome: oa,
        },
        Side {
            name: nb,
            cfg: cb,
            outcome: ob,
        },
    ];
    let verdict = |s: &Side, p: Prop| s.outcome.result(p).map(|r| r.verdict);
    let mut rows: Vec<(Prop, Verdict, Verdict)> = Prop::ALL
        .iter()
        .filter_map(|&p| Some((p, verdict(&sides[0], p)?, verdict(&sides[1], p)?)))
        .collect();
    rows.sort_by_key(|&(p, a, b)| (a == b, p as usize));
    let changed = rows.iter().filter(|(_, a, b)| a != b).count();
    let mut departures = Vec::new();
    for &(p, a, b) in &rows {
        if a == b || p.kind() == Kind::Witness {
            continue;
        }
        let from = if a == Verdict::Violated { 0 } else { 1 };
        let Some(trace) = sides[from].outcome.result(p).and_then(|r| r.trace.clone()) else {
            continue;
        };
        let (other, step, other_lines) = depart(&trace, &sides[1 - from].cfg);
        departures.push(Departure {
            prop: p,
            from,
            trace,
            other,
            step,
            other_lines,
        });
    }
    let witnesses: [Vec<Prop>; 2] = std::array::from_fn(|i| {
        rows.iter()
            .filter(|&&(p, a, b)| {
                let (mine, theirs) = if i == 0 { (a, b) } else { (b, a) };
                p.kind() == Kind::Witness && mine == Verdict::Holds && theirs == Verdict::NotReached
            })
            .map(|&(p, _, _)| p)
            .collect()
    });
    let (ka, kb) = (knob_values(&sides[0].cfg), knob_values(&sides[1].cfg));
    let knobs: Vec<(String, String, String, Vec<String>)> = ka
        .iter()
        .zip(&kb)
        .filter(|((k, a), (_, b))| a != b && !k.starts_with("env."))
        .map(|((k, a), (_, b))| {
            (
                k.clone(),
                a.clone(),
                b.clone(),
                catalogue.knob_requirements(k),
            )
        })
        .collect();
    let report = Report {
        sides: &sides,
        rows: &rows,
        departures: &departures,
        witnesses: &witnesses,
        knobs: &knobs,
        own_bounds,
    };
    let text = match args.format {
        DiffFormat::Text => report.text(),
        DiffFormat::Markdown => report.markdown(),
        DiffFormat::Json => {
            serde_json::to_string_pretty(&report.json()).expect("invariant: JSON serializes") + "\n"
        }
    };
    out.write_all(text.as_bytes())
        .map_err(|source| CheckError::Io {
            path: "<stdout>".into(),
            source,
        })?;
    Ok(u8::from(changed > 0))
}

struct Report<'a> {
    sides: &'a [Side; 2],
    rows: &'a [(Prop, Verdict, Verdict)],
    departures: &'a [Departure],
    witnesses: &'a [Vec<Prop>; 2],
    knobs: &'a [(String, String, String, Vec<String>)],
    own_bounds: Option<String>,
}

impl Report<'_> {
    fn a(&self) -> &str {
        side_name(self.sides, 0)
    }

    fn b(&self) -> &str {
        side_name(self.sides, 1)
    }

    /// One sentence on where a departure happens.
    fn departure_sentence(&self, d: &Departure) -> String {
        let (mine, other) = (
            side_name(self.sides, d.from),
            side_name(self.sides, 1 - d.from),
        );
        match d.step {
            Some(i) => {
                // Only what differs: the lines one side has and the other has not.
                let mine_all = d.trace.steps[i].lines();
                let only = |a: &[String], b: &[String]| -> String {
                    let v: Vec<&str> = a
                        .iter()
                        .filter(|l| !b.contains(l))
                        .map(String::as_str)
                        .collect();
                    if v.is_empty() {
                        "nothing".to_string()
                    } else {
                        v.join("; ")
                    }
                };
                let here = only(&mine_all, &d.other_lines);
                let there = if d.other_lines.is_empty() {
                    format!("{:?} is not possible", d.trace.steps[i].action)
                } else {
                    only(&d.other_lines, &mine_all)
                };
                format!("step {}: {here} in {mine}, {there} in {other}", i + 1)
            }
            None => format!(
                "{other} can take every step of {mine}'s counterexample alike; it judges the run differently (a way out, or a fair action, that {mine} lacks)"
            ),
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "imps diff: A = {}, B = {}", self.a(), self.b());
        let _ = writeln!(s, "bounds: {}", checker::bounds(&self.sides[0].cfg));
        if let Some(own) = &self.own_bounds {
            let _ = writeln!(s, "(B's own bounds, replaced by A's: {own})");
        }
        let _ = writeln!(s);
        if self.knobs.is_empty() {
            let _ = writeln!(s, "knobs: none differ");
        } else {
            let _ = writeln!(
                s,
                "knobs that differ (A -> B), with the requirements they concern:"
            );
            for (k, a, b, reqs) in self.knobs {
                let _ = writeln!(s, "  {k}: {a} -> {b}   {}", reqs.join(", "));
            }
        }
        let _ = writeln!(s);
        let w = Prop::ALL.iter().map(|p| p.name().len()).max().unwrap_or(0) + 1;
        let _ = writeln!(s, "{:<w$} {:<12} {:<12}", "property", "A", "B");
        for &(p, a, b) in self.rows {
            let mark = if a != b { "  <- changed" } else { "" };
            let _ = writeln!(
                s,
                "{:<w$} {:<12} {:<12}{mark}",
                p.name(),
                a.as_str(),
                b.as_str()
            );
        }
        for (i, ws) in self.witnesses.iter().enumerate() {
            let (me, other) = (side_name(self.sides, i), side_name(self.sides, 1 - i));
            for wp in ws {
                let _ = writeln!(
                    s,
                    "behaviour: {me} reaches {}; {other} never does",
                    wp.name()
                );
            }
        }
        for d in self.departures {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "{}: {} in {}; its counterexample replayed on {}:",
                d.prop.name(),
                Verdict::Violated.as_str(),
                side_name(self.sides, d.from),
                side_name(self.sides, 1 - d.from)
            );
            let _ = writeln!(s, "  {}", self.departure_sentence(d));
            let end = d.step.map_or(d.trace.steps.len(), |i| i + 1);
            for (i, st) in d.trace.steps[..end].iter().enumerate() {
                let theirs: Vec<String> = match d.other.get(i) {
                    Some(o) => o.lines(),
                    None => vec!["(not possible)".to_string()],
                };
                let mine = st.lines();
                let mark = if Some(i) == d.step {
                    "  <- parts here"
                } else {
                    ""
                };
                let n = mine.len().max(theirs.len());
                for k in 0..n {
                    let left = mine.get(k).map_or("", String::as_str);
                    let right = theirs.get(k).map_or("", String::as_str);
                    let m = if k == 0 { mark } else { "" };
                    let _ = writeln!(s, "  {:>3}. {left:<64} | {right}{m}", i + 1);
                }
            }
        }
        s
    }

    /// A two-column Mermaid sequence diagram of a departure: the violating side's lanes on
    /// the left, the other side's on the right.
    fn mermaid(&self, d: &Departure) -> String {
        let mut s = String::from("sequenceDiagram\n");
        let lanes = |side: usize| -> Vec<String> {
            let tag = ["A", "B"][side];
            let mut v: Vec<String> = d
                .trace
                .initial
                .devices
                .iter()
                .map(|dev| format!("{tag}D{}", dev.client.device.0))
                .collect();
            v.push(format!("{tag}S"));
            v
        };
        for side in [d.from, 1 - d.from] {
            let name = side_name(self.sides, side);
            let t = ["A", "B"][side];
            for dev in &d.trace.initial.devices {
                let x = dev.client.device.0;
                let _ = writeln!(s, "    participant {t}D{x} as dev{x} ({name})");
            }
            let _ = writeln!(s, "    participant {t}S as server ({name})");
        }
        let render = |s: &mut String, side: usize, st: &TraceStep| st.mermaid(s, ["A", "B"][side]);
        let end = d.step.map_or(d.trace.steps.len(), |i| i + 1);
        for i in 0..end {
            if Some(i) == d.step {
                let l = lanes(d.from);
                let r = lanes(1 - d.from);
                let _ = writeln!(
                    s,
                    "    Note over {},{}: step {}: the two readings part here",
                    l[0],
                    r[r.len() - 1],
                    i + 1
                );
            }
            render(&mut s, d.from, &d.trace.steps[i]);
            if let Some(o) = d.other.get(i) {
                render(&mut s, 1 - d.from, o);
            }
        }
        s
    }

    fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "### `imps diff {} {}`", self.a(), self.b());
        let _ = writeln!(s);
        let _ = writeln!(s, "Bounds: `{}`.", checker::bounds(&self.sides[0].cfg));
        let _ = writeln!(s);
        if !self.knobs.is_empty() {
            let _ = writeln!(s, "| knob | {} | {} | requirements |", self.a(), self.b());
            let _ = writeln!(s, "|---|---|---|---|");
            for (k, a, b, reqs) in self.knobs {
                let _ = writeln!(s, "| `{k}` | {a} | {b} | {} |", reqs.join(", "));
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "| property | {} | {} |", self.a(), self.b());
        let _ = writeln!(s, "|---|---|---|");
        for &(p, a, b) in self.rows.iter().filter(|(_, a, b)| a != b) {
            let _ = writeln!(s, "| `{}` | {} | {} |", p.name(), a.as_str(), b.as_str());
        }
        let same = self.rows.iter().filter(|(_, a, b)| a == b).count();
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "The other {same} properties have the same verdict on both sides."
        );
        for (i, ws) in self.witnesses.iter().enumerate() {
            for wp in ws {
                let _ = writeln!(
                    s,
                    "- {} reaches `{}`; {} never does.",
                    side_name(self.sides, i),
                    wp.name(),
                    side_name(self.sides, 1 - i)
                );
            }
        }
        for d in self.departures {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "#### `{}`: violated in {}",
                d.prop.name(),
                side_name(self.sides, d.from)
            );
            let _ = writeln!(s);
            let _ = writeln!(s, "{}.", self.departure_sentence(d));
            let _ = writeln!(s);
            let _ = writeln!(s, "```mermaid\n{}```", self.mermaid(d));
        }
        s
    }

    fn json(&self) -> serde_json::Value {
        let props: Vec<_> = self
            .rows
            .iter()
            .map(|&(p, a, b)| {
                json!({
                    "property": p.name(),
                    "a": a.as_str(),
                    "b": b.as_str(),
                    "changed": a != b,
                    "requirements": p.requirements(),
                })
            })
            .collect();
        let deps: Vec<_> = self
            .departures
            .iter()
            .map(|d| {
                json!({
                    "property": d.prop.name(),
                    "violated_in": side_name(self.sides, d.from),
                    "step": d.step.map(|i| i + 1),
                    "violating_side": d.step.map(|i| d.trace.steps[i].lines()),
                    "other_side": d.step.map(|_| d.other_lines.clone()),
                    "sentence": self.departure_sentence(d),
                    "mermaid": self.mermaid(d),
                })
            })
            .collect();
        let knobs: Vec<_> = self
            .knobs
            .iter()
            .map(|(k, a, b, r)| json!({"knob": k, "a": a, "b": b, "requirements": r}))
            .collect();
        let names = |ws: &Vec<Prop>| ws.iter().map(|p| p.name()).collect::<Vec<_>>();
        json!({
            "a": self.a(),
            "b": self.b(),
            "bounds": checker::bounds(&self.sides[0].cfg),
            "knobs": knobs,
            "properties": props,
            "departures": deps,
            "witnesses_only_in_a": names(&self.witnesses[0]),
            "witnesses_only_in_b": names(&self.witnesses[1]),
        })
    }
}
