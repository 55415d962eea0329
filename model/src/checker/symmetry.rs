//! Symmetry reduction: one stored state per orbit of device and user permutations.
//!
//! The devices of a user are interchangeable, and so are the users: no knob, no property and
//! no step of the core treats device 2 differently from device 0, except through names
//! (`DeviceId`, `UserId`, the Client-ID pools named after them, and the nonces and digests
//! computed from those). So a state and the state with two devices of a user swapped (their
//! names swapped everywhere) are the same situation, and the explorer keeps one of them: the
//! *canonical form* of the orbit.
//!
//! The canonical form composes with the Session-ID renumbering of
//! [`World::canonicalize`](crate::world::World::canonicalize), which numbers a user's IDs in
//! order of first appearance (the user's session table first, then the user's devices in
//! order), and so depends on the order of the devices. It is defined as follows.
//!
//! 1. Renumber Session-IDs (table first): a table's sessions get 0, 1, ... in table order,
//!    which does not depend on the order of the devices.
//! 2. Within each user, give each device a *signature* that does not depend on where the
//!    device sits: the device renamed to device 0 of user 0, with each Session-ID that is in
//!    the user's table written as its table position (which it already is after step 1) and
//!    each other ("stale") Session-ID numbered after the table in order of first appearance
//!    within the device; and the device's *incidence* in the table (which sessions are bound
//!    to it, which carry its Client-ID pool, whether it wrote the presence last). Sort the
//!    devices by (incidence, hash of the signature, signature).
//! 3. Two devices with equal signatures are interchangeable: swapping them changes nothing
//!    once Session-IDs are renumbered, unless they share a stale Session-ID (no step of the
//!    core gives two devices the same Session-ID, but the reduction does not rely on it: then
//!    every order of the tied devices is tried and the least result kept).
//! 4. Move the devices to their sorted places (renaming them, and the table's references to
//!    them), renumber Session-IDs again, and sort the users by their blocks (the table renamed
//!    to user 0, then the devices' signatures).
//!
//! Every choice above depends only on values, never on the order components were met in, so
//! the canonical form (and so the state count, the verdicts and the counterexamples) does not
//! depend on how exploration is scheduled. The canonical test
//! (`random_permutations_have_one_canonical_form`) permutes and renames random reachable
//! states and checks that they get the same form.
//!
//! The explorer computes the form on state words when it can ([`Symmetry::canon_words`]:
//! each component's signature, incidence and renamings are memoized, so a successor's form
//! is a few table look-ups), and on a decoded world otherwise ([`Symmetry::canon_world`]:
//! stale Session-IDs, or IDs out of order).
//!
//! Each edge keeps the permutation that took its concrete successor to the canonical one, so
//! that the liveness checks can follow a device through the quotient (see
//! [`super::liveness`]) and counterexamples replay on the real core with the real names.

use super::graph::Interner;
use crate::config::Config;
use crate::msg::{ClientId, ClientIdPool, DeviceId, Envelope, Primitive, UserId};
use crate::server::{digest, nonce_for, UserServer};
use crate::world::{Device, World};
use rustc_hash::FxHashMap;
use std::cmp::Ordering;

/// The most devices a world has (the explorer's bit masks have 8 bits).
pub const MAX_DEVICES: usize = 8;

/// A permutation of device positions: `p[d]` is where the device at position `d` goes.
/// Positions past the world's devices map to themselves.
pub type Perm = [u8; MAX_DEVICES];

/// The identity permutation.
pub const IDENTITY: Perm = [0, 1, 2, 3, 4, 5, 6, 7];

/// `b ∘ a`: first `a`, then `b`.
pub fn compose(b: &Perm, a: &Perm) -> Perm {
    std::array::from_fn(|i| b[a[i] as usize])
}

/// The inverse permutation.
pub fn inverse(p: &Perm) -> Perm {
    let mut q = IDENTITY;
    for (i, &j) in p.iter().enumerate() {
        q[j as usize] = i as u8;
    }
    q
}

/// The order of the symmetry group of a configuration: `(k!)^u * u!` for `u` users of `k`
/// devices each.
pub fn group_order(cfg: &Config) -> u64 {
    let (u, k) = (
        u64::from(cfg.env.users),
        u64::from(cfg.env.devices_per_user),
    );
    factorial(k).pow(u as u32) * factorial(u)
}

fn factorial(n: u64) -> u64 {
    (1..=n).product()
}

