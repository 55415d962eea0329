//! `imps simulate` and `imps merge`: run the simulator, sweep seeds, shard sweeps, merge
//! shards, and write the reports.
//!
//! Every run prints its seed and configuration hash first (on stdout for text, on stderr when
//! stdout carries JSON). Bad input (a scenario or variant that does not parse, an unknown knob,
//! an impossible bound, a malformed flag) is an error naming the file or flag, the place and
//! what was expected, and exits with 2 before anything is written. A run that finds trapped
//! devices, is stopped by a safety violation, or violates a property the variant does not
//! expect exits with 1; slow devices (without a session at the end, not trapped) do not.

use crate::cli::flags;
use crate::cli::shard_file::{ShardFile, ShardFileError};
use crate::engine::partition;
use crate::engine::plot;
use crate::engine::report;
use crate::engine::result::RunResult;
use crate::engine::scenario::{
    env_knob_in_simulator, resolve_scenario, scenarios_dir, Dur, Scenario, MAX_DEVICES, MAX_SEED,
};
use crate::engine::sim::{self, Progress, RunSpec, SimError};
use crate::engine::sweep::{
    aggregate, collect, parse_seeds, Aggregator, MergeError, Report, Shard, SweepId, UnitRecord,
};
use crate::engine::trace::{self as trace_render, TraceOf};
use crate::output::{note, write_atomic};
use clap::ValueEnum;
use imps_model::config::{knob_values, Config};
use imps_model::variant::{resolve_variant, variants_dir, Variant};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Output format on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A terminal summary.
    Text,
    /// One JSON object.
    Json,
}

/// `imps simulate`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// A variant: a name under specs/variants or a path. Repeat to compare variants on
    /// identical device behaviour (the first is the baseline). Default: post-cr.
    #[arg(long = "variant", value_name = "V")]
    pub variants: Vec<String>,
    /// The scenario: a name under specs/scenarios or a path.
    #[arg(long, value_name = "NAME|PATH", default_value = "default")]
    pub scenario: String,
    /// Devices (sets scenario.devices).
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = flags::whole::<u32>("a number of devices", 1, u64::from(MAX_DEVICES)))]
    pub devices: Option<u32>,
    /// Simulated time of the faulty phase, e.g. 90s, 30m, 1h (sets scenario.duration).
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true, value_parser = parse_duration)]
    pub duration: Option<Dur>,
    /// The seed (default: scenario.seed), 0 to 2^63 - 1.
    #[arg(long, value_name = "N", conflicts_with = "seeds", allow_negative_numbers = true,
          value_parser = flags::whole::<u64>("a seed", 0, MAX_SEED))]
    pub seed: Option<u64>,
    /// Override a knob: scenario.KNOB=VALUE for the scenario, server.KNOB=VALUE or
    /// client.KNOB=VALUE for every variant of the run.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Output on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write report.md and SVG plots (and device traces) into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Record this device's messages and write device-ID.mmd (Mermaid) and device-ID.xml
    /// (CSP 1.3) into --out DIR, or the current directory. May be repeated.
    #[arg(long = "trace-device", value_name = "ID", allow_negative_numbers = true,
          value_parser = flags::whole::<u32>("a device number", 0, u64::from(MAX_DEVICES) - 1))]
    pub trace_devices: Vec<u32>,
    /// Write the traced devices (--trace-device; every device when none is given) as a
    /// validation log to FILE: JSON Lines of CSP 1.3 messages and device events, in the order
    /// they went on the wire, which `imps validate` reads. Single runs only.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Run every unit twice and check that the two runs are identical.
    #[arg(long)]
    pub check_determinism: bool,
    /// Sweep over the seeds A..B (B excluded) or A..=B.
    #[arg(long, value_name = "A..B", allow_hyphen_values = true, value_parser = parse_seed_range)]
    pub seeds: Option<SeedRange>,
    /// Run only shard K of N (0-based K) of the (variant, seed) units and write their results
    /// as JSON Lines (stdout, or DIR/shard-K-of-N.jsonl with --out); combine with `imps merge`.
    #[arg(long, value_name = "K/N", allow_hyphen_values = true)]
    pub shard: Option<Shard>,
    /// Threads to run a run's partitions of users on (default: all cores). The results,
    /// digests included, are the same for every number of threads.
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = flags::whole::<usize>("a number of threads", 1, MAX_THREADS as u64))]
    pub threads: Option<usize>,
}

