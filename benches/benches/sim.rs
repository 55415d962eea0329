//! Benchmarks of the simulator on fixed seeds: the event queue alone, whole runs of the
//! protocol core (keep-alives, crashes, re-logins) at 10,000 devices, and the partitioned
//! engine at 100,000 devices on one thread and on every core.
//!
//! `cargo bench -p imps-benches --bench sim`. Throughput is reported in events per second.

use criterion::{criterion_main, BatchSize, Criterion, Throughput};
use imps_model::variant::{resolve_variant, variants_dir};
use imps_sim::engine::queue::{Event, Kind, RadixQueue};
use imps_sim::engine::scenario::{resolve_scenario, scenarios_dir, Dur, Scenario};
use imps_sim::engine::sim::{run, RunSpec};
use std::hint::black_box;

/// The queue alone, as the simulator uses it: a steady population of `live` events, each pop
/// followed by a push 1 ms to 100 s later (times from a fixed xorshift sequence).
fn queue(c: &mut Criterion) {
    let live = 1_000_000u64;
    let ops = 2_000_000u64;
    let mut g = c.benchmark_group("queue");
    g.throughput(Throughput::Elements(ops));
    g.sample_size(10);
    g.bench_function("radix heap, 1M live events, pop+push", |b| {
        b.iter_batched(
            || {
                let mut q = RadixQueue::new();
                let mut x = 0x9E37_79B9_7F4A_7C15u64;
                for s in 0..live {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    q.push(Event::new(x % 100_000, s, s as u32, Kind::ClientTimer, 0));
                }
                (q, x)
            },
            |(mut q, mut x)| {
                for seq in live..live + ops {
                    let e = q.pop().expect("the population stays");
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    q.push(Event::new(
                        e.time_ms() + 1 + x % 100_000,
                        seq,
                        e.device,
                        Kind::ClientTimer,
                        0,
                    ));
                }
                black_box(q.len())
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn scenario(devices: u32, minutes: u64) -> Scenario {
    let (_, f) =
        resolve_scenario("default", &scenarios_dir()).expect("the default scenario parses");
    Scenario {
        devices,
        duration: Dur(minutes * 60_000),
        ..f.scenario
    }
}

/// Whole runs: 10,000 devices for 10 simulated minutes (plus the liveness phase), seed 1.
fn whole_runs(c: &mut Criterion) {
    let sc = scenario(10_000, 10);
    let mut g = c.benchmark_group("simulate");
    g.sample_size(10);
    for variant in ["post-cr", "pre-cr"] {
        let variant_file = resolve_variant(variant, &variants_dir())
            .expect("the variant parses")
            .1;
        let cfg = variant_file.cfg.clone();
        let spec = RunSpec {
            threads: 1,
            variant,
            cfg: &cfg,
            expected: variant_file.expected_violated(),
            scenario: &sc,
            seed: 1,
            trace_devices: &[],
        };
        let events = run(&spec, &mut |_| {})
            .expect("the run completes")
            .result
            .events;
        g.throughput(Throughput::Elements(events));
        g.bench_function(format!("{variant}, 10k devices, 10 min, seed 1"), |b| {
            b.iter(|| {
                black_box(
                    run(&spec, &mut |_| {})
                        .expect("the run completes")
                        .result
                        .events,
                )
            })
        });
    }
    g.finish();
}

/// The partitioned engine: 100,000 devices (49 partitions of 1,024 users) for 10 simulated
/// minutes, post-cr, seed 1, on one thread and on every core; the digest is the same.
fn partitioned(c: &mut Criterion) {
    let sc = scenario(100_000, 10);
    let variant_file = resolve_variant("post-cr", &variants_dir())
        .expect("the variant parses")
        .1;
    let cfg = variant_file.cfg.clone();
    let mut g = c.benchmark_group("simulate partitioned");
    g.sample_size(10);
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut digests = Vec::new();
    for threads in [1, all] {
        let spec = RunSpec {
            threads,
            variant: "post-cr",
            cfg: &cfg,
            expected: variant_file.expected_violated(),
            scenario: &sc,
            seed: 1,
            trace_devices: &[],
        };
        let r = run(&spec, &mut |_| {}).expect("the run completes").result;
        digests.push(r.digest.clone());
        g.throughput(Throughput::Elements(r.events));
        g.bench_function(
            format!("post-cr, 100k devices, 10 min, seed 1, {threads} thread(s)"),
            |b| {
                b.iter(|| {
                    black_box(
                        run(&spec, &mut |_| {})
                            .expect("the run completes")
                            .result
                            .events,
                    )
                })
            },
        );
    }
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "the digest does not depend on the threads: {digests:?}"
    );
    g.finish();
}

/// Every benchmark of this file (what `criterion_group!` would generate, with a doc comment).
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    queue(&mut c);
    whole_runs(&mut c);
    partitioned(&mut c);
}

criterion_main!(benches);
