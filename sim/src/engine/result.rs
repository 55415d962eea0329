//! What one run produces: a [`RunResult`], plain data with integers only, so that it goes
//! through JSON Lines and back exactly and shards merge into the very report an unsharded run
//! prints.

use super::hist::LogHistogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Login counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logins {
    /// Login-Requests with credentials (password or digest) that devices sent.
    pub attempted: u64,
    /// Successful Login-Responses with a Session-ID that reached their device.
    pub succeeded: u64,
    /// Of the attempted, those that asked to recover a stored session.
    pub recoveries_attempted: u64,
    /// Of the succeeded, those that recovered a session.
    pub recoveries_succeeded: u64,
}

impl Logins {
    /// Add another run's counts.
    pub fn add(&mut self, o: &Logins) {
        self.attempted += o.attempted;
        self.succeeded += o.succeeded;
        self.recoveries_attempted += o.recoveries_attempted;
        self.recoveries_succeeded += o.recoveries_succeeded;
    }
}

/// Session counts at the server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sessions {
    /// Sessions created by a fresh login.
    pub created: u64,
    /// Recoveries of an existing session.
    pub recovered: u64,
    /// Sessions ended by a Logout-Request.
    pub ended_logout: u64,
    /// Sessions ended by Time-To-Live expiry.
    pub ended_expired: u64,
    /// Sessions ended to let another login in (`replace-old`).
    pub ended_replaced: u64,
    /// Sessions lost in a server restart (`scenario.outage_kind = "server-restart"`).
    pub ended_restart: u64,
    /// Most active sessions at a whole second of simulated time ([`super::grid`]).
    pub live_peak: u64,
    /// Active sessions at the end.
    pub live_end: u64,
    /// Most orphaned sessions at a whole second: active at the server, but neither the current
    /// nor the stored session of their device, so that nothing but expiry will ever end them.
    pub orphan_peak: u64,
    /// Orphaned sessions at the end.
    pub orphan_end: u64,
}

/// Fault counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Crashes that hit a running device.
    pub crashes: u64,
    /// Messages lost.
    pub lost_messages: u64,
    /// Broken connections the devices noticed (a lost request or answer).
    pub connection_losses: u64,
    /// Answers the server produced for a connection already gone (crash or loss).
    pub answers_to_dead_connections: u64,
    /// Crashes of the correlated outage (also counted in `crashes`).
    pub outage_crashes: u64,
    /// Connections the correlated outage dropped (not counted in `connection_losses`).
    pub outage_connection_losses: u64,
}

/// One point of the sessions-over-time series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Simulated time, ms.
    pub t_ms: u64,
    /// Active sessions at the server.
    pub live: u64,
    /// Devices holding a usable session.
    pub holding: u64,
    /// Orphaned sessions.
    pub orphans: u64,
}

/// A property that some event violated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViolationRecord {
    /// The property's name (`imps_model::props::Prop::name`).
    pub property: String,
    /// Whether it is a safety invariant that stops a run (unless the variant expects it).
    pub invariant: bool,
    /// The variant's `[expect]` says `violated`.
    pub expected: bool,
    /// Events at which the monitor reported it.
    pub count: u64,
    /// The first such event's number (1-based) in the run of its device's partition (the
    /// earliest in simulated time over the partitions, the lowest partition on a tie).
    pub first_event: u64,
    /// Its simulated time, ms.
    pub first_time_ms: u64,
    /// The device of that event.
    pub first_device: u32,
}

/// Requests of one kind the server received.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrimitiveLoad {
    /// In the whole run.
    pub total: u64,
    /// In the busiest second.
    pub peak_per_s: u64,
}

/// The server's load: requests received per second of simulated time ([`super::grid`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Requests in the busiest second, all kinds together.
    pub peak_requests_per_s: u64,
    /// The start of that second, ms.
    pub peak_at_ms: u64,
    /// Per kind received (wire name, `Status` for a client's answer to a Disconnect).
    pub by_primitive: BTreeMap<String, PrimitiveLoad>,
    /// Per kind, for each point of [`RunResult::series`]: the busiest second since the
    /// previous point (requests per second), for the load plot.
    pub series: BTreeMap<String, Vec<u64>>,
}

