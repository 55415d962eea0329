//! Classify the devices a run leaves without a session: **trapped** (the checker's deadlock: no
//! sequence of protocol steps leads the device back to a session) or **slow** (a way back is
//! still open; the device is merely not back yet).
//!
//! The simulator runs the protocol core the checker explores, so the state of one user at the
//! end of a run (its session table at the server, its devices' clients, the messages on their
//! way) is a state of the checker's world ([`imps_model::world::World`]) with one user. This
//! module builds that world and asks [`imps_model::checker::trap::trapped`]. The server is
//! sharded by user and a user's devices only ever see that user's sessions, so one user's
//! world decides for its devices; the one value shared across users, the server's count of
//! active sessions (for `server.max_sessions_total`), is carried over as it stands, the other
//! users' sessions then counting as held for good.
//!
//! The mapping:
//! * users and devices are renumbered (user 0, devices `0..devices_per_user`), and so are the
//!   Client-IDs in sessions and messages, with the 4-way nonces and digests that derive from
//!   them; Session-IDs are renumbered and Transaction-IDs zeroed by canonicalization;
//! * time is abstract in the checker: session times are zeroed, and the enabled timers follow
//!   from the phases (a retry timer in `Backoff`, a keep-alive when `Established`, a restart
//!   when `Down`, the expiry of a session nothing keeps alive);
//! * the requests on their way to the server, oldest arrival first, with the answer lost when
//!   their connection is gone; the answer on its way back on the current connection; the
//!   Disconnects pushed since the last boot;
//! * the world's environment is the simulator's: devices send keep-alives, users never log
//!   out, and the scenario's groups and presence values.

use imps_model::checker::trap::{trapped_all, TrapError};
use imps_model::client::{Client, ClientOut, Phase};
use imps_model::config::{Config, EnvConfig};
use imps_model::msg::{ClientId, ClientIdPool, DeviceId, Envelope, Primitive, UserId};
use imps_model::server::{digest, nonce_for, ServerShared, UserServer};
use imps_model::world::{Device, InFlight, World};
use rustc_hash::FxHashMap;

/// The most states one trap search visits before it is an error.
pub const TRAP_SEARCH_LIMIT: usize = 100_000;
/// The most user worlds whose verdicts a run remembers (then the memo starts again).
const MEMO_LIMIT: usize = 100_000;
/// The most devices per user a run may have. The checker's world holds 8, but the trap search
/// covers every interleaving of the user's devices, so it grows exponentially with them: at 4
/// it is a fraction of a run's time, at 8 it takes longer than the run itself.
pub const MAX_DEVICES_PER_USER: u32 = 4;

/// A message of a user's device still on its way at the end of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// A request to the server; `orphan`: its connection is gone, the answer will be lost.
    Request {
        /// The message.
        env: Envelope,
        /// The answer will be lost.
        orphan: bool,
    },
    /// The answer to the device's request, on its current connection.
    Answer(Envelope),
    /// A Disconnect pushed to the device since its last boot.
    Push(Envelope),
    /// A message of the device was lost: its connection breaks when it would have arrived.
    ConnectionLoss,
}

/// One user's part of a run at its end, in the simulator's numbering.
#[derive(Clone, Debug)]
pub struct UserState<'a> {
    /// The user's session table at the server.
    pub table: &'a UserServer,
    /// Active sessions at the whole server.
    pub active_total: u32,
    /// The user's devices' clients, in device order (device `first_device + i`).
    pub clients: Vec<Client>,
    /// Per device (same order), its messages still on their way, in arrival order.
    pub pending: Vec<Vec<Pending>>,
}

/// Why a user's state could not be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    /// The state does not fit the checker's world.
    #[error("device {device}: its state does not fit the checker's world: {what}")]
    Unmappable {
        /// The device (simulator numbering).
        device: u32,
        /// What does not fit.
        what: String,
    },
    /// The trap search failed.
    #[error("device {device}: {source}")]
    Search {
        /// The device (simulator numbering).
        device: u32,
        /// Why.
        source: TrapError,
    },
}

/// Renumbering of one user's identities into the checker's world.
#[derive(Clone, Copy)]
struct Ids {
    user: UserId,
    first_device: u32,
    devices: u32,
}

