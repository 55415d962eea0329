//! Breadth-first exploration of the reachable state graph, stored compactly.
//!
//! A state is stored as a few 32-bit words: one per device and one per user, each the index
//! of that component in an interning table (the collapse compression of SPIN), plus one word
//! of counters. Components repeat across states far more than whole states do, so the tables
//! stay small while the state count grows. States are numbered in BFS order, which makes the
//! state array its own queue, makes the BFS levels contiguous ranges (so a shortest path can be
//! recovered without parent pointers), and lets the graph's edges be written as one CSR array.

use super::visited::{Probe, Visited};
use crate::checker::monitor;
use crate::config::Config;
use crate::props::{Prop, PropSet};
use crate::server::UserServer;
use crate::world::{Action, Device, Touched, World};
use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

fn fx<T: Hash + ?Sized>(t: &T) -> u64 {
    let mut h = FxHasher::default();
    t.hash(&mut h);
    h.finish()
}

/// The hash of a state's words for the visited set, whose slots and fingerprints come from
/// its top bits: FxHash, then the murmur3 finalizer so that every word reaches every bit.
fn state_hash(words: &[u32]) -> u64 {
    let mut h = fx(words);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ h >> 33
}

/// Word-by-word equality, inlined (the keys are a few words: a library call costs more).
fn same_words(a: &[u32], b: &[u32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// An interning table: each distinct value gets the next index.
#[derive(Debug)]
pub struct Interner<T> {
    /// The values, by index.
    pub items: Vec<T>,
    index: HashTable<u32>,
}

impl<T: Hash + Eq + Clone> Interner<T> {
    fn new() -> Self {
        Interner {
            items: Vec::new(),
            index: HashTable::new(),
        }
    }

    fn intern(&mut self, v: &T) -> u32 {
        let h = fx(v);
        let items = &self.items;
        if let Some(&i) = self.index.find(h, |&i| items[i as usize] == *v) {
            return i;
        }
        let i = u32::try_from(self.items.len())
            .expect("invariant: fewer than 2^32 distinct components");
        self.items.push(v.clone());
        let items = &self.items;
        self.index.insert_unique(h, i, |&j| fx(&items[j as usize]));
        i
    }
}

/// The Session-IDs of each interned component, in canonicalization order, stored flat: the
/// canonical-form test of a successor reads these instead of a decoded world.
#[derive(Debug, Default)]
struct IdLists {
    ids: Vec<u32>,
    start: Vec<u32>,
}

impl IdLists {
    /// Record the IDs of the components interned since the last call.
    fn sync<T>(&mut self, items: &[T], mut visit: impl FnMut(&T, &mut Vec<u32>)) {
        if self.start.is_empty() {
            self.start.push(0);
        }
        for item in &items[self.start.len() - 1..] {
            visit(item, &mut self.ids);
            self.start.push(self.ids.len() as u32);
        }
    }

    fn of(&self, i: u32) -> &[u32] {
        let i = i as usize;
        &self.ids[self.start[i] as usize..self.start[i + 1] as usize]
    }
}

/// What a device-local action does to a device, whatever the rest of the world: the device
/// after it (with Transaction-IDs zeroed, Session-IDs not yet renumbered) and what the step
/// monitors and witnesses found on the way.
#[derive(Clone, Copy, Debug)]
struct DeviceStep {
    device: u32,
    bad: PropSet,
    seen: PropSet,
}

/// An action whose step changes only its device (and the crash and loss budgets): every
/// action but the server's.
const fn device_local(a: Action) -> Option<usize> {
    match a {
        Action::ServerReceives(_) | Action::Expire { .. } => None,
        _ => match a.device() {
            Some(d) => Some(d as usize),
            None => None,
        },
    }
}

/// Where a property was first violated or reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// In this state.
    State(u32),
    /// On the edge taking this action (by index in the source's action list) from this state.
    Edge(u32, u16),
}

/// Why exploration stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// More states than allowed.
    #[error("the state space exceeds the limit of {limit} states; tighten the env.* bounds or raise --max-states")]
    TooManyStates {
        /// The limit.
        limit: u64,
    },
}

/// Progress of an exploration, for a progress line.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// States found so far.
    pub states: u64,
    /// Edges so far.
    pub edges: u64,
    /// BFS depth reached.
    pub depth: u32,
    /// The exploration is complete (the last call).
    pub done: bool,
}

