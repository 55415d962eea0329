//! `imps`: validate the IMPS CSP 1.3 session-recovery CR with a model checker and a simulator.

use clap::{Parser, Subcommand};
use imps_model::config::{resolve_variant, variants_dir, Config};
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
    Check(imps_sim::check_cmd::CheckArgs),
    /// Check every combination of knob values (--axis) and print a Markdown table of verdicts.
    Sweep(imps_sim::check_cmd::SweepArgs),
    /// Serve stateright's Explorer for a variant on 127.0.0.1, to walk its state space in a browser.
    Explore {
        /// The variant (name or path).
        #[arg(long, default_value = "post-cr")]
        variant: String,
        /// Override a knob: section.knob=value.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// The port on 127.0.0.1.
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
    /// Simulate variants at scale (devices, crashes, losses, timers) with reproducible seeds.
    Simulate(imps_sim::simulate_cmd::SimulateArgs),
    /// Merge the JSON Lines of `imps simulate --shard K/N` runs into the sweep's report.
    Merge(imps_sim::simulate_cmd::MergeArgs),
    /// Validate CSP logs (JSON Lines or HAR) against a variant, or infer the settings consistent with them.
    Validate(imps_sim::validate_cmd::ValidateArgs),
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
    let (name, mut cfg) = resolve_variant(name, &variants_dir()).map_err(|e| e.to_string())?;
    for s in sets {
        cfg.apply_set(s).map_err(|e| e.to_string())?;
    }
    Ok((name, cfg))
}

fn explore(name: &str, cfg: Config, port: u16) -> Result<(), String> {
    use stateright::Model;
    if port == 0 {
        return Err("--port 0: expected a port from 1 to 65535 (the Explorer's address is printed, so it must be fixed)".into());
    }
    let addr = ("127.0.0.1", port);
    // stateright's server panics on a bind error: find out first, and say so clearly.
    std::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    eprintln!("imps explore: variant {name}, serving stateright's Explorer on http://127.0.0.1:{port}/ (Ctrl-C to stop)");
    let _checker = imps_model::checker::sr::CrModel { cfg }
        .checker()
        .serve(addr);
    // The Explorer runs on stateright's threads until the process is stopped.
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result: Result<(), String> = match cli.command {
        Command::Variants { show: None, set } if set.is_empty() => {
            imps_sim::variants_cmd::list(&variants_dir(), &mut out).map_err(|e| e.to_string())
        }
        Command::Variants { show, set } => {
            let name = show.unwrap_or_else(|| "post-cr".to_string());
            load(&name, &set).and_then(|(name, cfg)| {
                imps_sim::variants_cmd::show(&name, &cfg, &mut out).map_err(|e| e.to_string())
            })
        }
        Command::Check(args) => match imps_sim::check_cmd::run(&args, &mut out) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e.to_string()),
        },
        Command::Sweep(args) => match imps_sim::check_cmd::sweep(&args, &mut out) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e.to_string()),
        },
        Command::Explore { variant, set, port } => {
            load(&variant, &set).and_then(|(name, cfg)| explore(&name, cfg, port))
        }
        Command::Simulate(args) => match imps_sim::simulate_cmd::run(&args) {
            Ok(code) => return code,
            Err(e) => Err(e.to_string()),
        },
        Command::Merge(args) => match imps_sim::simulate_cmd::merge(&args) {
            Ok(code) => return code,
            Err(e) => Err(e.to_string()),
        },
        Command::Validate(args) => match imps_sim::validate_cmd::run(&args, &mut out) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e.to_string()),
        },
        Command::Decode { files } => {
            imps_sim::decode_cmd::decode_files(&files, &mut out).map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`imps variants | head`) is not an error of ours.
        Err(e) if e.contains("Broken pipe") => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imps: error: {e}");
            ExitCode::from(BAD_INPUT)
        }
    }
}