/// What a correlated outage did (`scenario.outage_*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storm {
    /// `crash`, `connection-loss` or `server-restart`.
    pub kind: String,
    /// When it hit, ms.
    pub at_ms: u64,
    /// Devices that held a session when it hit them (for a server restart: devices of the
    /// users hit holding a session): the devices that have to get back in.
    pub devices_hit: u64,
    /// Of those, the ones that held a session again (a new or recovered one) before the end.
    pub devices_back: u64,
    /// From the outage to the first whole second at which 99 % of the devices hit were back
    /// in, ms; `None` when that never happened.
    pub time_to_99pct_sessions_ms: Option<u64>,
    /// Messages (requests, answers, Disconnects, lost ones included) of the devices that got
    /// back in, from the outage to the moment each held a session again.
    pub messages_to_reentry: u64,
    /// From the outage to holding a session again, per device back in, ms.
    pub time_to_reentry_ms: LogHistogram,
}

/// The most trapped (and the most slow) device ids a result carries.
pub const MAX_STUCK_IDS: usize = 10_000;

/// The result of one run: one (variant, seed) unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunResult {
    /// The variant's name.
    pub variant: String,
    /// The seed.
    pub seed: u64,
    /// Devices.
    pub devices: u32,
    /// Users.
    pub users: u32,
    /// Simulated time of the faulty phase, ms.
    pub sim_duration_ms: u64,
    /// Length of the liveness phase, ms.
    pub liveness_ms: u64,
    /// Simulated time at which the run ended, ms (earlier than the end when a violation stopped it).
    pub end_ms: u64,
    /// Events processed.
    pub events: u64,
    /// Wall-clock time the run took, ms. The one machine-dependent field.
    pub wall_ms: u64,
    /// xxh3-64 of the whole event sequence, hex.
    pub digest: String,
    /// Login counts.
    pub logins: Logins,
    /// Result codes of every message the server sent (answers and Disconnects), by code.
    pub result_codes: BTreeMap<u16, u64>,
    /// Time from losing a session (crash, lost connection, Disconnect) to holding one again, ms.
    pub time_to_recover_ms: LogHistogram,
    /// Session counts.
    pub sessions: Sessions,
    /// Fault counts.
    pub faults: Faults,
    /// Messages sent (requests, answers, Disconnects), lost ones included.
    pub messages: u64,
    /// Devices that wanted a session, held none at the end of the liveness phase, and are
    /// trapped: no sequence of protocol steps leads them back to a session (the checker's
    /// `no_deadlock`, asked of the run's final state by `imps_model::checker::trap`).
    pub trapped_devices: u64,
    /// The first [`MAX_STUCK_IDS`] of them, ascending.
    pub trapped_device_ids: Vec<u32>,
    /// Devices that wanted a session and held none at the end of the liveness phase, but are
    /// not trapped: merely not back yet.
    pub slow_devices: u64,
    /// The first [`MAX_STUCK_IDS`] of them, ascending.
    pub slow_device_ids: Vec<u32>,
    /// Total time devices wanted a session and held none, ms (from each device's first start).
    pub downtime_ms: u64,
    /// Live and orphaned sessions over time.
    pub series: Vec<Sample>,
    /// Requests the server received per second, by primitive.
    pub load: Load,
    /// What the correlated outage did; `None` without one.
    pub storm: Option<Storm>,
    /// Partitions the run was cut into ([`super::partition`]).
    pub partitions: u32,
    /// Properties violated, in report order.
    pub violations: Vec<ViolationRecord>,
    /// The invariant whose violation stopped the run, if one did.
    pub stopped_by: Option<String>,
    /// Witness properties reached (a recovery, a 608, ...).
    pub witnesses: Vec<String>,
}

impl RunResult {
    /// The run was stopped by a violation (then no device was classified).
    pub fn stopped(&self) -> bool {
        self.stopped_by.is_some()
    }

    /// Devices without a session at the end of the liveness phase: trapped and slow.
    pub fn stuck_devices(&self) -> u64 {
        self.trapped_devices + self.slow_devices
    }

    /// Session availability: the share of device-time with a session, in parts per million.
    pub fn availability_ppm(&self) -> u64 {
        let total = u128::from(self.devices) * u128::from(self.end_ms);
        if total == 0 {
            return 0;
        }
        let down = u128::from(self.downtime_ms).min(total);
        ((total - down) * 1_000_000 / total) as u64
    }
}
