//! `imps validate`: is a real CSP log a run of a variant of the model, and if not, where
//! does it depart and which requirements of the CR does that break; with `--infer`, which
//! settings of the knobs the CR leaves open are consistent with it.
//!
//! Exit codes: 0 when every log conforms to every variant given (with `--infer`: when some
//! setting is consistent with every log), 1 when one departs (none is), 2 on bad input (a
//! line that does not parse, an unknown `dir`, a message the decoder refuses: `file:line`
//! and the decoder's position) or a bound of the validator passed (named, with its flag).

use imps_model::validate::infer::{infer, InferOptions, InferReport, KnobStatus};
use imps_model::validate::log::parse_log;
use imps_model::validate::obs::{prepare, Prepared};
use imps_model::validate::{validate, Options, Report, Validation};
use imps_model::variant::{named_variants, resolve_variant, variants_dir};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;

/// `imps validate`.
#[derive(clap::Args, Debug, Clone)]
pub struct ValidateArgs {
    /// The logs: JSON Lines (one object per message or event) or HAR 1.2; each is validated
    /// on its own.
    #[arg(required = true, value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    /// The variant (name under specs/variants or path); repeat to validate against several.
    /// Required unless --infer, which otherwise starts from every named variant.
    #[arg(long = "variant", value_name = "V")]
    pub variants: Vec<String>,
    /// Override a knob: section.knob=value. env.max_crashes=N and env.max_connection_losses=N
    /// bound the unobserved faults per user (default: unbounded).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// List the settings of the open knobs consistent with the logs, most specific first,
    /// and for each knob whether the logs pin it down or leave it open.
    #[arg(long)]
    pub infer: bool,
    /// The most model states tracked at once for one user; past it, an error.
    #[arg(long, default_value_t = 100_000)]
    pub max_states: usize,
    /// With --infer: the most validations run in all.
    #[arg(long, default_value_t = 4000)]
    pub max_runs: usize,
}

/// Output formats of `imps validate`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A report for people.
    Text,
    /// JSON Lines: one object per log and variant (with --infer, per log).
    Json,
}

/// Why `imps validate` could not give a verdict.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ValidateCmdError(pub String);

fn load_log(path: &PathBuf) -> Result<Prepared, ValidateCmdError> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| ValidateCmdError(format!("{name}: {e}")))?;
    let log = parse_log(&name, &text).map_err(|e| ValidateCmdError(e.to_string()))?;
    prepare(&log).map_err(|e| ValidateCmdError(e.to_string()))
}

fn load_variant(name: &str, sets: &[String]) -> Result<(String, Validation), ValidateCmdError> {
    let (name, variant) = resolve_variant(name, &variants_dir())
        .map_err(|e| ValidateCmdError(format!("--variant {name}: {e}")))?;
    let mut v = Validation::new(&variant.cfg);
    for s in sets {
        v.set(s).map_err(|e| ValidateCmdError(e.to_string()))?;
    }
    Ok((name, v))
}

fn counts(p: &Prepared) -> String {
    let devices: usize = p.users.iter().map(|u| u.devices.len()).sum();
    let s = |n: usize| if n == 1 { "" } else { "s" };
    format!(
        "{} message{} and {} event{} of {} user{} ({} device{})",
        p.messages,
        s(p.messages),
        p.events,
        s(p.events),
        p.users.len(),
        if p.users.len() == 1 { "" } else { "s" },
        devices,
        if devices == 1 { "" } else { "s" }
    )
}