/// The most threads `--threads` takes.
pub const MAX_THREADS: usize = 1024;

/// The threads a run uses by default: every core the process may run on.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A seed range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange(pub [u64; 2]);

fn parse_seed_range(s: &str) -> Result<SeedRange, String> {
    parse_seeds(s).map(SeedRange)
}

fn parse_duration(s: &str) -> Result<Dur, String> {
    let d: Dur = s
        .parse()
        .map_err(|e: crate::engine::scenario::DurError| e.to_string())?;
    if d.ms() == 0 {
        return Err("expected a duration above 0".into());
    }
    Ok(d)
}

/// `imps merge`.
#[derive(clap::Args, Debug, Clone)]
pub struct MergeArgs {
    /// The JSON Lines files that `imps simulate --shard K/N` wrote.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write report.md and SVG plots into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Why `imps simulate` or `imps merge` could not run. Every case is bad input (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// A flag, file or knob is wrong; the message names it.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file could not be read, or is larger than its cap ([`imps_model::io::Cap`]).
    #[error("{0}")]
    Read(#[from] imps_model::io::ReadError),
    /// The engine hit one of its limits.
    #[error("{0}")]
    Limit(#[from] SimError),
}

impl From<ShardFileError> for SimulateError {
    fn from(e: ShardFileError) -> SimulateError {
        match e {
            ShardFileError::Io { path, source } => SimulateError::Io { path, source },
            foreign @ ShardFileError::Foreign { .. } => input(foreign.to_string()),
        }
    }
}

fn input(msg: impl Into<String>) -> SimulateError {
    SimulateError::Input(msg.into())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SimulateError + '_ {
    move |source| SimulateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Everything resolved from the flags, before anything runs.
struct Plan {
    sweep: SweepId,
    variants: Vec<(String, Variant)>,
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The configuration hash: xxh3-64 of the resolved scenario (without its default seed) and
/// every variant's name and knobs.
fn config_hash(scenario: &Scenario, variants: &[(String, Variant)]) -> String {
    let mut text = String::new();
    let hashed = Scenario {
        seed: 0,
        ..scenario.clone()
    };
    text.push_str(&toml::to_string(&hashed).expect("invariant: a scenario serializes to TOML"));
    for (name, variant) in variants {
        text.push_str(&format!("\n[variant {name}]\n"));
        for (k, v) in knob_values(&variant.cfg) {
            text.push_str(&format!("{k} = {v}\n"));
        }
        for (k, v) in &variant.expect {
            text.push_str(&format!("expect.{k} = {}\n", v.as_str()));
        }
    }
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

fn plan(args: &SimulateArgs) -> Result<Plan, SimulateError> {
    let (scenario_name, file) =
        resolve_scenario(&args.scenario, &scenarios_dir()).map_err(|e| input(e.to_string()))?;
    let mut sc = file.scenario;
    let mut variant_sets = Vec::new();
    let mut scenario_sets = Vec::new();
    for s in &args.sets {
        let section = s.split_once('.').map(|(sec, _)| sec.trim());
        match section {
            Some("scenario") => scenario_sets.push((format!("--set {s}"), s.clone())),
            Some("env") => {
                // A bad knob or value gets the variant's own error; a good one is refused.
                Config::default()
                    .apply_set(s)
                    .map_err(|e| input(e.to_string()))?;
                let key = s.split_once('=').map_or(s.as_str(), |(k, _)| k).trim();
                let knob = key.strip_prefix("env.").unwrap_or(key);
                let why = env_knob_in_simulator(knob).unwrap_or("it is not a simulator knob");
                return Err(input(format!(
                    "--set {s}: {key} is a model-checker bound that the simulator does not use: {why}"
                )));
            }
            Some("server" | "client" | "expect") => variant_sets.push(s.clone()),
            _ => {
                return Err(input(format!(
                    "--set {s}: expected SECTION.KNOB=VALUE with SECTION one of scenario (the scenario's knobs), \
                     server, client, expect (every variant's knobs)"
                )))
            }
        }
    }
    // Every override first, then one check of the final scenario.
    if let Some(n) = args.devices {
        scenario_sets.push((format!("--devices {n}"), format!("scenario.devices={n}")));
    }
    if let Some(d) = args.duration {
        scenario_sets.push((
            format!("--duration {d}"),
            format!("scenario.duration=\"{d}\""),
        ));
    }
    sc.apply_overrides(&scenario_sets)
        .map_err(|e| input(e.to_string()))?;
    sc.check_phases().map_err(input)?;
    let names: Vec<String> = if args.variants.is_empty() {
        vec!["post-cr".to_string()]
    } else {
        args.variants.clone()
    };
    let mut variants: Vec<(String, Variant)> = Vec::new();
    for n in &names {
        let (name, mut variant) = resolve_variant(n, &variants_dir())
            .map_err(|e| input(format!("--variant {n}: {e}")))?;
        variant
            .apply_sets(&variant_sets)
            .map_err(|e| input(format!("--variant {n}: {e}")))?;
        if variants.iter().any(|(x, _)| *x == name) {
            return Err(input(format!(
                "--variant {n}: variant `{name}` is given twice"
            )));
        }
        sc.check_variant(&name, &variant.cfg).map_err(input)?;
        variants.push((name, variant));
    }
    for &d in &args.trace_devices {
        if d >= sc.devices {
            return Err(input(format!(
                "--trace-device {d}: no such device; the run has {} devices, numbered 0..{}",
                sc.devices, sc.devices
            )));
        }
    }
    let seeds = match (args.seeds, args.seed) {
        (Some(SeedRange(r)), _) => r,
        // At most MAX_SEED (the flag's parser, the scenario's validation): + 1 fits.
        (None, Some(s)) => [s, s + 1],
        (None, None) => [sc.seed, sc.seed + 1],
    };
    if let (Some(shard), false) = (args.shard, args.trace_devices.is_empty()) {
        return Err(input(format!(
            "--shard {shard}: --trace-device is for single runs; replay the unit without --shard"
        )));
    }
    let mut replay_args = format!(
        "--scenario {} --devices {} --duration {}",
        shell_quote(&args.scenario),
        sc.devices,
        sc.duration
    );
    for s in &args.sets {
        if s.trim_start().starts_with("scenario.devices=")
            || s.trim_start().starts_with("scenario.duration=")
        {
            continue;
        }
        replay_args.push_str(&format!(" --set {}", shell_quote(s)));
    }
    let sweep = SweepId {
        config_hash: config_hash(&sc, &variants),
        scenario_name,
        scenario: sc,
        variants: variants.iter().map(|(n, _)| n.clone()).collect(),
        seeds,
        replay_args,
    };
    Ok(Plan { sweep, variants })
}

fn progress_bar(label: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::with_draw_target(
        Some(1000),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:40}] {percent:>3}% {msg} ({elapsed})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(imps_model::io::escape_controls(label).into_owned());
    Some(pb)
}

/// Run one unit; with `check`, twice, comparing the results.
#[allow(clippy::type_complexity)]
fn run_unit(
    plan: &Plan,
    v: usize,
    seed: u64,
    trace_devices: &[u32],
    check: bool,
    threads: usize,
) -> Result<
    (
        RunResult,
        Vec<sim::TraceEntry>,
        Vec<crate::engine::vlog::LogEntry>,
        Option<String>,
    ),
    SimulateError,
> {
    let (name, variant) = &plan.variants[v];
    let spec = RunSpec {
        threads,
        variant: name,
        cfg: &variant.cfg,
        expected: variant.expected_violated(),
        scenario: &plan.sweep.scenario,
        seed,
        trace_devices,
    };
    let pb = progress_bar(&format!("{name} seed {seed}"));
    let mut tick = |p: Progress| {
        if let Some(pb) = &pb {
            pb.set_position(p.now_ms * 1000 / p.end_ms.max(1));
            pb.set_message(format!(
                "{} events, t={}",
                report::thousands(p.events),
                Dur(p.now_ms / 1000 * 1000)
            ));
        }
    };
    let started = Instant::now();
    let out = sim::run(&spec, &mut tick)?;
    let mut result = out.result;
    result.wall_ms = started.elapsed().as_millis() as u64;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let mut mismatch = None;
    if check {
        let again = sim::run(&spec, &mut |_| {})?.result;
        let same = RunResult {
            wall_ms: result.wall_ms,
            ..again.clone()
        } == result;
        if !same {
            mismatch = Some(format!(
                "{name} seed {seed}: two runs differ (digests {} and {}): the simulator is not deterministic",
                result.digest, again.digest
            ));
        }
    }
    Ok((result, out.trace, out.log, mismatch))
}

/// Whether a result should make the command exit with 1: a trapped device, a run stopped by a
/// safety violation, or a property violated that the variant does not expect. Slow devices
/// (without a session at the end, but not trapped) are reported and do not fail the run.
fn failing(r: &RunResult) -> bool {
    r.trapped_devices > 0 || r.stopped() || r.violations.iter().any(|v| !v.expected)
}

fn report_failing(r: &Report) -> bool {
    r.runs.iter().any(|v| {
        v.trapped_devices.unwrap_or(0) > 0
            || !v.stopped.is_empty()
            || v.violations.iter().any(|x| !x.expected)
    })
}

fn write_traces(
    plan: &Plan,
    v: usize,
    seed: u64,
    devices: &[u32],
    entries: &[sim::TraceEntry],
    dir: &Path,
    single: bool,
) -> Result<Vec<PathBuf>, SimulateError> {
    let name = &plan.variants[v].0;
    let mut written = Vec::new();
    for &d in devices {
        let of = TraceOf {
            variant: name,
            seed,
            device: d,
            user: d / plan.sweep.scenario.devices_per_user,
        };
        let stem = if single {
            format!("device-{d}")
        } else {
            format!("device-{d}-{name}-seed{seed}")
        };
        for (ext, text) in [
            ("mmd", trace_render::mermaid(of, entries)),
            ("xml", trace_render::xml(of, entries)),
        ] {
            let path = dir.join(format!("{stem}.{ext}"));
            write_atomic(&path, text.as_bytes()).map_err(io(&path))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Write report.md and the plots into `dir`.
fn write_report_files(r: &Report, dir: &Path) -> Result<(), SimulateError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut plots: Vec<(String, &str, String)> = vec![
        (
            "sessions.svg".into(),
            "Live and orphaned sessions over time",
            plot::sessions(r).map_err(input)?,
        ),
        (
            "time-to-recover.svg".into(),
            "Time to recover a session",
            plot::time_to_recover(r).map_err(input)?,
        ),
        (
            "load.svg".into(),
            "Requests per second at the server, by primitive",
            plot::load(r).map_err(input)?,
        ),
    ];
    if r.runs.len() > 1 {
        plots.push((
            "comparison.svg".into(),
            "The variants side by side",
            plot::comparison(r).map_err(input)?,
        ));
    }
    for (file, _, svg) in &plots {
        let path = dir.join(file);
        write_atomic(&path, svg.as_bytes()).map_err(io(&path))?;
    }
    let captions: Vec<(&str, &str)> = plots.iter().map(|(f, c, _)| (f.as_str(), *c)).collect();
    let md = report::markdown(r, &captions);
    let path = dir.join("report.md");
    write_atomic(&path, md.as_bytes()).map_err(io(&path))?;
    Ok(())
}

fn emit(
    r: &Report,
    format: Format,
    out_dir: Option<&Path>,
    out: &mut dyn Write,
) -> Result<ExitCode, SimulateError> {
    if let Some(dir) = out_dir {
        write_report_files(r, dir)?;
    }
    let mut text = match format {
        Format::Text => report::text(r),
        Format::Json => report::json(r),
    };
    if let (Some(dir), Format::Text) = (out_dir, format) {
        text.push_str(&format!("report: {}\n", dir.join("report.md").display()));
    }
    out.write_all(text.as_bytes()).map_err(stdout_err)?;
    Ok(if report_failing(r) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn stdout_err(source: std::io::Error) -> SimulateError {
    SimulateError::Io {
        path: PathBuf::from("<stdout>"),
        source,
    }
}

/// The first line of a run: on stdout when stdout carries text, else on stderr. Flushed, so
/// that it shows before a long run.
fn header(to_stdout: bool, line: &str, out: &mut dyn Write) -> Result<(), SimulateError> {
    if to_stdout {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(stdout_err)
    } else {
        note(line);
        Ok(())
    }
}

/// `imps simulate`, writing to `out` (stdout).
pub fn run(args: &SimulateArgs, out: &mut dyn Write) -> Result<ExitCode, SimulateError> {
    let plan = plan(args)?;
    let sweep = &plan.sweep;
    if let (Some(path), false) = (&args.log, sweep.units() == 1) {
        return Err(input(format!(
            "--log {}: a validation log is of one run: give one --variant and one --seed",
            path.display()
        )));
    }
    let traced: Vec<u32> = match (&args.log, args.trace_devices.is_empty()) {
        (Some(_), true) => (0..sweep.scenario.devices).collect(),
        _ => args.trace_devices.clone(),
    };
    let [s0, s1] = sweep.seeds;
    let seeds_text = if s1 == s0 + 1 {
        format!("seed {s0}")
    } else {
        format!("seeds {s0}..{s1}")
    };
    let text_out = args.format == Format::Text && args.shard.is_none();
    header(
        text_out,
        &format!(
            "imps simulate: {seeds_text}, config {} (scenario {}, {} devices, {}; variants {})",
            sweep.config_hash,
            sweep.scenario_name,
            sweep.scenario.devices,
            sweep.scenario.duration,
            sweep.variants.join(", ")
        ),
        out,
    )?;
    let threads = args.threads.unwrap_or_else(default_threads);
    for (name, variant) in &plan.variants {
        let (sc, cfg) = (&sweep.scenario, &variant.cfg);
        if let Some(why) = partition::coupling(cfg) {
            note(&format!("imps simulate: variant {name}: {why}"));
        } else {
            let parts =
                partition::partitions(sc.devices, sc.devices_per_user, sc.partition_users, cfg);
            if parts.len() < threads {
                note(&format!(
                    "imps simulate: {threads} threads asked, but variant {name}'s runs have {} partition{} \
                     (scenario.partition_users = {} users each): using {}",
                    parts.len(),
                    if parts.len() == 1 { "" } else { "s" },
                    sc.partition_users,
                    parts.len()
                ));
            }
        }
    }
    let single = sweep.units() == 1;
    let trace_dir = args.out.clone().unwrap_or_else(|| PathBuf::from("."));
    if !args.trace_devices.is_empty() || args.out.is_some() {
        std::fs::create_dir_all(&trace_dir).map_err(io(&trace_dir))?;
    }
    // A shard with --out continues its file: the units an interrupted run finished are kept.
    let mut shard_file = match (args.shard, &args.out) {
        (Some(shard), Some(dir)) => Some(ShardFile::open(dir, shard, sweep, &failing)?),
        _ => None,
    };
    let kept = shard_file.as_ref().map_or(0, |f| f.done().len());
    if let (Some(f), true) = (&shard_file, kept > 0) {
        note(&format!(
            "imps simulate: {} already holds {kept} of this shard's units: they are kept, the others run",
            f.path().display()
        ));
    }
    // Units are added up as they finish, and a shard's lines are written as they finish:
    // nothing is kept per unit, so a sweep's memory does not grow with its seeds.
    let mut aggregator = Aggregator::new(plan.sweep.clone());
    let (mut shard_units, mut shard_failed) = shard_file.as_ref().map_or((0, false), |f| {
        (f.done().len(), f.done().values().any(|b| *b))
    });
    let mut mismatches = Vec::new();
    for i in 0..sweep.units() {
        if let Some(shard) = args.shard {
            if !shard.owns(i) {
                continue;
            }
        }
        if shard_file
            .as_ref()
            .is_some_and(|f| f.done().contains_key(&i))
        {
            continue;
        }
        let (_, seed) = sweep.unit(i);
        let v = (i % sweep.variants.len() as u64) as usize;
        let (result, trace, log, mismatch) =
            run_unit(&plan, v, seed, &traced, args.check_determinism, threads)?;
        if let Some(path) = &args.log {
            let text = crate::engine::vlog::jsonl(&log, sweep.scenario.devices_per_user);
            crate::output::write_atomic(path, text.as_bytes()).map_err(io(path))?;
            eprintln!("log: {}", path.display());
        }
        if !args.trace_devices.is_empty() {
            let files = write_traces(
                &plan,
                v,
                seed,
                &args.trace_devices,
                &trace,
                &trace_dir,
                single && sweep.variants.len() == 1,
            )?;
            for f in files {
                note(&format!("trace: {}", f.display()));
            }
        }
        mismatches.extend(mismatch);
        if args.shard.is_some() {
            shard_units += 1;
            shard_failed |= failing(&result);
            let rec = UnitRecord {
                sweep: sweep.clone(),
                unit: i,
                result,
            };
            // Each unit's line is written as soon as the unit is done.
            match &mut shard_file {
                Some(f) => f.append(&rec)?,
                None => {
                    let line = serde_json::to_string(&rec).expect("invariant: records serialize");
                    writeln!(out, "{line}")
                        .and_then(|()| out.flush())
                        .map_err(stdout_err)?;
                }
            }
        } else {
            aggregator.push(&result).map_err(|e| input(e.to_string()))?;
        }
    }
    for m in &mismatches {
        note(&format!("imps simulate: check-determinism: {m}"));
    }
    if args.check_determinism && mismatches.is_empty() {
        note("imps simulate: check-determinism: every run gave the same events twice (digests match)");
    }
    if let Some(shard) = args.shard {
        if let Some(f) = &shard_file {
            note(&format!(
                "imps simulate: shard {shard}: {} units -> {}",
                shard_units,
                f.path().display()
            ));
        }
        let bad = shard_failed || !mismatches.is_empty();
        return Ok(if bad {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    let report = aggregator.finish().map_err(|e| input(e.to_string()))?;
    let code = emit(&report, args.format, args.out.as_deref(), out)?;
    if !mismatches.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(code)
}

/// `imps merge`, writing to `out` (stdout).
pub fn merge(args: &MergeArgs, out: &mut dyn Write) -> Result<ExitCode, SimulateError> {
    let mut records = Vec::new();
    for path in &args.files {
        use imps_model::io::{capped_lines, Cap};
        for line in capped_lines(path, Cap::SHARD_LINE, Cap::SHARD_FILE)? {
            let (n, line) = line?;
            if line.trim().is_empty() {
                continue;
            }
            let origin = format!("{}:{n}", path.display());
            let rec: UnitRecord = serde_json::from_str(&line).map_err(|e| {
                // A shard writes a line per unit as it finishes: an interrupted one may end
                // in half a line, which a rerun of the shard drops and completes.
                let cut = e.is_eof();
                input(format!(
                    "{origin}: not a unit record of `imps simulate --shard`: {e}{}",
                    if cut {
                        " (the line is cut short: rerun its shard, which completes the file)"
                    } else {
                        ""
                    }
                ))
            })?;
            records.push((origin, rec));
        }
    }
    // Where each (variant, seed) came from, to name the file of a record whose figures
    // overflow a sum.
    let places: Vec<(String, String, u64)> = records
        .iter()
        .map(|(origin, r)| (origin.clone(), r.result.variant.clone(), r.result.seed))
        .collect();
    let (sweep, results) = collect(records).map_err(|e| input(e.to_string()))?;
    let [s0, s1] = sweep.seeds;
    let units = sweep.units();
    let report = aggregate(sweep.clone(), &results).map_err(|e| {
        let place = match &e {
            MergeError::Overflow { variant, seed, .. } => places
                .iter()
                .find(|(_, v, s)| v == variant && s == seed)
                .map(|(origin, _, _)| format!("{origin}: ")),
            _ => None,
        };
        input(format!("{}{e}", place.unwrap_or_default()))
    })?;
    header(
        args.format == Format::Text,
        &format!(
            "imps merge: seeds {s0}..{s1}, config {} (scenario {}, {} devices, {}; variants {}); {} units from {} files",
            sweep.config_hash,
            sweep.scenario_name,
            sweep.scenario.devices,
            sweep.scenario.duration,
            sweep.variants.join(", "),
            units,
            args.files.len()
        ),
        out,
    )?;
    emit(&report, args.format, args.out.as_deref(), out)
}
