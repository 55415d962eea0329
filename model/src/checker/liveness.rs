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
//!   nothing changes (one byte per state, a bit per device; the edges' kinds are worked out
//!   state by state from the device components, [`EdgeKinds`]). A reachable state where the
//!   device wants a session and is outside the set is a trap.
//! * `eventually_logged_in_fair`: a counterexample is a reachable cycle on which the device
//!   wants a session and never holds one, and which is weakly fair: every fair action
//!   (message deliveries, timers, restarts, Time-To-Live expiry) that is enabled in every
//!   state of the cycle is taken on it. Such a cycle exists exactly when some strongly
//!   connected component of the "wants and does not hold" subgraph has an internal edge and
//!   takes, on its internal edges, every fair action enabled throughout it (a cycle can then
//!   walk the whole component).

use super::graph::{ActionTable, Graph};
use super::scc::for_each_scc;
use super::symmetry::{compose, inverse, Perm, IDENTITY};
use crate::world::Action;

/// Whether each device wants a session and whether it holds one, read from the interned
/// device components (two bits per component), so that no per-state array is kept: on the
/// largest graphs every byte per state counts, and the flags are read in state order.
pub struct DeviceFlags {
    /// Per device component: bit 0 wants a session, bit 1 holds one.
    comp: Vec<u8>,
    /// Devices a state.
    nd: usize,
}

impl DeviceFlags {
    /// Bit d: device d of state `s` wants a session.
    pub fn wants(&self, g: &Graph, s: u32) -> u8 {
        self.mask(g, s, 0)
    }

    /// Bit d: device d of state `s` holds a session.
    pub fn holds(&self, g: &Graph, s: u32) -> u8 {
        self.mask(g, s, 1)
    }

    /// Device `d` of state `s` wants a session and does not hold one.
    pub fn starving(&self, g: &Graph, s: u32, d: u8) -> bool {
        self.comp[g.word(s, d as usize) as usize] == 1
    }

    fn mask(&self, g: &Graph, s: u32, bit: u8) -> u8 {
        (0..self.nd).fold(0, |m, d| {
            m | ((self.comp[g.word(s, d) as usize] >> bit) & 1) << d
        })
    }
}

/// The wants/holds flags of the graph's device components.
pub fn device_flags(g: &Graph, nd: usize) -> DeviceFlags {
    let comp = g
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
            u8::from(wants) | u8::from(holds) << 1
        })
        .collect();
    DeviceFlags { comp, nd }
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
/// device components, state by state when asked ([`EdgeKinds::of_state`]), without decoding
/// any state: a device's actions depend only on its component and on whether crashes and
/// connection losses are left. Nothing is kept per edge (a byte per edge was 6 bytes per
/// stored state on the largest graphs).
pub struct EdgeKinds {
    /// The actions of each device component, per budget.
    actions: ActionTable,
    /// The way-out mask of each of those actions, in the table's order; a user action is
    /// marked by [`EdgeKinds::USER`].
    masks: Vec<u8>,
    /// Devices a state.
    nd: usize,
}

impl EdgeKinds {
    /// The mark of a user action in `masks` (its device is known only in the state).
    const USER: u8 = 0xA5;

    /// The kinds of the edges of `g`.
    pub fn new(g: &Graph) -> EdgeKinds {
        let nd = g.cfg.env.users as usize * g.cfg.env.devices_per_user as usize;
        let mut actions = ActionTable::default();
        actions.sync(&g.cfg, &g.devices.items);
        let masks = actions
            .all()
            .iter()
            .map(|a| match WayOut::of(a) {
                WayOut::UserOf(_) => Self::USER,
                k => k.devices(),
            })
            .collect();
        EdgeKinds { actions, masks, nd }
    }

    /// The kinds of the edges of state `s`, in edge order, into `out` (cleared first).
    pub fn of_state(&self, g: &Graph, s: u32, out: &mut Vec<u8>) {
        out.clear();
        let (crashes, losses) = budget(g, s);
        for d in 0..self.nd {
            let list = &self.masks[self.actions.range(g.word(s, d), crashes, losses)];
            out.extend(
                list.iter()
                    .map(|&m| if m == Self::USER { 1 << d } else { m }),
            );
        }
        let n = g.succ(s).len();
        assert!(
            out.len() <= n,
            "invariant: a state has an edge for each of its devices' actions"
        );
        // The rest are Time-To-Live expiries, protocol steps.
        out.resize(n, WayOut::Protocol.devices());
    }
}

