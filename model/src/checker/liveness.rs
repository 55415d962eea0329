//! The two liveness checks over the explored graph; both are exact on cycles.
//!
//! * `no_deadlock`: a device that wants a session is *trapped* in a state when no sequence
//!   of protocol steps alone leads from it to a state where the device holds a session.
//!   Protocol steps are deliveries, timers, restarts after a crash that already happened,
//!   server Time-To-Live expiry, and the device's own user's actions; a new crash, a new
//!   connection loss, or another device's user action is no way out (a device that can only
//!   get back in if something else fails or someone else gives up is deadlocked). For each
//!   device, the states with a way out are the least fixpoint of "holds, or some protocol
//!   step leads into the set", computed by sweeping the CSR edges in reverse BFS order until
//!   nothing changes (one byte per state, a bit per device; one byte per edge for its kind,
//!   [`EdgeKinds`]). A reachable state where the device wants a session and is outside the
//!   set is a trap.
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

/// What an action is to the way-out question of `no_deadlock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WayOut {
    /// A protocol step: a way out for every device (deliveries, timers, restarts after a
    /// crash that already happened, Time-To-Live expiry).
    Protocol,
    /// A new fault (a crash or a connection loss): a way out for no device.
    Fault,
    /// A user action of this device: a way out for that device only (another user's choice
    /// is no way out for the others).
    UserOf(u8),
}

impl WayOut {
    /// The kind of an action.
    pub const fn of(a: &Action) -> WayOut {
        match *a {
            Action::Start(_)
            | Action::ServerReceives(_)
            | Action::ClientReceives(_)
            | Action::ClientReceivesPush(_)
            | Action::RetryTimer(_)
            | Action::KeepAliveTimer(_)
            | Action::Expire { .. } => WayOut::Protocol,
            Action::Crash(_) | Action::LoseConnection(_) => WayOut::Fault,
            Action::User(d, _) => WayOut::UserOf(d),
        }
    }

    /// Bit d: the action is a way out for device d.
    pub const fn devices(self) -> u8 {
        match self {
            WayOut::Protocol => u8::MAX,
            WayOut::Fault => 0,
            WayOut::UserOf(d) => 1 << d,
        }
    }
}

/// For every edge of the graph, the devices for which it is a way out
/// ([`WayOut::devices`]), in the order of the graph's edges. Computed from the interned
/// device components without decoding any state: a device's actions depend only on its
/// component and on whether crashes and connection losses are left.
pub struct EdgeKinds(Vec<u8>);

impl EdgeKinds {
    /// The kinds of every edge of `g`.
    pub fn new(g: &Graph) -> EdgeKinds {
        let nd = g.cfg.env.users as usize * g.cfg.env.devices_per_user as usize;
        // Per device component and budget (bit 0: a crash left, bit 1: a loss left): the
        // way-out masks of its actions, with a user action marked by `USER`.
        const USER: u8 = 0xA5;
        let mut acts = Vec::new();
        let per_comp: Vec<[Vec<u8>; 4]> = g
            .devices
            .items
            .iter()
            .map(|dev| {
                std::array::from_fn(|budget| {
                    acts.clear();
                    let (c, l) = (u8::from(budget & 1 != 0), u8::from(budget & 2 != 0));
                    dev.actions(&g.cfg, 0, c, l, &mut acts);
                    acts.iter()
                        .map(|a| match WayOut::of(a) {
                            WayOut::UserOf(_) => USER,
                            k => k.devices(),
                        })
                        .collect()
                })
            })
            .collect();
        let mut kinds = Vec::with_capacity(g.edge_count());
        for s in 0..g.len() as u32 {
            let start = kinds.len();
            let c = g.word(s, g.stride - 1);
            let budget = usize::from(c & 0xff != 0) | usize::from((c >> 8) & 0xff != 0) << 1;
            for d in 0..nd {
                let comp = &per_comp[g.word(s, d) as usize][budget];
                kinds.extend(comp.iter().map(|&m| if m == USER { 1 << d } else { m }));
            }
            let n = g.succ(s).len();
            assert!(
                kinds.len() - start <= n,
                "invariant: a state has an edge for each of its devices' actions"
            );
            // The rest are Time-To-Live expiries, protocol steps.
            kinds.resize(start + n, WayOut::Protocol.devices());
        }
        EdgeKinds(kinds)
    }

    /// The successors of `s` that are a way out for device `d`, in edge order.
    pub fn way_out<'a>(&'a self, g: &'a Graph, s: u32, d: u8) -> impl Iterator<Item = u32> + 'a {
        let base = g.offsets[s as usize] as usize;
        g.succ(s)
            .iter()
            .enumerate()
            .filter(move |&(k, _)| self.0[base + k] & (1 << d) != 0)
            .map(|(_, &t)| t)
    }
}

