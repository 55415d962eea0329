//! The report of a run or sweep as text (the terminal summary), JSON, and Markdown
//! (`report.md`); `crate::output::write_atomic` writes the files.
//!
//! Everything here is a pure function of the [`Report`] except the wall-clock fields
//! (`wall_s`, `events_per_s`), which the text and JSON show and `report.md` leaves out, so
//! that the same seed and configuration write byte-identical files.

use super::scenario::{Dur, SCENARIO_KNOBS};
use super::sweep::{Paired, Report, VariantReport};
use std::fmt::Write;

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(v: u64) -> String {
    if v < 1000 {
        format!("{v} ms")
    } else {
        format!("{:.1} s", v as f64 / 1000.0)
    }
}

fn pct_ppm(ppm: u64) -> String {
    format!("{}.{:04} %", ppm / 10_000, ppm % 10_000)
}

fn codes(r: &VariantReport) -> String {
    if r.result_codes.is_empty() {
        return "none".into();
    }
    r.result_codes
        .iter()
        .map(|(c, n)| format!("{c} x {}", thousands(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn recovery(v: &VariantReport) -> String {
    let q = &v.time_to_recover_ms;
    if q.count == 0 {
        return "no device recovered a lost session".into();
    }
    format!(
        "p50 {}, p90 {}, p99 {}, max {} ({} recoveries)",
        ms(q.p50),
        ms(q.p90),
        ms(q.p99),
        ms(q.max),
        thousands(q.count)
    )
}

/// The server's load: the busiest second, and the busiest second of each primitive.
fn load(v: &VariantReport) -> String {
    if v.requests_by_primitive.is_empty() {
        return "no request".into();
    }
    let kinds: Vec<String> = v
        .requests_by_primitive
        .iter()
        .map(|(k, l)| format!("{k} {}", thousands(l.peak_per_s)))
        .collect();
    format!(
        "peak {} requests/s; busiest second per primitive: {}",
        thousands(v.server_peak_requests_per_s),
        kinds.join(", ")
    )
}

/// What the correlated outage did, or `None` without one.
fn storm(v: &VariantReport) -> Option<String> {
    let s = v.storm.as_ref()?;
    let to99 = match v.time_to_99pct_sessions_ms {
        Some(t) => format!("99 % back after {}", ms(t)),
        None => "99 % never back".into(),
    };
    let per = match v.messages_per_reentry {
        Some(m) => format!("{m:.2} messages per re-entry"),
        None => "no device back in".into(),
    };
    let q = &s.time_to_reentry_ms;
    Some(format!(
        "{} at {}: {} devices with a session hit, {} back in; {to99}; {per}; re-entry p50 {}, p99 {}",
        s.kind,
        Dur(s.at_ms),
        thousands(s.devices_hit),
        thousands(s.devices_back),
        ms(q.p50),
        ms(q.p99)
    ))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn seeds(r: &Report) -> String {
    let [a, b] = r.sweep.seeds;
    if b == a + 1 {
        format!("seed {a}")
    } else {
        format!("seeds {a}..{b}")
    }
}

/// How many seeds (runs per variant) the report covers.
fn seed_count(r: &Report) -> u64 {
    r.sweep.seeds[1] - r.sweep.seeds[0]
}

/// What a sessions figure over several seeds is: a peak is the largest of any one seed, an
/// end figure the seeds' sum. Empty for one seed.
fn over_seeds(r: &Report) -> (String, String) {
    match seed_count(r) {
        1 => (String::new(), String::new()),
        n => (
            format!(" (largest of {n} seeds)"),
            format!(" (sum of {n} seeds)"),
        ),
    }
}

fn ids(ids: &[u32]) -> String {
    ids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the liveness phase found: trapped and slow devices, or that it was not reached.
fn liveness_lines(o: &mut String, v: &VariantReport) {
    for (seed, p) in &v.stopped {
        let _ = writeln!(
            o,
            "  STOPPED       seed {seed}: safety invariant {p} violated; the run ended there, so its devices were not classified"
        );
    }
    let (Some(trapped), Some(slow)) = (v.trapped_devices, v.slow_devices) else {
        let _ = writeln!(
            o,
            "  liveness      not measured: every run was stopped by a safety violation before the liveness phase ended"
        );
        return;
    };
    let partial = if v.stopped.is_empty() {
        ""
    } else {
        " (in the runs that were not stopped)"
    };
    if trapped == 0 {
        let _ = writeln!(o, "  trapped       none{partial}");
    } else {
        let _ = writeln!(
            o,
            "  TRAPPED       {} devices without a session that no protocol step leads back to one (the checker's deadlock){partial}",
            thousands(trapped)
        );
        for s in v.stuck.iter().filter(|s| s.trapped > 0).take(5) {
            let _ = writeln!(
                o,
                "    seed {}: {} trapped, e.g. {}",
                s.seed,
                thousands(s.trapped),
                ids(&s.first_trapped_ids)
            );
            let _ = writeln!(o, "    replay: {}", s.replay);
        }
    }
    if slow == 0 {
        let _ = writeln!(o, "  slow          none{partial}");
    } else {
        let _ = writeln!(
            o,
            "  slow          {} devices without a session at the end of the liveness phase, not trapped{partial}",
            thousands(slow)
        );
        for s in v.stuck.iter().filter(|s| s.slow > 0).take(5) {
            let _ = writeln!(
                o,
                "    seed {}: {} slow, e.g. {}",
                s.seed,
                thousands(s.slow),
                ids(&s.first_slow_ids)
            );
            if s.trapped == 0 {
                let _ = writeln!(o, "    replay: {}", s.replay);
            }
        }
    }
}

/// A paired value for the table: the number, or what stands in for a missing one.
fn paired_cell(v: Option<i128>, missing: &str, signed: bool) -> String {
    match v {
        Some(x) if signed => format!("{x:+}"),
        Some(x) => x.to_string(),
        None => missing.to_string(),
    }
}

/// The rows of a paired comparison: label, values, and what a missing value means.
fn paired_rows<'a>(
    r: &Report,
    c: &'a super::sweep::Comparison,
) -> Vec<(&'static str, &'a Paired, &'static str)> {
    let peak = if seed_count(r) == 1 {
        "orphaned peak"
    } else {
        "orphaned peak (max)"
    };
    let mut rows = vec![
        ("trapped devices", &c.trapped_devices, "stopped"),
        ("slow devices", &c.slow_devices, "stopped"),
        (peak, &c.orphan_sessions_peak, "-"),
        ("recovery p50 (ms)", &c.time_to_recover_p50_ms, "-"),
        ("recovery p99 (ms)", &c.time_to_recover_p99_ms, "-"),
        ("availability (ppm)", &c.availability_ppm, "-"),
        ("logins attempted", &c.logins_attempted, "-"),
        ("messages", &c.messages, "-"),
        ("peak requests/s", &c.server_peak_requests_per_s, "-"),
    ];
    if r.runs.iter().any(|v| v.storm.is_some()) {
        rows.push(("99 % back (ms)", &c.time_to_99pct_sessions_ms, "never"));
    }
    rows
}

/// The messages per device back in after the outage, both variants and their ratio.
fn reentry_line(c: &super::sweep::Comparison) -> Option<String> {
    let m = &c.messages_per_reentry;
    if m.baseline.is_none() && m.variant.is_none() {
        return None;
    }
    let f = |x: Option<f64>| x.map_or("- (no device back in)".to_string(), |x| format!("{x:.2}"));
    Some(format!(
        "messages per re-entry after the outage: {} {}, {} {}{}",
        c.baseline,
        f(m.baseline),
        c.variant,
        f(m.variant),
        m.ratio
            .map_or(String::new(), |r| format!(" ({r:.2} times)"))
    ))
}

/// Why cells of a comparison are missing, one sentence per reason.
fn paired_notes(r: &Report, c: &super::sweep::Comparison) -> Vec<String> {
    let mut notes = Vec::new();
    let n = seed_count(r);
    if n > 1 {
        notes.push(format!(
            "over {n} seeds: the orphaned peak is the largest of any one seed, the counts are the seeds' sums"
        ));
    }
    for name in [&c.baseline, &c.variant] {
        let Some(v) = r.runs.iter().find(|v| &v.variant == name) else {
            continue;
        };
        for (seed, p) in &v.stopped {
            notes.push(format!(
                "{name} seed {seed} was stopped by safety invariant {p}: no trapped or slow count"
            ));
        }
        if v.time_to_recover_ms.count == 0 {
            notes.push(format!(
                "{name} recovered no lost session: no recovery times"
            ));
        }
    }
    notes
}

/// The terminal summary.
pub fn text(r: &Report) -> String {
    let mut o = String::new();
    for v in &r.runs {
        let _ = writeln!(
            o,
            "variant {} ({}): {} devices ({} users), {} faulty + {} liveness",
            v.variant,
            seeds(r),
            thousands(u64::from(v.devices)),
            thousands(u64::from(v.users)),
            Dur((v.sim_duration_s * 1000.0) as u64),
            Dur((v.liveness_s * 1000.0) as u64)
        );
        let _ = writeln!(
            o,
            "  events        {} in {:.2} s ({:.2} M events/s)",
            thousands(v.events),
            v.wall_s,
            v.events_per_s / 1e6
        );
        let l = &v.logins;
        let _ = writeln!(
            o,
            "  logins        {} attempted, {} succeeded; recoveries {} attempted, {} succeeded",
            thousands(l.attempted),
            thousands(l.succeeded),
            thousands(l.recoveries_attempted),
            thousands(l.recoveries_succeeded)
        );
        let _ = writeln!(o, "  result codes  {}", codes(v));
        let _ = writeln!(o, "  recovery      {}", recovery(v));
        let _ = writeln!(o, "  load          {}", load(v));
        if let Some(line) = storm(v) {
            let _ = writeln!(o, "  storm         {line}");
        }
        let (peak, end) = over_seeds(r);
        let _ = writeln!(
            o,
            "  sessions      live peak {}{peak}; orphaned peak {}{peak}, at end {}{end}",
            thousands(v.live_sessions_peak),
            thousands(v.orphan_sessions_peak),
            thousands(v.orphan_sessions_end)
        );
        let _ = writeln!(
            o,
            "  faults        {} crashes, {} messages lost; availability {}",
            thousands(v.faults.crashes),
            thousands(v.faults.lost_messages),
            pct_ppm(v.availability_ppm)
        );
        liveness_lines(&mut o, v);
        for x in &v.violations {
            let kind = match (x.invariant, x.expected) {
                (true, false) => "INVARIANT",
                (true, true) => "invariant, expected by the variant",
                (false, false) => "conformance",
                (false, true) => "conformance, expected by the variant",
            };
            let _ = writeln!(
                o,
                "  violation     {} [{kind}] x {}; first at event {} (t={}) on device {}",
                x.property,
                thousands(x.count),
                x.first_event,
                ms(x.first_time_ms),
                x.first_device
            );
            let _ = writeln!(o, "    replay: {}", x.replay);
        }
        let _ = writeln!(o, "  digest        {}", v.digest);
    }
    for c in &r.comparison {
        let _ = writeln!(
            o,
            "paired: {} vs {} (same devices, same crashes: {})",
            c.variant, c.baseline, c.same_crashes
        );
        let _ = writeln!(
            o,
            "  {:<22} {:>14} {:>14} {:>14}",
            "", c.baseline, c.variant, "difference"
        );
        for (name, p, missing) in paired_rows(r, c) {
            let _ = writeln!(
                o,
                "  {name:<22} {:>14} {:>14} {:>14}",
                paired_cell(p.baseline, missing, false),
                paired_cell(p.variant, missing, false),
                paired_cell(p.diff, missing, true)
            );
        }
        let exact = if c.trapped_overlap_exact {
            ""
        } else {
            " (counted over the first 10,000 trapped ids of each run)"
        };
        if c.trapped_devices.diff.is_some() {
            let _ = writeln!(
                o,
                "  trapped in both: {}, only {}: {}, only {}: {}{exact}",
                c.trapped_in_both,
                c.baseline,
                c.trapped_only_baseline,
                c.variant,
                c.trapped_only_variant
            );
        }
        if let Some(line) = reentry_line(c) {
            let _ = writeln!(o, "  {line}");
        }
        for n in paired_notes(r, c) {
            let _ = writeln!(o, "  {n}");
        }
    }
    o
}

/// The JSON report: the single run's object for one variant, else an object with `runs` and
/// `comparison`.
pub fn json(r: &Report) -> String {
    let v = match r.runs.as_slice() {
        [one] => serde_json::to_value(one),
        _ => serde_json::to_value(serde_json::json!({
            "seed": r.sweep.seeds[0],
            "seeds": r.sweep.seeds,
            "config_hash": r.sweep.config_hash,
            "runs": r.runs,
            "comparison": r.comparison,
        })),
    }
    .expect("invariant: reports serialize to JSON");
    let mut s = serde_json::to_string_pretty(&v).expect("invariant: JSON values print");
    s.push('\n');
    s
}

/// `report.md`: the configuration, every variant's figures side by side, the comparison,
/// stuck devices and violations with replay commands, and the plots.
pub fn markdown(r: &Report, plots: &[(&str, &str)]) -> String {
    let mut o = String::new();
    let names: Vec<&str> = r.runs.iter().map(|v| v.variant.as_str()).collect();
    let _ = writeln!(o, "# Simulation report: {}\n", names.join(" vs "));
    let _ = writeln!(
        o,
        "Scenario `{}`, {}, configuration hash `{}`. Reproduce with:\n",
        r.sweep.scenario_name,
        seeds(r),
        r.sweep.config_hash
    );
    let variants: String = names.iter().map(|v| format!("--variant {v} ")).collect();
    let seed_flag = {
        let [a, b] = r.sweep.seeds;
        if b == a + 1 {
            format!("--seed {a}")
        } else {
            format!("--seeds {a}..{b}")
        }
    };
    let _ = writeln!(
        o,
        "```sh\nimps simulate {variants}{} {seed_flag} --out DIR\n```\n",
        r.sweep.replay_args
    );
    let _ = writeln!(o, "## Figures\n");
    let _ = write!(o, "| |");
    for n in &names {
        let _ = write!(o, " {n} |");
    }
    let _ = write!(o, "\n|---|");
    for _ in &names {
        let _ = write!(o, "---:|");
    }
    o.push('\n');
    let mut row = |label: &str, f: &dyn Fn(&VariantReport) -> String| {
        let _ = write!(o, "| {label} |");
        for v in &r.runs {
            let _ = write!(o, " {} |", f(v));
        }
        o.push('\n');
    };
    row("devices (users)", &|v| {
        format!(
            "{} ({})",
            thousands(u64::from(v.devices)),
            thousands(u64::from(v.users))
        )
    });
    row("faulty + liveness phase", &|v| {
        format!(
            "{} + {}",
            Dur((v.sim_duration_s * 1000.0) as u64),
            Dur((v.liveness_s * 1000.0) as u64)
        )
    });
    row("events", &|v| thousands(v.events));
    row("**trapped devices**", &|v| match v.trapped_devices {
        Some(n) => format!("**{}**", thousands(n)),
        None => "stopped".into(),
    });
    row("slow devices", &|v| match v.slow_devices {
        Some(n) => thousands(n),
        None => "stopped".into(),
    });
    row("logins attempted / succeeded", &|v| {
        format!(
            "{} / {}",
            thousands(v.logins.attempted),
            thousands(v.logins.succeeded)
        )
    });
    row("recoveries attempted / succeeded", &|v| {
        format!(
            "{} / {}",
            thousands(v.logins.recoveries_attempted),
            thousands(v.logins.recoveries_succeeded)
        )
    });
    row("result codes", &codes);
    row("time to recover", &recovery);
    row("server load", &load);
    if r.runs.iter().any(|v| v.storm.is_some()) {
        row("storm", &|v| storm(v).unwrap_or_else(|| "-".into()));
    }
    let (peak, end) = over_seeds(r);
    row(&format!("live sessions peak{peak}"), &|v| {
        thousands(v.live_sessions_peak)
    });
    row(
        &format!("orphaned sessions peak{peak} / at end{end}"),
        &|v| {
            format!(
                "{} / {}",
                thousands(v.orphan_sessions_peak),
                thousands(v.orphan_sessions_end)
            )
        },
    );
    row("sessions created / recovered", &|v| {
        format!(
            "{} / {}",
            thousands(v.sessions.created),
            thousands(v.sessions.recovered)
        )
    });
    row(
        "sessions ended: logout / expired / replaced / server restart",
        &|v| {
            let s = &v.sessions;
            format!(
                "{} / {} / {} / {}",
                thousands(s.ended_logout),
                thousands(s.ended_expired),
                thousands(s.ended_replaced),
                thousands(s.ended_restart)
            )
        },
    );
    row("crashes / messages lost", &|v| {
        format!(
            "{} / {}",
            thousands(v.faults.crashes),
            thousands(v.faults.lost_messages)
        )
    });
    row("session availability", &|v| pct_ppm(v.availability_ppm));
    row("witnesses reached", &|v| v.witnesses.join(", "));
    row("digest", &|v| format!("`{}`", v.digest));
    if !r.comparison.is_empty() {
        let _ = writeln!(o, "\n## Paired comparison\n");
        let _ = writeln!(
            o,
            "The variants ran on the same seeds, so every device crashed at the same times and drew the same \
             latencies until their message counts diverged; differences are the protocol's.\n"
        );
        for c in &r.comparison {
            let _ = writeln!(o, "### {} vs {}\n", c.variant, c.baseline);
            let _ = writeln!(
                o,
                "| | {} | {} | difference |\n|---|---:|---:|---:|",
                c.baseline, c.variant
            );
            for (name, p, missing) in paired_rows(r, c) {
                let _ = writeln!(
                    o,
                    "| {name} | {} | {} | {} |",
                    paired_cell(p.baseline, missing, false),
                    paired_cell(p.variant, missing, false),
                    paired_cell(p.diff, missing, true)
                );
            }
            let _ = writeln!(o, "\nSame crashes in both: {}.", c.same_crashes);
            if c.trapped_devices.diff.is_some() {
                let _ = writeln!(
                    o,
                    "Trapped in both: {}; only with {}: {}; only with {}: {}{}.",
                    c.trapped_in_both,
                    c.baseline,
                    c.trapped_only_baseline,
                    c.variant,
                    c.trapped_only_variant,
                    if c.trapped_overlap_exact {
                        ""
                    } else {
                        " (counted over the first 10,000 trapped ids of each run)"
                    }
                );
            }
            if let Some(line) = reentry_line(c) {
                let _ = writeln!(o, "{}.", capitalize(&line));
            }
            o.push('\n');
            for n in paired_notes(r, c) {
                let _ = writeln!(o, "{n}.\n");
            }
        }
    }
    let stuck: Vec<&VariantReport> = r.runs.iter().filter(|v| !v.stuck.is_empty()).collect();
    if !stuck.is_empty() {
        let _ = writeln!(o, "\n## Devices without a session\n");
        let _ = writeln!(o, "Devices that wanted a session and held none at the end of the liveness phase (no faults for its whole length): **trapped** when no sequence of protocol steps leads them back to a session (the model checker's deadlock, asked of the run's final state), **slow** otherwise. Replay a run and trace its first trapped (else slow) device with the command given.\n");
        for v in stuck {
            for s in &v.stuck {
                let _ = writeln!(
                    o,
                    "- **{}**, seed {}: {} trapped (e.g. {}), {} slow (e.g. {})\n  `{}`",
                    v.variant,
                    s.seed,
                    thousands(s.trapped),
                    ids(&s.first_trapped_ids),
                    thousands(s.slow),
                    ids(&s.first_slow_ids),
                    s.replay
                );
            }
        }
    }
    let violated: Vec<&VariantReport> =
        r.runs.iter().filter(|v| !v.violations.is_empty()).collect();
    if !violated.is_empty() {
        let _ = writeln!(o, "\n## Properties violated\n");
        let _ = writeln!(o, "Safety invariants stop a run unless the variant's `[expect]` says `violated`; conformance monitors (which message a side sends, what it stores) are counted. The same predicates as the model checker (`imps_model::props`).\n");
        let _ = writeln!(o, "| variant | property | kind | events | first (seed, event, time, device) | replay |\n|---|---|---|---:|---|---|");
        for v in violated {
            for x in &v.violations {
                let kind = match (x.invariant, x.expected) {
                    (true, false) => "invariant",
                    (true, true) => "invariant (expected)",
                    (false, false) => "conformance",
                    (false, true) => "conformance (expected)",
                };
                let _ = writeln!(
                    o,
                    "| {} | `{}` | {kind} | {} | {}, #{}, {}, dev{} | `{}` |",
                    v.variant,
                    x.property,
                    thousands(x.count),
                    x.first_seed,
                    x.first_event,
                    ms(x.first_time_ms),
                    x.first_device,
                    x.replay
                );
            }
            for (seed, p) in &v.stopped {
                let _ = writeln!(
                    o,
                    "\n**{} seed {seed} stopped** at the violation of `{p}`.",
                    v.variant
                );
            }
        }
    }
    if !plots.is_empty() {
        let _ = writeln!(o, "\n## Plots\n");
        for (file, caption) in plots {
            let _ = writeln!(o, "![{caption}]({file})\n");
        }
    }
    let _ = writeln!(o, "\n## Scenario `{}`\n", r.sweep.scenario_name);
    let _ = writeln!(o, "| knob | value | meaning |\n|---|---|---|");
    let table = toml::Table::try_from(&r.sweep.scenario).unwrap_or_default();
    for k in SCENARIO_KNOBS {
        let key = &k.key["scenario.".len()..];
        let value = table.get(key).map(|v| v.to_string()).unwrap_or_default();
        let _ = writeln!(
            o,
            "| `{}` | `{}` | {} |",
            k.key,
            value.trim_matches('"'),
            k.meaning
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(pct_ppm(995_321), "99.5321 %");
        assert_eq!(ms(250), "250 ms");
        assert_eq!(ms(61_500), "61.5 s");
    }
}
