//! The two liveness checks over the explored graph; both are exact on cycles.
//!
//! * `no_deadlock`: for each device, the states from which a state where it holds a session
//!   is reachable are the least fixpoint of "holds, or some successor is in the set". The
//!   fixpoint is computed by sweeping the CSR edges in reverse BFS order until nothing
//!   changes (one byte per state, a bit per device). A reachable state where the device wants
//!   a session and is outside the set is a trap.
//! * `eventually_logged_in_fair`: a counterexample is a reachable cycle on which the device
//!   wants a session and never holds one, and which is weakly fair: every fair action
//!   (message deliveries, timers, restarts, Time-To-Live expiry) that is enabled in every
//!   state of the cycle is taken on it. Such a cycle exists exactly when some strongly
//!   connected component of the "wants and does not hold" subgraph has an internal edge and
//!   takes, on its internal edges, every fair action enabled throughout it (a cycle can then
//!   walk the whole component).

use super::graph::Graph;
use super::scc::for_each_scc;
use crate::world::{Action, World};

/// Per device, per state flags.
pub struct DeviceFlags {
    /// Bit d: device d wants a session.
    pub wants: Vec<u8>,
    /// Bit d: device d holds a session.
    pub holds: Vec<u8>,
}

/// Wants/holds flags of every state (computed from the interned device components).
pub fn device_flags(g: &Graph, nd: usize) -> DeviceFlags {
    let comp: Vec<(bool, bool)> = g
        .devices
        .items
        .iter()
        .map(|d| {
            let phase = d.client.phase;
            let wants = !matches!(phase, crate::client::Phase::Idle);
            let holds = matches!(
                phase,
                crate::client::Phase::Established { .. } | crate::client::Phase::Busy { .. }
            );
            (wants, holds)
        })
        .collect();
    let n = g.len();
    let (mut wants, mut holds) = (vec![0u8; n], vec![0u8; n]);
    for s in 0..n {
        for d in 0..nd {
            let (w, h) = comp[g.word(s as u32, d) as usize];
            wants[s] |= u8::from(w) << d;
            holds[s] |= u8::from(h) << d;
        }
    }
    DeviceFlags { wants, holds }
}

/// Bit d of `good[s]`: from `s`, device d can reach a state where it holds a session.
pub fn can_reach_session(g: &Graph, flags: &DeviceFlags) -> Vec<u8> {
    let mut good = flags.holds.clone();
    loop {
        let mut changed = false;
        for s in (0..g.len()).rev() {
            let mut m = good[s];
            for &t in g.succ(s as u32) {
                m |= good[t as usize];
            }
            if m != good[s] {
                good[s] = m;
                changed = true;
            }
        }
        if !changed {
            return good;
        }
    }
}

/// The first trap in BFS order (so a shallowest one): (state, device).
pub fn first_trap(g: &Graph, flags: &DeviceFlags, good: &[u8]) -> Option<(u32, u8)> {
    (0..g.len()).find_map(|s| {
        let bad = flags.wants[s] & !good[s];
        (bad != 0).then(|| (s as u32, bad.trailing_zeros() as u8))
    })
}