/// An edge of the graph: its source state and its index among the source's edges.
pub type Edge = (u32, u16);

/// Per permutation of the graph ([`Graph::perms`]), the map from a device mask of an edge's
/// target to the same devices' positions in its source.
fn pull_tables(g: &Graph) -> Vec<[u8; 256]> {
    g.perms
        .iter()
        .map(|p| {
            std::array::from_fn(|mask| {
                (0..8).fold(0u8, |m, d| m | (((mask >> p[d]) & 1) as u8) << d)
            })
        })
        .collect()
}

/// Bit d of `good[s]`: from `s`, device d can reach a state where it holds a session by
/// protocol steps alone ([`WayOut`]). On a symmetry quotient, a device is followed through
/// each edge's permutation.
pub fn can_reach_session(g: &Graph, flags: &DeviceFlags, kinds: &EdgeKinds) -> Vec<u8> {
    let pulls = pull_tables(g);
    let mut good: Vec<u8> = (0..g.len() as u32).map(|s| flags.holds(g, s)).collect();
    let mut ks = Vec::new();
    loop {
        let mut changed = false;
        for s in (0..g.len()).rev() {
            let mut m = good[s];
            let base = g.offsets[s] as usize;
            kinds.of_state(g, s as u32, &mut ks);
            for (k, (&t, &kind)) in g.succ(s as u32).iter().zip(&ks).enumerate() {
                let there = match g.edge_perm.get(base + k) {
                    Some(p) => pulls[p][good[t as usize] as usize],
                    None => good[t as usize],
                };
                m |= there & kind;
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
        let bad = flags.wants(g, s as u32) & !good[s];
        (bad != 0).then(|| (s as u32, bad.trailing_zeros() as u8))
    })
}

/// A successor function for [`bfs`]: each successor with the label of its edge.
pub type Succ<'a, N, L> = &'a dyn Fn(N, &mut Vec<(N, L)>);

/// Breadth-first search from `from` for a node satisfying `target`, along the edges `succ`
/// lists (each with a label) and only through nodes satisfying `inside`: the labels and
/// nodes of a shortest path, from `from`'s successor to the target. With `at_least_one`,
/// `from` itself does not count as reached (to find cycles).
pub fn bfs<N: Copy + Eq + std::hash::Hash, L: Copy>(
    from: N,
    succ: Succ<'_, N, L>,
    inside: &dyn Fn(N) -> bool,
    target: &dyn Fn(N) -> bool,
    at_least_one: bool,
) -> Option<Vec<(L, N)>> {
    if !at_least_one && target(from) {
        return Some(Vec::new());
    }
    let mut parent: rustc_hash::FxHashMap<N, (N, L)> = Default::default();
    let mut queue = std::collections::VecDeque::from([from]);
    let mut seen: rustc_hash::FxHashSet<N> = Default::default();
    seen.insert(from);
    let mut next = Vec::new();
    while let Some(v) = queue.pop_front() {
        next.clear();
        succ(v, &mut next);
        for &(w, l) in &next {
            if target(w) {
                let mut path = vec![(l, w)];
                let mut x = v;
                while x != from {
                    let (p, pl) = parent[&x];
                    path.push((pl, x));
                    x = p;
                }
                path.reverse();
                return Some(path);
            }
            if inside(w) && seen.insert(w) {
                parent.insert(w, (v, l));
                queue.push_back(w);
            }
        }
    }
    None
}

/// Shortest path of states from `from` to a state satisfying `target` ([`bfs`] over the
/// graph's states); the path starts with `from`'s successor and ends at the target.
pub fn bfs_path(
    from: u32,
    succ: &dyn Fn(u32, &mut Vec<u32>),
    inside: &dyn Fn(u32) -> bool,
    target: &dyn Fn(u32) -> bool,
    at_least_one: bool,
) -> Option<Vec<u32>> {
    let labelled = |v: u32, out: &mut Vec<(u32, ())>| {
        let mut s = Vec::new();
        succ(v, &mut s);
        out.extend(s.into_iter().map(|t| (t, ())));
    };
    bfs(from, &labelled, inside, target, at_least_one)
        .map(|p| p.into_iter().map(|(_, n)| n).collect())
}

/// All the graph's edges of a state, as a successor function for [`bfs_path`].
pub fn all_edges(g: &Graph) -> impl Fn(u32, &mut Vec<u32>) + '_ {
    |v, out| out.extend_from_slice(g.succ(v))
}