fn fx<T: std::hash::Hash + ?Sized>(t: &T) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    t.hash(&mut h);
    h.finish()
}

/// Rename a Client-ID pool that belongs to a device to the pool of the same kind of `device`
/// of `user`.
const fn rename_pool(pool: ClientIdPool, user: UserId, device: DeviceId) -> ClientIdPool {
    match pool {
        ClientIdPool::Device(_) => ClientIdPool::Device(device),
        ClientIdPool::User(_) => ClientIdPool::User(user),
    }
}

/// The nonce the server issued to slot `s` of pool `old` becomes the one it issues to slot
/// `s` of pool `new`; a value that is no such nonce stays.
fn rename_nonce(n: u32, old: ClientIdPool, new: ClientIdPool, slots: u8) -> u32 {
    (0..=slots)
        .find(|&slot| nonce_for(ClientId { pool: old, slot }) == n)
        .map_or(n, |slot| nonce_for(ClientId { pool: new, slot }))
}

/// The digest `old_user` computes from a nonce of pool `old` becomes the one `new_user`
/// computes from the matching nonce of pool `new`.
fn rename_digest(
    b: u32,
    (old, old_user): (ClientIdPool, UserId),
    (new, new_user): (ClientIdPool, UserId),
    slots: u8,
) -> u32 {
    (0..=slots)
        .find(|&slot| digest(old_user, nonce_for(ClientId { pool: old, slot })) == b)
        .map_or(b, |slot| {
            digest(new_user, nonce_for(ClientId { pool: new, slot }))
        })
}

/// Rename a device to `device` of `user`: its client, and every name in its messages (the
/// Client-IDs, the user, and the nonces and digests computed from them).
pub fn rename_device(cfg: &Config, dev: &mut Device, user: UserId, device: DeviceId) {
    let (old_user, old_device) = (dev.client.user, dev.client.device);
    if (old_user, old_device) == (user, device) {
        return;
    }
    dev.client.user = user;
    dev.client.device = device;
    let slots = cfg.client.client_id_pool;
    let env = |e: &mut Envelope| match &mut e.body {
        Primitive::LoginRequest(lr) => {
            let old = lr.client_id.pool;
            let new = rename_pool(old, user, device);
            lr.user = user;
            lr.client_id.pool = new;
            if let Some(b) = lr.digest_bytes.as_mut() {
                *b = rename_digest(*b, (old, old_user), (new, user), slots);
            }
        }
        Primitive::LoginResponse(r) => {
            let old = r.client_id.pool;
            let new = rename_pool(old, user, device);
            r.client_id.pool = new;
            if let Some(n) = r.nonce.as_mut() {
                *n = rename_nonce(*n, old, new, slots);
            }
        }
        _ => {}
    };
    dev.to_server.iter_mut().for_each(|r| env(&mut r.env));
    dev.to_client.iter_mut().for_each(env);
    dev.pushes.iter_mut().for_each(env);
}

/// Rename a user's table: to `user`, with each device `d` it names renamed to `map(d)`.
pub fn rename_table(us: &mut UserServer, user: UserId, map: impl Fn(u32) -> u32) {
    let pool = |p: ClientIdPool| match p {
        ClientIdPool::Device(d) => ClientIdPool::Device(DeviceId(map(d.0))),
        ClientIdPool::User(_) => ClientIdPool::User(user),
    };
    for s in &mut us.sessions {
        s.device = DeviceId(map(s.device.0));
        s.client_id.pool = pool(s.client_id.pool);
    }
    if let Some(w) = us.presence_writer.as_mut() {
        w.pool = pool(w.pool);
    }
}

/// The incidence of device `d` (absolute) in a table: codes of the sessions bound to it
/// (`4i`) and of those carrying its pool (`4i + 1`), and `u16::MAX` when it wrote presence
/// last. Values are comparable across positions and users.
fn incidence(us: &UserServer, d: u32) -> Vec<u16> {
    let mine = |p: ClientIdPool| p == ClientIdPool::Device(DeviceId(d));
    let mut v = Vec::new();
    for (i, s) in us.sessions.iter().enumerate() {
        let i = u16::try_from(i).unwrap_or(u16::MAX / 4 - 1);
        if s.device.0 == d {
            v.push(4 * i);
        }
        if mine(s.client_id.pool) {
            v.push(4 * i + 1);
        }
    }
    if us.presence_writer.is_some_and(|w| mine(w.pool)) {
        v.push(u16::MAX);
    }
    v
}

