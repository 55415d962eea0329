//! The symmetry reduction ([`imps_model::checker::symmetry`]) against the unreduced explorer.

use imps_model::checker::graph::{explore_opts, ExploreOptions, Graph};
use imps_model::config::{resolve_variant, variants_dir, Config};

fn variant(name: &str, sets: &[&str]) -> Config {
    let (_, mut cfg) = resolve_variant(name, &variants_dir()).unwrap();
    for s in sets {
        cfg.apply_set(s).unwrap();
    }
    cfg
}

fn graph(cfg: &Config, symmetry: bool) -> Graph {
    explore_opts(
        cfg,
        &ExploreOptions {
            max_states: u64::MAX,
            symmetry,
            whole_worlds: false,
        },
        &mut |_| {},
    )
    .unwrap()
}

/// The stored representatives stand for exactly the states the unreduced explorer stores.
#[test]
fn orbits_add_up_to_the_unreduced_state_count() {
    for (name, sets) in [
        ("post-cr", &["env.devices_per_user=2"][..]),
        ("post-cr", &["env.users=2"][..]),
        (
            "pre-cr",
            &[
                "env.devices_per_user=3",
                "env.groups=0",
                "env.presence_values=0",
            ][..],
        ),
        ("post-cr-expiry", &["env.devices_per_user=2"][..]),
        ("post-cr-session-limit", &[][..]),
        ("post-cr-four-way", &[][..]),
        (
            "post-cr",
            &[
                "env.users=2",
                "env.devices_per_user=2",
                "env.groups=0",
                "env.presence_values=0",
            ][..],
        ),
    ] {
        let cfg = variant(name, sets);
        let full = graph(&cfg, false);
        let red = graph(&cfg, true);
        eprintln!(
            "{name} {sets:?}: {} states, {} representatives",
            full.len(),
            red.len()
        );
        assert_eq!(red.concrete, full.len() as u64, "{name} {sets:?}");
    }
}