/// A stuck region for a trap: a cycle (or a dead end) the device cannot leave.
pub struct Stuck {
    /// The edges from the trap to the cycle's entry.
    pub lead: Vec<Edge>,
    /// The cycle's edges from its entry back to the entry (empty for a dead end).
    pub cycle: Vec<Edge>,
}

/// A device followed through the graph: (state, the device's position in it).
type Tracked = (u32, u8);

/// The way-out edges for a tracked device: its position follows each edge's permutation.
fn tracked_way_out<'a>(
    g: &'a Graph,
    kinds: &'a EdgeKinds,
) -> impl Fn(Tracked, &mut Vec<(Tracked, Edge)>) + 'a {
    let ks = std::cell::RefCell::new(Vec::new());
    move |(v, d), out| {
        let ks = &mut *ks.borrow_mut();
        kinds.of_state(g, v, ks);
        for (k, (&t, &kind)) in g.succ(v).iter().zip(ks.iter()).enumerate() {
            if kind & (1 << d) != 0 {
                out.push(((t, g.perm(v, k)[d as usize]), (v, k as u16)));
            }
        }
    }
}

/// From a trap state of device `d`, the cycle the device is stuck in: the cyclic strongly
/// connected component, closest to the trap, of the region that protocol steps lead to from
/// the trap (every state of it a trap for the device), entered at its closest state; a dead
/// end when no cycle is reachable. The region is explored up to `limit` states. On a
/// symmetry quotient the device is followed through each edge's permutation, and the cycle
/// returns to the entry with the device in the same place (the other devices may have
/// changed places: replaying it concretely takes it as often as it takes them back).
pub fn stuck_cycle(g: &Graph, kinds: &EdgeKinds, trap: u32, d: u8, limit: usize) -> Stuck {
    let succ = tracked_way_out(g, kinds);
    // The region, in BFS order from the trap (so local index order is distance order), as a
    // local graph.
    let mut local: rustc_hash::FxHashMap<Tracked, u32> = Default::default();
    let mut order = vec![(trap, d)];
    local.insert((trap, d), 0);
    let mut adj: Vec<Vec<u32>> = Vec::new();
    let mut next = Vec::new();
    let mut i = 0;
    while i < order.len() {
        next.clear();
        succ(order[i], &mut next);
        let mut edges = Vec::with_capacity(next.len());
        for &(w, _) in &next {
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
        |v, i| adj[v as usize].get(i).copied(),
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
    let in_comp = |v: Tracked| {
        local
            .get(&v)
            .is_some_and(|lv| comp.binary_search(lv).is_ok())
    };
    let edges = |p: Option<Vec<(Edge, Tracked)>>| -> Vec<Edge> {
        p.unwrap_or_default().into_iter().map(|(e, _)| e).collect()
    };
    let lead = edges(bfs(
        (trap, d),
        &succ,
        &|v| local.contains_key(&v),
        &|v| v == entry,
        false,
    ));
    let cycle = edges(bfs(entry, &succ, &in_comp, &|v| v == entry, true));
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
    /// The device (its position in the entry state).
    pub device: u8,
    /// Where the cycle starts (the lowest-numbered state of the component).
    pub entry: u32,
    /// The cycle's edges, from the entry back to it, taking every fair action that is
    /// enabled all along.
    pub cycle: Vec<Edge>,
}

/// The edges of a node: (target, action taken, the graph edge it stands for).
type EdgesOf<'a> = &'a dyn Fn(u32, &mut Vec<(u32, Action, Edge)>);

/// A strongly connected component, given by its members and each member's edges, where a
/// weakly fair cycle is sought.
struct Component<'a> {
    members: &'a [u32],
    edges: EdgesOf<'a>,
}

impl Component<'_> {
    fn member(&self, v: u32) -> bool {
        self.members.binary_search(&v).is_ok()
    }

    /// Whether the component has an internal edge and takes, on internal edges, every fair
    /// action enabled in all of its members.
    fn fair(&self) -> bool {
        let mut everywhere: ClassSet = [u64::MAX; 4];
        let mut taken: ClassSet = [0; 4];
        let mut internal_edge = false;
        let mut out = Vec::new();
        for &v in self.members {
            out.clear();
            (self.edges)(v, &mut out);
            let mut enabled: ClassSet = [0; 4];
            for &(t, a, _) in &out {
                if let Some(c) = fair_class(&a) {
                    set_insert(&mut enabled, c);
                    if self.member(t) {
                        set_insert(&mut taken, c);
                    }
                }
                internal_edge |= self.member(t);
            }
            for i in 0..4 {
                everywhere[i] &= enabled[i];
            }
        }
        internal_edge && (0..4).all(|i| everywhere[i] & !taken[i] == 0)
    }

    /// A cycle from `entry` that is itself weakly fair, as graph edges: for every fair action
    /// enabled somewhere in the component, it either takes an internal edge with it or
    /// passes through a member where it is disabled (one of the two exists, the component
    /// being fair).
    fn cycle(&self, entry: u32) -> Vec<Edge> {
        let mut taken_edge: Vec<Option<(u32, u32, Edge)>> = vec![None; 256];
        let mut disabled_at: Vec<Option<u32>> = vec![None; 256];
        let mut somewhere: ClassSet = [0; 4];
        let mut out = Vec::new();
        for &v in self.members {
            out.clear();
            (self.edges)(v, &mut out);
            let mut enabled: ClassSet = [0; 4];
            for &(t, a, e) in &out {
                let Some(c) = fair_class(&a) else { continue };
                set_insert(&mut enabled, c);
                if self.member(t) && taken_edge[c as usize].is_none() {
                    taken_edge[c as usize] = Some((v, t, e));
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
        let succ = |v: u32, out: &mut Vec<(u32, Edge)>| {
            let mut es = Vec::new();
            (self.edges)(v, &mut es);
            out.extend(es.into_iter().map(|(t, _, e)| (t, e)));
        };
        let inside = |v: u32| self.member(v);
        let mut cycle = Vec::new();
        let mut at = entry;
        let walk = |from: u32, to: u32, at_least_one: bool, cycle: &mut Vec<Edge>| {
            if let Some(p) = bfs(from, &succ, &inside, &|v| v == to, at_least_one) {
                cycle.extend(p.into_iter().map(|(e, _)| e));
            }
        };
        for c in (0..256u16).filter(|&c| set_contains(&somewhere, c)) {
            match (taken_edge[c as usize], disabled_at[c as usize]) {
                (Some((src, dst, e)), _) => {
                    walk(at, src, false, &mut cycle);
                    cycle.push(e);
                    at = dst;
                }
                (None, Some(v)) => {
                    walk(at, v, false, &mut cycle);
                    at = v;
                }
                (None, None) => {
                    unreachable!("invariant: a fair component takes or disables every fair action")
                }
            }
        }
        let closed = at == entry && !cycle.is_empty();
        if !closed {
            walk(at, entry, at == entry, &mut cycle);
        }
        cycle
    }
}

/// The actions of the graph's states in edge order, listed from the per-component action
/// table as the explorer lists them ([`ActionTable::state_actions`]), without decoding a
/// world.
struct StateActions<'a> {
    g: &'a Graph,
    table: ActionTable,
    nd: usize,
}

impl<'a> StateActions<'a> {
    fn new(g: &'a Graph) -> StateActions<'a> {
        let mut table = ActionTable::default();
        table.sync(&g.cfg, &g.devices.items);
        let nd = g.cfg.env.users as usize * g.cfg.env.devices_per_user as usize;
        StateActions { g, table, nd }
    }

    /// The actions of state `v`, into `out` (cleared first).
    fn of(&self, v: u32, out: &mut Vec<Action>) {
        out.clear();
        let g = self.g;
        let components = (&g.devices.items[..], &g.users.items[..]);
        let words = g.words(v);
        self.table
            .state_actions(&g.cfg, components, &words, self.nd, out);
    }
}

/// The edges of state `v` with their actions.
fn state_edges<'a>(g: &'a Graph) -> impl Fn(u32, &mut Vec<(u32, Action, Edge)>) + 'a {
    // One action list, reused for every state.
    let actions = StateActions::new(g);
    let scratch = std::cell::RefCell::new(Vec::new());
    move |v, out| {
        let acts = &mut *scratch.borrow_mut();
        actions.of(v, acts);
        for (k, (&t, &a)) in g.succ(v).iter().zip(acts.iter()).enumerate() {
            out.push((t, a, (v, k as u16)));
        }
    }
}

/// The crash and loss budgets left in state `s`. Neither ever grows along an edge (a crash
/// or a connection loss spends one, nothing gives one back), so no cycle, and no strongly
/// connected component, spans two budgets: the weak-fairness search runs one budget at a
/// time, and its index holds the nodes of one budget only (on 2 x 3 x 1, with a crash
/// left and without, about half of them).
pub fn budget(g: &Graph, s: u32) -> (u8, u8) {
    let (crashes, losses, _) = super::graph::unpack_counters(g.word(s, g.stride - 1));
    (crashes, losses)
}

/// The budgets of the graph's states, in order.
fn budgets(g: &Graph) -> Vec<(u8, u8)> {
    let mut seen = vec![false; 1 << 16];
    for s in 0..g.len() as u32 {
        let (c, l) = budget(g, s);
        seen[usize::from(c) << 8 | usize::from(l)] = true;
    }
    (0..1usize << 16)
        .filter(|&i| seen[i])
        .map(|i| ((i >> 8) as u8, i as u8))
        .collect()
}

/// Find a weakly fair cycle violating `eventually_logged_in_fair`, closest to the initial
/// state over all devices.
pub fn fair_violation(g: &Graph, flags: &DeviceFlags) -> Option<FairLasso> {
    if g.symmetric() {
        return fair_violation_quotient(g, flags);
    }
    let nd = g.cfg.env.users as usize * g.cfg.env.devices_per_user as usize;
    let edges = state_edges(g);
    let mut best: Option<(u32, u8, Vec<u32>)> = None;
    let bs = budgets(g);
    for (d, &b) in (0..nd).flat_map(|d| bs.iter().map(move |b| (d, b))) {
        let inside = |v: u32| budget(g, v) == b && flags.starving(g, v, d as u8);
        for_each_scc(
            g.len(),
            |v, i| g.succ(v).get(i).copied(),
            inside,
            |comp| {
                if comp.len() == 1 && !g.succ(comp[0]).contains(&comp[0]) {
                    return;
                }
                let mut sorted = comp.to_vec();
                sorted.sort_unstable();
                let entry = sorted[0];
                if best.as_ref().is_some_and(|b| b.0 <= entry) {
                    return;
                }
                let c = Component {
                    members: &sorted,
                    edges: &edges,
                };
                if c.fair() {
                    best = Some((entry, d as u8, sorted));
                }
            },
        );
    }
    let (entry, device, comp) = best?;
    let c = Component {
        members: &comp,
        edges: &edges,
    };
    Some(FairLasso {
        device,
        entry,
        cycle: c.cycle(entry),
    })
}

/// Which labels (devices 0..8, users 8..16) a permutation of device positions sends where.
fn label_map(p: &Perm, per_user: usize) -> [u8; 16] {
    std::array::from_fn(|l| {
        if l < 8 {
            p[l]
        } else {
            8 + p[((l - 8) * per_user).min(7)] / per_user.max(1) as u8
        }
    })
}

/// A fair action's kind and label: (kind, label) with device kinds 0..6 labelled by the
/// device and expiries `8 + index` labelled by `8 + user`.
fn kind_label(a: &Action) -> Option<(u16, u8)> {
    match *a {
        Action::Expire { user, index } => Some((8 + u16::from(index), 8 + user)),
        _ => fair_class(a).map(|c| (c % 8, (c / 8) as u8)),
    }
}

/// [`fair_violation`] on a symmetry quotient. A device is followed through the edges'
/// permutations (the nodes are (state, device position) pairs), and weak fairness, which
/// is about every concrete device, is decided on the component's concrete lift without
/// building it: within a component, following cycles from a base node permutes the labels
/// by a group H (generated by the cycles' permutations), the lift's states over node `v`
/// are the base frame's ρ_v composed with H, and so a fair action of a label `e` is enabled
/// everywhere in the lift exactly when it is enabled at every node for every label of e's
/// H-orbit, and taken exactly when some internal edge takes it for a label of that orbit.
/// The counterexample's cycle is then built on the lift itself ([`lift_cycle`]).
fn fair_violation_quotient(g: &Graph, flags: &DeviceFlags) -> Option<FairLasso> {
    let nd = g.cfg.env.users as usize * g.cfg.env.devices_per_user as usize;
    let k = g.cfg.env.devices_per_user as usize;
    let n = g.len() * nd;
    assert!(
        n < u32::MAX as usize,
        "invariant: fewer than 2^32 tracked nodes"
    );
    let node = |v: u32, d: u8| v * nd as u32 + u32::from(d);
    let split = |x: u32| (x / nd as u32, (x % nd as u32) as u8);
    let inside = |x: u32| {
        let (v, d) = split(x);
        flags.starving(g, v, d)
    };
    let succ = |x: u32, i: usize| {
        let (v, d) = split(x);
        g.succ(v).get(i).map(|&t| node(t, g.perm(v, i)[d as usize]))
    };
    let actions = StateActions::new(g);
    let mut acts = Vec::new();
    let mut best: Option<(u32, u8)> = None;
    let mut on_component = |comp: &[u32]| {
        if comp.len() == 1 {
            // A single node is a component with a cycle only with a self-loop.
            let x = comp[0];
            let len = g.succ(split(x).0).len();
            if !(0..len).any(|i| succ(x, i) == Some(x)) {
                return;
            }
        }
        let mut sorted = comp.to_vec();
        sorted.sort_unstable();
        let (entry, d) = split(sorted[0]);
        if best.is_some_and(|b| b.0 <= entry) {
            return;
        }
        let at = |x: u32| sorted.binary_search(&x).ok();
        // The internal edges, by source (CSR over the members' positions in `sorted`): the
        // edge's index among its source's edges and its target's position. Arrays rather
        // than maps: a component can hold millions of nodes.
        let mut first: Vec<usize> = Vec::with_capacity(sorted.len() + 1);
        let mut internal: Vec<(u16, u32)> = Vec::new();
        for &x in &sorted {
            first.push(internal.len());
            for i in 0..g.succ(split(x).0).len() {
                let y = succ(x, i).expect("invariant: the edge exists");
                if let Some(py) = at(y) {
                    internal.push((i as u16, py as u32));
                }
            }
        }
        first.push(internal.len());
        let internal_edge = !internal.is_empty();
        let out = |px: usize| &internal[first[px]..first[px + 1]];
        // Frames from the base by a spanning tree (a frame is a permutation of the labels,
        // so `UNSET` marks a member not reached yet), then the orbits of H on the labels.
        const UNSET: [u8; 16] = [u8::MAX; 16];
        let mut rho = vec![UNSET; sorted.len()];
        rho[0] = std::array::from_fn(|l| l as u8);
        let mut queue = std::collections::VecDeque::from([0usize]);
        while let Some(px) = queue.pop_front() {
            let rx = rho[px];
            let v = split(sorted[px]).0;
            for &(i, py) in out(px) {
                if rho[py as usize] == UNSET {
                    let p = label_map(g.perm(v, i as usize), k);
                    rho[py as usize] = std::array::from_fn(|l| p[rx[l] as usize]);
                    queue.push_back(py as usize);
                }
            }
        }
        let mut uf: [u8; 16] = std::array::from_fn(|l| l as u8);
        fn find(uf: &mut [u8; 16], mut x: u8) -> u8 {
            while uf[x as usize] != x {
                x = uf[x as usize];
            }
            x
        }
        // Generators: for each internal edge, ρ_y⁻¹ ∘ π ∘ ρ_x joins each label to its image.
        for px in 0..sorted.len() {
            let (rx, v) = (rho[px], split(sorted[px]).0);
            for &(i, py) in out(px) {
                let ry = rho[py as usize];
                let p = label_map(g.perm(v, i as usize), k);
                let mut ry_inv = [0u8; 16];
                for l in 0..16 {
                    ry_inv[ry[l] as usize] = l as u8;
                }
                for l in 0..16u8 {
                    let img = ry_inv[p[rx[l as usize] as usize] as usize];
                    let (a, b) = (find(&mut uf, l), find(&mut uf, img));
                    if a != b {
                        uf[a.max(b) as usize] = a.min(b);
                    }
                }
            }
        }
        let mut orbit = [0u16; 16];
        for l in 0..16u8 {
            let r = find(&mut uf, l);
            orbit[l as usize] = (0..16u8)
                .filter(|&m| find(&mut uf, m) == r)
                .fold(0u16, |acc, m| acc | 1 << m);
        }
        // Per kind: the labels enabled (with their whole orbit) at every node, and the
        // labels taken on internal edges (whole orbits). A kind enabled at fewer nodes than
        // all is enabled everywhere for no label.
        let kinds = 8 + 256;
        let mut everywhere = vec![u16::MAX; kinds];
        let mut present = vec![0usize; kinds];
        let mut taken = vec![0u16; kinds];
        let mut enabled = vec![0u16; kinds];
        let mut touched: Vec<u16> = Vec::new();
        for (px, &x) in sorted.iter().enumerate() {
            let (v, _) = split(x);
            let rx = rho[px];
            let mut inv = [0u8; 16];
            for l in 0..16 {
                inv[rx[l] as usize] = l as u8;
            }
            actions.of(v, &mut acts);
            for (i, a) in acts.iter().enumerate() {
                let Some((kind, pos)) = kind_label(a) else {
                    continue;
                };
                let label = inv[pos as usize];
                if enabled[kind as usize] == 0 {
                    touched.push(kind);
                }
                enabled[kind as usize] |= 1 << label;
                if out(px).iter().any(|&(j, _)| j as usize == i) {
                    taken[kind as usize] |= orbit[label as usize];
                }
            }
            for &kind in &touched {
                let m = enabled[kind as usize];
                let closed = (0..16usize)
                    .filter(|&l| m & (1 << l) != 0 && orbit[l] & m == orbit[l])
                    .fold(0u16, |acc, l| acc | 1 << l);
                everywhere[kind as usize] &= closed;
                present[kind as usize] += 1;
                enabled[kind as usize] = 0;
            }
            touched.clear();
        }
        let fair = (0..kinds)
            .all(|kind| present[kind] < sorted.len() || everywhere[kind] & !taken[kind] == 0);
        if internal_edge && fair {
            best = Some((entry, d));
        }
    };
    for b in budgets(g) {
        let inside = |x: u32| budget(g, split(x).0) == b && inside(x);
        for_each_scc(n, succ, inside, &mut on_component);
    }
    let (entry, device) = best?;
    Some(FairLasso {
        device,
        entry,
        cycle: lift_cycle(g, flags, entry, device),
    })
}

/// A weakly fair cycle from `entry` on the concrete lift of a quotient component: the nodes
/// are (state, frame) pairs, the frame telling where each device of the entry's concrete
/// world is, and the device followed (at position `device` of the entry) wants a session and
/// does not hold one all along. The lift's component is built explicitly (it is the
/// component times the group H, small for the components a device starves in).
fn lift_cycle(g: &Graph, flags: &DeviceFlags, entry: u32, device: u8) -> Vec<Edge> {
    type Node = (u32, Perm);
    let start: Node = (entry, IDENTITY);
    let starving = |(v, f): Node| flags.starving(g, v, f[device as usize]);
    let step = |(v, f): Node, k: usize| -> Node { (g.succ(v)[k], compose(g.perm(v, k), &f)) };
    // Forward from the start, and keep the nodes that lead back to it (its component).
    let mut index: rustc_hash::FxHashMap<Node, u32> = Default::default();
    let mut nodes = vec![start];
    index.insert(start, 0);
    let mut adj: Vec<Vec<(u32, usize)>> = Vec::new();
    let mut i = 0;
    while i < nodes.len() {
        let x = nodes[i];
        let mut out = Vec::new();
        for k in 0..g.succ(x.0).len() {
            let y = step(x, k);
            if !starving(y) {
                continue;
            }
            let j = *index.entry(y).or_insert_with(|| {
                nodes.push(y);
                (nodes.len() - 1) as u32
            });
            out.push((j, k));
        }
        adj.push(out);
        i += 1;
    }
    let mut comp_of_start = Vec::new();
    for_each_scc(
        nodes.len(),
        |v, i| adj[v as usize].get(i).map(|&(j, _)| j),
        |_| true,
        |c| {
            if c.contains(&0) {
                comp_of_start = c.to_vec();
            }
        },
    );
    comp_of_start.sort_unstable();
    // The lift's actions are the quotient's, renamed to the entry's concrete devices.
    let actions = StateActions::new(g);
    let edges = |x: u32, out: &mut Vec<(u32, Action, Edge)>| {
        let (v, f) = nodes[x as usize];
        let inv = inverse(&f);
        let mut acts = Vec::new();
        actions.of(v, &mut acts);
        for &(j, k) in &adj[x as usize] {
            out.push((j, rename_action(acts[k], &inv, &g.cfg), (v, k as u16)));
        }
    };
    let c = Component {
        members: &comp_of_start,
        edges: &edges,
    };
    c.cycle(0)
}

/// An action of a state, renamed by `inv` (a position in the state to a concrete device).
pub fn rename_action(a: Action, inv: &Perm, cfg: &crate::config::Config) -> Action {
    let k = cfg.env.devices_per_user.max(1);
    let d = |x: u8| inv[x as usize];
    match a {
        Action::Start(x) => Action::Start(d(x)),
        Action::ServerReceives(x) => Action::ServerReceives(d(x)),
        Action::ClientReceives(x) => Action::ClientReceives(d(x)),
        Action::ClientReceivesPush(x) => Action::ClientReceivesPush(d(x)),
        Action::RetryTimer(x) => Action::RetryTimer(d(x)),
        Action::KeepAliveTimer(x) => Action::KeepAliveTimer(d(x)),
        Action::Crash(x) => Action::Crash(d(x)),
        Action::LoseConnection(x) => Action::LoseConnection(d(x)),
        Action::User(x, u) => Action::User(d(x), u),
        Action::Expire { user, index } => Action::Expire {
            user: d(user * k) / k,
            index,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::graph::{explore_opts, ExploreOptions};
    use crate::world::World;

    /// The actions listed from the action table are the decoded world's, in the same order,
    /// in every state: on symmetry quotients with one and two users, with Time-To-Live
    /// expiries (which the table does not hold) and without, and unreduced.
    #[test]
    fn state_actions_are_the_decoded_worlds() {
        let dir = crate::variant::variants_dir();
        for (name, set, symmetry) in [
            ("post-cr-three-devices", "env.max_crashes=1", true),
            ("post-cr-expiry-two-users", "env.max_crashes=0", true),
            ("post-cr-expiry-three-devices", "env.max_crashes=1", true),
            ("pre-cr-two-users", "env.max_crashes=0", false),
        ] {
            let mut cfg = crate::variant::resolve_variant(name, &dir)
                .expect("a named variant")
                .1
                .cfg;
            cfg.apply_set(set).expect("a known knob");
            let opts = ExploreOptions {
                max_states: u64::MAX,
                symmetry,
                whole_worlds: false,
                threads: 1,
                clock: None,
            };
            let g = explore_opts(&cfg, &opts, &mut |_| {}).expect("explores");
            let actions = StateActions::new(&g);
            let (mut w, mut want, mut got) = (World::new(&cfg), Vec::new(), Vec::new());
            let mut expiries = 0;
            for s in 0..g.len() as u32 {
                g.decode(s, &mut w);
                want.clear();
                w.actions(&cfg, &mut want);
                actions.of(s, &mut got);
                assert_eq!(got, want, "{name}: state {s}");
                assert_eq!(got.len(), g.succ(s).len(), "{name}: state {s}");
                expiries += got
                    .iter()
                    .filter(|a| matches!(a, Action::Expire { .. }))
                    .count();
            }
            assert_eq!(
                expiries > 0,
                cfg.server.ttl_expiry,
                "{name}: expiries listed"
            );
        }
    }
}
