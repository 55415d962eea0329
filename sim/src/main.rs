//! `imps`: validate the IMPS CSP 1.3 session-recovery CR with a model checker and a simulator.

use clap::{Parser, Subcommand};
use imps_model::config::Config;
use imps_model::variant::{resolve_variant, variants_dir};
use imps_sim::output::{note, Sink, Stdout};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "imps",
    version,
    about = "Validate the IMPS CSP 1.3 session-recovery change request: model checker, simulator, CSP XML codec"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the named variants, and every knob with its default and meaning.
    Variants {
        /// Print this variant's resolved knobs (name or path) instead of the listing.
        #[arg(long)]
        show: Option<String>,
        /// Override a knob of the shown variant: section.knob=value.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Model-check variants: every property of the CR, variant by variant, with counterexamples.
    Check(imps_sim::cli::check::CheckArgs),
    /// Check every combination of knob values (--axis) and print a Markdown table of verdicts.
    Sweep(imps_sim::cli::check::SweepArgs),
    /// Compare two variants within the same bounds: the verdicts that change, where their
    /// counterexamples part, the behaviour only one side has, the knobs that differ.
    Diff(imps_sim::cli::diff::DiffArgs),
    /// Search the knobs the CR leaves open for the smallest changes under which the violated
    /// properties hold, without breaking any other.
    Repair(imps_sim::cli::repair::RepairArgs),
    /// Serve stateright's Explorer for a variant on 127.0.0.1, to walk its state space in a browser.
    Explore {
        /// The variant (name or path).
        #[arg(long, default_value = "post-cr")]
        variant: String,
        /// Override a knob: section.knob=value.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// The port on 127.0.0.1.
        #[arg(long, default_value_t = 3000, allow_negative_numbers = true,
              value_parser = imps_sim::cli::flags::whole::<u16>("a port", 1, 65535))]
        port: u16,
    },
    /// Simulate variants at scale (devices, crashes, losses, timers) with reproducible seeds.
    Simulate(imps_sim::cli::simulate::SimulateArgs),
    /// Merge the JSON Lines of `imps simulate --shard K/N` runs into the sweep's report.
    Merge(imps_sim::cli::simulate::MergeArgs),
    /// Validate CSP logs (JSON Lines or HAR) against a variant, or infer the settings consistent with them.
    Validate(imps_sim::cli::validate::ValidateArgs),
    /// Decode CSP XML messages (CSP 1.1, 1.2 or 1.3) and print one JSON object per message.
    Decode {
        /// The files, one WV-CSP-Message each.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Exit code for bad input (files, flags, variants).
const BAD_INPUT: u8 = 2;

fn load(name: &str, sets: &[String]) -> Result<(String, Config), String> {
    let (name, mut variant) = resolve_variant(name, &variants_dir()).map_err(|e| e.to_string())?;
    variant.apply_sets(sets).map_err(|e| e.to_string())?;
    Ok((name, variant.cfg))
}

fn explore(name: &str, cfg: Config, port: u16, out: &mut dyn Write) -> Result<(), String> {
    use stateright::Model;
    // --port is 1 to 65535 (its value parser): a fixed address, printed below.
    let addr = ("127.0.0.1", port);
    // stateright's server panics on a bind error: find out first, and say so clearly.
    std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    // The banner is the command's output (the address to open); a stdout that cannot take it
    // stops the command before it serves.
    let name = imps_model::io::escape_controls(name);
    writeln!(out, "imps explore: variant {name}, serving stateright's Explorer on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())?;
    let _checker = imps_model::checker::sr::CrModel { cfg }
        .checker()
        .serve(addr);
    // The Explorer runs on stateright's threads until the process is stopped.
    loop {
        std::thread::park();
    }
}

/// Run one command, writing its output to `out`; the exit code, or the error to report.
fn run(command: Command, out: &mut dyn Write) -> Result<ExitCode, String> {
    let code = |c: u8| Ok(ExitCode::from(c));
    match command {
        Command::Variants { show: None, set } if set.is_empty() => {
            imps_sim::cli::variants::list(&variants_dir(), out).map_err(|e| e.to_string())?;
        }
        Command::Variants { show, set } => {
            let name = show.unwrap_or_else(|| "post-cr".to_string());
            let (name, cfg) = load(&name, &set)?;
            imps_sim::cli::variants::show(&name, &cfg, out).map_err(|e| e.to_string())?;
        }
        Command::Check(args) => {
            return imps_sim::cli::check::run(&args, out).map_or_else(|e| Err(e.to_string()), code)
        }
        Command::Sweep(args) => {
            return imps_sim::cli::check::sweep(&args, out)
                .map_or_else(|e| Err(e.to_string()), code)
        }
        Command::Diff(args) => {
            return imps_sim::cli::diff::run(&args, out).map_or_else(|e| Err(e.to_string()), code)
        }
        Command::Repair(args) => {
            return imps_sim::cli::repair::run(&args, out).map_or_else(|e| Err(e.to_string()), code)
        }
        Command::Explore { variant, set, port } => {
            let (name, cfg) = load(&variant, &set)?;
            explore(&name, cfg, port, out)?;
        }
        Command::Simulate(args) => {
            return imps_sim::cli::simulate::run(&args, out).map_err(|e| e.to_string())
        }
        Command::Merge(args) => {
            return imps_sim::cli::simulate::merge(&args, out).map_err(|e| e.to_string())
        }
        Command::Validate(args) => {
            return imps_sim::cli::validate::run(&args, out)
                .map_or_else(|e| Err(e.to_string()), code)
        }
        Command::Decode { files } => {
            imps_sim::cli::decode::decode_files(&files, out).map_err(|e| e.to_string())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// clap's errors as every other bad input: one line, `imps: error: ...`, exit 2 (clap's own
/// rendering adds the usage and a hint over several lines). Help and version are printed as
/// clap prints them.
fn clap_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(BAD_INPUT));
    }
    note(&format!(
        "imps: error: {}",
        one_line(&e.render().to_string())
    ));
    ExitCode::from(BAD_INPUT)
}

/// clap's rendered error without its usage and hint, on one line: `error: the following
/// required arguments were not provided:\n  --axis <...>` becomes `the following required
/// arguments were not provided: --axis <...>`; the possible values follow after a space, a
/// tip after `; `.
fn one_line(rendered: &str) -> String {
    let mut line = String::new();
    for part in rendered.lines().map(str::trim) {
        if part.starts_with("Usage:") || part.starts_with("For more information") {
            break;
        }
        if part.is_empty() {
            continue;
        }
        if !line.is_empty() {
            let joined = line.ends_with(':') || part.starts_with('[');
            line.push_str(if joined { " " } else { "; " });
        }
        line.push_str(part.strip_prefix("error: ").unwrap_or(part));
    }
    line
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(&e),
    };
    if matches!(cli.command, Command::Check(_) | Command::Sweep(_)) {
        // The checker's exploration takes a sixth less time on huge pages; glibc reads the
        // switch at start-up only.
        imps_sim::hugepages::restart_with_huge_pages();
    }
    let mut out = Sink::new(std::io::stdout());
    let result = run(cli.command, &mut out);
    // A failed stdout is reported as such, whatever the command made of the error.
    match out.status() {
        Stdout::Written => {}
        // A closed pipe (`imps variants | head -1`) is not an error of ours.
        Stdout::Closed => return ExitCode::SUCCESS,
        Stdout::Failed(e) => {
            note(&format!("imps: error: <stdout>: {e}"));
            return ExitCode::from(BAD_INPUT);
        }
    }
    result.unwrap_or_else(|e| {
        note(&format!("imps: error: {e}"));
        ExitCode::from(BAD_INPUT)
    })
}
