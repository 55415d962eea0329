//! Breadth-first exploration of the reachable state graph, stored compactly.
//!
//! A state is stored as a few 32-bit words: one per device and one per user, each the index
//! of that component in an interning table (the collapse compression of SPIN), plus one word
//! of counters. Components repeat across states far more than whole states do, so the tables
//! stay small while the state count grows. States are numbered in BFS order, which makes the
//! state array its own queue, makes the BFS levels contiguous ranges (so a shortest path can be
//! recovered without parent pointers), and lets the graph's edges be written as one CSR array.
//!
//! A successor is computed on the components, not on a world: each step's effect is memoized
//! on the components it reads (a client step on its device, a server step on the user's table,
//! the served device and the server's counters, a pushed Disconnect on its device), and the
//! canonical-form test reads each component's Session-IDs from a side table, so a successor is
//! its parent's words with one or two replaced. A world is decoded and stepped whole only on a
//! memo miss or when the successor's Session-IDs must be renumbered (about 1 edge in 70);
//! [`explore_with`] can step every edge whole, which the tests hold the fast path to.
//!
//! Look-ups in the visited set are software-pipelined: successors are generated in batches
//! of up to `MAX_BATCH` states before their look-ups, and within a batch each successor's
//! visited-set slot is prefetched `PREFETCH` successors ahead and the state it most likely
//! matches half as far ahead.

use super::memo::Memo;
use super::ranked::RankedBits;
use super::rows::{Rows, MAX_WORDS};
use super::symmetry::{Perm, Symmetry, IDENTITY};
use super::visited::{Probe, Visited};
use crate::checker::monitor;
use crate::config::Config;
use crate::msg::{DeviceId, Envelope};
use crate::props::{Prop, PropSet};
use crate::server::UserServer;
use crate::server::{ServerOut, ServerShared};
use crate::world::{expiry_actions, Action, Device, Touched, World, EXPIRY_NOW_MS};
use arrayvec::ArrayVec;
use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::Duration;

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

/// An interning table: each distinct value gets the next index.
#[derive(Debug)]
pub struct Interner<T> {
    /// The values, by index.
    pub items: Vec<T>,
    index: HashTable<u32>,
}