/// A key whose order is the lexicographic order of incidences wherever two keys differ: the
/// first three values plus one, 17 bits each (0 past the end). Equal keys need the full
/// comparison.
fn order_key(v: &[u16]) -> u64 {
    (0..3).fold(0u64, |acc, i| {
        acc << 17 | v.get(i).map_or(0, |&x| u64::from(x) + 1)
    })
}

/// What the canonical form reads of an interned table.
#[derive(Clone, Copy, Debug)]
struct TableFacts {
    /// The table renamed to user 0 (devices relative to the user's first), in `nf_tables`.
    nf: u32,
    /// Its sessions.
    len: u32,
    /// The incidence of each of the user's devices, in `incidences`.
    inc: [u32; MAX_DEVICES],
}

/// The symmetry reduction's memos, for one exploration.
pub struct Symmetry {
    cfg: Config,
    users: usize,
    per_user: usize,
    nd: usize,
    order: u64,
    /// Per interned device: its signature in `nf_devices` when its Session-IDs are all in its
    /// user's table, one past its largest Session-ID, and its position.
    dev: Vec<(u32, u32, u8)>,
    nf_devices: Interner<Device>,
    nf_dev_hash: Vec<u64>,
    tab: Vec<TableFacts>,
    nf_tables: Interner<UserServer>,
    nf_tab_hash: Vec<u64>,
    incidences: Interner<Vec<u16>>,
    /// Per incidence: [`order_key`] of it, which orders most pairs without reading them.
    inc_keys: Vec<u64>,
    /// `moved[c * nd + p]`: device `c` renamed to position `p`, plus one (0: not yet known).
    moved: Vec<u32>,
    tables_moved: FxHashMap<(u32, u8, Perm), u32>,
    /// `(device, table length)`: the device's signature when its Session-IDs from the table
    /// length up are stale (numbered locally from there), their count, and a mask of their
    /// raw values (bit `id % 64`), to tell when two devices might share one.
    stale: FxHashMap<(u32, u32), (u32, u32, u64)>,
    /// `(signature, table length, shift, position)`: the signature with its stale
    /// Session-IDs shifted up, renamed to the position.
    realized: FxHashMap<(u32, u32, u32, u8), u32>,
    /// The permutations of the edges, interned (0 is the identity).
    pub perms: Interner<Perm>,
    /// Scratch: the signatures of a decoded world's devices.
    sigs: Vec<Device>,
}

/// A canonical form: the permutation that took the state to it (`perm[d]`: where device `d`
/// went) and the size of its orbit (the concrete states it stands for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Canon {
    /// Where each device went.
    pub perm: Perm,
    /// The number of distinct concrete states in the orbit.
    pub orbit: u64,
}

impl Symmetry {
    /// The reduction for a configuration.
    pub fn new(cfg: &Config) -> Symmetry {
        let users = cfg.env.users as usize;
        let per_user = cfg.env.devices_per_user as usize;
        let mut perms = Interner::new();
        perms.intern(&IDENTITY);
        Symmetry {
            cfg: cfg.clone(),
            users,
            per_user,
            nd: users * per_user,
            order: group_order(cfg),
            dev: Vec::new(),
            nf_devices: Interner::new(),
            nf_dev_hash: Vec::new(),
            tab: Vec::new(),
            nf_tables: Interner::new(),
            nf_tab_hash: Vec::new(),
            incidences: Interner::new(),
            inc_keys: Vec::new(),
            moved: Vec::new(),
            tables_moved: FxHashMap::default(),
            stale: FxHashMap::default(),
            realized: FxHashMap::default(),
            perms,
            sigs: Vec::new(),
        }
    }

    /// Record the facts of the components interned since the last call.
    #[inline]
    fn sync(&mut self, devices: &Interner<Device>, users: &Interner<UserServer>) {
        if self.dev.len() == devices.items.len() && self.tab.len() == users.items.len() {
            return;
        }
        self.sync_new(devices, users);
    }

