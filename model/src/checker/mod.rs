//! The model checker: explores every state of a variant within its `env.*` bounds, checks the
//! CR's properties ([`crate::props`]) and returns, for each violated one, a counterexample as
//! a sequence of steps of the real protocol core.
//!
//! Two explorers share the same transition system ([`crate::world::World`]):
//! * [`graph`]: the checker behind `imps check`, a breadth-first explorer that stores the
//!   whole state graph compactly so that the liveness checks ([`liveness`]) are exact on
//!   cycles, where stateright's `eventually` is documented to give false negatives;
//! * [`sr`]: a stateright [`stateright::Model`] over the same world, for `imps explore`
//!   (stateright's Explorer web UI) and as an independent cross-check of the safety verdicts.
//!
//! [`trap`] asks the deadlock question of a single world (is this device trapped?), for
//! drivers that reach states without exploring them, such as the simulator.

pub mod graph;
pub mod liveness;
pub mod memo;
pub mod monitor;
pub mod ranked;
pub mod rows;
pub mod scc;
pub mod sr;
pub mod symmetry;
pub mod trap;
pub mod visited;

use crate::config::{ClientIdScope, Config};
use crate::props::{Kind, Prop};
use crate::trace::{Trace, TraceStep};
use crate::variant::Verdict;
use crate::world::{Action, World};
use graph::{ExploreError, Found, Graph, Progress};
use liveness::Edge;
use symmetry::Perm;

/// Options of a check.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Stop with an error past this many states.
    pub max_states: u64,
    /// Run the liveness checks (they need the whole graph).
    pub liveness: bool,
    /// Store one state per orbit of device and user permutations ([`symmetry`]).
    pub symmetry: bool,
    /// Threads for the exploration (two stages, [`graph::explore_opts`]) and the liveness
    /// checks (two, side by side). The result does not depend on it.
    pub threads: usize,
    /// A monotonic clock for [`Outcome::waits`] ([`graph::ExploreOptions::clock`]).
    pub clock: Option<fn() -> std::time::Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_states: 50_000_000,
            liveness: true,
            symmetry: true,
            threads: all_cores(),
            clock: None,
        }
    }
}

/// The number of cores this process may use (1 when it cannot be told).
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The verdict on one property, with its counterexample.
#[derive(Clone, Debug)]
pub struct PropResult {
    /// The property.
    pub prop: Prop,
    /// Holds, violated, or (witnesses) not reached.
    pub verdict: Verdict,
    /// The counterexample of a violation.
    pub trace: Option<Trace>,
}

/// Everything a check found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Distinct states explored (stored): with symmetry reduction, one per orbit.
    pub states: u64,
    /// The concrete states they stand for (the sum of their orbits' sizes): the state count
    /// without symmetry reduction.
    pub concrete_states: u64,
    /// Whether the symmetry reduction was on (it is off when asked, and when the
    /// configuration has a single device, where there is nothing to permute).
    pub symmetry: bool,
    /// Edges (transitions) of the state graph.
    pub edges: u64,
    /// BFS depth of the graph.
    pub depth: u32,
    /// Distinct device and user components interned.
    pub components: (usize, usize),
    /// One result per property, in [`Prop::ALL`] order.
    pub results: Vec<PropResult>,
    /// How long each stage of the exploration waited for the other: on two threads with a
    /// clock only. Timing, so never part of a report's verdicts.
    pub waits: Option<graph::StageWaits>,
}

impl Outcome {
    /// The result of `p`.
    pub fn result(&self, p: Prop) -> Option<&PropResult> {
        self.results.iter().find(|r| r.prop == p)
    }

    /// The witnesses of `p`'s situation ([`Prop::phase`]) that this run never reached: a
    /// "holds" of `p` is vacuous when there are any.
    pub fn unreached_phase(&self, p: Prop) -> Vec<Prop> {
        p.phase()
            .iter()
            .copied()
            .filter(|&w| {
                self.result(w)
                    .is_some_and(|r| r.verdict == Verdict::NotReached)
            })
            .collect()
    }

    /// Whether `p` holds only because the run never reached the situation it is about.
    pub fn vacuous(&self, p: Prop) -> bool {
        self.result(p).is_some_and(|r| r.verdict == Verdict::Holds)
            && !self.unreached_phase(p).is_empty()
    }
}

/// A human-readable statement of the bounds a verdict holds within. The Client-ID pool is
/// the device's unless `client_id_scope=user` follows it (then the user's devices share it).
pub fn bounds(cfg: &Config) -> String {
    let e = &cfg.env;
    let scope = match cfg.client.client_id_scope {
        ClientIdScope::Device => "",
        ClientIdScope::User => " client_id_scope=user",
    };
    format!(
        "users={} devices_per_user={} max_crashes={} crash_during_login={} max_connection_losses={} loss_during_login={} client_id_pool={}{scope} groups={} presence_values={} user_logouts={} keep_alives={}",
        e.users, e.devices_per_user, e.max_crashes, e.crash_during_login, e.max_connection_losses, e.loss_during_login, cfg.client.client_id_pool, e.groups, e.presence_values, e.user_logouts, e.keep_alives
    )
}