/// Run `imps validate`; returns the exit code.
///
/// # Errors
///
/// Bad input or a bound passed, as one line naming the file and line.
pub fn run(args: &ValidateArgs, out: &mut dyn Write) -> Result<u8, ValidateCmdError> {
    let logs: Vec<Prepared> = args.logs.iter().map(load_log).collect::<Result<_, _>>()?;
    if args.infer {
        return run_infer(args, &logs, out);
    }
    if args.variants.is_empty() {
        return Err(ValidateCmdError(
            "expected --variant V (or --infer to search the settings consistent with the log)"
                .into(),
        ));
    }
    let variants: Vec<(String, Validation)> = args
        .variants
        .iter()
        .map(|v| load_variant(v, &args.set))
        .collect::<Result<_, _>>()?;
    let opts = Options {
        max_states: args.max_states,
        ..Options::default()
    };
    let mut code = 0;
    let w = |e: std::io::Error| ValidateCmdError(format!("writing the report: {e}"));
    for p in &logs {
        for (name, v) in &variants {
            let report = validate(p, v, opts).map_err(|e| ValidateCmdError(e.to_string()))?;
            if report.departure.is_some() {
                code = 1;
            }
            match args.format {
                Format::Text => text(p, name, &report, out).map_err(w)?,
                Format::Json => {
                    let doc = json_report(p, name, &report);
                    writeln!(out, "{doc}").map_err(w)?;
                }
            }
        }
    }
    Ok(code)
}

fn text(p: &Prepared, variant: &str, r: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    match &r.departure {
        None => writeln!(out, "imps validate: {} against {variant}: conforms", p.path)?,
        Some(d) => writeln!(
            out,
            "imps validate: {} against {variant}: DEPARTS at {}",
            p.path, d.at
        )?,
    }
    writeln!(out, "  log           {}", counts(p))?;
    if let Some(d) = &r.departure {
        writeln!(out, "  observed      {}", d.observed)?;
        for (i, a) in d.allowed.iter().enumerate() {
            let label = if i == 0 { "allowed" } else { "" };
            writeln!(out, "  {label:<13} {a}")?;
        }
        if d.explanations.is_empty() {
            writeln!(
                out,
                "  explained by  no single knob of the model: it never sends this here"
            )?;
        }
        for (i, e) in d.explanations.iter().enumerate() {
            let label = if i == 0 { "explained by" } else { "" };
            let props: Vec<&str> = e.props.iter().map(|p| p.name()).collect();
            let what = if props.is_empty() {
                "a reading the CR allows".to_string()
            } else {
                format!("violates {}", props.join(", "))
            };
            let then = match e.then_departs {
                None => "with it the log conforms".to_string(),
                Some(l) => format!("with it the log departs at {}", p.locate(l)),
            };
            writeln!(
                out,
                "  {label:<13} {} = {}: {what}; {then}",
                e.knob, e.value
            )?;
        }
        let reqs = d.requirements();
        if reqs.is_empty() {
            let why = if d.by_monitors_only {
                "none the property monitors can name"
            } else {
                "none: some reading the CR allows explains the line (a choice of the variant, not a requirement, differs)"
            };
            writeln!(out, "  breaks        {why}")?;
        } else {
            let props: Vec<&str> = d.properties.iter().map(|p| p.name()).collect();
            let how = if d.by_monitors_only {
                " (the monitors on the line itself)"
            } else {
                ""
            };
            writeln!(
                out,
                "  breaks        {} ({}){how}",
                reqs.join(", "),
                props.join(", ")
            )?;
        }
    }
    writeln!(
        out,
        "  states        at most {} model states tracked at once",
        r.states_tracked_max
    )
}

fn json_report(p: &Prepared, variant: &str, r: &Report) -> Value {
    let departure = r.departure.as_ref().map(|d| {
        let line = p.lines[d.line].line;
        json!({
            "line": line,
            "at": d.at,
            "user": d.user,
            "device": d.device,
            "observed": d.observed,
            "allowed": d.allowed,
            "requirements": d.requirements(),
            "properties": d.properties.iter().map(|p| p.name()).collect::<Vec<_>>(),
            "by_monitors_only": d.by_monitors_only,
            "explanations": d.explanations.iter().map(|e| json!({
                "knob": e.knob,
                "value": e.value,
                "properties": e.props.iter().map(|p| p.name()).collect::<Vec<_>>(),
                "requirements": imps_model::validate::explain::requirements(&e.props),
                "then_departs_at": e.then_departs.map(|l| p.locate(l)),
            })).collect::<Vec<_>>(),
        })
    });
    json!({
        "log": p.path,
        "variant": variant,
        "verdict": if r.departure.is_some() { "departs" } else { "conforms" },
        "messages": p.messages,
        "events": p.events,
        "users": p.users.len(),
        "departure": departure,
        "states_tracked_max": r.states_tracked_max,
    })
}