    /// The work of `sync` when there are new components (out of line: it is rare).
    #[inline(never)]
    fn sync_new(&mut self, devices: &Interner<Device>, users: &Interner<UserServer>) {
        for dev in &devices.items[self.dev.len()..] {
            let mut end = 0;
            let mut d = dev.clone();
            d.visit_session_ids(|s| end = end.max(s.0 + 1));
            rename_device(&self.cfg, &mut d, UserId(0), DeviceId(0));
            let nf = self.nf_devices.intern(&d);
            if nf as usize == self.nf_dev_hash.len() {
                self.nf_dev_hash.push(fx(&d));
            }
            self.dev.push((nf, end, dev.client.device.0 as u8));
        }
        for us in &users.items[self.tab.len()..] {
            // The table's user is the user of the devices it names; a table that names none
            // reads the same at every user once renamed.
            let named = us
                .sessions
                .iter()
                .map(|s| s.device.0)
                .chain(us.presence_writer.and_then(|w| match w.pool {
                    ClientIdPool::Device(d) => Some(d.0),
                    ClientIdPool::User(_) => None,
                }))
                .next();
            let user = named.map_or(0, |d| d as usize / self.per_user.max(1));
            let base = (user * self.per_user) as u32;
            let mut inc = [0; MAX_DEVICES];
            for (j, slot) in inc.iter_mut().enumerate().take(self.per_user) {
                let v = incidence(us, base + j as u32);
                *slot = self.incidences.intern(&v);
                if *slot as usize == self.inc_keys.len() {
                    self.inc_keys.push(order_key(&v));
                }
            }
            let mut t = us.clone();
            rename_table(&mut t, UserId(0), |d| d - base);
            let nf = self.nf_tables.intern(&t);
            if nf as usize == self.nf_tab_hash.len() {
                self.nf_tab_hash.push(fx(&t));
            }
            self.tab.push(TableFacts {
                nf,
                len: us.sessions.len() as u32,
                inc,
            });
        }
    }

    /// The order of devices by (incidence, signature): `a` and `b` are (incidence, signature)
    /// indices.
    fn cmp_dev(&self, a: (u32, u32), b: (u32, u32)) -> Ordering {
        if a.0 != b.0 {
            let (ka, kb) = (self.inc_keys[a.0 as usize], self.inc_keys[b.0 as usize]);
            return ka.cmp(&kb).then_with(|| {
                self.incidences.items[a.0 as usize].cmp(&self.incidences.items[b.0 as usize])
            });
        }
        if a.1 == b.1 {
            return Ordering::Equal;
        }
        let (ha, hb) = (
            self.nf_dev_hash[a.1 as usize],
            self.nf_dev_hash[b.1 as usize],
        );
        ha.cmp(&hb).then_with(|| {
            self.nf_devices.items[a.1 as usize].cmp(&self.nf_devices.items[b.1 as usize])
        })
    }

