//! The symmetry reduction ([`imps_model::checker::symmetry`]) against the unreduced explorer:
//! the canonical form is canonical, the representatives stand for exactly the unreduced
//! states, the verdicts are the same, and counterexamples found on the quotient replay on
//! the real core and close their cycles.

mod common;

use imps_model::checker::graph::{explore_opts, ExploreOptions, Graph};
use imps_model::checker::liveness::WayOut;
use imps_model::checker::symmetry::{permute_world, Perm, Symmetry, IDENTITY};
use imps_model::checker::{check, Options, Outcome};
use imps_model::config::Config;
use imps_model::msg::SessionId;
use imps_model::props::Prop;
use imps_model::trace::Trace;
use imps_model::variant::{named_variants, resolve_variant, variants_dir};
use imps_model::world::World;
use rand_core::{RngCore, SeedableRng};

fn variant(name: &str, sets: &[&str]) -> Config {
    let mut cfg = resolve_variant(name, &variants_dir()).unwrap().1.cfg;
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
            threads: 1,
            clock: None,
        },
        &mut |_| {},
    )
    .unwrap()
}

fn run(cfg: &Config, symmetry: bool) -> Outcome {
    let opts = Options {
        symmetry,
        ..Options::default()
    };
    check(cfg, "test", opts, &mut |_| {}).unwrap()
}

/// Multi-device and multi-user configurations, small enough for CI, with traps (pre-CR, a
/// crash inside a login, a shared Client-ID pool, a session limit), expiry (stale stored
/// Session-IDs, which take the decoded path of the canonical form), 4-way logins, user
/// actions and lost connections.
const CONFIGS: &[(&str, &[&str])] = &[
    ("pre-cr", &["env.devices_per_user=2"]),
    ("pre-cr", &["env.users=2"]),
    (
        "pre-cr",
        &[
            "env.devices_per_user=3",
            "env.groups=0",
            "env.presence_values=0",
        ],
    ),
    ("post-cr", &["env.devices_per_user=2"]),
    ("post-cr", &["env.users=2"]),
    (
        "post-cr",
        &[
            "env.devices_per_user=3",
            "env.groups=0",
            "env.presence_values=0",
        ],
    ),
    (
        "post-cr",
        &[
            "env.users=2",
            "env.devices_per_user=2",
            "env.groups=0",
            "env.presence_values=0",
        ],
    ),
    (
        "post-cr",
        &["env.users=3", "env.groups=0", "env.presence_values=0"],
    ),
    (
        "post-cr",
        &[
            "env.devices_per_user=2",
            "env.max_crashes=2",
            "env.groups=0",
            "env.presence_values=0",
        ],
    ),
    (
        "post-cr",
        &["env.devices_per_user=2", "client.client_id_scope=user"],
    ),
    (
        "post-cr",
        &[
            "env.devices_per_user=2",
            "client.client_id_scope=user",
            "client.client_id_pool=3",
        ],
    ),
    (
        "post-cr",
        &[
            "env.devices_per_user=2",
            "env.groups=0",
            "env.presence_values=0",
            "server.max_sessions_per_user=2",
            "env.user_logouts=true",
        ],
    ),
    (
        "post-cr",
        &[
            "env.users=2",
            "env.groups=0",
            "env.presence_values=0",
            "server.max_sessions_total=1",
        ],
    ),
    (
        "post-cr",
        &[
            "env.devices_per_user=2",
            "env.max_connection_losses=1",
            "env.groups=0",
            "env.presence_values=0",
        ],
    ),
    ("post-cr-expiry", &["env.devices_per_user=2"]),
    (
        "post-cr-expiry",
        &["env.users=2", "env.groups=0", "env.presence_values=0"],
    ),
    (
        "post-cr-expiry",
        &[
            "env.devices_per_user=2",
            "env.groups=0",
            "env.presence_values=0",
            "env.max_crashes=2",
        ],
    ),
    (
        "post-cr-expiry",
        &[
            "env.devices_per_user=2",
            "env.keep_alives=true",
            "env.groups=0",
            "env.presence_values=0",
        ],
    ),
    (
        "post-cr-four-way",
        &["env.groups=0", "env.presence_values=0"],
    ),
    (
        "post-cr-four-way",
        &[
            "env.users=2",
            "env.devices_per_user=1",
            "env.groups=0",
            "env.presence_values=0",
        ],
    ),
    ("post-cr-session-limit", &[]),
    ("post-cr-no-recovery", &["env.devices_per_user=2"]),
    (
        "baraza",
        &[
            "env.devices_per_user=2",
            "env.groups=0",
            "env.presence_values=0",
        ],
    ),
    ("intervillage", &["env.devices_per_user=2"]),
    (
        "android-on-cr-server",
        &[
            "env.devices_per_user=2",
            "env.groups=0",
            "env.presence_values=0",
        ],
    ),
];

