//! Breadth-first exploration of the reachable state graph, stored compactly.
//!
//! A state is stored as a few 32-bit words: one per device and one per user, each the index
//! of that component in an interning table (the collapse compression of SPIN), plus one word
//! of counters. Components repeat across states far more than whole states do, so the tables
//! stay small while the state count grows. States are numbered in BFS order, which makes the
//! state array its own queue, makes the BFS levels contiguous ranges (so a shortest path can be
//! recovered without parent pointers), and lets the graph's edges be written as one CSR array.

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
        let words = self.words(s);
        let nd = w.devices.len();
        for (d, dev) in w.devices.iter_mut().enumerate() {
            dev.clone_from(&self.devices.items[words[d] as usize]);
        }
        let mut active = 0;
        for (u, us) in w.users.iter_mut().enumerate() {
            us.clone_from(&self.users.items[words[nd + u] as usize]);
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

/// `batch[k]`, made a copy of `cur` (growing the batch when needed).
fn scratch<'a>(batch: &'a mut Vec<World>, k: usize, cur: &World) -> &'a mut World {
    if batch.len() <= k {
        batch.push(cur.clone());
    } else {
        batch[k].clone_from(cur);
    }
    &mut batch[k]
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

/// Explore every state reachable from the initial world, checking the safety monitors and
/// witnesses on every edge and state. `progress` is called every 2^16 states.
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
    let mut index: HashTable<u32> = HashTable::new();
    index.insert_unique(fx(&key[..]), 0, |_| 0);
    let mut cur = init.clone();
    let mut batch: Vec<World> = Vec::new();
    let mut keys: Vec<u32> = Vec::new();
    let mut hashes: Vec<u64> = Vec::new();
    let mut actions: Vec<Action> = Vec::new();
    let mut parent_key: Vec<u32> = Vec::with_capacity(stride);
    // The effect of each (device, device-local action) pair met so far, and the Session-IDs
    // of every component: together they give most successors as a rewrite of the parent's
    // words, with no world to clone, step, canonicalize or intern.
    let mut device_steps: HashMap<(u32, Action), DeviceStep, BuildHasherDefault<FxHasher>> =
        HashMap::default();
    let mut device_ids = IdLists::default();
    let mut user_ids = IdLists::default();
    // Which successors of the current state have a world in `batch` (the others are parent
    // rewrites, with the parent's user tables).
    let mut stepped: Vec<bool> = Vec::new();
    let nd = init.devices.len();
    let per_user = nd / init.users.len().max(1);
    let mut level_end = 1u32;
    let mut s = 0u32;
    while (s as usize) < g.len() {
        if s == level_end {
            g.levels.push(s);
            level_end = g.len() as u32;
        }
        g.decode(s, &mut cur);
        parent_key.clear();
        parent_key.extend_from_slice(g.words(s));
        actions.clear();
        cur.actions(cfg, &mut actions);
        // First every successor's key, then the look-ups back to back: the look-ups are
        // independent, so the processor overlaps their cache misses.
        keys.clear();
        hashes.clear();
        stepped.clear();
        for (k, &a) in actions.iter().enumerate() {
            let edge = Found::Edge(s, k as u16);
            if let Some(d) = device_local(a) {
                let memo_key = (parent_key[d], a);
                let ds = match device_steps.get(&memo_key) {
                    Some(&ds) => ds,
                    None => {
                        let next = scratch(&mut batch, k, &cur);
                        let step = next.step(cfg, a);
                        let (mut bad, mut seen) = (PropSet::default(), PropSet::default());
                        monitor::step_monitors(&cur, a, &step, next, &mut bad, &mut seen);
                        next.devices[d].zero_tids();
                        let device = g.devices.intern(&next.devices[d]);
                        let ds = DeviceStep { device, bad, seen };
                        device_steps.insert(memo_key, ds);
                        ds
                    }
                };
                for p in ds.bad.iter() {
                    g.violated[p as usize].get_or_insert(edge);
                }
                for p in ds.seen.iter() {
                    g.reached[p as usize].get_or_insert(edge);
                }
                device_ids.sync(&g.devices.items, |dev, out| {
                    dev.clone().visit_session_ids(|id| out.push(id.0));
                });
                user_ids.sync(&g.users.items, |us, out| {
                    out.extend(us.sessions.iter().map(|s| s.id.0));
                });
                key.clear();
                key.extend_from_slice(&parent_key);
                key[d] = ds.device;
                let counters = key[stride - 1];
                let counters = match a {
                    Action::Crash(_) => counters - 1,
                    Action::LoseConnection(_) => counters - (1 << 8),
                    _ => counters,
                };
                if let Some(next_id) = canonical_next_id(&key, nd, per_user, &device_ids, &user_ids)
                {
                    key[stride - 1] = counters & 0xffff | next_id << 16;
                    hashes.push(fx(&key[..]));
                    keys.extend_from_slice(&key);
                    stepped.push(false);
                    continue;
                }
            }
            let next = scratch(&mut batch, k, &cur);
            let step = next.step(cfg, a);
            let (mut bad, mut seen) = (PropSet::default(), PropSet::default());
            monitor::step_monitors(&cur, a, &step, next, &mut bad, &mut seen);
            for p in bad.iter() {
                g.violated[p as usize].get_or_insert(edge);
            }
            for p in seen.iter() {
                g.reached[p as usize].get_or_insert(edge);
            }
            let touched = step.touched.union(next.canonicalize_touched(step.touched));
            encode(
                next,
                Some((&cur, &parent_key, touched)),
                &mut g.devices,
                &mut g.users,
                &mut key,
            );
            hashes.push(fx(&key[..]));
            keys.extend_from_slice(&key);
            stepped.push(true);
        }
        let stride = g.stride;
        for (k, &h) in hashes.iter().enumerate() {
            let key = &keys[k * stride..(k + 1) * stride];
            let states = &g.states;
            let found = index.find(h, |&j| {
                &states[j as usize * stride..(j as usize + 1) * stride] == key
            });
            let t = match found {
                Some(&t) => t,
                None => {
                    let t = g.len() as u32;
                    if u64::from(t) >= max_states {
                        return Err(ExploreError::TooManyStates { limit: max_states });
                    }
                    g.states.extend_from_slice(key);
                    let states = &g.states;
                    index.insert_unique(h, t, |&j| {
                        fx(&states[j as usize * stride..(j as usize + 1) * stride])
                    });
                    // A parent rewrite has the parent's user tables, so the state
                    // predicates (which read only those) found whatever they find there
                    // already, at the parent or earlier.
                    if stepped[k] {
                        let mut bad = PropSet::default();
                        state_monitors(cfg, &batch[k], &mut bad);
                        for p in bad.iter() {
                            g.violated[p as usize].get_or_insert(Found::State(t));
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
        s += 1;
    }
    drop(index);
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