impl<T: Hash + Eq + Clone> Interner<T> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        Interner {
            items: Vec::new(),
            index: HashTable::new(),
        }
    }

    /// The index of `v`, added when new.
    pub(crate) fn intern(&mut self, v: &T) -> u32 {
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

/// The Session-IDs of each interned component, in canonicalization order: the canonical-form
/// test of a successor reads these instead of a decoded world. The test runs a counter of
/// first appearances through each component's IDs ([`IdLists::advance`]); what a component
/// does to a counter below 15 is tabulated, so that the test reads one word per component
/// and shifts it, and reads the list itself only where the table has no answer.
#[derive(Debug, Default)]
struct IdLists {
    /// Per component: for each counter `n` below 15, the counter after its IDs, in bits
    /// `4n..4n + 4`; [`IdLists::READ`] where the list must be read (an ID out of order, or
    /// a counter past 14).
    after: Vec<u64>,
    /// The components' IDs, one list after another.
    ids: Vec<u32>,
    start: Vec<u32>,
}

impl IdLists {
    /// The table's mark for "read the list".
    const READ: u64 = 0xf;

    /// Record the IDs of the components interned since the last call.
    fn sync<T>(&mut self, items: &[T], mut visit: impl FnMut(&T, &mut Vec<u32>)) {
        if self.start.is_empty() {
            self.start.push(0);
        }
        for item in &items[self.after.len()..] {
            let from = self.ids.len();
            visit(item, &mut self.ids);
            let ids = &self.ids[from..];
            let after = (0..15u32).fold(0u64, |w, n| {
                let v = match Self::read(ids, n) {
                    Some(v) if u64::from(v) < Self::READ => u64::from(v),
                    _ => Self::READ,
                };
                w | v << (4 * n)
            });
            self.after.push(after);
            self.start
                .push(u32::try_from(self.ids.len()).expect("invariant: fewer than 2^32 IDs"));
        }
    }

    /// The counter of first appearances after component `i`'s IDs, from `next` (`None`
    /// when one of them appears out of order: it is past the counter).
    #[inline]
    fn advance(&self, i: u32, next: u32) -> Option<u32> {
        if next < 15 {
            let v = self.after[i as usize] >> (4 * next) & Self::READ;
            if v != Self::READ {
                return Some(v as u32);
            }
        }
        let i = i as usize;
        Self::read(
            &self.ids[self.start[i] as usize..self.start[i + 1] as usize],
            next,
        )
    }

    /// The counter after `ids`, read one by one from `next`.
    fn read(ids: &[u32], mut next: u32) -> Option<u32> {
        for &id in ids {
            if id == next {
                next += 1;
            } else if id > next {
                return None;
            }
        }
        Some(next)
    }
}

/// The actions of each device component, computed once per component and budget: a device's
/// actions depend only on its component, its place (the device they name) and whether
/// crashes and connection losses are left. The generator and the weak-fairness search list a
/// state's actions from it ([`ActionTable::state_actions`]), and the way-out check the kinds
/// of its edges.
#[derive(Debug, Default)]
pub(crate) struct ActionTable {
    /// The actions at device 0 of each (component, budget), one list after another.
    actions: Vec<Action>,
    /// Where the list of (component, budget) starts in `actions`, at `4 * component +
    /// budget` (budget bit 0: a crash left, bit 1: a loss left); one more at the end.
    start: Vec<u32>,
}

impl ActionTable {
    /// Add the actions of the components interned since the last call.
    pub(crate) fn sync(&mut self, cfg: &Config, devices: &[Device]) {
        if self.start.is_empty() {
            self.start.push(0);
        }
        for dev in &devices[(self.start.len() - 1) / 4..] {
            for budget in 0..4u8 {
                dev.actions(cfg, 0, budget & 1, budget >> 1, &mut self.actions);
                self.start.push(
                    u32::try_from(self.actions.len()).expect("invariant: fewer than 2^32 actions"),
                );
            }
        }
    }

    /// Where the actions of component `c` with this budget are in [`ActionTable::all`].
    pub(crate) fn range(&self, c: u32, crashes: u8, losses: u8) -> std::ops::Range<usize> {
        let i = 4 * c as usize + usize::from(crashes > 0) + 2 * usize::from(losses > 0);
        self.start[i] as usize..self.start[i + 1] as usize
    }

    /// The actions of component `c` with this budget, at device 0.
    pub(crate) fn get(&self, c: u32, crashes: u8, losses: u8) -> &[Action] {
        &self.actions[self.range(c, crashes, losses)]
    }

    /// Every list, one after another.
    pub(crate) fn all(&self) -> &[Action] {
        &self.actions
    }

    /// The actions of the state with these words, in the order of its edges (what
    /// [`World::actions`] lists for it decoded): each device's in device order, then the
    /// Time-To-Live expiries user by user. The table must be synced with `devices`.
    pub(crate) fn state_actions(
        &self,
        cfg: &Config,
        (devices, users): (&[Device], &[UserServer]),
        words: &[u32],
        nd: usize,
        out: &mut Vec<Action>,
    ) {
        let counters = words.len() - 1;
        let (crashes, losses, _) = unpack_counters(words[counters]);
        for (d, &i) in words[..nd].iter().enumerate() {
            let at_0 = self.get(i, crashes, losses);
            out.extend(at_0.iter().map(|a| a.at_device(d as u8)));
        }
        for (u, &i) in words[nd..counters].iter().enumerate() {
            let us = &users[i as usize];
            expiry_actions(cfg, u as u8, us, |d| &devices[words[d] as usize], out);
        }
    }
}

/// What a device-local action does to a device, whatever the rest of the world: the device
/// after it plus one (with Transaction-IDs zeroed, Session-IDs not yet renumbered; 0: not
/// known yet), and the index in [`Explorer::findings`] of what the step monitors and
/// witnesses found on the way.
#[derive(Clone, Copy, Debug, Default)]
struct DeviceStep {
    device_plus_one: u32,
    found: u32,
}

/// How many device-local actions [`action_code`] numbers.
const ACTION_CODES: usize = 32;

/// A small number for each device-local action of a device (`None` for the server's
/// actions): the column of the device-step memo.
const fn action_code(a: Action) -> Option<usize> {
    use crate::client::UserAction;
    Some(match a {
        Action::Start(_) => 0,
        Action::ClientReceives(_) => 1,
        Action::ClientReceivesPush(_) => 2,
        Action::RetryTimer(_) => 3,
        Action::KeepAliveTimer(_) => 4,
        Action::Crash(_) => 5,
        Action::LoseConnection(_) => 6,
        Action::User(_, UserAction::Login) => 7,
        Action::User(_, UserAction::Logout) => 8,
        Action::User(_, UserAction::Join(g)) if g < 8 => 9 + g as usize,
        Action::User(_, UserAction::Leave(g)) if g < 8 => 17 + g as usize,
        Action::User(_, UserAction::Presence(p)) if p < 7 => 25 + p as usize,
        _ => return None,
    })
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
    /// A state outgrew what the world can hold.
    #[error("{what}: the world's bounds cannot hold this configuration; lower env.max_crashes or env.max_connection_losses, or change the knobs that let it grow")]
    ModelBound {
        /// What outgrew its bound.
        what: String,
    },
}

/// The most Session-IDs a state can hold (the server's canonical counter has 16 bits).
const MAX_SESSION_IDS: u32 = 1 << 16;

/// The most sessions a user's table can hold (an expiry names its session by an 8-bit index).
const MAX_SESSIONS: usize = 256;

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

/// The permutation of each edge, as an index in [`Graph::perms`] (0, the identity, for most
/// edges: a successor is usually canonical already). Only the other edges keep an index, in
/// edge order, found through a bitmap of them and the count of them before each 64-edge
/// word: a bit and a half per edge plus the indices of a few in ten edges, instead of a
/// byte (or two) per edge. An index takes a byte when the symmetry group has at most 256
/// elements (up to 5 devices of one user, or 2 users of 3), two otherwise. Nothing is kept
/// without symmetry reduction.
#[derive(Debug, Default)]
pub struct EdgePerms {
    /// Whether there is a symmetry reduction.
    on: bool,
    /// The edges whose permutation is not the identity (the marked edges).
    marked: RankedBits,
    /// The marked edges' indices, in edge order.
    indices: Indices,
}

/// The permutation indices of the marked edges.
#[derive(Debug)]
enum Indices {
    /// A byte each.
    Narrow(Vec<u8>),
    /// Two bytes each.
    Wide(Vec<u16>),
}

impl Default for Indices {
    fn default() -> Self {
        Indices::Narrow(Vec::new())
    }
}

impl EdgePerms {
    /// Without symmetry reduction: every edge keeps its devices in place.
    fn none() -> EdgePerms {
        EdgePerms::default()
    }

    /// For a group of this order.
    fn for_group(order: u64) -> EdgePerms {
        EdgePerms {
            on: true,
            indices: if order <= 256 {
                Indices::Narrow(Vec::new())
            } else {
                Indices::Wide(Vec::new())
            },
            ..EdgePerms::default()
        }
    }

    /// The permutation index of edge `e` (`None` without symmetry reduction).
    pub fn get(&self, e: usize) -> Option<usize> {
        if !self.on {
            return None;
        }
        if !self.marked.contains(e) {
            return Some(0);
        }
        let i = self.marked.rank(e);
        Some(match &self.indices {
            Indices::Narrow(v) => v[i] as usize,
            Indices::Wide(v) => v[i] as usize,
        })
    }

    /// The edges not mapped to the identity.
    pub fn marked(&self) -> usize {
        self.marked.ones()
    }

    /// Add the permutations of the next edges.
    fn extend(&mut self, perms: &[u16]) {
        if !self.on {
            return;
        }
        self.marked.extend(perms.iter().map(|&p| p != 0));
        let marked = perms.iter().copied().filter(|&p| p != 0);
        match &mut self.indices {
            Indices::Narrow(v) => v.extend(marked.map(|p| {
                u8::try_from(p)
                    .expect("invariant: a group of at most 256 has at most 256 permutations")
            })),
            Indices::Wide(v) => v.extend(marked),
        }
    }

    fn shrink_to_fit(&mut self) {
        self.marked.shrink_to_fit();
        match &mut self.indices {
            Indices::Narrow(v) => v.shrink_to_fit(),
            Indices::Wide(v) => v.shrink_to_fit(),
        }
    }
}

/// The explored graph.
#[derive(Debug)]
pub struct Graph {
    /// The configuration explored.
    pub cfg: Config,
    /// Words per state.
    pub stride: usize,
    /// The states, `stride` words each, in BFS order; state 0 is the initial state.
    pub states: Rows,
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
    /// With symmetry reduction: the permutations of the edges, interned (0 is the
    /// identity); empty without.
    pub perms: Vec<Perm>,
    /// With symmetry reduction: for each edge, the index in `perms` of the permutation that
    /// took its concrete successor (the source's devices after the step) to the stored
    /// canonical state: the device at position `d` of the source is at `perms[..][d]` in
    /// the target. Empty without symmetry reduction (every edge keeps its devices in place).
    pub edge_perm: EdgePerms,
    /// The concrete states the stored ones stand for (the sum of their orbits' sizes); the
    /// state count without symmetry reduction.
    pub concrete: u64,
    /// How long each stage waited for the other, when the exploration ran on two threads
    /// with a clock ([`ExploreOptions::clock`]).
    pub waits: Option<StageWaits>,
}

/// How long each stage of a two-thread exploration waited for the other. The stage that
/// waited less is the one that bounds the exploration's time; half their sum is what a
/// perfectly balanced split of the work between the threads could take off it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageWaits {
    /// The generator: for room in the queue of batches, and for each level's states.
    pub generator: Duration,
    /// The look-ups: for the next batch.
    pub lookups: Duration,
}

impl Graph {
    /// A graph with no states, for a configuration whose states have `stride` words.
    fn empty(cfg: &Config, stride: usize) -> Graph {
        Graph {
            cfg: cfg.clone(),
            stride,
            states: Rows::new(stride),
            offsets: Vec::new(),
            targets: Vec::new(),
            levels: Vec::new(),
            devices: Interner::new(),
            users: Interner::new(),
            violated: Vec::new(),
            reached: Vec::new(),
            perms: Vec::new(),
            edge_perm: EdgePerms::none(),
            concrete: 0,
            waits: None,
        }
    }

