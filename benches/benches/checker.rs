//! criterion benchmarks of the model checker: the exploration alone (the throughput is the
//! stored states, so states/s is the elements rate) and the whole check with liveness, with
//! the symmetry reduction on 1 and 2 threads, and without it on one.
//!
//! `cargo bench --bench checker`

use criterion::{BenchmarkId, Criterion, Throughput};
use imps_model::checker::graph::{explore_opts, ExploreOptions};
use imps_model::checker::{check, Options};
use imps_model::config::Config;
use imps_model::variant::{resolve_variant, variants_dir};

fn config(name: &str, sets: &[&str]) -> Config {
    let mut cfg = resolve_variant(name, &variants_dir())
        .expect("variant")
        .1
        .cfg;
    for s in sets {
        cfg.apply_set(s).expect("knob");
    }
    cfg
}

fn explore(cfg: &Config, symmetry: bool, threads: usize) -> u64 {
    let opts = ExploreOptions {
        max_states: u64::MAX,
        symmetry,
        whole_worlds: false,
        threads,
        clock: None,
    };
    explore_opts(cfg, &opts, &mut |_| {})
        .expect("explores")
        .len() as u64
}

/// Exploration and whole check, on each fixed configuration, reduced (1 and 2 threads) and
/// unreduced (1 thread).
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
        (
            "post-cr-expiry-two-users",
            config("post-cr-expiry-two-users", &[]),
        ),
    ];
    let mut g = c.benchmark_group("checker");
    g.sample_size(10);
    for (name, cfg) in &configs {
        for (symmetry, threads) in [(true, 1), (true, 2), (false, 1)] {
            if !symmetry && cfg.env.users > 1 {
                // 8.5 million states unreduced: not a benchmark.
                continue;
            }
            let label = format!(
                "{name} {} {threads}t",
                if symmetry { "reduced" } else { "unreduced" }
            );
            g.throughput(Throughput::Elements(explore(cfg, symmetry, threads)));
            g.bench_with_input(BenchmarkId::new("explore", &label), cfg, |b, cfg| {
                b.iter(|| explore(cfg, symmetry, threads))
            });
            let opts = Options {
                symmetry,
                threads,
                ..Options::default()
            };
            g.bench_with_input(BenchmarkId::new("check", &label), cfg, |b, cfg| {
                b.iter(|| check(cfg, name, opts, &mut |_| {}).expect("checks").states)
            });
        }
    }
    g.finish();
}

/// Every benchmark of this file (what `criterion_group!` would generate, with a doc comment).
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

/// The benchmarks on the heap `imps check` runs on: glibc's, marked for huge pages
/// ([`imps_sim::hugepages`]).
fn main() {
    imps_sim::hugepages::restart_with_huge_pages();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
