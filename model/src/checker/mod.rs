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
pub mod rows;
pub mod scc;
pub mod sr;
pub mod trap;
pub mod visited;

use crate::config::{ClientIdScope, Config, Verdict};
use crate::props::{Kind, Prop};
use crate::trace::{Trace, TraceStep};
use crate::world::{Action, World};
use graph::{ExploreError, Found, Graph, Progress};

/// Options of a check.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Stop with an error past this many states.
    pub max_states: u64,
    /// Run the liveness checks (they need the whole graph).
    pub liveness: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_states: 50_000_000,
            liveness: true,
        }
    }
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
    /// Distinct states explored.
    pub states: u64,
    /// Edges (transitions) of the state graph.
    pub edges: u64,
    /// BFS depth of the graph.
    pub depth: u32,
    /// Distinct device and user components interned.
    pub components: (usize, usize),
    /// One result per property, in [`Prop::ALL`] order.
    pub results: Vec<PropResult>,
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
    let g = graph::explore(cfg, opts.max_states, progress)?;
    let mut results = Vec::new();
    let nd = cfg.env.users as usize * cfg.env.devices_per_user as usize;
    let flags = opts.liveness.then(|| liveness::device_flags(&g, nd));
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
                let Some(flags) = &flags else { continue };
                match prop {
                    Prop::NoDeadlock => {
                        let kinds = liveness::EdgeKinds::new(&g);
                        let good = liveness::can_reach_session(&g, flags, &kinds);
                        match liveness::first_trap(&g, flags, &good) {
                            Some((trap, d)) => {
                                let stuck = liveness::stuck_cycle(&g, &kinds, trap, d, 1_000_000);
                                let mut prefix = path_to(&g, trap);
                                prefix.extend(stuck.lead);
                                let title = format!("device dev{d} wants a session and can never get one");
                                (Verdict::Violated, Some(lasso_trace(&g, variant, prop, &title, &prefix, &stuck.cycle, Some(d))))
                            }
                            None => (Verdict::Holds, None),
                        }
                    }
                    Prop::EventuallyLoggedInFair => match liveness::fair_violation(&g, flags) {
                        Some(l) => {
                            let prefix = path_to(&g, l.entry);
                            let title = format!("a weakly fair cycle on which device dev{} wants a session and never holds one", l.device);
                            (Verdict::Violated, Some(lasso_trace(&g, variant, prop, &title, &prefix, &l.cycle, Some(l.device))))
                        }
                        None => (Verdict::Holds, None),
                    },
                    _ => unreachable!("invariant: the liveness properties are no_deadlock and eventually_logged_in_fair"),
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
        edges: g.edge_count() as u64,
        depth: g.levels.len() as u32,
        components: (g.devices.items.len(), g.users.items.len()),
        results,
    })
}

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

/// The actions along a path of states.
fn actions_along(g: &Graph, states: &[u32]) -> Vec<Action> {
    let mut w = World::new(&g.cfg);
    let mut acts = Vec::new();
    let mut out = Vec::new();
    for pair in states.windows(2) {
        g.decode(pair[0], &mut w);
        acts.clear();
        w.actions(&g.cfg, &mut acts);
        let k = g
            .succ(pair[0])
            .iter()
            .position(|&t| t == pair[1])
            .expect("invariant: consecutive path states are joined by an edge");
        out.push(acts[k]);
    }
    out
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
    let mut actions = match found {
        Found::State(t) => actions_along(g, &path_to(g, t)),
        Found::Edge(s, _) => actions_along(g, &path_to(g, s)),
    };
    if let Found::Edge(s, k) = found {
        let mut w = World::new(&g.cfg);
        g.decode(s, &mut w);
        let mut acts = Vec::new();
        w.actions(&g.cfg, &mut acts);
        actions.push(acts[k as usize]);
    }
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

fn lasso_trace(
    g: &Graph,
    variant: &str,
    prop: Prop,
    title: &str,
    prefix: &[u32],
    cycle: &[u32],
    device: Option<u8>,
) -> Trace {
    let mut actions = actions_along(g, prefix);
    let loop_start = actions.len();
    let entry = *prefix.last().expect("invariant: a path has its target");
    let mut cyc = vec![entry];
    cyc.extend_from_slice(cycle);
    actions.extend(actions_along(g, &cyc));
    let (initial, steps) = replay(&g.cfg, &actions);
    Trace {
        variant: variant.to_string(),
        property: prop.name().to_string(),
        title: title.to_string(),
        bounds: bounds(&g.cfg),
        initial,
        steps,
        loop_start: Some(loop_start),
        device,
    }
}