/// The explored graph.
#[derive(Debug)]
pub struct Graph {
    /// The configuration explored.
    pub cfg: Config,
    /// Words per state.
    pub stride: usize,
    /// The states, `stride` words each, in BFS order; state 0 is the initial state.
    pub states: Vec<u32>,
    /// `offsets[s]..offsets[s + 1]` are the edges of state `s` in `targets`, in the order of
    /// `World::actions`.
    pub offsets: Vec<u32>,
    /// Edge targets.
    pub targets: Vec<u32>,
    /// The first state of each BFS level.
    pub levels: Vec<u32>,
    /// Interned devices.
    pub devices: Interner<Device>,
    /// Interned user tables.
    pub users: Interner<UserServer>,
    /// First violation of each safety property, indexed by `Prop as usize`.
    pub violated: Vec<Option<Found>>,
    /// First reach of each witness, indexed by `Prop as usize`.
    pub reached: Vec<Option<Found>>,
}

impl Graph {
    /// Number of states.
    pub fn len(&self) -> usize {
        self.states.len() / self.stride
    }

    /// Whether there are no states (never: there is an initial state).
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// The successors of state `s`, in action order.
    pub fn succ(&self, s: u32) -> &[u32] {
        let s = s as usize;
        &self.targets[self.offsets[s] as usize..self.offsets[s + 1] as usize]
    }

    /// The words of state `s`.
    pub fn words(&self, s: u32) -> &[u32] {
        let s = s as usize;
        &self.states[s * self.stride..(s + 1) * self.stride]
    }

    /// The device component of state `s` for device `d`.
    pub fn device(&self, s: u32, d: usize) -> &Device {
        &self.devices.items[self.words(s)[d] as usize]
    }

    /// Rebuild state `s` into `w` (which must have the configuration's shape).
    pub fn decode(&self, s: u32, w: &mut World) {
        self.decode_over(s, w, None);
    }

    /// [`Graph::decode`] into a `w` that holds the state with words `held` (when given):
    /// only the components whose word differs are copied.
    fn decode_over(&self, s: u32, w: &mut World, held: Option<&[u32]>) {
        let words = self.words(s);
        let nd = w.devices.len();
        let differs = |i: usize| held.is_none_or(|h| h[i] != words[i]);
        for (d, dev) in w.devices.iter_mut().enumerate() {
            if differs(d) {
                dev.clone_from(&self.devices.items[words[d] as usize]);
            }
        }
        let mut active = 0;
        for (u, us) in w.users.iter_mut().enumerate() {
            if differs(nd + u) {
                us.clone_from(&self.users.items[words[nd + u] as usize]);
            }
            active += us.active_count() as u32;
        }
        let c = words[self.stride - 1];
        w.crashes_left = (c & 0xff) as u8;
        w.losses_left = ((c >> 8) & 0xff) as u8;
        w.shared.next_session_id = c >> 16;
        w.shared.active_total = active;
    }

    /// The BFS depth of state `s`.
    pub fn depth(&self, s: u32) -> usize {
        self.levels.partition_point(|&start| start <= s) - 1
    }
}

/// Encode `w` as component indices into `key`. With `parent` (the decoded state it was
/// stepped from, that state's words, and the components the step and the canonicalization
/// touched), untouched components reuse the parent's indices without a table lookup: a step
/// changes one or two components.
fn encode(
    w: &World,
    parent: Option<(&World, &[u32], Touched)>,
    devices: &mut Interner<Device>,
    users: &mut Interner<UserServer>,
    key: &mut Vec<u32>,
) {
    key.clear();
    let nd = w.devices.len();
    for (d, dev) in w.devices.iter().enumerate() {
        key.push(match parent {
            Some((pw, pk, t)) if t.devices & (1 << d) == 0 => {
                debug_assert_eq!(
                    pw.devices[d], *dev,
                    "invariant: an untouched device is unchanged"
                );
                pk[d]
            }
            _ => devices.intern(dev),
        });
    }
    for (u, us) in w.users.iter().enumerate() {
        key.push(match parent {
            Some((pw, pk, t)) if t.users & (1 << u) == 0 || pw.users[u] == *us => {
                debug_assert_eq!(
                    pw.users[u], *us,
                    "invariant: an untouched user table is unchanged"
                );
                pk[nd + u]
            }
            _ => users.intern(us),
        });
    }
    assert!(
        w.shared.next_session_id < 1 << 16,
        "invariant: canonical Session-IDs stay small"
    );
    key.push(
        u32::from(w.crashes_left) | u32::from(w.losses_left) << 8 | w.shared.next_session_id << 16,
    );
}