impl Ids {
    fn device(&self, d: DeviceId) -> Option<DeviceId> {
        let i = d.0.checked_sub(self.first_device)?;
        (i < self.devices).then_some(DeviceId(i))
    }

    fn client_id(&self, c: ClientId) -> Option<ClientId> {
        let pool = match c.pool {
            ClientIdPool::Device(d) => ClientIdPool::Device(self.device(d)?),
            ClientIdPool::User(u) if u == self.user => ClientIdPool::User(UserId(0)),
            ClientIdPool::User(_) => return None,
        };
        Some(ClientId { pool, slot: c.slot })
    }

    fn envelope(&self, env: &Envelope) -> Option<Envelope> {
        let mut e = *env;
        match &mut e.body {
            Primitive::LoginRequest(lr) => {
                let cid = self.client_id(lr.client_id)?;
                // A digest computed from the old identities stays valid under the new ones.
                if let Some(bytes) = lr.digest_bytes.as_mut() {
                    if *bytes == digest(lr.user, nonce_for(lr.client_id)) {
                        *bytes = digest(UserId(0), nonce_for(cid));
                    }
                }
                lr.user = UserId(0);
                lr.client_id = cid;
            }
            Primitive::LoginResponse(r) => {
                let cid = self.client_id(r.client_id)?;
                if r.nonce == Some(nonce_for(r.client_id)) {
                    r.nonce = Some(nonce_for(cid));
                }
                r.client_id = cid;
            }
            Primitive::LogoutRequest
            | Primitive::KeepAliveRequest { .. }
            | Primitive::KeepAliveResponse { .. }
            | Primitive::ServiceRequest
            | Primitive::ServiceResponse { .. }
            | Primitive::ClientCapabilityRequest
            | Primitive::ClientCapabilityResponse { .. }
            | Primitive::JoinGroupRequest { .. }
            | Primitive::JoinGroupResponse { .. }
            | Primitive::LeaveGroupRequest { .. }
            | Primitive::LeaveGroupResponse { .. }
            | Primitive::UpdatePresenceRequest { .. }
            | Primitive::PollingRequest
            | Primitive::Status { .. }
            | Primitive::Disconnect { .. } => {}
        }
        Some(e)
    }
}

/// The checker's configuration for a variant as the simulator runs it: one user of `devices`
/// devices that send keep-alives, users who never log out, the scenario's groups and
/// presence values, and no faults (the trap test takes none anyway).
pub fn world_config(cfg: &Config, devices: u32, groups: u8, presence_values: u8) -> Config {
    Config {
        env: EnvConfig {
            users: 1,
            devices_per_user: devices as u8,
            max_crashes: 0,
            max_connection_losses: 0,
            crash_during_login: true,
            loss_during_login: true,
            groups,
            presence_values,
            user_logouts: false,
            keep_alives: true,
            settle_inert_disconnects: true,
        },
        ..cfg.clone()
    }
}

