//! Benchmark of trace validation on a log the simulator writes: 1,000 devices of the default
//! scenario (0.2 crashes per device-hour, 1 message in 10,000 lost) for 10 simulated
//! minutes, post-cr, seed 1, validated against post-cr twice: as the devices' own logs (with
//! their crashes, restarts and losses as events) and as a proxy sees it (events removed: the
//! validator guesses them). Parsing, decoding and validation are all measured.
//!
//! `cargo bench -p imps-benches --bench validate`. Throughput is in log lines per second.
//! (`cargo test`, which runs each bench once to see that it works, uses 100 devices.)
//! The 100,000-message figure of the README comes from the command shown there.

use criterion::{criterion_main, Criterion, Throughput};
use imps_model::validate::log::parse_jsonl;
use imps_model::validate::obs::prepare;
use imps_model::validate::{validate, Options, Validation};
use imps_model::variant::{resolve_variant, variants_dir};
use imps_sim::engine::scenario::{resolve_scenario, scenarios_dir, Dur, Scenario};
use imps_sim::engine::sim::{run, RunSpec};
use imps_sim::engine::vlog;
use std::hint::black_box;

fn log(devices: u32, minutes: u64) -> String {
    let (_, f) =
        resolve_scenario("default", &scenarios_dir()).expect("the default scenario parses");
    let sc = Scenario {
        devices,
        duration: Dur(minutes * 60_000),
        ..f.scenario
    };
    let variant_file = resolve_variant("post-cr", &variants_dir())
        .expect("post-cr parses")
        .1;
    let cfg = variant_file.cfg.clone();
    let all: Vec<u32> = (0..devices).collect();
    let spec = RunSpec {
        threads: 1,
        variant: "post-cr",
        cfg: &cfg,
        expected: variant_file.expected_violated(),
        scenario: &sc,
        seed: 1,
        trace_devices: &all,
    };
    let out = run(&spec, &mut |_| {}).expect("the run completes");
    vlog::jsonl(&out.log, sc.devices_per_user)
}

/// Validate the log text from scratch: parse, decode, validate; `None` when it conforms.
fn validate_text(text: &str, v: &Validation) -> Option<usize> {
    let p = prepare(&parse_jsonl("bench.jsonl", text).expect("the log parses"))
        .expect("the log decodes");
    validate(&p, v, Options::default())
        .expect("no bound is passed")
        .departure
        .map(|d| d.line)
}

/// Every benchmark of this file (what `criterion_group!` would generate, with a doc comment).
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    // `cargo test` runs benches once, unoptimized, to see that they work: a tenth of the
    // devices is enough for that and keeps the test suite fast.
    let measuring = std::env::args().any(|a| a == "--bench");
    let devices = if measuring { 1_000 } else { 100 };
    let with_events = log(devices, 10);
    let proxy: String = with_events
        .lines()
        .filter(|l| !l.contains("\"event\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let variant_file = resolve_variant("post-cr", &variants_dir())
        .expect("post-cr parses")
        .1;
    let cfg = variant_file.cfg.clone();
    let v = Validation::new(&cfg);
    let mut g = c.benchmark_group("validate");
    g.sample_size(10);
    for (name, text) in [("device logs", &with_events), ("proxy capture", &proxy)] {
        assert_eq!(
            validate_text(text, &v),
            None,
            "the run conforms to its variant"
        );
        g.throughput(Throughput::Elements(text.lines().count() as u64));
        g.bench_function(
            format!("post-cr run of {devices} devices, 10 min, {name}"),
            |b| b.iter(|| black_box(validate_text(text, &v))),
        );
    }
    g.finish();
}

criterion_main!(benches);