/// The stored representatives stand for exactly the states the unreduced explorer stores
/// (each counted with the size of its orbit): a form that split an orbit would count some
/// states twice, one that merged two orbits would miss some.
#[test]
fn orbits_add_up_to_the_unreduced_state_count() {
    for &(name, sets) in CONFIGS {
        let cfg = variant(name, sets);
        let full = graph(&cfg, false);
        let red = graph(&cfg, true);
        assert!(red.symmetric(), "{name} {sets:?}");
        assert_eq!(red.concrete, full.len() as u64, "{name} {sets:?}");
        assert!(red.len() < full.len(), "{name} {sets:?}: nothing reduced");
    }
}

/// A random element of the symmetry group: the devices of each user shuffled, and the users.
fn random_perm(rng: &mut impl RngCore, users: usize, k: usize) -> Perm {
    let shuffle = |rng: &mut dyn RngCore, n: usize| {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            v.swap(i, rng.next_u32() as usize % (i + 1));
        }
        v
    };
    let uperm = shuffle(rng, users);
    let mut p = IDENTITY;
    for (u, &to) in uperm.iter().enumerate() {
        let dperm = shuffle(rng, k);
        for (j, &tj) in dperm.iter().enumerate() {
            p[u * k + j] = (to * k + tj) as u8;
        }
    }
    p
}

/// Rename every Session-ID of a user to fresh random values (one bijection per user).
fn rename_session_ids(w: &mut World, rng: &mut impl RngCore, k: usize) {
    for u in 0..w.users.len() {
        let mut map: Vec<(u32, u32)> = Vec::new();
        let mut f = |s: &mut SessionId| {
            let to = match map.iter().find(|(from, _)| *from == s.0) {
                Some(&(_, to)) => to,
                None => {
                    let to = 1000 + 1000 * u as u32 + (rng.next_u32() % 997) * 8 + map.len() as u32;
                    map.push((s.0, to));
                    to
                }
            };
            s.0 = to;
        };
        for s in &mut w.users[u].sessions {
            f(&mut s.id);
        }
        for d in &mut w.devices[u * k..(u + 1) * k] {
            d.visit_session_ids(&mut f);
        }
    }
}

/// The canonical form is canonical: a reachable state, with its devices and users
/// permuted at random and its Session-IDs renamed at random, has the same canonical form,
/// and the permutation the form reports takes the state there.
#[test]
fn random_permutations_have_one_canonical_form() {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(8);
    for &(name, sets) in CONFIGS {
        let cfg = variant(name, sets);
        let (users, k) = (cfg.env.users as usize, cfg.env.devices_per_user as usize);
        let g = graph(&cfg, false);
        let mut sym = Symmetry::new(&cfg);
        let mut w = World::new(&cfg);
        let step = (g.len() / 200).max(1);
        for s in (0..g.len()).step_by(step) {
            g.decode(s as u32, &mut w);
            let mut canon = w.clone();
            let c = sym.canon_world(&mut canon);
            // The reported permutation takes the state to its form (up to Session-IDs).
            let mut moved = permute_world(&cfg, &w, &c.perm);
            moved.canonicalize();
            assert_eq!(moved, canon, "{name} {sets:?}: state {s}");
            for _ in 0..4 {
                let p = random_perm(&mut rng, users, k);
                let mut other = permute_world(&cfg, &w, &p);
                rename_session_ids(&mut other, &mut rng, k);
                let c2 = sym.canon_world(&mut other);
                assert_eq!(
                    other, canon,
                    "{name} {sets:?}: state {s}, permutation {p:?}"
                );
                assert_eq!(c2.orbit, c.orbit, "{name} {sets:?}: state {s}");
            }
        }
    }
}

/// A lasso's cycle closes on the real core: the world where the cycle starts and the world
/// it ends in are the same state (up to Session-ID names).
fn assert_closes(t: &Trace, what: &str) {
    let start = t.loop_start.expect("a lasso");
    let mut a = if start == 0 {
        t.initial.clone()
    } else {
        t.steps[start - 1].state.clone()
    };
    let mut b = t.steps.last().expect("a cycle has steps").state.clone();
    a.canonicalize();
    b.canonicalize();
    assert_eq!(a, b, "{what}: the cycle does not close\n{}", t.text());
}

/// The deadlock's cycle is made of protocol steps for its device, which never holds a
/// session on it; the fair cycle takes every fair action enabled all along it.
fn assert_lasso_means_its_verdict(cfg: &Config, o: &Outcome, what: &str) {
    if let Some(t) = o.result(Prop::NoDeadlock).and_then(|r| r.trace.as_ref()) {
        assert_closes(t, what);
        let d = t.device.expect("a deadlock names its device");
        for s in &t.steps[t.loop_start.unwrap()..] {
            assert_ne!(
                WayOut::of(&s.action).devices() & (1 << d),
                0,
                "{what}: {:?}",
                s.action
            );
            assert!(!s.state.holds_session(d as usize), "{what}");
        }
    }
    if let Some(t) = o
        .result(Prop::EventuallyLoggedInFair)
        .and_then(|r| r.trace.as_ref())
    {
        assert_closes(t, what);
        let d = t.device.expect("names its device") as usize;
        for w in common::cycle_states(t) {
            assert!(w.wants_session(d) && !w.holds_session(d), "{what}");
        }
        common::assert_weakly_fair_cycle(cfg, t, what);
    }
}