/// Check a variant.
pub fn check(
    cfg: &Config,
    variant: &str,
    opts: Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, ExploreError> {
    let g = graph::explore_opts(
        cfg,
        &graph::ExploreOptions {
            max_states: opts.max_states,
            symmetry: opts.symmetry,
            whole_worlds: false,
            threads: opts.threads,
            clock: opts.clock,
        },
        progress,
    )?;
    release_freed_memory();
    let nd = cfg.env.users as usize * cfg.env.devices_per_user as usize;
    let flags = opts.liveness.then(|| liveness::device_flags(&g, nd));
    // The two liveness checks are independent: on two threads when there are.
    let deadlock = || {
        let flags = flags.as_ref()?;
        let kinds = liveness::EdgeKinds::new(&g);
        let good = liveness::can_reach_session(&g, flags, &kinds);
        let Some((trap, d)) = liveness::first_trap(&g, flags, &good) else {
            return Some((Verdict::Holds, None));
        };
        let stuck = liveness::stuck_cycle(&g, &kinds, trap, d, 1_000_000);
        // The device's position at the cycle's entry.
        let at_entry = stuck
            .lead
            .iter()
            .fold(d, |d, &(s, k)| g.perm(s, k as usize)[d as usize]);
        let mut prefix = edges_along(&g, &path_to(&g, trap));
        prefix.extend(stuck.lead);
        let title = |d: u8| format!("device dev{d} wants a session and can never get one");
        let prop = Prop::NoDeadlock;
        let t = lasso_trace(&g, variant, prop, &title, &prefix, &stuck.cycle, at_entry);
        Some((Verdict::Violated, Some(t)))
    };
    let fair = || {
        let flags = flags.as_ref()?;
        let Some(l) = liveness::fair_violation(&g, flags) else {
            return Some((Verdict::Holds, None));
        };
        let prefix = edges_along(&g, &path_to(&g, l.entry));
        let title = |d: u8| {
            format!(
                "a weakly fair cycle on which device dev{d} wants a session and never holds one"
            )
        };
        let prop = Prop::EventuallyLoggedInFair;
        let t = lasso_trace(&g, variant, prop, &title, &prefix, &l.cycle, l.device);
        Some((Verdict::Violated, Some(t)))
    };
    let (deadlock, fair) = if opts.threads > 1 {
        std::thread::scope(|scope| {
            let d = scope.spawn(deadlock);
            let f = fair();
            (
                d.join()
                    .expect("invariant: the deadlock check does not panic"),
                f,
            )
        })
    } else {
        (deadlock(), fair())
    };
    let (mut deadlock, mut fair) = (deadlock, fair);
    let mut results = Vec::new();
    for &prop in Prop::ALL {
        let (verdict, trace) = match prop.kind() {
            Kind::Safety => match g.violated[prop as usize] {
                Some(found) => (
                    Verdict::Violated,
                    Some(found_trace(&g, variant, prop, found)),
                ),
                None => (Verdict::Holds, None),
            },
            Kind::Witness => match g.reached[prop as usize] {
                Some(_) => (Verdict::Holds, None),
                None => (Verdict::NotReached, None),
            },
            Kind::Liveness => {
                let r = match prop {
                    Prop::NoDeadlock => deadlock.take(),
                    Prop::EventuallyLoggedInFair => fair.take(),
                    _ => unreachable!("invariant: the liveness properties are no_deadlock and eventually_logged_in_fair"),
                };
                match r {
                    Some(r) => r,
                    None => continue,
                }
            }
        };
        results.push(PropResult {
            prop,
            verdict,
            trace,
        });
    }
    Ok(Outcome {
        states: g.len() as u64,
        concrete_states: g.concrete,
        symmetry: g.symmetric(),
        edges: g.edge_count() as u64,
        depth: g.levels.len() as u32,
        components: (g.devices.items.len(), g.users.items.len()),
        results,
        waits: g.waits,
    })
}

/// Give the allocator's free pages back to the system, between the exploration and the
/// liveness checks. glibc returns freed memory only from the top of its heaps, and the
/// visited set's segments (many mid-size blocks, allocated among others as the exploration
/// grows) sit in the middle: once the set is dropped they stayed resident, up to 360 MB on
/// 2 x 3 x 1, on top of the liveness checks' own peak. Other allocators return large blocks
/// themselves; there this does nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(
    unsafe_code,
    reason = "one FFI call into glibc, which takes no pointers"
)]
fn release_freed_memory() {
    // SAFETY: `malloc_trim` takes no pointers; glibc runs it under its own arena locks, and
    // it only hands free pages back.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}

/// A shortest path of states from the initial state to `target` (inclusive of both).
pub fn path_to(g: &Graph, target: u32) -> Vec<u32> {
    let mut path = vec![target];
    let mut t = target;
    let mut level = g.depth(t);
    while level > 0 {
        let (lo, hi) = (g.levels[level - 1], g.levels[level]);
        let p = (lo..hi)
            .find(|&p| g.succ(p).contains(&t))
            .expect("invariant: every state past level 0 has a predecessor in the level before");
        path.push(p);
        t = p;
        level -= 1;
    }
    path.reverse();
    path
}

/// The edges along a path of states (the first edge between each two).
fn edges_along(g: &Graph, states: &[u32]) -> Vec<Edge> {
    states
        .windows(2)
        .map(|pair| {
            let k = g
                .succ(pair[0])
                .iter()
                .position(|&t| t == pair[1])
                .expect("invariant: consecutive path states are joined by an edge");
            (pair[0], k as u16)
        })
        .collect()
}

/// Where each concrete device of a world is in its stored (canonical) state: the identity
/// without symmetry reduction.
fn initial_frame(g: &Graph) -> Perm {
    if g.symmetric() {
        symmetry::Symmetry::new(&g.cfg)
            .canon_world(&mut World::new(&g.cfg))
            .perm
    } else {
        symmetry::IDENTITY
    }
}

/// The concrete actions along graph edges, from the concrete world whose devices sit at
/// `frame` in the stored state of the first edge's source: each stored action renamed to
/// the concrete devices, the frame following each edge's permutation. Returns the frame at
/// the end.
fn actions_along(g: &Graph, edges: &[Edge], frame: &mut Perm, out: &mut Vec<Action>) {
    let mut w = World::new(&g.cfg);
    let mut acts = Vec::new();
    for &(s, k) in edges {
        g.decode(s, &mut w);
        acts.clear();
        w.actions(&g.cfg, &mut acts);
        let inv = symmetry::inverse(frame);
        out.push(liveness::rename_action(acts[k as usize], &inv, &g.cfg));
        *frame = symmetry::compose(g.perm(s, k as usize), frame);
    }
}

/// Replay actions on the real (not canonicalized) world and record each step.
pub fn replay(cfg: &Config, actions: &[Action]) -> (World, Vec<TraceStep>) {
    let init = World::new(cfg);
    let mut w = init.clone();
    let mut steps = Vec::new();
    let mut enabled = Vec::new();
    for &a in actions {
        enabled.clear();
        w.actions(cfg, &mut enabled);
        assert!(
            enabled.contains(&a),
            "invariant: a replayed action is enabled ({a:?})"
        );
        let before = w.clone();
        let step = w.step(cfg, a);
        steps.push(TraceStep::new(cfg, &before, a, &step, &w));
    }
    (init, steps)
}

fn found_trace(g: &Graph, variant: &str, prop: Prop, found: Found) -> Trace {
    let mut edges = match found {
        Found::State(t) => edges_along(g, &path_to(g, t)),
        Found::Edge(s, _) => edges_along(g, &path_to(g, s)),
    };
    if let Found::Edge(s, k) = found {
        edges.push((s, k));
    }
    let mut actions = Vec::new();
    actions_along(g, &edges, &mut initial_frame(g), &mut actions);
    let (initial, steps) = replay(&g.cfg, &actions);
    Trace {
        variant: variant.to_string(),
        property: prop.name().to_string(),
        title: format!("{} violated", prop.name()),
        bounds: bounds(&g.cfg),
        initial,
        steps,
        loop_start: None,
        device: None,
    }
}

/// A lasso: the prefix's edges, then the cycle's, on which the device at position `device`
/// of the cycle's entry is followed. On a symmetry quotient the cycle returns to its entry
/// with the other devices possibly in other places; it is taken as often as it takes for
/// every concrete device to be back (at most 15 times for 8 devices), so that the concrete
/// trace's cycle closes.
fn lasso_trace(
    g: &Graph,
    variant: &str,
    prop: Prop,
    title: &dyn Fn(u8) -> String,
    prefix: &[Edge],
    cycle: &[Edge],
    device: u8,
) -> Trace {
    let mut frame = initial_frame(g);
    let mut actions = Vec::new();
    actions_along(g, prefix, &mut frame, &mut actions);
    let loop_start = actions.len();
    let at_entry = frame;
    let concrete = symmetry::inverse(&frame)[device as usize];
    for _ in 0..840 {
        actions_along(g, cycle, &mut frame, &mut actions);
        if frame == at_entry {
            break;
        }
    }
    assert!(
        frame == at_entry,
        "invariant: a cycle's permutation has an order of at most 840"
    );
    let (initial, steps) = replay(&g.cfg, &actions);
    Trace {
        variant: variant.to_string(),
        property: prop.name().to_string(),
        title: title(concrete),
        bounds: bounds(&g.cfg),
        initial,
        steps,
        loop_start: Some(loop_start),
        device: Some(concrete),
    }
}