/// The checker's world of one user at the end of a run; `first_device` is the simulator's
/// number of the user's first device, `user` the user's.
pub fn user_world(
    cfg: &Config,
    user: u32,
    first_device: u32,
    state: &UserState<'_>,
) -> Result<World, ClassifyError> {
    let n = state.clients.len() as u32;
    if n == 0 || n > MAX_DEVICES_PER_USER || state.pending.len() != state.clients.len() {
        return Err(ClassifyError::Unmappable {
            device: first_device,
            what: format!("a user of {n} devices (at most {MAX_DEVICES_PER_USER})"),
        });
    }
    let ids = Ids {
        user: UserId(user),
        first_device,
        devices: n,
    };
    let unmappable = |i: u32, what: &str| ClassifyError::Unmappable {
        device: first_device + i,
        what: what.to_string(),
    };
    let mut table = state.table.clone();
    for s in &mut table.sessions {
        s.client_id = ids
            .client_id(s.client_id)
            .ok_or_else(|| unmappable(0, "a session of another user's device"))?;
        s.device = ids
            .device(s.device)
            .ok_or_else(|| unmappable(0, "a session made by another user's device"))?;
        s.last_active_ms = 0;
    }
    table.presence_writer = match table.presence_writer {
        Some(c) => Some(
            ids.client_id(c)
                .ok_or_else(|| unmappable(0, "presence written by another user's device"))?,
        ),
        None => None,
    };
    let mut devices = Vec::with_capacity(n as usize);
    for (i, (client, pending)) in state.clients.iter().zip(&state.pending).enumerate() {
        let i = i as u32;
        if client.user != ids.user || client.device != DeviceId(first_device + i) {
            return Err(unmappable(i, "a client of another user or device"));
        }
        let mut dev = Device {
            client: Client {
                user: UserId(0),
                device: DeviceId(i),
                ..*client
            },
            to_server: Default::default(),
            to_client: None,
            pushes: Default::default(),
        };
        // A connection about to break (a lost message, noticed later) breaks first: its
        // requests' answers are lost and the client backs off. It cannot happen when the
        // liveness phase is longer than the largest latency, which the scenario checks.
        if pending.contains(&Pending::ConnectionLoss) {
            dev.client.connection_lost(&mut ClientOut::default());
        }
        let lost_connection = pending.contains(&Pending::ConnectionLoss);
        for p in pending {
            match *p {
                Pending::Request { env, orphan } => {
                    let env = ids
                        .envelope(&env)
                        .ok_or_else(|| unmappable(i, "a request naming another user's device"))?;
                    let orphan = orphan || lost_connection;
                    dev.to_server
                        .try_push(InFlight { env, orphan })
                        .map_err(|_| {
                            unmappable(i, "more requests in flight than the world holds")
                        })?;
                }
                Pending::Answer(env) => {
                    if lost_connection || dev.client.phase == Phase::Down {
                        continue;
                    }
                    if dev.to_client.is_some() {
                        return Err(unmappable(i, "two answers in flight on one connection"));
                    }
                    dev.to_client =
                        Some(ids.envelope(&env).ok_or_else(|| {
                            unmappable(i, "an answer naming another user's device")
                        })?);
                }
                Pending::Push(env) => {
                    let env = ids
                        .envelope(&env)
                        .ok_or_else(|| unmappable(i, "a push naming another user's device"))?;
                    if !dev.push(cfg, env) {
                        return Err(unmappable(i, "more pushes waiting than the world holds"));
                    }
                }
                Pending::ConnectionLoss => {}
            }
        }
        devices.push(dev);
    }
    Ok(World {
        users: vec![table],
        shared: ServerShared {
            next_session_id: 0,
            active_total: state.active_total,
        },
        devices,
        crashes_left: 0,
        losses_left: 0,
    })
}

/// The trap test with a memo: users in the same (canonical) situation get the same verdicts,
/// and a run leaves many users in few situations.
#[derive(Default)]
pub struct Classifier {
    memo: FxHashMap<World, Vec<bool>>,
}

