//! criterion benchmarks of the model checker on two fixed configurations: the exploration
//! alone (states/s is the elements throughput) and the whole check with liveness.
//!
//! `cargo bench --bench checker`

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use imps_model::checker::{check, graph::explore, Options};
use imps_model::config::{resolve_variant, variants_dir, Config};

fn config(name: &str, sets: &[&str]) -> Config {
    let (_, mut cfg) = resolve_variant(name, &variants_dir()).expect("variant");
    for s in sets {
        cfg.apply_set(s).expect("knob");
    }
    cfg
}

/// Exploration and whole check, on each fixed configuration.
fn bench(c: &mut Criterion) {
    let configs = [
        (
            "post-cr 1x2x2",
            config(
                "post-cr",
                &[
                    "env.devices_per_user=2",
                    "env.max_crashes=2",
                    "client.client_id_pool=3",
                ],
            ),
        ),
        (
            "post-cr 1x3x1",
            config("post-cr", &["env.devices_per_user=3"]),
        ),
    ];
    let mut g = c.benchmark_group("checker");
    g.sample_size(10);
    for (name, cfg) in &configs {
        let states = explore(cfg, u64::MAX, &mut |_| {}).expect("explores").len() as u64;
        g.throughput(Throughput::Elements(states));
        g.bench_with_input(BenchmarkId::new("explore", name), cfg, |b, cfg| {
            b.iter(|| explore(cfg, u64::MAX, &mut |_| {}).expect("explores").len())
        });
        g.bench_with_input(BenchmarkId::new("check", name), cfg, |b, cfg| {
            b.iter(|| {
                check(cfg, name, Options::default(), &mut |_| {})
                    .expect("checks")
                    .states
            })
        });
    }
    g.finish();
}

/// Every benchmark of this file (what `criterion_group!` would generate, with a doc comment).
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

criterion_main!(benches);