    /// Number of states.
    pub fn len(&self) -> usize {
        self.states.len()
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
    pub fn words(&self, s: u32) -> ArrayVec<u32, MAX_WORDS> {
        self.states.row(s as usize)
    }

    /// Word `i` of state `s`.
    pub fn word(&self, s: u32, i: usize) -> u32 {
        self.states.word(s as usize, i)
    }

    /// The device component of state `s` for device `d`.
    pub fn device(&self, s: u32, d: usize) -> &Device {
        &self.devices.items[self.word(s, d) as usize]
    }

    /// Rebuild state `s` into `w` (which must have the configuration's shape).
    pub fn decode(&self, s: u32, w: &mut World) {
        self.decode_words(&self.words(s), w, None);
    }

    /// Rebuild the state with these words into a `w` that holds the state with words
    /// `held` (when given): only the components whose word differs are copied.
    fn decode_words(&self, words: &[u32], w: &mut World, held: Option<&[u32]>) {
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
        (w.crashes_left, w.losses_left, w.shared.next_session_id) =
            unpack_counters(words[self.stride - 1]);
        w.shared.active_total = active;
    }

    /// Record what the monitors found on an edge.
    fn flag(&mut self, bad: PropSet, seen: PropSet, edge: Found) {
        for p in bad.iter() {
            self.violated[p as usize].get_or_insert(edge);
        }
        for p in seen.iter() {
            self.reached[p as usize].get_or_insert(edge);
        }
    }

    /// The BFS depth of state `s`.
    pub fn depth(&self, s: u32) -> usize {
        self.levels.partition_point(|&start| start <= s) - 1
    }

    /// Whether the graph is a symmetry quotient (its edges carry permutations).
    pub fn symmetric(&self) -> bool {
        !self.perms.is_empty()
    }

    /// The permutation of edge `k` of state `s`: where each device of `s` is in the edge's
    /// target.
    pub fn perm(&self, s: u32, k: usize) -> &Perm {
        let e = self.offsets[s as usize] as usize + k;
        match self.edge_perm.get(e) {
            Some(p) => &self.perms[p],
            None => &IDENTITY,
        }
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
    // The explorer stops with `ModelBound` when the counter passes 16 bits.
    let next_id = w.shared.next_session_id.min(MAX_SESSION_IDS - 1);
    key.push(pack_counters(w.crashes_left, w.losses_left, next_id));
}

/// The last word of a state: the crash and loss budgets left and the server's canonical
/// Session-ID counter (below 2^16), interleaved so that the usual values (a counter below
/// 256, budgets below 16) fit in the low 16 bits. The column then stays narrow in [`Rows`]
/// (with the counter in the high half, it widened in every configuration, 2 bytes a state).
pub(crate) fn pack_counters(crashes: u8, losses: u8, next_id: u32) -> u32 {
    debug_assert!(next_id < 1 << 16, "invariant: the counter has 16 bits");
    let (c, l) = (u32::from(crashes), u32::from(losses));
    (next_id & 0xff)
        | (c & 0xf) << 8
        | (l & 0xf) << 12
        | (next_id >> 8) << 16
        | (c >> 4) << 24
        | (l >> 4) << 28
}

/// The crash budget, loss budget and Session-ID counter of a [`pack_counters`] word.
pub(crate) fn unpack_counters(w: u32) -> (u8, u8, u32) {
    let crashes = (w >> 8 & 0xf | (w >> 24 & 0xf) << 4) as u8;
    let losses = (w >> 12 & 0xf | (w >> 28) << 4) as u8;
    (crashes, losses, w & 0xff | (w >> 16 & 0xff) << 8)
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
        let mut next = user_ids.advance(table, 0)?;
        for &d in &key[u * per_user..(u + 1) * per_user] {
            next = device_ids.advance(d, next)?;
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

/// What a server action does to the components it reads, whatever the rest of the world:
/// the user's table after it, the served device after it (for a request; with
/// Transaction-IDs zeroed), the Disconnects it pushes, and what the step monitors and
/// witnesses found.
#[derive(Clone, Copy, Debug, Default)]
struct ServerEffect {
    user: u32,
    /// `u32::MAX` for an expiry.
    device: u32,
    /// Index in [`Explorer::push_lists`] (0: none).
    pushes: u32,
    /// Index in [`Explorer::findings`] of the monitors' findings (0: none).
    found: u32,
}

/// The inputs of a server action: the user's table, the served device (for a request) or
/// the session's index in the table (for an expiry), and the server's shared counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct ServerInput {
    user: u32,
    /// The device's component index, or the session's index in the table.
    what: u32,
    expiry: bool,
    next_session_id: u32,
    active_total: u32,
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Facts about each interned component that the explorer reads instead of a decoded world.
#[derive(Debug, Default)]
struct Facts {
    device_ids: IdLists,
    user_ids: IdLists,
    /// Per user table: what the state predicates of one table find in it.
    user_bad: Vec<PropSet>,
    /// Per user table: its active sessions.
    user_active: Vec<u32>,
    /// The most sessions (active and kept) in any user table.
    max_sessions: usize,
}

impl Facts {
    /// Record the facts of the components interned since the last call. Called on every
    /// edge, and almost always with nothing new: that case is two comparisons.
    #[inline]
    fn sync(&mut self, cfg: &Config, g: &Graph) {
        if self.user_bad.len() == g.users.items.len()
            && self.device_ids.after.len() == g.devices.items.len()
        {
            return;
        }
        self.sync_new(cfg, g);
    }

    /// The work of `sync` when there are new components (out of line: it is rare).
    #[inline(never)]
    fn sync_new(&mut self, cfg: &Config, g: &Graph) {
        self.device_ids.sync(&g.devices.items, |dev, out| {
            dev.clone().visit_session_ids(|id| out.push(id.0));
        });
        self.user_ids.sync(&g.users.items, |us, out| {
            out.extend(us.sessions.iter().map(|s| s.id.0));
        });
        for us in &g.users.items[self.user_bad.len()..] {
            let mut bad = PropSet::default();
            crate::props::check_user_state(cfg, us, &mut bad);
            self.user_bad.push(bad);
            self.user_active.push(us.active_count() as u32);
            self.max_sessions = self.max_sessions.max(us.sessions.len());
        }
    }

    /// What the state predicates find in the state with these words.
    fn state_bad(&self, cfg: &Config, key: &[u32], nd: usize) -> PropSet {
        let mut bad = PropSet::default();
        let mut total = 0;
        for &u in &key[nd..key.len() - 1] {
            bad.0 |= self.user_bad[u as usize].0;
            total += self.user_active[u as usize];
        }
        crate::props::check_server_totals(cfg, total, &mut bad);
        bad
    }
}

/// The successors of a run of consecutive states, generated and waiting for their look-ups.
#[derive(Debug, Default)]
struct Batch {
    /// The first state generated from.
    first: u32,
    /// Per state generated from, its number of successors.
    counts: Vec<u32>,
    /// The successors' words, `stride` each, in state then action order.
    keys: Vec<u32>,
    /// Their hashes.
    hashes: Vec<u64>,
    /// What the state predicates find in each (flagged when it is new).
    state_bad: Vec<PropSet>,
    /// With symmetry reduction: each edge's permutation (index in `Symmetry::perms`) and
    /// the size of its target's orbit.
    perms: Vec<u16>,
    orbits: Vec<u64>,
}

impl Batch {
    /// An empty batch from state `first`, with room for `states` states and `edges`
    /// successors of `stride` words (and their permutations when `perms`).
    fn with_room(first: u32, states: u32, edges: usize, stride: usize, perms: bool) -> Batch {
        let per_edge = if perms { edges } else { 0 };
        Batch {
            first,
            counts: Vec::with_capacity(states as usize),
            keys: Vec::with_capacity(edges * stride),
            hashes: Vec::with_capacity(edges),
            state_bad: Vec::with_capacity(edges),
            perms: Vec::with_capacity(per_edge),
            orbits: Vec::with_capacity(per_edge),
        }
    }
}

/// The most states one batch generates from. Each batch costs a hand-over between the two
/// threads (a wake-up on each side when one waits) and a restart of the look-ups' prefetch
/// pipeline; at 256 states a batch those were a few per cent of both threads, and the two
/// stages waited on each other longer. 4096 took the two-thread exploration of 1 x 5 x 1 from
/// 148.4 s to 124.8 s (README, "Speed and memory of the checker"); 16384 and 65536 gained
/// nothing more on 1 x 4 x 2, and on one thread the size made no difference.
const MAX_BATCH: u32 = 4096;

/// The fewest states one batch generates from.
const MIN_BATCH: u32 = 64;

/// The batches a level is cut into, at least (while they are above [`MIN_BATCH`] states):
/// the look-ups start on a level's first batch, and at its end they finish the batches
/// queued behind the generator, so a level cut into many batches keeps both threads busy
/// for most of it.
const MIN_BATCHES: u32 = 64;

/// How many states one batch generates from, in a level of `level` states.
fn batch_states(level: u32) -> u32 {
    (level / MIN_BATCHES).clamp(MIN_BATCH, MAX_BATCH)
}

/// What the generator sends the look-ups.
enum Msg {
    /// The successors of some states of the level, in order.
    Batch(Batch),
    /// The level's last batch was sent.
    LevelDone,
    /// A state outgrew the world's bounds.
    Failed(ExploreError),
}

/// The state of a breadth-first exploration.
struct Explorer<'a> {
    cfg: &'a Config,
    /// The components and what the monitors found on edges; its `states` hold the level
    /// being generated from, whose first state is `base`.
    g: Graph,
    base: u32,
    /// Step every successor as a whole world (the reference the component steps are
    /// tested against).
    whole_worlds: bool,
    /// The effect of each step met so far, on the components it reads: with the facts of
    /// every component, a successor is a rewrite of its parent's words, with no world to
    /// decode, clone, step, canonicalize or intern. A device-local step is found at
    /// `device_steps[device * ACTION_CODES + action_code(action)]`, without hashing.
    device_steps: Vec<DeviceStep>,
    server_steps: Memo<ServerInput, ServerEffect>,
    /// The steps' monitor findings (bad, seen), by index; entry 0 is nothing found.
    findings: Vec<(PropSet, PropSet)>,
    /// The inputs of the current state's server actions (by action index) and their hashes,
    /// computed before the actions are stepped so that their memo slots are prefetched.
    server_inputs: Vec<Option<(usize, ServerInput, u64)>>,
    pushes: FxMap<(u32, Envelope), u32>,
    /// The Disconnects of the server steps that push any (few do), by index; list 0 is
    /// empty.
    push_lists: Vec<ArrayVec<(DeviceId, Envelope), 2>>,
    facts: Facts,
    device_actions: ActionTable,
    /// The words of the state generated from; `cur` holds them decoded when `decoded`.
    held: Vec<u32>,
    cur: World,
    cur_words: Vec<u32>,
    decoded: bool,
    /// A scratch world for whole-world steps.
    next: World,
    actions: Vec<Action>,
    key: Vec<u32>,
    devices: usize,
    per_user: usize,
    /// The first bound a state outgrew, if any: the exploration stops with an error.
    exceeded: Option<String>,
    /// The symmetry reduction, when on.
    sym: Option<Symmetry>,
}

impl Explorer<'_> {
    /// Decode the state generated from into `cur`, if not done yet.
    fn decode(&mut self) {
        if !self.decoded {
            let held = (!self.cur_words.is_empty()).then_some(&self.cur_words[..]);
            self.g.decode_words(&self.held, &mut self.cur, held);
            self.cur_words.clone_from(&self.held);
            self.decoded = true;
        }
    }

    /// The successor by `a` as a rewrite of the parent's words in `key`, from the step
    /// memos (filling them on a miss). Returns the step's monitor findings, or `None` when
    /// the successor's Session-IDs are out of canonical order (it needs a whole-world step).
    fn rewrite(
        &mut self,
        a: Action,
        server_input: Option<(usize, ServerInput, u64)>,
    ) -> Option<(PropSet, PropSet)> {
        let cfg = self.cfg;
        let (nd, stride) = (self.devices, self.g.stride);
        self.key.clear();
        self.key.extend_from_slice(&self.held);
        let counters = self.held[stride - 1];
        let (bad, seen);
        match a {
            Action::ServerReceives(_) | Action::Expire { .. } => {
                let (u, input, hash) =
                    server_input.expect("invariant: a server action has its inputs computed");
                let effect = match self.server_steps.get(hash, &input) {
                    Some(e) => e,
                    None => {
                        let e = self.serve(input);
                        self.server_steps.insert(hash, input, e);
                        e
                    }
                };
                self.key[nd + u] = effect.user;
                if let Action::ServerReceives(d) = a {
                    self.key[d as usize] = effect.device;
                }
                for &(to, env) in &self.push_lists[effect.pushes as usize] {
                    let to = to.0 as usize;
                    let from = self.key[to];
                    let dev = match self.pushes.get(&(from, env)) {
                        Some(&dev) => dev,
                        None => {
                            let mut dev = self.g.devices.items[from as usize].clone();
                            if !dev.push(cfg, env) {
                                self.exceeded.get_or_insert_with(|| {
                                    crate::world::Overflow::Pushes.to_string()
                                });
                            }
                            dev.zero_tids();
                            let i = self.g.devices.intern(&dev);
                            self.pushes.insert((from, env), i);
                            i
                        }
                    };
                    self.key[to] = dev;
                }
                (bad, seen) = self.findings[effect.found as usize];
            }
            _ => {
                let d = a
                    .device()
                    .expect("invariant: a client action names its device")
                    as usize;
                // Every device-local action has a code (the configuration bounds groups
                // and presence values); one without would take the whole-world step.
                let slot = self.held[d] as usize * ACTION_CODES + action_code(a)?;
                if self.device_steps.len() <= slot {
                    let n = self.g.devices.items.len() * ACTION_CODES;
                    self.device_steps.resize(n, DeviceStep::default());
                }
                let ds = match self.device_steps[slot] {
                    DeviceStep {
                        device_plus_one: 0, ..
                    } => {
                        self.decode();
                        self.next.clone_from(&self.cur);
                        let step = self.next.step(cfg, a);
                        self.check_overflow(&step);
                        let (mut bad, mut seen) = (PropSet::default(), PropSet::default());
                        monitor::step_monitors(
                            &self.cur, a, &step, &self.next, &mut bad, &mut seen,
                        );
                        self.next.devices[d].zero_tids();
                        let device = self.g.devices.intern(&self.next.devices[d]);
                        let ds = DeviceStep {
                            device_plus_one: device + 1,
                            found: self.finding(bad, seen),
                        };
                        self.device_steps[slot] = ds;
                        ds
                    }
                    ds => ds,
                };
                self.key[d] = ds.device_plus_one - 1;
                let (crashes, losses, next_id) = unpack_counters(counters);
                self.key[stride - 1] = match a {
                    Action::Crash(_) => pack_counters(crashes - 1, losses, next_id),
                    Action::LoseConnection(_) => pack_counters(crashes, losses - 1, next_id),
                    _ => counters,
                };
                (bad, seen) = self.findings[ds.found as usize];
            }
        }
        self.facts.sync(cfg, &self.g);
        let next_id = canonical_next_id(
            &self.key,
            nd,
            self.per_user,
            &self.facts.device_ids,
            &self.facts.user_ids,
        )?;
        if next_id >= MAX_SESSION_IDS {
            self.exceeded
                .get_or_insert_with(|| "a state holds more than 65,535 Session-IDs".to_string());
        }
        let next_id = next_id.min(MAX_SESSION_IDS - 1);
        let (crashes, losses, _) = unpack_counters(self.key[stride - 1]);
        self.key[stride - 1] = pack_counters(crashes, losses, next_id);
        Some((bad, seen))
    }

    /// The user and the memo inputs of a server action from the state generated from.
    fn server_input(&self, a: Action) -> Option<(usize, ServerInput, u64)> {
        let (nd, stride) = (self.devices, self.g.stride);
        let (u, what, expiry) = match a {
            Action::ServerReceives(d) => (d as usize / self.per_user, self.held[d as usize], false),
            Action::Expire { user, index } => (user as usize, u32::from(index), true),
            _ => return None,
        };
        let input = ServerInput {
            user: self.held[nd + u],
            what,
            expiry,
            next_session_id: unpack_counters(self.held[stride - 1]).2,
            active_total: self.held[nd..stride - 1]
                .iter()
                .map(|&t| self.facts.user_active[t as usize])
                .sum(),
        };
        Some((u, input, Memo::<ServerInput, ServerEffect>::hash(&input)))
    }

    /// The index in `findings` of what a step's monitors found (0: nothing).
    fn finding(&mut self, bad: PropSet, seen: PropSet) -> u32 {
        if bad.is_empty() && seen.is_empty() {
            return 0;
        }
        self.findings.push((bad, seen));
        u32::try_from(self.findings.len() - 1).expect("invariant: fewer than 2^32 findings")
    }

    /// Note a whole-world step that outgrew a device's queue.
    fn check_overflow(&mut self, step: &crate::world::Step) {
        if let Some(what) = step.overflow {
            self.exceeded.get_or_insert_with(|| what.to_string());
        }
    }

    /// Run a server action on copies of the components it reads.
    fn serve(&mut self, input: ServerInput) -> ServerEffect {
        let cfg = self.cfg;
        let before = &self.g.users.items[input.user as usize];
        let mut us = before.clone();
        let mut shared = ServerShared {
            next_session_id: input.next_session_id,
            active_total: input.active_total,
        };
        let (mut bad, mut seen) = (PropSet::default(), PropSet::default());
        let (device, sout) = if input.expiry {
            let id = us.sessions[input.what as usize].id;
            let mut sout = ServerOut::default();
            us.expire(cfg, &mut shared, EXPIRY_NOW_MS, id, &mut sout);
            let s = crate::props::ServerStep {
                before,
                request: None,
                out: &sout,
                after: &us,
            };
            monitor::server_monitors(s, &mut bad, &mut seen);
            (u32::MAX, sout)
        } else {
            let mut dev = self.g.devices.items[input.what as usize].clone();
            let (req, sout) = dev.serve(cfg, &mut us, &mut shared);
            let s = crate::props::ServerStep {
                before,
                request: Some(&req.env),
                out: &sout,
                after: &us,
            };
            monitor::server_monitors(s, &mut bad, &mut seen);
            dev.zero_tids();
            (self.g.devices.intern(&dev), sout)
        };
        let pushes = if sout.pushes.is_empty() {
            0
        } else {
            self.push_lists.push(sout.pushes);
            u32::try_from(self.push_lists.len() - 1).expect("invariant: fewer than 2^32 lists")
        };
        let found = self.finding(bad, seen);
        ServerEffect {
            user: self.g.users.intern(&us),
            device,
            pushes,
            found,
        }
    }

    /// Generate the successors of state `s` into `batch`, running the step monitors on
    /// every edge.
    fn generate(&mut self, s: u32, batch: &mut Batch) {
        let (cfg, nd) = (self.cfg, self.devices);
        // The facts of the components interned since the last rewrite (by whole-world steps),
        // which this state may hold.
        self.facts.sync(cfg, &self.g);
        if self.facts.max_sessions >= MAX_SESSIONS {
            self.exceeded.get_or_insert_with(|| {
                "a user's session table holds more than 255 sessions".to_string()
            });
            return;
        }
        self.held.clear();
        self.held
            .extend_from_slice(&self.g.states.row((s - self.base) as usize));
        self.decoded = false;
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        if self.whole_worlds {
            self.decode();
            self.cur.actions(cfg, &mut actions);
        } else {
            let components = (&self.g.devices.items[..], &self.g.users.items[..]);
            self.device_actions.sync(cfg, components.0);
            self.device_actions
                .state_actions(cfg, components, &self.held, nd, &mut actions);
        }
        let mut server_inputs = std::mem::take(&mut self.server_inputs);
        server_inputs.clear();
        if !self.whole_worlds {
            for &a in &actions {
                let input = self.server_input(a);
                if let Some((_, _, h)) = input {
                    self.server_steps.prefetch(h);
                }
                server_inputs.push(input);
            }
        }
        batch.counts.push(actions.len() as u32);
        for (k, &a) in actions.iter().enumerate() {
            let edge = Found::Edge(s, k as u16);
            let rewritten = if self.whole_worlds {
                None
            } else {
                self.rewrite(a, server_inputs[k])
            };
            let state_bad = match rewritten {
                Some((bad, seen)) => {
                    self.g.flag(bad, seen, edge);
                    self.facts.state_bad(cfg, &self.key, nd)
                }
                None => {
                    self.decode();
                    self.next.clone_from(&self.cur);
                    let step = self.next.step(cfg, a);
                    self.check_overflow(&step);
                    let (mut bad, mut seen) = (PropSet::default(), PropSet::default());
                    monitor::step_monitors(&self.cur, a, &step, &self.next, &mut bad, &mut seen);
                    self.g.flag(bad, seen, edge);
                    let touched = step
                        .touched
                        .union(self.next.canonicalize_touched(step.touched));
                    if self.next.shared.next_session_id >= MAX_SESSION_IDS {
                        self.exceeded.get_or_insert_with(|| {
                            "a state holds more than 65,535 Session-IDs".to_string()
                        });
                    }
                    encode(
                        &self.next,
                        Some((&self.cur, &self.held, touched)),
                        &mut self.g.devices,
                        &mut self.g.users,
                        &mut self.key,
                    );
                    let mut bad = PropSet::default();
                    state_monitors(cfg, &self.next, &mut bad);
                    bad
                }
            };
            let (perm, orbit) = self.canon_sym();
            batch.hashes.push(state_hash(&self.key));
            batch.keys.extend_from_slice(&self.key);
            batch.state_bad.push(state_bad);
            if self.sym.is_some() {
                batch.perms.push(perm);
                batch.orbits.push(orbit);
            }
        }
        self.actions = actions;
        self.server_inputs = server_inputs;
    }

    /// Generate the successors of every state of the level in `self.g.states` (whose first
    /// state is `self.base`), batch by batch, handing each to `sink`; stops early when
    /// `sink` returns `false` (the look-ups stopped).
    fn generate_level(&mut self, sink: &mut dyn FnMut(Msg) -> bool) {
        let n = self.g.states.len() as u32;
        let mut s = self.base;
        // Room for as many successors as the last batch had, and a quarter more.
        let mut room = 0;
        let per_batch = batch_states(n);
        while s < self.base + n {
            let end = (s + per_batch).min(self.base + n);
            let mut batch = Batch::with_room(s, end - s, room, self.g.stride, self.sym.is_some());
            for t in s..end {
                self.generate(t, &mut batch);
                if let Some(what) = self.exceeded.take() {
                    sink(Msg::Failed(ExploreError::ModelBound { what }));
                    return;
                }
            }
            room = batch.hashes.len() + batch.hashes.len() / 4;
            if !sink(Msg::Batch(batch)) {
                return;
            }
            s = end;
        }
        sink(Msg::LevelDone);
    }

    /// Put the successor in `key` in its symmetry class's canonical form (when the reduction
    /// is on): the index of the permutation that took it there, and its orbit's size.
    fn canon_sym(&mut self) -> (u16, u64) {
        let Some(sym) = self.sym.as_mut() else {
            return (0, 1);
        };
        let c = match sym.canon_words(&mut self.key, &mut self.g.devices, &mut self.g.users) {
            Some(c) => c,
            None => {
                self.g.decode_words(&self.key, &mut self.next, None);
                let c = sym.canon_world(&mut self.next);
                encode(
                    &self.next,
                    None,
                    &mut self.g.devices,
                    &mut self.g.users,
                    &mut self.key,
                );
                c
            }
        };
        // Most successors of a canonical state are canonical already: the identity is
        // interned first, so it needs no look-up.
        let i = if c.perm == IDENTITY {
            0
        } else {
            sym.perms.intern(&c.perm)
        };
        (
            u16::try_from(i).expect("invariant: fewer than 2^16 permutations of 8 devices"),
            c.orbit,
        )
    }
}

/// The look-up side of the exploration: the visited set, the states and the edges.
struct Store {
    stride: usize,
    index: Visited,
    states: Rows,
    offsets: Vec<u32>,
    targets: Vec<u32>,
    edge_perm: EdgePerms,
    levels: Vec<u32>,
    concrete: u64,
    /// First violation of each safety property in a state, with the edge that found the
    /// state first (its source and index), to order it among the generator's findings.
    violated: Vec<Option<(Found, u32, u16)>>,
    max_states: u64,
}

/// How many batches the generator may have handed over that the look-ups have not taken
/// yet, on two threads. Each stage slows down for a while now and then (a visited-set
/// segment that grows holds the look-ups for milliseconds; a run of step-memo misses holds
/// the generator), and a deeper queue lets the other stage go on meanwhile instead of
/// waiting. A batch is the successors of up to [`MAX_BATCH`] states (about 1.3 MB on
/// 1 x 5 x 1, so 85 MB for a full queue there). Deeper still, the generator waits longer at
/// the end of each level, for the look-ups to find the next level's states.
const QUEUE_BATCHES: usize = 64;

/// How far ahead of its look-up a successor's visited-set slot is prefetched (the state it
/// most likely matches is prefetched half as far ahead).
const PREFETCH: usize = 8;

impl Store {
    /// Look up (and add when new) the successors of a batch, in order, and write their
    /// edges.
    fn insert(
        &mut self,
        p: &Batch,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), ExploreError> {
        let stride = self.stride;
        let n = p.hashes.len();
        for &h in p.hashes.iter().take(PREFETCH) {
            self.index.prefetch(h);
        }
        // The state each successor most likely is, found half the prefetch distance ahead
        // (none where not looked for or not there), by successor index modulo PREFETCH.
        let mut candidates = [None; PREFETCH];
        let mut k = 0usize;
        for (i, &count) in p.counts.iter().enumerate() {
            let s = p.first + i as u32;
            for a in 0..count as usize {
                if let Some(&h) = p.hashes.get(k + PREFETCH) {
                    self.index.prefetch(h);
                }
                let ahead = k + PREFETCH / 2;
                if let Some(&h) = p.hashes.get(ahead) {
                    let c = self.index.candidate(h);
                    if let Some(c) = c {
                        self.states.prefetch(c as usize);
                    }
                    candidates[ahead % PREFETCH] = c;
                }
                let h = p.hashes[k];
                let key = &p.keys[k * stride..(k + 1) * stride];
                let states = &self.states;
                // A candidate with these words is the state: states are stored once, and
                // the look-ups since only added others. Otherwise (a fingerprint shared, or
                // the state added since by this batch, or new) the look-up proper.
                let probe = match candidates[k % PREFETCH].take() {
                    Some(c) if states.eq(c as usize, key) => Probe::Found(c),
                    _ => self.index.find(h, |j| states.eq(j as usize, key)),
                };
                let t = match probe {
                    Probe::Found(t) => t,
                    Probe::Vacant(slot) => {
                        let t = self.states.len() as u32;
                        if u64::from(t) >= self.max_states {
                            return Err(ExploreError::TooManyStates {
                                limit: self.max_states,
                            });
                        }
                        self.states.push(key);
                        self.index.insert_at(slot, h, t);
                        self.concrete += p.orbits.get(k).copied().unwrap_or(1);
                        for q in p.state_bad[k].iter() {
                            self.violated[q as usize].get_or_insert((Found::State(t), s, a as u16));
                        }
                        if t & 0xffff == 0 {
                            progress(Progress {
                                states: u64::from(t),
                                edges: self.targets.len() as u64,
                                depth: self.levels.len() as u32,
                                done: false,
                            });
                        }
                        t
                    }
                };
                self.targets.push(t);
                k += 1;
            }
            assert!(
                self.targets.len() < u32::MAX as usize,
                "invariant: fewer than 2^32 edges"
            );
            self.offsets.push(self.targets.len() as u32);
        }
        self.edge_perm.extend(&p.perms);
        debug_assert_eq!(k, n, "invariant: every successor of the batch is looked up");
        Ok(())
    }
}

/// Run `wait` (a blocking hand-over between the stages), adding the time it took on `clock`
/// to `waited` (nothing without a clock).
fn timed<T>(clock: Option<fn() -> Duration>, waited: &mut Duration, wait: impl FnOnce() -> T) -> T {
    let Some(clock) = clock else {
        return wait();
    };
    let since = clock();
    let r = wait();
    *waited += clock().saturating_sub(since);
    r
}

/// Explore every state reachable from the initial world, checking the safety monitors and
/// witnesses on every edge and state. `progress` is called every 2^16 states.
///
/// The states are found in breadth-first order, level by level, in two stages: a generator
/// computes the successors of the level's states in batches (the step memos, the component
/// tables and the canonical forms are its own), and the look-ups add the new ones to the
/// visited set and the state array, in the generator's order, and write the edges. With
/// [`ExploreOptions::threads`] above 1 the two stages run on two threads, the look-ups
/// prefetching ahead in each batch; with 1 they take turns on one. Either way the states
/// are numbered in the same order (state, then action), so the graph, and everything found
/// on it, does not depend on the thread count.
pub fn explore(
    cfg: &Config,
    max_states: u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<Graph, ExploreError> {
    explore_with(cfg, max_states, progress, false)
}

/// [`explore`], stepping every successor as a whole world when `whole_worlds` is set,
/// rather than as a rewrite of its parent's components from the step memos. Both give the
/// same graph; the whole-world one is the reference that tests hold the other to.
pub fn explore_with(
    cfg: &Config,
    max_states: u64,
    progress: &mut dyn FnMut(Progress),
    whole_worlds: bool,
) -> Result<Graph, ExploreError> {
    explore_opts(
        cfg,
        &ExploreOptions {
            max_states,
            symmetry: false,
            whole_worlds,
            threads: 1,
            clock: None,
        },
        progress,
    )
}

/// How to explore.
#[derive(Clone, Copy, Debug)]
pub struct ExploreOptions {
    /// Stop with an error past this many (stored) states.
    pub max_states: u64,
    /// Store one state per orbit of device and user permutations ([`super::symmetry`]).
    pub symmetry: bool,
    /// Step every successor as a whole world (the reference for the component rewrites).
    pub whole_worlds: bool,
    /// Threads: 1 runs both stages on the calling thread; more runs the generator on a
    /// thread of its own (the exploration has two stages, so more than 2 adds nothing).
    pub threads: usize,
    /// A monotonic clock, to time how long each stage waits for the other on two threads
    /// ([`Graph::waits`]); none, no timing. The explorer keeps no clock of its own: only
    /// its statistics read this one, never what it explores.
    pub clock: Option<fn() -> Duration>,
}

/// [`explore`] with every option.
pub fn explore_opts(
    cfg: &Config,
    opts: &ExploreOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Graph, ExploreError> {
    let (max_states, whole_worlds) = (opts.max_states, opts.whole_worlds);
    let mut devices = Interner::new();
    let mut users = Interner::new();
    let mut init = World::new(cfg);
    let mut sym =
        (opts.symmetry && super::symmetry::group_order(cfg) > 1).then(|| Symmetry::new(cfg));
    let init_orbit = match sym.as_mut() {
        Some(sym) => sym.canon_world(&mut init).orbit,
        None => {
            init.canonicalize();
            1
        }
    };
    let stride = init.devices.len() + init.users.len() + 1;
    let mut key = Vec::with_capacity(stride);
    encode(&init, None, &mut devices, &mut users, &mut key);
    let nprops = Prop::ALL.len();
    let mut g = Graph {
        cfg: cfg.clone(),
        stride,
        states: {
            let mut rows = Rows::new(stride);
            rows.push(&key);
            rows
        },
        offsets: vec![0],
        targets: Vec::new(),
        levels: vec![0],
        devices,
        users,
        violated: vec![None; nprops],
        reached: vec![None; nprops],
        perms: Vec::new(),
        edge_perm: EdgePerms::none(),
        concrete: init_orbit,
        waits: None,
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
    let mut store = Store {
        stride,
        index,
        states: std::mem::replace(&mut g.states, Rows::new(stride)),
        offsets: vec![0],
        targets: Vec::new(),
        edge_perm: match &sym {
            Some(_) => EdgePerms::for_group(super::symmetry::group_order(cfg)),
            None => EdgePerms::none(),
        },
        levels: vec![0],
        concrete: init_orbit,
        violated: vec![None; nprops],
        max_states,
    };
    let devices = init.devices.len();
    let per_user = devices / init.users.len().max(1);
    let mut x = Explorer {
        cfg,
        g,
        base: 0,
        whole_worlds,
        device_steps: Vec::new(),
        server_steps: Memo::new(ServerInput {
            user: u32::MAX,
            ..ServerInput::default()
        }),
        findings: vec![(PropSet::default(), PropSet::default())],
        server_inputs: Vec::new(),
        pushes: HashMap::default(),
        push_lists: vec![ArrayVec::new()],
        facts: Facts::default(),
        device_actions: ActionTable::default(),
        held: Vec::with_capacity(stride),
        cur: init.clone(),
        cur_words: Vec::new(),
        decoded: false,
        next: init,
        actions: Vec::new(),
        key,
        devices,
        per_user,
        exceeded: None,
        sym,
    };
    x.facts.sync(cfg, &x.g);
    // Level by level: `level` generates and looks up one level, from its first state. It
    // copies the level's rows for the generator into the generator's buffer (on two
    // threads, two buffers take turns: the previous level's comes back for the next one).
    let levels = |store: &mut Store,
                  level: &mut dyn FnMut(&mut Store, u32) -> Result<(), ExploreError>|
     -> Result<(), ExploreError> {
        let mut lo = 0u32;
        while (lo as usize) < store.states.len() {
            let hi = store.states.len() as u32;
            if lo > 0 {
                store.levels.push(lo);
            }
            level(store, lo)?;
            lo = hi;
        }
        Ok(())
    };
    let (clock, mut waits) = (opts.clock, None);
    let mut x = if opts.threads <= 1 {
        levels(&mut store, &mut |store, base| {
            store
                .states
                .copy_into(base as usize..store.states.len(), &mut x.g.states);
            x.base = base;
            let mut failed = None;
            x.generate_level(&mut |m| match m {
                Msg::Batch(b) => match store.insert(&b, progress) {
                    Ok(()) => true,
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                },
                Msg::LevelDone => true,
                Msg::Failed(e) => {
                    failed = Some(e);
                    false
                }
            });
            failed.map_or(Ok(()), Err)
        })?;
        x
    } else {
        std::thread::scope(|scope| -> Result<Explorer<'_>, ExploreError> {
            let (to_gen, level_rows) = std::sync::mpsc::channel::<(u32, Rows)>();
            let (to_reuse, used_rows) = std::sync::mpsc::channel::<Rows>();
            let (to_look, batches) = std::sync::mpsc::sync_channel::<Msg>(QUEUE_BATCHES);
            let generator = scope.spawn(move || {
                let mut waited = Duration::ZERO;
                while let Ok((base, rows)) = timed(clock, &mut waited, || level_rows.recv()) {
                    // The look-ups may have stopped; then the buffer is not needed.
                    let _ = to_reuse.send(std::mem::replace(&mut x.g.states, rows));
                    x.base = base;
                    x.generate_level(&mut |m| {
                        timed(clock, &mut waited, || to_look.send(m).is_ok())
                    });
                }
                (x, waited)
            });
            let mut lookups_waited = Duration::ZERO;
            let result = levels(&mut store, &mut |store, base| {
                let mut rows = used_rows.try_recv().unwrap_or_else(|_| Rows::new(stride));
                store
                    .states
                    .copy_into(base as usize..store.states.len(), &mut rows);
                to_gen
                    .send((base, rows))
                    .expect("invariant: the generator waits for levels");
                loop {
                    match timed(clock, &mut lookups_waited, || batches.recv())
                        .expect("invariant: the generator ends each level")
                    {
                        Msg::Batch(b) => store.insert(&b, progress)?,
                        Msg::LevelDone => return Ok(()),
                        Msg::Failed(e) => return Err(e),
                    }
                }
            });
            drop(to_gen);
            drop(batches);
            let (x, generator_waited) = generator
                .join()
                .expect("invariant: the generator does not panic");
            if clock.is_some() {
                waits = Some(StageWaits {
                    generator: generator_waited,
                    lookups: lookups_waited,
                });
            }
            result.map(|()| x)
        })?
    };
    // The generator's findings (on edges) and the look-ups' (on new states), the first of
    // each in (state, action) order.
    let mut g = std::mem::replace(&mut x.g, Graph::empty(cfg, stride));
    for (p, found) in store.violated.iter().enumerate() {
        let Some((state, s, k)) = *found else {
            continue;
        };
        let first = match g.violated[p] {
            Some(Found::Edge(es, ek)) => (es, ek) <= (s, k),
            Some(Found::State(_)) => true,
            None => false,
        };
        if !first {
            g.violated[p] = Some(state);
        }
    }
    g.states = store.states;
    g.offsets = store.offsets;
    g.targets = store.targets;
    g.edge_perm = store.edge_perm;
    g.levels = store.levels;
    g.concrete = store.concrete;
    g.waits = waits;
    if let Some(sym) = x.sym.take() {
        g.perms = sym.perms.items;
    }
    progress(Progress {
        states: g.len() as u64,
        edges: g.targets.len() as u64,
        depth: g.levels.len() as u32,
        done: true,
    });
    g.states.shrink_to_fit();
    g.targets.shrink_to_fit();
    g.offsets.shrink_to_fit();
    g.edge_perm.shrink_to_fit();
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The look-ups number each distinct successor once, in order of first appearance, and
    /// every edge leads to its successor's number: with a successor repeated at every
    /// distance from 1 to 40 in a batch (so within and past the candidates' reach, and
    /// added by the same batch shortly before), with different states that share a whole
    /// hash (the candidate is another state), and across batches.
    #[test]
    fn look_ups_number_each_state_once_in_order() {
        let stride = 3;
        let mut store = Store {
            stride,
            index: Visited::new(),
            states: Rows::new(stride),
            offsets: vec![0],
            targets: Vec::new(),
            edge_perm: EdgePerms::none(),
            levels: vec![0],
            concrete: 0,
            violated: vec![None; Prop::ALL.len()],
            max_states: u64::MAX,
        };
        // For each gap from 1 to 40, state 500 + gap comes back every `gap` successors among
        // states below 97, so states repeat at every distance; states 0..8, last, all hash
        // alike. A third of the rows have a word with a high half.
        let key = |n: u32| [n, n % 5, 70_000 * (n % 3)];
        let hash = |n: u32| {
            if n < 8 {
                0x1234_5678_9abc_def0
            } else {
                state_hash(&key(n))
            }
        };
        let mut seq: Vec<u32> = Vec::new();
        for gap in 1..=40u32 {
            for i in 0..60u32 {
                seq.push(if i % gap == 0 {
                    500 + gap
                } else {
                    (i * 37 + gap) % 97
                });
            }
        }
        seq.extend(0..8);
        let mut want: HashMap<u32, u32> = HashMap::default();
        for chunk in seq.chunks(700) {
            let mut b = Batch::with_room(0, 1, chunk.len(), stride, false);
            b.counts.push(chunk.len() as u32);
            for &n in chunk {
                b.keys.extend_from_slice(&key(n));
                b.hashes.push(hash(n));
                b.state_bad.push(PropSet::default());
                let next = want.len() as u32;
                want.entry(n).or_insert(next);
            }
            store.insert(&b, &mut |_| {}).expect("no state cap");
        }
        assert_eq!(store.states.len(), want.len());
        for (e, &n) in seq.iter().enumerate() {
            assert_eq!(store.targets[e], want[&n], "edge {e} to state {n}");
            assert!(store.states.eq(want[&n] as usize, &key(n)));
        }
    }

    /// Edge permutations read back as pushed, identities unmarked and the rest found by the
    /// bitmap and the counts before each word, across many words, in one and two bytes;
    /// without symmetry reduction nothing is kept and every edge reads `None`.
    #[test]
    fn edge_perms_read_back_as_pushed() {
        for (order, top) in [(24u64, 23u16), (720, 719)] {
            let mut perms = EdgePerms::for_group(order);
            let pushed: Vec<u16> = (0..1000u32)
                .map(|e| match e % 7 {
                    0 | 3 => (e % u32::from(top)) as u16 + 1,
                    _ => 0,
                })
                .collect();
            // Batch by batch, of many sizes.
            let (mut e, mut size) = (0, 1);
            while e < pushed.len() {
                let end = (e + size).min(pushed.len());
                perms.extend(&pushed[e..end]);
                (e, size) = (end, size * 3 % 211 + 1);
            }
            perms.shrink_to_fit();
            for (e, &p) in pushed.iter().enumerate() {
                assert_eq!(perms.get(e), Some(p as usize), "edge {e}");
            }
            assert_eq!(perms.marked(), pushed.iter().filter(|&&p| p != 0).count());
        }
        let mut none = EdgePerms::none();
        none.extend(&[0, 3]);
        assert_eq!(none.get(0), None);
        assert_eq!(none.marked(), 0);
    }

    /// The counters word gives back what was packed, for every budget and for counters on
    /// both sides of 2^8, and the usual values (a counter below 256, budgets below 16) keep
    /// its high half zero, so that the state array's column stays narrow.
    #[test]
    fn counters_pack_losslessly_and_narrow() {
        for crashes in 0..=255u8 {
            for losses in [0, 1, 2, 15, 16, 17, 200, 255] {
                for next_id in [0, 1, 7, 255, 256, 257, 4_095, 65_535] {
                    let w = pack_counters(crashes, losses, next_id);
                    assert_eq!(unpack_counters(w), (crashes, losses, next_id));
                    let usual = crashes < 16 && losses < 16 && next_id < 256;
                    assert_eq!(w >> 16 == 0, usual, "{crashes} {losses} {next_id}: {w:#x}");
                }
            }
        }
    }

    /// The table and the lists advance the counter as reading the IDs one by one
    /// ([`IdLists::read`], the definition) does: from counters the table covers and from
    /// counters past it, for lists that take the counter past it, lists with repeats, out of
    /// order, and IDs too large for a table entry.
    #[test]
    fn tabulated_id_lists_advance_as_read_one_by_one() {
        let lists: Vec<Vec<u32>> = vec![
            vec![],
            vec![0],
            vec![2],
            vec![0, 0, 1],
            vec![1, 0],
            vec![3, 4, 3, 5],
            vec![0, 1, 2, 3],
            vec![4, 5, 6, 7, 4],
            vec![65_535],
            vec![0, 70_000],
            vec![12, 13, 14, 15, 16],
            vec![14],
        ];
        let mut l = IdLists::default();
        l.sync(&lists[..4], |ids, out| out.extend_from_slice(ids));
        l.sync(&lists, |ids, out| out.extend_from_slice(ids));
        assert_eq!(l.after.len(), lists.len(), "each list tabulated once");
        // [3, 4, 3, 5] from 3 gives 6; from 0, 3 is out of order (read the list).
        assert_eq!(l.after[5] >> 12 & 0xf, 6);
        assert_eq!(l.after[5] & 0xf, IdLists::READ);
        // [14] from 14 gives 15, which the table cannot hold.
        assert_eq!(l.after[11] >> 56 & 0xf, IdLists::READ);
        for (i, ids) in lists.iter().enumerate() {
            for next in 0..20 {
                assert_eq!(
                    l.advance(i as u32, next),
                    IdLists::read(ids, next),
                    "{ids:?} from {next}"
                );
            }
        }
    }
}
