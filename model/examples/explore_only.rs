//! Time the exploration alone (a development aid for profiling).
use imps_model::checker::graph::explore;
use imps_model::config::{resolve_variant, variants_dir};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (_, mut cfg) = resolve_variant(&args[0], &variants_dir()).unwrap();
    for s in &args[1..] {
        cfg.apply_set(s).unwrap();
    }
    let t = std::time::Instant::now();
    let g = explore(&cfg, u64::MAX, &mut |_| {}).unwrap();
    let e = t.elapsed();
    println!(
        "{} states {} edges in {:?}: {:.0} states/s; comps {} {}",
        g.len(),
        g.edge_count(),
        e,
        g.len() as f64 / e.as_secs_f64(),
        g.devices.items.len(),
        g.users.items.len()
    );
}