/// Bit d of `good[s]`: from `s`, device d can reach a state where it holds a session by
/// protocol steps alone ([`WayOut`]).
pub fn can_reach_session(g: &Graph, flags: &DeviceFlags, kinds: &EdgeKinds) -> Vec<u8> {
    let mut good = flags.holds.clone();
    loop {
        let mut changed = false;
        for s in (0..g.len()).rev() {
            let mut m = good[s];
            let base = g.offsets[s] as usize;
            for (k, &t) in g.succ(s as u32).iter().enumerate() {
                m |= good[t as usize] & kinds.0[base + k];
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

/// Shortest path from `from` to a state satisfying `target`, moving along the edges that
/// `succ` lists and only through states satisfying `inside`; the path starts with `from`'s
/// successor and ends at the target. With `at_least_one`, `from` itself does not count as
/// reached (to find cycles).
pub fn bfs_path(
    from: u32,
    succ: &dyn Fn(u32, &mut Vec<u32>),
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
    let mut next = Vec::new();
    while let Some(v) = queue.pop_front() {
        next.clear();
        succ(v, &mut next);
        for &w in &next {
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

/// All the graph's edges of a state, as a successor function for [`bfs_path`].
pub fn all_edges(g: &Graph) -> impl Fn(u32, &mut Vec<u32>) + '_ {
    |v, out| out.extend_from_slice(g.succ(v))
}

/// A stuck region for a trap: a cycle (or a dead end) the device cannot leave.
pub struct Stuck {
    /// States from the trap to the cycle's entry (excluding the trap).
    pub lead: Vec<u32>,
    /// The cycle from its entry back to the entry (empty for a dead end).
    pub cycle: Vec<u32>,
}

/// From a trap state of device `d`, the cycle the device is stuck in: the cyclic strongly
/// connected component, closest to the trap, of the region that protocol steps lead to from
/// the trap (every state of it a trap for the device), entered at its closest state; a dead
/// end when no cycle is reachable. The region is explored up to `limit` states.
pub fn stuck_cycle(g: &Graph, kinds: &EdgeKinds, trap: u32, d: u8, limit: usize) -> Stuck {
    let succ = |v: u32, out: &mut Vec<u32>| out.extend(kinds.way_out(g, v, d));
    // The region, in BFS order from the trap (so local index order is distance order), as a
    // local graph.
    let mut local: rustc_hash::FxHashMap<u32, u32> = Default::default();
    let mut order = vec![trap];
    local.insert(trap, 0);
    let mut adj: Vec<Vec<u32>> = Vec::new();
    let mut next = Vec::new();
    let mut i = 0;
    while i < order.len() {
        next.clear();
        succ(order[i], &mut next);
        let mut edges = Vec::with_capacity(next.len());
        for &w in &next {
            let lw = match local.get(&w) {
                Some(&lw) => lw,
                None if order.len() < limit => {
                    let lw = order.len() as u32;
                    local.insert(w, lw);
                    order.push(w);
                    lw
                }
                None => continue,
            };
            edges.push(lw);
        }
        adj.push(edges);
        i += 1;
    }
    // The cyclic component with the smallest local index (the closest to the trap).
    let mut best: Option<Vec<u32>> = None;
    for_each_scc(
        adj.len(),
        |v| &adj[v as usize],
        |_| true,
        |c| {
            let cyclic = c.len() > 1 || adj[c[0] as usize].contains(&c[0]);
            let min = c.iter().copied().min();
            if cyclic && best.as_ref().is_none_or(|b| min < b.iter().copied().min()) {
                best = Some(c.to_vec());
            }
        },
    );
    let Some(mut comp) = best else {
        // A dead end: no protocol step can happen any more.
        return Stuck {
            lead: Vec::new(),
            cycle: Vec::new(),
        };
    };
    comp.sort_unstable();
    let entry = order[comp[0] as usize];
    let in_comp = |v: u32| {
        local
            .get(&v)
            .is_some_and(|lv| comp.binary_search(lv).is_ok())
    };
    let lead = bfs_path(
        trap,
        &succ,
        &|v| local.contains_key(&v),
        &|v| v == entry,
        false,
    )
    .unwrap_or_default();
    let cycle = bfs_path(entry, &succ, &in_comp, &|v| v == entry, true).unwrap_or_default();
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
        if let Some(p) = bfs_path(at, &all_edges(g), &member, &|v| v == target, false) {
            cycle.extend(p);
        }
        at = target;
        if let Some(dst) = then {
            cycle.push(dst);
            at = dst;
        }
    }
    if let Some(p) = bfs_path(
        at,
        &all_edges(g),
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