/// The server's canonical Session-ID counter for the world with these component words, or
/// `None` when some user's Session-IDs are not in canonical order (see
/// [`World::canonicalize`]: each ID seen for the first time must be the count of distinct IDs
/// before it).
fn canonical_next_id(
    key: &[u32],
    nd: usize,
    per_user: usize,
    device_ids: &IdLists,
    user_ids: &IdLists,
) -> Option<u32> {
    let mut max = 0;
    for (u, &table) in key[nd..key.len() - 1].iter().enumerate() {
        let mut next = 0u32;
        let devices = &key[u * per_user..(u + 1) * per_user];
        let lists =
            std::iter::once(user_ids.of(table)).chain(devices.iter().map(|&d| device_ids.of(d)));
        for list in lists {
            for &id in list {
                if id == next {
                    next += 1;
                } else if id > next {
                    return None;
                }
            }
        }
        max = max.max(next);
    }
    Some(max)
}

/// State predicates of a whole world.
pub fn state_monitors(cfg: &Config, w: &World, bad: &mut PropSet) {
    for us in &w.users {
        crate::props::check_user_state(cfg, us, bad);
    }
    let total = w.users.iter().map(|us| us.active_count() as u32).sum();
    crate::props::check_server_totals(cfg, total, bad);
}

/// `worlds[k]`, made a copy of `cur` (growing the vector when needed).
fn scratch<'a>(worlds: &'a mut Vec<World>, k: usize, cur: &World) -> &'a mut World {
    if worlds.len() <= k {
        worlds.resize_with(k + 1, || cur.clone());
    } else {
        worlds[k].clone_from(cur);
    }
    &mut worlds[k]
}

/// The successors of one state, generated and waiting for their look-ups.
#[derive(Debug, Default)]
struct Pending {
    /// Their words, `stride` each, in action order.
    keys: Vec<u32>,
    /// Their hashes.
    hashes: Vec<u64>,
    /// Whether successor `k` was stepped in `worlds[k]`; if not, it is a rewrite of the
    /// parent's words and has the parent's user tables.
    stepped: Vec<bool>,
    /// The stepped successors' worlds (for the state predicates of the new ones).
    worlds: Vec<World>,
}

/// How many states are generated ahead of their look-ups: the look-ups of state `s` run
/// after the successors of `s + 1` and `s + 2` are generated, while the cache lines they
/// need arrive (the visited-set slots are prefetched when `s` is generated, the likely
/// matching states when `s + 1` is).
const LAG: u32 = 3;

/// The state of a breadth-first exploration.
struct Explorer<'a> {
    cfg: &'a Config,
    g: Graph,
    index: Visited,
    /// The effect of each (device, device-local action) pair met so far. With the
    /// Session-IDs of every component (`device_ids`, `user_ids`), it gives most successors
    /// as a rewrite of the parent's words, with no world to clone, step, canonicalize or
    /// intern.
    device_steps: HashMap<(u32, Action), DeviceStep, BuildHasherDefault<FxHasher>>,
    device_ids: IdLists,
    user_ids: IdLists,
    /// The last state generated from, decoded, and its words (empty before the first).
    cur: World,
    held: Vec<u32>,
    actions: Vec<Action>,
    key: Vec<u32>,
    /// `ring[s % LAG]`: the successors of state `s`.
    ring: Vec<Pending>,
    devices: usize,
    per_user: usize,
}