/// With and without the reduction, every verdict is the same, on every named variant and
/// on every configuration above; the counterexamples found on the quotient replay on the
/// real core (replaying asserts that each step is enabled) and mean their verdicts.
#[test]
fn verdicts_are_the_same_with_and_without_symmetry() {
    let named: Vec<(String, Vec<&str>)> = named_variants(&variants_dir())
        .unwrap()
        .into_iter()
        .filter(|(n, _)| !is_headline(n))
        .map(|(n, _)| (n, Vec::new()))
        .collect();
    let configs = named
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_slice()))
        .chain(CONFIGS.iter().map(|&(n, s)| (n, s)));
    let traps = same_verdicts(configs);
    assert!(
        traps >= 5,
        "only {traps} multi-device configurations with a trap"
    );
}

/// The named variants at the CR's headline bounds (three devices of one user and two
/// crashes, two users of two devices): up to 8.5 million concrete states unreduced, too many
/// for the default test run (`cargo test --release -p imps-model --test symmetry --
/// --ignored` runs it).
fn is_headline(name: &str) -> bool {
    name.ends_with("-three-devices") || name.ends_with("-two-users")
}

/// [`verdicts_are_the_same_with_and_without_symmetry`] for the headline variants.
#[test]
#[ignore = "minutes: explores the headline variants unreduced"]
fn headline_variants_have_the_same_verdicts_without_symmetry() {
    let named: Vec<String> = named_variants(&variants_dir())
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| is_headline(n))
        .collect();
    assert_eq!(named.len(), 6);
    let traps = same_verdicts(named.iter().map(|n| (n.as_str(), &[][..])));
    assert!(traps >= 3, "only {traps} headline variants with a trap");
}

/// Check each configuration with and without the reduction and compare; returns how many
/// multi-device configurations have a trap.
fn same_verdicts<'a>(configs: impl Iterator<Item = (&'a str, &'a [&'a str])>) -> usize {
    let mut traps = 0;
    for (name, sets) in configs {
        let cfg = variant(name, sets);
        let what = format!("{name} {sets:?}");
        let full = run(&cfg, false);
        let red = run(&cfg, true);
        for (a, b) in full.results.iter().zip(&red.results) {
            assert_eq!((a.prop, a.verdict), (b.prop, b.verdict), "{what}");
            assert_eq!(
                a.trace.is_some(),
                b.trace.is_some(),
                "{what}: {}",
                a.prop.name()
            );
        }
        assert_eq!(red.concrete_states, full.states, "{what}");
        assert_lasso_means_its_verdict(&cfg, &red, &what);
        traps += usize::from(
            red.result(Prop::NoDeadlock)
                .is_some_and(|r| r.trace.is_some())
                && cfg.env.users as usize * cfg.env.devices_per_user as usize > 1,
        );
    }
    traps
}

/// A monotonic clock, as `imps check --stats` gives the explorer.
fn clock() -> std::time::Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// The result does not depend on the thread count: the same states, verdicts and
/// counterexamples (step by step) with 1, 2 and 4 threads, with and without the reduction.
/// Nor on timing the stages: the runs on 2 and 4 threads have a clock, and report how long
/// each stage waited for the other; the run on 1 has one too, and reports nothing, as
/// there is nothing to wait for.
#[test]
fn the_thread_count_changes_nothing() {
    for &(name, sets) in &CONFIGS[..12] {
        let cfg = variant(name, sets);
        for symmetry in [true, false] {
            let runs: Vec<Outcome> = [1, 2, 4]
                .iter()
                .map(|&threads| {
                    let opts = Options {
                        symmetry,
                        threads,
                        clock: Some(clock),
                        ..Options::default()
                    };
                    check(&cfg, "test", opts, &mut |_| {}).unwrap()
                })
                .collect();
            let what = format!("{name} {sets:?} symmetry={symmetry}");
            assert_eq!(runs[0].waits, None, "{what}");
            for o in &runs[1..] {
                assert!(o.waits.is_some(), "{what}");
                assert_eq!(
                    (o.states, o.edges, o.depth),
                    (runs[0].states, runs[0].edges, runs[0].depth),
                    "{what}"
                );
                for (a, b) in runs[0].results.iter().zip(&o.results) {
                    assert_eq!((a.prop, a.verdict), (b.prop, b.verdict), "{what}");
                    assert_eq!(
                        a.trace.as_ref().map(Trace::text),
                        b.trace.as_ref().map(Trace::text),
                        "{what}: {}",
                        a.prop.name()
                    );
                }
            }
        }
    }
}