impl Classifier {
    /// Per device of `world` (built by [`user_world`] with configuration `cfg`), whether it
    /// is trapped ([`trapped_all`]); `first_device` is the simulator's number of the user's
    /// first device, for errors.
    pub fn trapped(
        &mut self,
        cfg: &Config,
        world: &World,
        first_device: u32,
    ) -> Result<Vec<bool>, ClassifyError> {
        let mut key = world.clone();
        key.canonicalize();
        if let Some(v) = self.memo.get(&key) {
            return Ok(v.clone());
        }
        let v = trapped_all(cfg, &key, TRAP_SEARCH_LIMIT).map_err(|source| {
            let local = match source {
                TrapError::Limit { device, .. }
                | TrapError::NoSuchDevice { device, .. }
                | TrapError::Overflow { device, .. } => device,
            };
            ClassifyError::Search {
                device: first_device + local as u32,
                source,
            }
        })?;
        if self.memo.len() >= MEMO_LIMIT {
            self.memo.clear();
        }
        self.memo.insert(key, v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imps_model::checker::{check, Options};
    use imps_model::props::Prop;
    use imps_model::server::ServerOut;
    use imps_model::variant::{resolve_variant, variants_dir};

    fn variant(name: &str) -> Config {
        resolve_variant(name, &variants_dir()).unwrap().1.cfg
    }

    /// The second request of a 4-way login carries a digest of the user and a nonce of the
    /// Client-ID: both change with the renumbering, and the server must still accept it.
    #[test]
    fn a_four_way_login_in_flight_stays_valid_after_renumbering() {
        let cfg = variant("post-cr-four-way");
        let (user, first) = (UserId(7), 14);
        let mut server = UserServer::default();
        let mut shared = ServerShared::default();
        let mut c = Client::new(user, DeviceId(first + 1));
        let mut out = ClientOut::default();
        c.start(&cfg, &mut out);
        let challenge = out.send.take().unwrap();
        let mut sout = ServerOut::default();
        let origin = imps_model::server::Origin {
            user,
            device: DeviceId(first + 1),
        };
        server.handle(&cfg, &mut shared, origin, 0, &challenge, &mut sout);
        c.on_message(&cfg, &sout.reply.unwrap(), &mut out);
        let digest_request = out.send.take().unwrap();
        let state = UserState {
            table: &server,
            active_total: shared.active_total,
            clients: vec![Client::new(user, DeviceId(first)), c],
            pending: vec![
                Vec::new(),
                vec![Pending::Request {
                    env: digest_request,
                    orphan: false,
                }],
            ],
        };
        let wcfg = world_config(&cfg, 2, 0, 0);
        let w = user_world(&wcfg, user.0, first, &state).unwrap();
        let mut after = w.clone();
        let step = after.step(&wcfg, imps_model::world::Action::ServerReceives(1));
        let reply = step.server.unwrap().reply.unwrap();
        match reply.body {
            Primitive::LoginResponse(r) => assert!(r.result.is_success(), "{r:?}"),
            other => panic!("{other:?}"),
        }
        let verdicts = Classifier::default().trapped(&wcfg, &w, first).unwrap();
        assert_eq!(verdicts, [false, false]);
    }

    /// The checker's pre-CR trap, renamed as the simulator would hold it (user 3, device 3),
    /// maps back to the same world and is found trapped; a state that is off by one device is
    /// refused rather than mapped.
    #[test]
    fn the_checkers_trap_renamed_maps_back_and_is_trapped() {
        let cfg = variant("pre-cr");
        let o = check(&cfg, "pre-cr", Options::default(), &mut |_| {}).unwrap();
        let t = o
            .results
            .into_iter()
            .find(|r| r.prop == Prop::NoDeadlock)
            .and_then(|r| r.trace)
            .unwrap();
        let trap = &t.steps[t.loop_start.unwrap() - 1].state;
        let (u, d) = (3u32, 3u32);
        let rename = |e: &Envelope| {
            let mut e = *e;
            match &mut e.body {
                Primitive::LoginRequest(lr) => {
                    assert!(lr.digest_bytes.is_none(), "pre-cr logs in 2-way");
                    lr.user = UserId(u);
                    lr.client_id.pool = ClientIdPool::Device(DeviceId(d));
                }
                Primitive::LoginResponse(r) => r.client_id.pool = ClientIdPool::Device(DeviceId(d)),
                _ => {}
            }
            e
        };
        let dev = &trap.devices[0];
        let mut table = trap.users[0].clone();
        for s in &mut table.sessions {
            s.client_id.pool = ClientIdPool::Device(DeviceId(d));
            s.device = DeviceId(d);
            s.last_active_ms = 123_456;
        }
        let mut pending: Vec<Pending> = dev
            .to_server
            .iter()
            .map(|r| Pending::Request {
                env: rename(&r.env),
                orphan: r.orphan,
            })
            .collect();
        pending.extend(dev.to_client.iter().map(|e| Pending::Answer(rename(e))));
        pending.extend(dev.pushes.iter().map(|e| Pending::Push(rename(e))));
        let state = UserState {
            table: &table,
            active_total: trap.shared.active_total,
            clients: vec![Client {
                user: UserId(u),
                device: DeviceId(d),
                ..dev.client
            }],
            pending: vec![pending],
        };
        let wcfg = world_config(&cfg, 1, 1, 1);
        let mut back = user_world(&wcfg, u, d, &state).unwrap();
        let mut expected = trap.clone();
        expected.crashes_left = 0;
        expected.losses_left = 0;
        back.canonicalize();
        expected.canonicalize();
        assert_eq!(back, expected);
        assert_eq!(
            Classifier::default().trapped(&wcfg, &back, d).unwrap(),
            [true]
        );
        // Off by one: the client is not the user's first device.
        assert!(matches!(
            user_world(&wcfg, u, d + 1, &state),
            Err(ClassifyError::Unmappable { .. })
        ));
    }
}