impl Explorer<'_> {
    /// Generate the successors of state `s` into its ring slot, running the step monitors
    /// on every edge, and prefetch their visited-set slots.
    #[inline(never)]
    fn generate(&mut self, s: u32) {
        let (cfg, stride, nd) = (self.cfg, self.g.stride, self.devices);
        let held = (!self.held.is_empty()).then_some(&self.held[..]);
        self.g.decode_over(s, &mut self.cur, held);
        self.held.clear();
        self.held.extend_from_slice(self.g.words(s));
        let cur = &self.cur;
        let parent_key = &self.held;
        self.actions.clear();
        cur.actions(cfg, &mut self.actions);
        let p = &mut self.ring[(s % LAG) as usize];
        p.keys.clear();
        p.hashes.clear();
        p.stepped.clear();
        let g = &mut self.g;
        let key = &mut self.key;
        for (k, &a) in self.actions.iter().enumerate() {
            let edge = Found::Edge(s, k as u16);
            if let Some(d) = device_local(a) {
                let memo_key = (parent_key[d], a);
                let ds = match self.device_steps.get(&memo_key) {
                    Some(&ds) => ds,
                    None => {
                        let next = scratch(&mut p.worlds, k, cur);
                        let step = next.step(cfg, a);
                        let (mut bad, mut seen) = (PropSet::default(), PropSet::default());
                        monitor::step_monitors(cur, a, &step, next, &mut bad, &mut seen);
                        next.devices[d].zero_tids();
                        let device = g.devices.intern(&next.devices[d]);
                        let ds = DeviceStep { device, bad, seen };
                        self.device_steps.insert(memo_key, ds);
                        ds
                    }
                };
                for p in ds.bad.iter() {
                    g.violated[p as usize].get_or_insert(edge);
                }
                for p in ds.seen.iter() {
                    g.reached[p as usize].get_or_insert(edge);
                }
                self.device_ids.sync(&g.devices.items, |dev, out| {
                    dev.clone().visit_session_ids(|id| out.push(id.0));
                });
                self.user_ids.sync(&g.users.items, |us, out| {
                    out.extend(us.sessions.iter().map(|s| s.id.0));
                });
                key.clear();
                key.extend_from_slice(parent_key);
                key[d] = ds.device;
                let counters = key[stride - 1];
                let counters = match a {
                    Action::Crash(_) => counters - 1,
                    Action::LoseConnection(_) => counters - (1 << 8),
                    _ => counters,
                };
                let next_id =
                    canonical_next_id(key, nd, self.per_user, &self.device_ids, &self.user_ids);
                if let Some(next_id) = next_id {
                    key[stride - 1] = counters & 0xffff | next_id << 16;
                    p.hashes.push(state_hash(key));
                    p.keys.extend_from_slice(key);
                    p.stepped.push(false);
                    continue;
                }
            }
            let next = scratch(&mut p.worlds, k, cur);
            let step = next.step(cfg, a);
            let (mut bad, mut seen) = (PropSet::default(), PropSet::default());
            monitor::step_monitors(cur, a, &step, next, &mut bad, &mut seen);
            for p in bad.iter() {
                g.violated[p as usize].get_or_insert(edge);
            }
            for p in seen.iter() {
                g.reached[p as usize].get_or_insert(edge);
            }
            let touched = step.touched.union(next.canonicalize_touched(step.touched));
            encode(
                next,
                Some((cur, parent_key, touched)),
                &mut g.devices,
                &mut g.users,
                key,
            );
            p.hashes.push(state_hash(key));
            p.keys.extend_from_slice(key);
            p.stepped.push(true);
        }
        for &h in &p.hashes {
            self.index.prefetch(h);
        }
    }

    /// Prefetch the states that the look-ups of state `s`'s successors will most likely
    /// compare against (their visited-set slots should be in cache by now).
    #[inline(never)]
    fn prefetch_matches(&self, s: u32) {
        let stride = self.g.stride;
        for &h in &self.ring[(s % LAG) as usize].hashes {
            if let Some(c) = self.index.candidate(h) {
                prefetch_index::prefetch_index(&self.g.states, c as usize * stride);
            }
        }
    }

    /// Look up (and add when new) the successors of state `s`, in action order, and write
    /// its edges.
    #[inline(never)]
    fn look_up(
        &mut self,
        s: u32,
        max_states: u64,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), ExploreError> {
        let g = &mut self.g;
        let stride = g.stride;
        let p = &self.ring[(s % LAG) as usize];
        for (k, &h) in p.hashes.iter().enumerate() {
            let key = &p.keys[k * stride..(k + 1) * stride];
            let states = &g.states;
            let found = self.index.find(h, |j| {
                same_words(&states[j as usize * stride..(j as usize + 1) * stride], key)
            });
            let t = match found {
                Probe::Found(t) => t,
                Probe::Vacant(slot) => {
                    let t = g.len() as u32;
                    if u64::from(t) >= max_states {
                        return Err(ExploreError::TooManyStates { limit: max_states });
                    }
                    g.states.extend_from_slice(key);
                    self.index.insert_at(slot, h, t);
                    // A parent rewrite has the parent's user tables, so the state
                    // predicates (which read only those) found whatever they find there
                    // already, at the parent or earlier.
                    if p.stepped[k] {
                        let mut bad = PropSet::default();
                        state_monitors(self.cfg, &p.worlds[k], &mut bad);
                        for q in bad.iter() {
                            g.violated[q as usize].get_or_insert(Found::State(t));
                        }
                    }
                    if t & 0xffff == 0 {
                        progress(Progress {
                            states: u64::from(t),
                            edges: g.targets.len() as u64,
                            depth: g.levels.len() as u32,
                            done: false,
                        });
                    }
                    t
                }
            };
            g.targets.push(t);
        }
        assert!(
            g.targets.len() < u32::MAX as usize,
            "invariant: fewer than 2^32 edges"
        );
        g.offsets.push(g.targets.len() as u32);
        Ok(())
    }
}