fn run_infer(
    args: &ValidateArgs,
    logs: &[Prepared],
    out: &mut dyn Write,
) -> Result<u8, ValidateCmdError> {
    let names: Vec<String> = if args.variants.is_empty() {
        named_variants(&variants_dir())
            .map_err(|e| ValidateCmdError(e.to_string()))?
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    } else {
        args.variants.clone()
    };
    let bases: Vec<(String, Validation)> = names
        .iter()
        .map(|n| load_variant(n, &args.set))
        .collect::<Result<_, _>>()?;
    let opts = InferOptions {
        max_states: args.max_states,
        max_runs: args.max_runs,
        ..InferOptions::default()
    };
    let w = |e: std::io::Error| ValidateCmdError(format!("writing the report: {e}"));
    let mut code = 0;
    for p in logs {
        let r = infer(p, &bases, opts).map_err(|e| ValidateCmdError(e.to_string()))?;
        if r.settings.is_empty() {
            code = 1;
        }
        match args.format {
            Format::Text => infer_text(p, &r, out).map_err(w)?,
            Format::Json => writeln!(out, "{}", infer_json(p, &r)).map_err(w)?,
        }
    }
    Ok(code)
}

fn infer_text(p: &Prepared, r: &InferReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "imps validate --infer: {}: {}; {} validations{}",
        p.path,
        counts(p),
        r.runs,
        if r.truncated {
            " (stopped at --max-runs: more settings may be consistent)"
        } else {
            ""
        }
    )?;
    for (name, at) in &r.bases {
        match at {
            None => writeln!(out, "  {name:<28} conforms")?,
            Some(at) => writeln!(out, "  {name:<28} departs at {at}")?,
        }
    }
    if r.settings.is_empty() {
        writeln!(
            out,
            "no setting within {} knob changes of a named variant is consistent with the log",
            InferOptions::default().max_changes
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "settings consistent with the log, most specific first:"
    )?;
    for (i, s) in r.settings.iter().enumerate() {
        writeln!(
            out,
            "{}. {}   ({} knobs pinned)",
            i + 1,
            s.name(),
            s.pinned()
        )?;
        let mut open = Vec::new();
        for k in &s.knobs {
            match k {
                KnobStatus::Pinned {
                    knob,
                    value,
                    at,
                    observed,
                    rival,
                    rival_allowed,
                } => {
                    writeln!(out, "   pinned  {knob} = {value} by {at}: {observed}")?;
                    if let Some(a) = rival_allowed.first() {
                        writeln!(out, "           ({rival} would have: {a})")?;
                    }
                }
                KnobStatus::Open { knob, values } => {
                    open.push(format!("{knob} ({})", values.join(" | ")))
                }
            }
        }
        if !open.is_empty() {
            writeln!(out, "   open    {}", open.join(", "))?;
        }
        if !s.also.is_empty() {
            writeln!(out, "   the same pins in: {}", s.also.join("; "))?;
        }
    }
    Ok(())
}

fn infer_json(p: &Prepared, r: &InferReport) -> Value {
    json!({
        "log": p.path,
        "messages": p.messages,
        "events": p.events,
        "runs": r.runs,
        "truncated": r.truncated,
        "variants": r.bases.iter().map(|(n, at)| json!({
            "variant": n,
            "verdict": if at.is_some() { "departs" } else { "conforms" },
            "at": at,
        })).collect::<Vec<_>>(),
        "settings": r.settings.iter().map(|s| json!({
            "base": s.base,
            "changes": s.changes.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "pinned": s.pinned(),
            "same_pins": s.also,
            "knobs": s.knobs.iter().map(|k| match k {
                KnobStatus::Pinned { knob, value, at, observed, rival, rival_allowed } => json!({
                    "knob": knob, "value": value, "status": "pinned", "at": at,
                    "observed": observed, "rival": rival, "rival_allowed": rival_allowed,
                }),
                KnobStatus::Open { knob, values } => json!({
                    "knob": knob, "value": values[0], "status": "open", "values": values,
                }),
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