    /// The order of name-free tables.
    fn cmp_tab(&self, a: u32, b: u32) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        let (ha, hb) = (self.nf_tab_hash[a as usize], self.nf_tab_hash[b as usize]);
        ha.cmp(&hb)
            .then_with(|| self.nf_tables.items[a as usize].cmp(&self.nf_tables.items[b as usize]))
    }

    /// Device `c` renamed to position `p`.
    fn moved(&mut self, c: u32, p: usize, devices: &mut Interner<Device>) -> u32 {
        if self.dev[c as usize].2 as usize == p {
            return c;
        }
        let slot = c as usize * self.nd + p;
        if self.moved.len() <= slot {
            self.moved.resize((c as usize + 1) * self.nd, 0);
        }
        if self.moved[slot] != 0 {
            return self.moved[slot] - 1;
        }
        let mut d = devices.items[c as usize].clone();
        rename_device(
            &self.cfg,
            &mut d,
            UserId((p / self.per_user) as u32),
            DeviceId(p as u32),
        );
        let i = devices.intern(&d);
        self.moved[slot] = i + 1;
        i
    }

    /// Table `t` of user `from` moved to user `to`, with its devices permuted by `sigma`
    /// (relative positions).
    fn table_moved(
        &mut self,
        t: u32,
        from: usize,
        to: usize,
        sigma: &Perm,
        users: &mut Interner<UserServer>,
    ) -> u32 {
        if from == to && sigma == &IDENTITY {
            return t;
        }
        let key = (t, to as u8, *sigma);
        if let Some(&m) = self.tables_moved.get(&key) {
            return m;
        }
        let k = self.per_user as u32;
        let mut us = users.items[t as usize].clone();
        let (from, to) = (from as u32, to as u32);
        rename_table(&mut us, UserId(to), |d| {
            to * k + u32::from(sigma[(d - from * k) as usize])
        });
        let m = users.intern(&us);
        self.tables_moved.insert(key, m);
        m
    }

    /// The signature of device `c` in a block whose table has `m` sessions (see
    /// [`Symmetry::stale`]).
    fn stale_sig(&mut self, c: u32, m: u32, devices: &Interner<Device>) -> (u32, u32, u64) {
        if let Some(&r) = self.stale.get(&(c, m)) {
            return r;
        }
        let mut d = devices.items[c as usize].clone();
        let mut local: Vec<u32> = Vec::new();
        let mut mask = 0u64;
        d.visit_session_ids(|s| {
            if s.0 >= m {
                mask |= 1 << (s.0 % 64);
                let i = local.iter().position(|&x| x == s.0).unwrap_or_else(|| {
                    local.push(s.0);
                    local.len() - 1
                });
                s.0 = m + i as u32;
            }
        });
        rename_device(&self.cfg, &mut d, UserId(0), DeviceId(0));
        let sig = self.nf_devices.intern(&d);
        if sig as usize == self.nf_dev_hash.len() {
            self.nf_dev_hash.push(fx(&d));
        }
        let r = (sig, local.len() as u32, mask);
        self.stale.insert((c, m), r);
        r
    }

    /// Signature `sig` (stale Session-IDs from `m` up) with its stale IDs shifted up by
    /// `shift`, as the device at position `p`.
    fn realize(
        &mut self,
        sig: u32,
        m: u32,
        shift: u32,
        p: usize,
        devices: &mut Interner<Device>,
    ) -> u32 {
        let key = (sig, m, shift, p as u8);
        if let Some(&c) = self.realized.get(&key) {
            return c;
        }
        let mut d = self.nf_devices.items[sig as usize].clone();
        d.visit_session_ids(|s| {
            if s.0 >= m {
                s.0 += shift;
            }
        });
        rename_device(
            &self.cfg,
            &mut d,
            UserId((p / self.per_user) as u32),
            DeviceId(p as u32),
        );
        let c = devices.intern(&d);
        self.realized.insert(key, c);
        c
    }

    /// When the state with these words is its own canonical form (no stale Session-ID, each
    /// user's devices in order, the users in order), the size of its stabilizer: the
    /// product of the factorials of the runs of equal devices and of equal users. Most
    /// successors of a canonical state are canonical, and this is what
    /// [`Symmetry::canon_words`] would find for them without moving anything.
    fn already_canonical(&self, key: &[u32]) -> Option<u64> {
        let (nd, k) = (self.nd, self.per_user);
        let mut stab = 1u64;
        let mut users_run = 1u64;
        for u in 0..self.users {
            let tf = &self.tab[key[nd + u] as usize];
            let mut prev = (0, 0);
            let mut run = 1u64;
            for j in 0..k {
                let (nf, end, _) = self.dev[key[u * k + j] as usize];
                if end > tf.len {
                    return None;
                }
                let here = (tf.inc[j], nf);
                if j > 0 {
                    match self.cmp_dev(prev, here) {
                        Ordering::Greater => return None,
                        Ordering::Equal => {
                            run += 1;
                            stab *= run;
                        }
                        Ordering::Less => run = 1,
                    }
                }
                prev = here;
            }
            if u > 0 {
                match self.cmp_block(key, u - 1, u) {
                    Ordering::Greater => return None,
                    Ordering::Equal => {
                        users_run += 1;
                        stab *= users_run;
                    }
                    Ordering::Less => users_run = 1,
                }
            }
        }
        Some(stab)
    }

    /// The order of the blocks of users `a` and `b` of a state whose devices are in their
    /// places: the tables renamed to user 0, then the devices' signatures in order.
    fn cmp_block(&self, key: &[u32], a: usize, b: usize) -> Ordering {
        let (nd, k) = (self.nd, self.per_user);
        let (ta, tb) = (key[nd + a] as usize, key[nd + b] as usize);
        self.cmp_tab(self.tab[ta].nf, self.tab[tb].nf)
            .then_with(|| {
                (0..k)
                    .map(|i| {
                        let (da, db) = (key[a * k + i] as usize, key[b * k + i] as usize);
                        self.cmp_dev((0, self.dev[da].0), (0, self.dev[db].0))
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            })
    }

    /// Put the state with these words (device words, then user words, then the counters;
    /// Session-IDs in canonical order for the present order of devices) in canonical form,
    /// in place. `None` when a device holds a Session-ID its user's table does not (the
    /// decoded [`Symmetry::canon_world`] handles that).
    pub fn canon_words(
        &mut self,
        key: &mut [u32],
        devices: &mut Interner<Device>,
        users: &mut Interner<UserServer>,
    ) -> Option<Canon> {
        self.sync(devices, users);
        if let Some(stab) = self.already_canonical(key) {
            return Some(Canon {
                perm: IDENTITY,
                orbit: self.order / stab,
            });
        }
        let (nd, k) = (self.nd, self.per_user);
        let mut stab = 1u64;
        // Per user: the devices' (incidence, signature), in sorted order with their old
        // relative positions, and the permutation of relative positions.
        let mut sorted = [[(0u32, 0u32, 0u8); MAX_DEVICES]; MAX_DEVICES];
        let mut sigmas = [IDENTITY; MAX_DEVICES];
        // Per user and relative position: the number of stale Session-IDs of the device
        // there (before sorting), and whether the user has any.
        let mut counts = [[0u32; MAX_DEVICES]; MAX_DEVICES];
        let mut any_stale = [false; MAX_DEVICES];
        for u in 0..self.users {
            let tf = self.tab[key[nd + u] as usize];
            let row = &mut sorted[u];
            let mut seen = 0u64;
            for j in 0..k {
                let c = key[u * k + j];
                let (nf, end, _) = self.dev[c as usize];
                let sig = if end > tf.len {
                    let (sig, count, mask) = self.stale_sig(c, tf.len, devices);
                    if seen & mask != 0 {
                        // Two devices might share a stale Session-ID: the decoded form
                        // decides.
                        return None;
                    }
                    seen |= mask;
                    counts[u][j] = count;
                    any_stale[u] = true;
                    sig
                } else {
                    nf
                };
                row[j] = (tf.inc[j], sig, j as u8);
            }
            // Insertion sort (a handful of devices), stable.
            for i in 1..k {
                let mut j = i;
                while j > 0
                    && self.cmp_dev((row[j - 1].0, row[j - 1].1), (row[j].0, row[j].1))
                        == Ordering::Greater
                {
                    row.swap(j - 1, j);
                    j -= 1;
                }
            }
            let mut run = 1u64;
            for i in 0..k {
                sigmas[u][row[i].2 as usize] = i as u8;
                if i > 0 && (row[i - 1].0, row[i - 1].1) == (row[i].0, row[i].1) {
                    run += 1;
                    stab *= run;
                } else {
                    run = 1;
                }
            }
        }
        // Each user's devices in their sorted places (still at their user), stale
        // Session-IDs numbered after the table in the new order; and the tables.
        let mut placed = [[0u32; MAX_DEVICES]; MAX_DEVICES];
        let mut tables = [0u32; MAX_DEVICES];
        for u in 0..self.users {
            let m = self.tab[key[nd + u] as usize].len;
            let mut shift = 0;
            for i in 0..k {
                let (_, sig, j) = sorted[u][i];
                let j = j as usize;
                placed[u][i] = if any_stale[u] && counts[u][j] > 0 {
                    let c = self.realize(sig, m, shift, u * k + i, devices);
                    shift += counts[u][j];
                    c
                } else {
                    self.moved(key[u * k + j], u * k + i, devices)
                };
            }
            tables[u] = self.table_moved(key[nd + u], u, u, &sigmas[u], users);
        }
        self.sync(devices, users);
        // The blocks laid out as state words, for the order of users.
        let mut laid = [0u32; 2 * MAX_DEVICES];
        for u in 0..self.users {
            laid[u * k..(u + 1) * k].copy_from_slice(&placed[u][..k]);
            laid[nd + u] = tables[u];
        }
        let block_cmp = |s: &Self, a: usize, b: usize| s.cmp_block(&laid, a, b);
        let mut uorder: [usize; MAX_DEVICES] = std::array::from_fn(|i| i);
        for i in 1..self.users {
            let mut j = i;
            while j > 0 && block_cmp(self, uorder[j - 1], uorder[j]) == Ordering::Greater {
                uorder.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut run = 1u64;
        for i in 1..self.users {
            if block_cmp(self, uorder[i - 1], uorder[i]) == Ordering::Equal {
                run += 1;
                stab *= run;
            } else {
                run = 1;
            }
        }
        let mut perm = IDENTITY;
        for (to, &from) in uorder.iter().enumerate().take(self.users) {
            for j in 0..k {
                let i = sigmas[from][j] as usize;
                perm[from * k + j] = (to * k + i) as u8;
            }
            for i in 0..k {
                key[to * k + i] = self.moved(placed[from][i], to * k + i, devices);
            }
            key[nd + to] = self.table_moved(tables[from], from, to, &IDENTITY, users);
        }
        Some(Canon {
            perm,
            orbit: self.order / stab,
        })
    }

    /// Put a decoded world in canonical form (Session-IDs renumbered too), in place.
    pub fn canon_world(&mut self, w: &mut World) -> Canon {
        let (k, users) = (self.per_user, self.users);
        w.canonicalize();
        let mut stab = 1u64;
        let mut perm = IDENTITY;
        for u in 0..users {
            let base = u * k;
            let m = w.users[u].sessions.len() as u32;
            // Signatures: renamed to device 0 of user 0, stale IDs numbered after the table
            // in order of first appearance within the device.
            self.sigs.clear();
            let mut stale: Vec<Vec<u32>> = Vec::with_capacity(k);
            for j in 0..k {
                let mut d = w.devices[base + j].clone();
                rename_device(&self.cfg, &mut d, UserId(0), DeviceId(0));
                let mut local: Vec<u32> = Vec::new();
                d.visit_session_ids(|s| {
                    if s.0 >= m {
                        let i = match local.iter().position(|&x| x == s.0) {
                            Some(i) => i,
                            None => {
                                local.push(s.0);
                                local.len() - 1
                            }
                        };
                        s.0 = m + i as u32;
                    }
                });
                stale.push(local);
                self.sigs.push(d);
            }
            let inc: Vec<Vec<u16>> = (0..k)
                .map(|j| incidence(&w.users[u], (base + j) as u32))
                .collect();
            let hashes: Vec<u64> = self.sigs.iter().map(fx).collect();
            let key_of = |j: usize| (&inc[j], hashes[j], &self.sigs[j]);
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_by(|&a, &b| key_of(a).cmp(&key_of(b)));
            let shared =
                (0..k).any(|a| (a + 1..k).any(|b| stale[a].iter().any(|x| stale[b].contains(x))));
            // Tie groups: runs of equal keys.
            let mut groups: Vec<(usize, usize)> = Vec::new();
            let mut i = 0;
            while i < k {
                let mut j = i + 1;
                while j < k && key_of(order[i]) == key_of(order[j]) {
                    j += 1;
                }
                if j - i > 1 {
                    groups.push((i, j));
                }
                i = j;
            }
            if shared && !groups.is_empty() {
                // Try every order of the tied devices; keep the least block, and count the
                // orders that give it (the block's stabilizer).
                let mut best: Option<(Vec<Device>, UserServer, Vec<usize>)> = None;
                let mut ties = 0u64;
                let mut cand = order.clone();
                for_each_arrangement(&mut cand, &groups, &mut |o| {
                    let mut tw = w.clone();
                    apply_block(&self.cfg, &mut tw, u, k, o);
                    tw.canonicalize();
                    let block: Vec<Device> = tw.devices[base..base + k]
                        .iter()
                        .map(|d| {
                            let mut d = d.clone();
                            rename_device(&self.cfg, &mut d, UserId(0), DeviceId(0));
                            d
                        })
                        .collect();
                    let table = tw.users[u].clone();
                    match &best {
                        Some((b, t, _)) => match (b, t).cmp(&(&block, &table)) {
                            Ordering::Greater => {
                                best = Some((block, table, o.to_vec()));
                                ties = 1;
                            }
                            Ordering::Equal => ties += 1,
                            Ordering::Less => {}
                        },
                        None => {
                            best = Some((block, table, o.to_vec()));
                            ties = 1;
                        }
                    }
                });
                order = best.expect("invariant: some order of the devices exists").2;
                stab *= ties;
            } else {
                for &(a, b) in &groups {
                    stab *= factorial((b - a) as u64);
                }
            }
            for (i, &j) in order.iter().enumerate() {
                perm[base + j] = (base + i) as u8;
            }
            apply_block(&self.cfg, w, u, k, &order);
        }
        w.canonicalize();
        // Sort the users by their blocks.
        let blocks: Vec<(UserServer, Vec<Device>)> = (0..users)
            .map(|u| {
                let mut t = w.users[u].clone();
                let base = (u * k) as u32;
                rename_table(&mut t, UserId(0), |d| d - base);
                let devs = w.devices[u * k..(u + 1) * k]
                    .iter()
                    .map(|d| {
                        let mut d = d.clone();
                        rename_device(&self.cfg, &mut d, UserId(0), DeviceId(0));
                        d
                    })
                    .collect();
                (t, devs)
            })
            .collect();
        let block_key = |u: usize| {
            let (t, devs) = &blocks[u];
            (
                fx(t),
                t,
                devs.iter().map(|d| (fx(d), d)).collect::<Vec<_>>(),
            )
        };
        let mut uorder: Vec<usize> = (0..users).collect();
        uorder.sort_by(|&a, &b| block_key(a).cmp(&block_key(b)));
        let mut run = 1u64;
        for i in 1..users {
            if block_key(uorder[i - 1]) == block_key(uorder[i]) {
                run += 1;
                stab *= run;
            } else {
                run = 1;
            }
        }
        if uorder.iter().enumerate().any(|(i, &u)| i != u) {
            // The users move as blocks: user `uorder[to]` goes to `to`.
            let mut users = IDENTITY;
            for (to, &from) in uorder.iter().enumerate() {
                for j in 0..k {
                    users[from * k + j] = (to * k + j) as u8;
                }
            }
            *w = permute_world(&self.cfg, w, &users);
            perm = compose(&users, &perm);
        }
        Canon {
            perm,
            orbit: self.order / stab,
        }
    }
}

/// Move user `u`'s devices so that the device at relative position `order[i]` goes to `i`
/// ([`permute_world`] within the user).
fn apply_block(cfg: &Config, w: &mut World, u: usize, k: usize, order: &[usize]) {
    if order.iter().enumerate().all(|(i, &j)| i == j) {
        return;
    }
    let mut p = IDENTITY;
    for (i, &j) in order.iter().enumerate() {
        p[u * k + j] = (u * k + i) as u8;
    }
    *w = permute_world(cfg, w, &p);
}

/// Call `f` with every arrangement of `order` that permutes only within the `groups`
/// (half-open ranges of positions).
fn for_each_arrangement(
    order: &mut [usize],
    groups: &[(usize, usize)],
    f: &mut dyn FnMut(&[usize]),
) {
    let Some((&(a, b), rest)) = groups.split_first() else {
        f(order);
        return;
    };
    permute(order, a, b, &mut |o| for_each_arrangement(o, rest, f));
}

/// Every order of `order[a..b]`, by swapping each element to the front in turn.
fn permute(order: &mut [usize], a: usize, b: usize, f: &mut dyn FnMut(&mut [usize])) {
    if b - a <= 1 {
        f(order);
        return;
    }
    for i in a..b {
        order.swap(a, i);
        permute(order, a + 1, b, f);
        order.swap(a, i);
    }
}

/// The world with its devices permuted by `perm` (the device at `d` goes to `perm[d]`,
/// renamed, with its user's table following it): `perm` must keep each user's devices
/// together, as the symmetry group does. For tests and tools: the explorer never builds
/// permuted worlds this way.
pub fn permute_world(cfg: &Config, w: &World, perm: &Perm) -> World {
    let k = cfg.env.devices_per_user as usize;
    let mut out = w.clone();
    for (d, dev) in w.devices.iter().enumerate() {
        let to = perm[d] as usize;
        let mut dev = dev.clone();
        rename_device(cfg, &mut dev, UserId((to / k) as u32), DeviceId(to as u32));
        out.devices[to] = dev;
    }
    for (u, us) in w.users.iter().enumerate() {
        let to = perm[u * k] as usize / k;
        let mut us = us.clone();
        rename_table(&mut us, UserId(to as u32), |d| u32::from(perm[d as usize]));
        out.users[to] = us;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where two incidences' keys differ, the keys order them as the incidences do; equal
    /// keys happen only for incidences that share their first three values.
    #[test]
    fn incidence_keys_agree_with_the_order_of_incidences() {
        let values = [0u16, 1, 4, 5, 8, 9, u16::MAX];
        let mut all: Vec<Vec<u16>> = vec![Vec::new()];
        for len in 1..=4 {
            let mut next = Vec::new();
            for v in all.iter().filter(|v| v.len() == len - 1) {
                for &x in &values {
                    let mut w = v.clone();
                    w.push(x);
                    next.push(w);
                }
            }
            all.extend(next);
        }
        for a in &all {
            for b in &all {
                let (ka, kb) = (order_key(a), order_key(b));
                if ka == kb {
                    assert_eq!(a[..a.len().min(3)], b[..b.len().min(3)], "{a:?} {b:?}");
                } else {
                    assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} {b:?}");
                }
            }
        }
    }
}