/// Explore every state reachable from the initial world, checking the safety monitors and
/// witnesses on every edge and state. `progress` is called every 2^16 states.
///
/// The states are found in breadth-first order, in a pipeline: the successors of a state
/// are generated [`LAG`] states ahead of their look-ups in the visited set, so that the
/// look-ups' cache misses are prefetched while other states are generated. The pipeline is
/// drained at the end of each BFS level, so that the levels stay exact.
pub fn explore(
    cfg: &Config,
    max_states: u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<Graph, ExploreError> {
    let mut devices = Interner::new();
    let mut users = Interner::new();
    let mut init = World::new(cfg);
    init.canonicalize();
    let stride = init.devices.len() + init.users.len() + 1;
    let mut key = Vec::with_capacity(stride);
    encode(&init, None, &mut devices, &mut users, &mut key);
    let nprops = Prop::ALL.len();
    let mut g = Graph {
        cfg: cfg.clone(),
        stride,
        states: key.clone(),
        offsets: vec![0],
        targets: Vec::new(),
        levels: vec![0],
        devices,
        users,
        violated: vec![None; nprops],
        reached: vec![None; nprops],
    };
    let mut bad = PropSet::default();
    state_monitors(cfg, &init, &mut bad);
    for p in bad.iter() {
        g.violated[p as usize].get_or_insert(Found::State(0));
    }
    let mut index = Visited::new();
    match index.find(state_hash(&key), |_| false) {
        Probe::Vacant(slot) => index.insert_at(slot, state_hash(&key), 0),
        Probe::Found(_) => unreachable!("invariant: the visited set starts empty"),
    }
    let devices = init.devices.len();
    let per_user = devices / init.users.len().max(1);
    let mut x = Explorer {
        cfg,
        g,
        index,
        device_steps: HashMap::default(),
        device_ids: IdLists::default(),
        user_ids: IdLists::default(),
        cur: init,
        held: Vec::with_capacity(stride),
        actions: Vec::new(),
        key,
        ring: (0..LAG).map(|_| Pending::default()).collect(),
        devices,
        per_user,
    };
    // States `looked..generated` have their successors generated, not yet looked up.
    let (mut generated, mut looked) = (0u32, 0u32);
    let mut level_end = 1u32;
    loop {
        if looked == generated {
            if generated as usize == x.g.len() {
                break;
            }
            if generated == level_end {
                x.g.levels.push(generated);
                level_end = x.g.len() as u32;
            }
        }
        if generated < level_end && generated - looked < LAG {
            x.generate(generated);
            if generated > looked {
                x.prefetch_matches(generated - 1);
            }
            generated += 1;
        } else {
            x.look_up(looked, max_states, progress)?;
            looked += 1;
        }
    }
    let mut g = x.g;
    progress(Progress {
        states: g.len() as u64,
        edges: g.targets.len() as u64,
        depth: g.levels.len() as u32,
        done: true,
    });
    g.states.shrink_to_fit();
    g.targets.shrink_to_fit();
    g.offsets.shrink_to_fit();
    Ok(g)
}