/// Shortest path from `from` to a state satisfying `target`, moving only through states
/// satisfying `inside`; the path starts with `from`'s successor and ends at the target.
/// With `at_least_one`, `from` itself does not count as reached (to find cycles).
pub fn bfs_path(
    g: &Graph,
    from: u32,
    inside: &dyn Fn(u32) -> bool,
    target: &dyn Fn(u32) -> bool,
    at_least_one: bool,
) -> Option<Vec<u32>> {
    if !at_least_one && target(from) {
        return Some(Vec::new());
    }
    let mut parent: rustc_hash::FxHashMap<u32, u32> = Default::default();
    parent.insert(from, from);
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        for &w in g.succ(v) {
            if target(w) {
                let mut path = vec![w];
                let mut x = v;
                while x != from {
                    path.push(x);
                    x = parent[&x];
                }
                path.reverse();
                return Some(path);
            }
            if inside(w) {
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
    }
    None
}

/// A stuck region for a trap: a cycle (or a dead end) the device cannot leave.
pub struct Stuck {
    /// States from the trap to the cycle's entry (excluding the trap).
    pub lead: Vec<u32>,
    /// The cycle from its entry back to the entry (empty for a dead end).
    pub cycle: Vec<u32>,
}

/// From a trap state, the cycle the device is stuck in: the cyclic strongly connected
/// component of the (all-trap) region reachable from the trap that is closest to it, entered
/// at its closest state; a dead end when no cycle is reachable.
pub fn stuck_cycle(g: &Graph, trap: u32, limit: usize) -> Stuck {
    // The states reachable from the trap (all traps for the device), bounded, with their
    // distance from the trap.
    let mut dist: rustc_hash::FxHashMap<u32, u32> = Default::default();
    dist.insert(trap, 0);
    let mut queue = std::collections::VecDeque::from([trap]);
    while let Some(v) = queue.pop_front() {
        let dv = dist[&v];
        for &w in g.succ(v) {
            if dist.len() < limit && !dist.contains_key(&w) {
                dist.insert(w, dv + 1);
                queue.push_back(w);
            }
        }
    }
    let mut best: Option<(u32, u32, Vec<u32>)> = None;
    for_each_scc(
        g.len(),
        |v| g.succ(v),
        |v| dist.contains_key(&v),
        |c| {
            let cyclic = c.len() > 1 || g.succ(c[0]).contains(&c[0]);
            if !cyclic {
                return;
            }
            let (d, entry) = c
                .iter()
                .map(|v| (dist[v], *v))
                .min()
                .expect("invariant: a component has a state");
            if best.as_ref().is_none_or(|b| (d, entry) < (b.0, b.1)) {
                best = Some((d, entry, c.to_vec()));
            }
        },
    );
    let Some((_, entry, mut comp)) = best else {
        // A dead end: nothing at all can happen any more.
        return Stuck {
            lead: Vec::new(),
            cycle: Vec::new(),
        };
    };
    comp.sort_unstable();
    let in_comp = |v: u32| comp.binary_search(&v).is_ok();
    let lead =
        bfs_path(g, trap, &|v| dist.contains_key(&v), &|v| v == entry, false).unwrap_or_default();
    let cycle = bfs_path(g, entry, &in_comp, &|v| v == entry, true).unwrap_or_default();
    Stuck { lead, cycle }
}

/// The fairness class of an action: fair actions are the system's own (deliveries, timers,
/// restarts, expiry); crashes, connection losses and user actions are not.
pub fn fair_class(a: &Action) -> Option<u16> {
    let d = |d: u8, k: u16| Some(u16::from(d) * 8 + k);
    match *a {
        Action::Start(x) => d(x, 0),
        Action::ServerReceives(x) => d(x, 1),
        Action::ClientReceives(x) => d(x, 2),
        Action::ClientReceivesPush(x) => d(x, 3),
        Action::RetryTimer(x) => d(x, 4),
        Action::KeepAliveTimer(x) => d(x, 5),
        Action::Expire { user, index } => Some(64 + u16::from(user) * 16 + u16::from(index)),
        Action::Crash(_) | Action::LoseConnection(_) | Action::User(..) => None,
    }
}

type ClassSet = [u64; 4];

fn set_insert(s: &mut ClassSet, c: u16) {
    s[(c / 64) as usize] |= 1 << (c % 64);
}

fn set_contains(s: &ClassSet, c: u16) -> bool {
    s[(c / 64) as usize] & (1 << (c % 64)) != 0
}

/// A fair cycle on which a device wants a session and never holds one.
pub struct FairLasso {
    /// The device.
    pub device: u8,
    /// Where the cycle starts (the lowest-numbered state of the component).
    pub entry: u32,
    /// The cycle, from the entry back to it, taking every fair action that is enabled all along.
    pub cycle: Vec<u32>,
}

/// Find a weakly fair cycle violating `eventually_logged_in_fair`, closest to the initial
/// state over all devices.
pub fn fair_violation(g: &Graph, flags: &DeviceFlags) -> Option<FairLasso> {
    let nd = g.cfg.env.users as usize * g.cfg.env.devices_per_user as usize;
    let mut w = World::new(&g.cfg);
    let mut actions = Vec::new();
    let mut best: Option<(u32, u8, Vec<u32>, ClassSet)> = None;
    for d in 0..nd {
        let bit = 1u8 << d;
        let inside =
            |v: u32| flags.wants[v as usize] & bit != 0 && flags.holds[v as usize] & bit == 0;
        for_each_scc(
            g.len(),
            |v| g.succ(v),
            inside,
            |comp| {
                let mut sorted = comp.to_vec();
                sorted.sort_unstable();
                let entry = sorted[0];
                if best.as_ref().is_some_and(|b| b.0 <= entry) {
                    return;
                }
                let member = |v: u32| sorted.binary_search(&v).is_ok();
                let mut everywhere: ClassSet = [u64::MAX; 4];
                let mut taken: ClassSet = [0; 4];
                let mut internal_edge = false;
                for &v in &sorted {
                    g.decode(v, &mut w);
                    actions.clear();
                    w.actions(&g.cfg, &mut actions);
                    let mut enabled: ClassSet = [0; 4];
                    for (k, a) in actions.iter().enumerate() {
                        let t = g.succ(v)[k];
                        if let Some(c) = fair_class(a) {
                            set_insert(&mut enabled, c);
                            if member(t) {
                                set_insert(&mut taken, c);
                            }
                        }
                        internal_edge |= member(t);
                    }
                    for i in 0..4 {
                        everywhere[i] &= enabled[i];
                    }
                }
                let fair = (0..4).all(|i| everywhere[i] & !taken[i] == 0);
                if internal_edge && fair {
                    best = Some((entry, d as u8, sorted, everywhere));
                }
            },
        );
    }
    let (entry, device, comp, _) = best?;
    // Build a cycle from the entry that is itself weakly fair: for every fair action enabled
    // somewhere in the component, either take an internal edge with it or pass through a
    // state where it is disabled (one of the two exists, the component being fair).
    let member = |v: u32| comp.binary_search(&v).is_ok();
    let mut taken_edge: Vec<Option<(u32, u32)>> = vec![None; 256];
    let mut disabled_at: Vec<Option<u32>> = vec![None; 256];
    let mut somewhere: ClassSet = [0; 4];
    for &v in &comp {
        g.decode(v, &mut w);
        actions.clear();
        w.actions(&g.cfg, &mut actions);
        let mut enabled: ClassSet = [0; 4];
        for (k, a) in actions.iter().enumerate() {
            let Some(c) = fair_class(a) else { continue };
            set_insert(&mut enabled, c);
            let t = g.succ(v)[k];
            if member(t) && taken_edge[c as usize].is_none() {
                taken_edge[c as usize] = Some((v, t));
            }
        }
        for c in 0..256u16 {
            if set_contains(&enabled, c) {
                set_insert(&mut somewhere, c);
            } else if disabled_at[c as usize].is_none() {
                disabled_at[c as usize] = Some(v);
            }
        }
    }
    let mut cycle = Vec::new();
    let mut at = entry;
    for c in (0..256u16).filter(|&c| set_contains(&somewhere, c)) {
        let (target, then) = match (taken_edge[c as usize], disabled_at[c as usize]) {
            (Some((src, dst)), _) => (src, Some(dst)),
            (None, Some(v)) => (v, None),
            (None, None) => {
                unreachable!("invariant: a fair component takes or disables every fair action")
            }
        };
        if let Some(p) = bfs_path(g, at, &member, &|v| v == target, false) {
            cycle.extend(p);
        }
        at = target;
        if let Some(dst) = then {
            cycle.push(dst);
            at = dst;
        }
    }
    if let Some(p) = bfs_path(
        g,
        at,
        &member,
        &|v| v == entry,
        at == entry && cycle.is_empty(),
    ) {
        cycle.extend(p);
    }
    Some(FairLasso {
        device,
        entry,
        cycle,
    })
}
