//! The simulation of one partition: devices running the protocol core's [`Client`], one
//! [`UserServer`] per user, a network with latency and loss, crashes, a correlated outage,
//! timers, and the CR's monitors after every event. [`super::partition`] cuts a run into
//! partitions of users, runs them on threads and adds their outputs up into the run's result.

use super::classify::{self, Classifier, ClassifyError, Pending, UserState};
use super::grid::{req_kind, Grid};
use super::hist::LogHistogram;
use super::queue::{Event, Kind, RadixQueue, AUX_MASK, MAX_SEQ};
use super::result::{Faults, Logins, RunResult, Sample, Sessions, MAX_STUCK_IDS};
use super::rng::{event_stream, exponential, stream, uniform_u64, unit, ExpTable, Purpose};
use super::scenario::{OutageKind, Scenario};
use super::vlog::{LogEntry, LogWhat, MAX_LOG_ENTRIES};
use imps_model::client::{Client, ClientNote, ClientOut, ClientTimer, Phase, UserAction};
use imps_model::config::Config;
use imps_model::msg::{DeviceId, Envelope, Primitive, SessionId, UserId};
use imps_model::props::{self, ClientInput, Prop, PropSet, ServerStep};
use imps_model::server::{
    EndCause, Origin, ServerEvent, ServerOut, ServerShared, Session, UserServer,
};
use imps_model::validate::log::EventKind;
use rand_core::RngCore;
use rand_xoshiro::Xoshiro128PlusPlus;
use xxhash_rust::xxh3::Xxh3;

/// Timer payload bit: the armed timer is a keep-alive (else a retry).
const KEEP_ALIVE_BIT: u32 = 1 << 27;
/// Timer payload bits holding the timer generation.
const GEN_MASK: u32 = KEEP_ALIVE_BIT - 1;
/// `lost_at_ms` when the device holds a session (or has not started).
const NONE: u32 = u32::MAX;
/// The most trace entries a run records.
pub const MAX_TRACE_ENTRIES: usize = 1_000_000;
/// The most events processed as one batch (see [`Sim::run`]).
const BATCH: usize = 64;
/// How often the progress callback runs, in events.
const PROGRESS_EVERY: u64 = 1 << 18;

/// Whether a run stops on a violation of `p`: safety invariants about the state of the server
/// and the sessions stop it; conformance monitors (which message a side sends, what it stores)
/// do not, because a pre-CR variant breaks them by design: they are counted and reported.
pub const fn is_invariant(p: Prop) -> bool {
    match p {
        Prop::ClientIdUniquePerUser
        | Prop::WithinSessionLimit
        | Prop::NoDisconnectToAdmitLogin
        | Prop::DisconnectAlwaysSent
        | Prop::RecoveredContextUnchanged
        | Prop::FailedRecoveryNotLoggedIn
        | Prop::LogoutLeavesGroups
        | Prop::SessionsIndependent
        | Prop::PresenceMergedAcrossSessions
        | Prop::SessionContextDroppedAfterLogout => true,
        Prop::LoginWithClientIdInUseAnswered608
        | Prop::DisconnectHasNoTransactionId
        | Prop::ClientNeverAnswersDisconnect
        | Prop::RecoveryRefusalAnswered502
        | Prop::LogoutAfterRecoveryWithoutContext
        | Prop::StoredSessionIdRemovedOnLogout
        | Prop::LogoutAnsweredWithStatus
        | Prop::MultipleSessionsSupported
        | Prop::NoCombinedNegotiationOnRecovery
        | Prop::NoNegotiationInFirstFourWayRequest
        | Prop::CapabilityNegotiationWhenRequested
        | Prop::CapabilityRequestFalseAfterNegotiation
        | Prop::NoLoginContinuationAfter436
        | Prop::SessionIdStoredWhenEstablished
        | Prop::RecoveryAttemptedFirst
        | Prop::FreshLoginAfterFailedRecoveryHasNoSessionId => false,
        // Not step monitors: liveness is the liveness phase, witnesses are reached, not violated.
        Prop::NoDeadlock
        | Prop::EventuallyLoggedInFair
        | Prop::Reach608
        | Prop::Reach502
        | Prop::ReachRecovery
        | Prop::ReachLogoutAfterRecovery
        | Prop::ReachTwoWayLogin
        | Prop::ReachFourWayLogin
        | Prop::Reach609Or610
        | Prop::ReachExpiry
        | Prop::ReachDisconnect
        | Prop::ReachDisconnectReceived
        | Prop::Reach436 => false,
    }
}

/// Why a run could not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// A limit of the engine was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// A device left without a session could not be classified as trapped or slow.
    #[error("classifying the devices without a session: {0}")]
    Classify(#[from] ClassifyError),
}

/// What the progress callback sees.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Simulated time, ms.
    pub now_ms: u64,
    /// The run's end, ms.
    pub end_ms: u64,
    /// Events so far.
    pub events: u64,
}

/// How a traced message fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It arrived and was handled.
    Delivered,
    /// The network lost it.
    Lost,
    /// Its connection was gone (crash or loss since it was sent): nobody took it.
    Dropped,
}

/// One entry of a device trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceWhat {
    /// A message between the device and the server.
    Message {
        /// Sent by the device (else by the server).
        from_device: bool,
        /// The message.
        env: Envelope,
        /// What happened to it.
        fate: Fate,
    },
    /// Something that happened to the device.
    Note(&'static str),
}

/// One entry of a device trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// Simulated time, ms: arrival for delivered and dropped messages, sending for lost ones.
    pub time_ms: u64,
    /// The device.
    pub device: u32,
    /// What.
    pub what: TraceWhat,
}

/// What a run needs.
#[derive(Clone, Copy, Debug)]
pub struct RunSpec<'a> {
    /// Threads to run the partitions on (at least 1; more than the partitions are not used).
    /// The result does not depend on it.
    pub threads: usize,
    /// The variant's name (for the result).
    pub variant: &'a str,
    /// The variant's configuration.
    pub cfg: &'a Config,
    /// The safety properties the variant's `[expect]` says are violated
    /// ([`imps_model::variant::Variant::expected_violated`]): a violation of one is counted,
    /// and does not stop the run.
    pub expected: PropSet,
    /// The scenario.
    pub scenario: &'a Scenario,
    /// The seed.
    pub seed: u64,
    /// Devices whose messages to record.
    pub trace_devices: &'a [u32],
}

/// What a run returns.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// Threads the partitions ran on (fewer than asked when there are fewer partitions).
    pub threads: usize,
    /// The result.
    pub result: RunResult,
    /// The traced devices' messages, in event order.
    pub trace: Vec<TraceEntry>,
    /// The traced devices' messages and events as they went on the wire, for a validation
    /// log ([`super::vlog`]).
    pub log: Vec<LogEntry>,
}

/// Scenario values in the units the loop uses.
#[derive(Clone, Debug)]
struct Params {
    dpu: u32,
    faulty_end_ms: u64,
    end_ms: u64,
    ka_pct: u64,
    lat_min_ms: f64,
    lat_tail_ms: f64,
    lat_max_ms: u64,
    /// A message is lost when 32 random bits fall below this: `loss_rate * 2^32`.
    loss_threshold: u64,
    crash_mean_ms: Option<f64>,
    /// At most this many crashes per user; 0: no cap.
    max_crashes_per_user: u32,
    restart_min_ms: u64,
    restart_max_ms: u64,
    backoff_base_ms: u64,
    backoff_cap_ms: u64,
    jitter_pct: u64,
    user_mean_ms: Option<f64>,
    groups: u8,
    presence_values: u8,
    start_spread_ms: u64,
    sample_every_ms: u64,
    samples: u32,
    stop_on_violation: bool,
    /// The correlated outage: when, what, and `fraction * 2^53` (compared with 53 random bits).
    outage: Option<(u64, OutageKind, f64)>,
}

impl Params {
    fn new(sc: &Scenario, cfg: &Config) -> Params {
        let faulty_end_ms = sc.duration.ms();
        let end_ms = faulty_end_ms + sc.liveness_ms(cfg);
        let rate = |per_hour: f64| (per_hour > 0.0).then(|| 3_600_000.0 / per_hour);
        Params {
            dpu: sc.devices_per_user,
            faulty_end_ms,
            end_ms,
            ka_pct: u64::from(sc.keep_alive_at_pct),
            lat_min_ms: sc.latency_min.ms() as f64,
            lat_tail_ms: (sc.latency_mean.ms() - sc.latency_min.ms()) as f64,
            lat_max_ms: sc.latency_max.ms(),
            loss_threshold: (sc.loss_rate * 4_294_967_296.0) as u64,
            crash_mean_ms: rate(sc.crashes_per_device_hour),
            max_crashes_per_user: sc.max_crashes_per_user,
            restart_min_ms: sc.restart_delay_min.ms(),
            restart_max_ms: sc.restart_delay_max.ms(),
            backoff_base_ms: sc.backoff_base.ms(),
            backoff_cap_ms: sc.backoff_cap.ms(),
            jitter_pct: u64::from(sc.backoff_jitter_pct),
            user_mean_ms: rate(sc.user_actions_per_device_hour),
            groups: sc.groups,
            presence_values: sc.presence_values,
            start_spread_ms: sc.start_spread.ms(),
            sample_every_ms: (end_ms / u64::from(sc.samples - 1)).max(1),
            samples: sc.samples,
            stop_on_violation: sc.stop_on_violation,
            outage: (sc.outage_fraction > 0.0).then_some((
                sc.outage_at.ms(),
                sc.outage_kind,
                sc.outage_fraction,
            )),
        }
    }
}

/// The part of a device that every client step reads: the protocol core's client and the
/// network stream. Exactly one cache line.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
struct Hot {
    client: Client,
    net: Xoshiro128PlusPlus,
}

/// The driver's bookkeeping of a device. With [`Hot`], 96 bytes a device: a million of these
/// is most of a run's memory. Aligned so that it never straddles two cache lines.
#[derive(Clone, Debug)]
#[repr(C, align(32))]
struct Dev {
    /// Generation of the armed client timer; a timer event of another generation is stale.
    timer_gen: u32,
    /// Connection epoch: bumped by a crash and a broken connection; answers for an older
    /// epoch are lost.
    epoch: u32,
    /// Bumped by a crash: Disconnects pushed before it are lost.
    boot: u32,
    /// When the device last lost (or first wanted) a session, ms; [`NONE`] while it holds one.
    lost_at_ms: u32,
    /// Time without a session while wanting one, ms.
    downtime_ms: u32,
    /// Events drawn from the behaviour stream (start, crashes).
    behaviour_draws: u32,
    /// Events drawn from the user stream.
    user_draws: u32,
    /// Login retries since the last session or restart (the back-off exponent).
    retries: u8,
    /// Messages on their way to or from the device.
    in_flight: u8,
    /// The device held a session before: a new one is a recovery.
    had_session: bool,
    /// Crashes of the device so far (saturating), for `max_crashes_per_user`.
    crashes: u8,
}

// The README's memory figures count on it: a device's bookkeeping is half a cache line.
const _: () = assert!(std::mem::size_of::<Dev>() == 32);

/// A message on the wire, in a slot of the message slab.
#[derive(Clone, Copy, Debug)]
struct Msg {
    env: Envelope,
    /// The connection epoch (requests, answers) or boot (Disconnects) it belongs to.
    epoch: u32,
}

#[derive(Debug, Default)]
struct Metrics {
    logins: Logins,
    result_codes: Vec<u64>,
    ttr: LogHistogram,
    sessions: Sessions,
    faults: Faults,
    messages: u64,
    series: Vec<Sample>,
    violations: Vec<(u64, u64, u64, u32)>,
    witnesses: PropSet,
}

/// One partition of a run: consecutive users and their devices ([`super::partition`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Its index, from 0.
    pub index: u32,
    /// Its first device.
    pub first_device: u32,
    /// Its devices.
    pub devices: u32,
    /// Its Session-IDs are `session_base..session_base + session_span`, so that a Session-ID
    /// names one session in the whole run.
    pub session_base: u32,
    /// How many Session-IDs it may hand out.
    pub session_span: u32,
}

/// What one partition produced, for [`super::partition`] to add up.
#[derive(Debug)]
pub struct PartOutput {
    /// The partition.
    pub part: Part,
    /// The invariant whose violation stopped it, and the time, ms.
    pub stop: Option<(Prop, u64)>,
    /// It ran to a time set from outside (another partition's stop) and was not classified.
    pub halted: bool,
    /// Simulated time at which it ended, ms.
    pub end_ms: u64,
    /// Events processed.
    pub events: u64,
    /// xxh3-64 of its event sequence.
    pub digest: u64,
    /// Login counts.
    pub logins: Logins,
    /// Messages the server sent, by result code (index: the code, 0..1000).
    pub result_codes: Vec<u64>,
    /// Time to recover a session.
    pub ttr: LogHistogram,
    /// Session counts (peaks are the grid's).
    pub sessions: Sessions,
    /// Fault counts.
    pub faults: Faults,
    /// Messages.
    pub messages: u64,
    /// Trapped devices, and the first [`MAX_STUCK_IDS`] of them.
    pub trapped: (u64, Vec<u32>),
    /// Slow devices, and the first [`MAX_STUCK_IDS`] of them.
    pub slow: (u64, Vec<u32>),
    /// Device-time without a session, ms.
    pub downtime_ms: u64,
    /// The sessions-over-time samples.
    pub series: Vec<Sample>,
    /// The per-second figures.
    pub grid: Grid,
    /// Per property (index: `Prop as usize`): count, first event, its time, its device.
    pub violations: Vec<(u64, u64, u64, u32)>,
    /// Witnesses reached.
    pub witnesses: PropSet,
    /// The outage: devices hit, devices back, their messages until back, time to get back.
    pub storm: Option<(u64, u64, u64, LogHistogram)>,
    /// The traced devices' messages, in event order.
    pub trace: Vec<TraceEntry>,
    /// The traced devices' validation-log entries, in the order they went on the wire.
    pub log: Vec<LogEntry>,
}

/// `reentry` of a device that the outage did not hit, or that is back in.
const NOT_REENTERING: u32 = u32::MAX;

/// The simulation state of one partition.
pub struct Sim<'a> {
    cfg: &'a Config,
    p: Params,
    seed: u64,
    part: Part,
    /// The partition's first device and first user: tables are indexed from them.
    first: u32,
    first_user: u32,
    /// Devices in the partition.
    devices: u32,
    now: u64,
    events: u64,
    seq: u64,
    queue: RadixQueue,
    hot: Vec<Hot>,
    devs: Vec<Dev>,
    users: Vec<UserServer>,
    orphans: Vec<u16>,
    orphans_total: u64,
    holding: u64,
    shared: ServerShared,
    slab: Vec<Msg>,
    free: Vec<u32>,
    before: UserServer,
    sout: ServerOut,
    m: Metrics,
    exp: ExpTable,
    digest: Xxh3,
    liveness: bool,
    next_sample: u64,
    grid: Grid,
    /// The next whole second of the grid to record.
    next_second: u64,
    /// Per device, with an outage: messages since the outage hit it, until it is back in;
    /// [`NOT_REENTERING`] otherwise. Empty without an outage.
    reentry: Vec<u32>,
    storm_hit: u64,
    storm_back: u64,
    storm_messages: u64,
    storm_ttr: LogHistogram,
    traced: Vec<u32>,
    trace: Vec<TraceEntry>,
    log: Vec<LogEntry>,
    expected: PropSet,
    stop: Option<Prop>,
    limit: Option<String>,
    /// Messages (and noticed losses) due after the end of the run, in the order they were
    /// scheduled: what is still on its way when the run ends, for the classification of the
    /// devices without a session.
    beyond: Vec<Event>,
}

#[inline]
const fn holds(phase: &Phase) -> bool {
    matches!(phase, Phase::Established { .. } | Phase::Busy { .. })
}

/// Whether an active session is orphaned: neither its device's current session, nor its
/// stored one, nor the one it is recovering, nor one whose Login-Response the device may still
/// be waiting for (a login in flight with the same Client-ID).
fn is_orphan(cfg: &Config, s: &Session, c: &Client) -> bool {
    if c.phase.session() == Some(s.id) || c.stored.is_some_and(|st| st.session == s.id) {
        return false;
    }
    match c.phase {
        Phase::LoggingIn { attempt, .. } => {
            attempt.recover != Some(s.id) && c.client_id(cfg) != s.client_id
        }
        Phase::Backoff(attempt) => attempt.recover != Some(s.id),
        Phase::Down
        | Phase::Idle
        | Phase::Negotiating { .. }
        | Phase::Established { .. }
        | Phase::Busy { .. }
        | Phase::LoggingOut { .. } => true,
    }
}

/// Whether a user's table is the same but for the keep-alive bookkeeping of its sessions
/// (`last_active_ms`, `keep_alive_s`): then its state invariants hold as they did, and
/// [`props::check_user_state`] (which allocates) need not run again.
fn same_table(a: &UserServer, b: &UserServer) -> bool {
    a.roster == b.roster
        && a.presence_writer == b.presence_writer
        && a.sessions.len() == b.sessions.len()
        && a.sessions.iter().zip(&b.sessions).all(|(x, y)| {
            x.id == y.id
                && x.client_id == y.client_id
                && x.device == y.device
                && x.ctx == y.ctx
                && x.active == y.active
        })
}

/// What of a client [`is_orphan`] looks at: sessions need a recount only when it changes.
#[inline]
fn orphan_view(
    c: &Client,
) -> (
    Option<SessionId>,
    Option<SessionId>,
    Option<SessionId>,
    u8,
    bool,
) {
    let (recover, logging_in) = match c.phase {
        Phase::LoggingIn { attempt, .. } => (attempt.recover, true),
        Phase::Backoff(attempt) => (attempt.recover, false),
        Phase::Down
        | Phase::Idle
        | Phase::Negotiating { .. }
        | Phase::Established { .. }
        | Phase::Busy { .. }
        | Phase::LoggingOut { .. } => (None, false),
    };
    (
        c.phase.session(),
        c.stored.map(|s| s.session),
        recover,
        c.slot,
        logging_in,
    )
}

impl<'a> Sim<'a> {
    /// Set up a partition: every device down, its start, first crash and outage scheduled.
    pub fn new(spec: &RunSpec<'a>, part: Part) -> Sim<'a> {
        let sc = spec.scenario;
        let p = Params::new(sc, spec.cfg);
        let first = part.first_device;
        let n = part.devices;
        debug_assert_eq!(first % p.dpu, 0, "invariant: a partition holds whole users");
        let first_user = first / p.dpu;
        let users = n.div_ceil(p.dpu);
        let mut traced: Vec<u32> = spec
            .trace_devices
            .iter()
            .copied()
            .filter(|&d| d >= first && d - first < n)
            .collect();
        traced.sort_unstable();
        traced.dedup();
        let expected = spec.expected;
        let outage = p.outage.is_some();
        let mut sim = Sim {
            cfg: spec.cfg,
            seed: spec.seed,
            part,
            first,
            first_user,
            devices: n,
            now: 0,
            events: 0,
            seq: 0,
            queue: RadixQueue::new(),
            hot: Vec::with_capacity(n as usize),
            devs: Vec::with_capacity(n as usize),
            users: vec![UserServer::default(); users as usize],
            orphans: vec![0; users as usize],
            orphans_total: 0,
            holding: 0,
            shared: ServerShared {
                next_session_id: part.session_base,
                active_total: 0,
            },
            slab: Vec::new(),
            free: Vec::new(),
            before: UserServer::default(),
            sout: ServerOut::default(),
            m: Metrics {
                result_codes: vec![0; 1000],
                ttr: LogHistogram::new(),
                violations: vec![(0, 0, 0, 0); Prop::ALL.len()],
                ..Metrics::default()
            },
            exp: ExpTable::new(),
            digest: Xxh3::new(),
            liveness: false,
            next_sample: 0,
            grid: Grid::new(p.end_ms, outage),
            next_second: 0,
            reentry: if outage {
                vec![NOT_REENTERING; n as usize]
            } else {
                Vec::new()
            },
            storm_hit: 0,
            storm_back: 0,
            storm_messages: 0,
            storm_ttr: LogHistogram::new(),
            traced,
            trace: Vec::new(),
            log: Vec::new(),
            expected,
            stop: None,
            limit: None,
            beyond: Vec::new(),
            p,
        };
        for d in first..first + n {
            let mut behaviour = event_stream(spec.seed, d, Purpose::Behaviour, 0);
            let start = if sim.p.start_spread_ms > 0 {
                uniform_u64(&mut behaviour, 0, sim.p.start_spread_ms - 1)
            } else {
                0
            };
            let first_crash = sim
                .p
                .crash_mean_ms
                .map(|mean| start + (exponential(&mut behaviour, mean) as u64).max(1));
            let mut user = event_stream(spec.seed, d, Purpose::User, 0);
            let first_act = sim
                .p
                .user_mean_ms
                .map(|mean| start + (exponential(&mut user, mean) as u64).max(1));
            sim.hot.push(Hot {
                client: Client::new(UserId(d / sim.p.dpu), DeviceId(d)),
                net: stream(spec.seed, d, Purpose::Network),
            });
            sim.devs.push(Dev {
                timer_gen: 0,
                epoch: 0,
                boot: 0,
                lost_at_ms: NONE,
                downtime_ms: 0,
                behaviour_draws: 1,
                user_draws: 1,
                retries: 0,
                in_flight: 0,
                had_session: false,
                crashes: 0,
            });
            sim.schedule(start, d, Kind::Start, 0);
            if let Some(t) = first_crash.filter(|&t| t < sim.p.faulty_end_ms) {
                sim.schedule(t, d, Kind::Crash, 0);
            }
            if let Some(t) = first_act.filter(|&t| t < sim.p.faulty_end_ms) {
                sim.schedule(t, d, Kind::UserAct, 0);
            }
            if let Some((at, kind, fraction)) = sim.p.outage {
                let hit = match kind {
                    OutageKind::Crash | OutageKind::ConnectionLoss => {
                        unit(&mut event_stream(spec.seed, d, Purpose::Outage, 0)) < fraction
                    }
                    // One draw per user, keyed by the user: its server shard restarts or not.
                    OutageKind::ServerRestart => {
                        d % sim.p.dpu == 0
                            && unit(&mut event_stream(
                                spec.seed,
                                d / sim.p.dpu,
                                Purpose::ServerOutage,
                                0,
                            )) < fraction
                    }
                };
                if hit {
                    sim.schedule(at, d, Kind::Outage, 0);
                }
            }
        }
        sim
    }

    /// The index of device `d` in the partition's tables.
    #[inline]
    const fn ix(&self, d: u32) -> usize {
        (d - self.first) as usize
    }

    /// The index of device `d`'s user in the partition's tables.
    #[inline]
    const fn uix(&self, d: u32) -> usize {
        (d / self.p.dpu - self.first_user) as usize
    }

    #[inline]
    fn schedule(&mut self, t: u64, d: u32, kind: Kind, aux: u32) {
        if t > self.p.end_ms {
            // Never reached: the run ends first. A message still on its way at the end is part
            // of the state the classification reads; it keeps the sequence number it would
            // have had, without taking it, so that the run's events stay as they were.
            if matches!(
                kind,
                Kind::ToServer | Kind::ToClient | Kind::Push | Kind::ConnLost
            ) {
                let t = t.min(super::queue::MAX_TIME_MS);
                self.beyond
                    .push(Event::new(t, self.seq.min(MAX_SEQ), d, kind, aux));
            }
            return;
        }
        if self.seq > MAX_SEQ {
            self.limit
                .get_or_insert_with(|| format!("more than {MAX_SEQ} events scheduled"));
            return;
        }
        self.queue.push(Event::new(t, self.seq, d, kind, aux));
        self.seq += 1;
    }

    fn alloc(&mut self, msg: Msg) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = msg;
                i
            }
            None => {
                let i = self.slab.len() as u32;
                if i > AUX_MASK {
                    self.limit.get_or_insert_with(|| {
                        format!("more than {AUX_MASK} messages in flight at once")
                    });
                }
                self.slab.push(msg);
                i
            }
        }
    }

    fn take(&mut self, slot: u32) -> Msg {
        self.free.push(slot);
        self.slab[slot as usize]
    }

    #[inline]
    fn traced(&self, d: u32) -> bool {
        !self.traced.is_empty() && self.traced.binary_search(&d).is_ok()
    }

    fn record(&mut self, d: u32, what: TraceWhat) {
        if self.traced(d) && self.trace.len() < MAX_TRACE_ENTRIES {
            self.trace.push(TraceEntry {
                time_ms: self.now,
                device: d,
                what,
            });
        }
    }

    /// Record a validation-log entry of a traced device (when it goes on the wire).
    fn log_entry(&mut self, d: u32, what: LogWhat) {
        if !self.traced(d) {
            return;
        }
        if self.log.len() >= MAX_LOG_ENTRIES {
            self.limit.get_or_insert_with(|| {
                format!("more than {MAX_LOG_ENTRIES} validation-log entries (trace fewer devices)")
            });
            return;
        }
        self.log.push(LogEntry {
            time_ms: self.now,
            device: d,
            what,
        });
    }

    /// Latency and loss of one message of device `d`: one 64-bit draw of its network stream,
    /// the high half for the latency, the low half for the loss. Both are always drawn, so that
    /// the stream advances the same way in the faulty and the liveness phase.
    fn wire(&mut self, d: u32) -> (u64, bool) {
        let i = self.ix(d);
        let x = self.hot[i].net.next_u64();
        let tail = self.exp.sample_bits((x >> 32) as u32, self.p.lat_tail_ms);
        let lat = ((self.p.lat_min_ms + tail) as u64).min(self.p.lat_max_ms);
        let lost = !self.liveness && (x & 0xFFFF_FFFF) < self.p.loss_threshold;
        (lat, lost)
    }

    /// Run to the end (or to a stopping violation).
    ///
    /// Events are taken a millisecond at a time: every event of the current millisecond is
    /// already in the queue (an event scheduled now for now comes after them, by its sequence
    /// number), so the batch is processed in exactly the queue's order; knowing it in advance
    /// lets `Sim::touch` load the batch's devices and users from memory in parallel before
    /// they are processed one by one.
    ///
    /// With `halt_ms`, the partition stops after its events at `halt_ms` (another partition
    /// was stopped by a violation then): it is not classified, and its figures end there.
    pub fn run(
        mut self,
        halt_ms: Option<u64>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PartOutput, SimError> {
        let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
        let last_ms = halt_ms.map_or(self.p.end_ms, |h| h.min(self.p.end_ms));
        'run: while let Some(first) = self.queue.pop() {
            let t = first.time_ms();
            if t > last_ms {
                break;
            }
            batch.clear();
            batch.push(first);
            while batch.len() < BATCH {
                match self.queue.pop_same_time() {
                    Some(ev) => batch.push(ev),
                    None => break,
                }
            }
            if batch.len() > 1 {
                self.touch(&batch);
            }
            while self.next_sample <= t {
                self.sample();
            }
            while self.next_second * 1000 <= t {
                self.second();
            }
            if !self.liveness && t >= self.p.faulty_end_ms {
                self.liveness = true;
            }
            self.now = t;
            for &ev in &batch {
                self.events += 1;
                self.digest.update(&ev.to_bytes());
                self.dispatch(ev);
                if self.stop.is_some() {
                    break 'run;
                }
                if let Some(l) = self.limit.take() {
                    return Err(SimError::Limit(l));
                }
                if self.events % PROGRESS_EVERY == 0 {
                    progress(Progress {
                        now_ms: self.now,
                        end_ms: self.p.end_ms,
                        events: self.events,
                    });
                }
            }
        }
        let halted = self.stop.is_none() && last_ms < self.p.end_ms;
        if halted {
            // Nothing happened in this partition between its last event and the halt: the
            // samples and seconds up to the halt are its state as it stands.
            self.now = last_ms;
            while self.next_sample <= last_ms && self.m.series.len() < self.p.samples as usize {
                self.sample();
            }
            while self.next_second * 1000 <= last_ms {
                self.second();
            }
        } else if self.stop.is_none() {
            self.now = self.p.end_ms;
            while self.m.series.len() < self.p.samples as usize {
                self.sample();
            }
            while (self.next_second as usize) < self.grid.live.len() {
                self.second();
            }
        }
        self.finish(halted)
    }

    /// Record the grid's next whole second ([`Grid`]).
    fn second(&mut self) {
        let s = self.next_second as usize;
        if let Some(x) = self.grid.live.get_mut(s) {
            *x = self.shared.active_total;
            self.grid.holding[s] = self.holding as u32;
            self.grid.orphans[s] = self.orphans_total.min(u64::from(u32::MAX)) as u32;
        }
        self.next_second += 1;
    }

    /// The correlated outage hits device `d` (for a server restart, `d`'s user's shard).
    fn outage(&mut self, d: u32) {
        let (_, kind, _) = self
            .p
            .outage
            .expect("invariant: outage events only with an outage");
        let di = self.ix(d);
        match kind {
            OutageKind::Crash => {
                if self.hot[di].client.phase == Phase::Down {
                    return;
                }
                self.hit(di);
                let mut rng = event_stream(self.seed, d, Purpose::Outage, 0);
                let _hit_draw = rng.next_u64();
                let restart = uniform_u64(&mut rng, self.p.restart_min_ms, self.p.restart_max_ms);
                self.m.faults.outage_crashes += 1;
                self.crash(d, restart, false);
            }
            OutageKind::ConnectionLoss => {
                if self.hot[di].client.phase == Phase::Down {
                    return;
                }
                self.hit(di);
                let dev = &mut self.devs[di];
                dev.epoch = dev.epoch.wrapping_add(1);
                self.m.faults.outage_connection_losses += 1;
                let c = &mut self.hot[di].client;
                let before = *c;
                let mut out = ClientOut::default();
                c.connection_lost(&mut out);
                self.record(d, TraceWhat::Note("connection lost (outage)"));
                self.log_entry(d, LogWhat::Event(EventKind::ConnectionLost));
                self.after_client(d, &before, ClientInput::Other, &out);
            }
            OutageKind::ServerRestart => {
                let first = d;
                let last = (d + self.p.dpu).min(self.first + self.devices);
                for x in first..last {
                    self.hit(self.ix(x));
                }
                let u = self.uix(d);
                let us = &self.users[u];
                self.before.sessions.clone_from(&us.sessions);
                self.before.roster = us.roster;
                self.before.presence_writer = us.presence_writer;
                let ended = self.users[u].restart(self.cfg, &mut self.shared);
                self.m.sessions.ended_restart += u64::from(ended);
                for x in first..last {
                    self.record(x, TraceWhat::Note("the server restarted"));
                }
                let mut found = PropSet::default();
                if !same_table(&self.before, &self.users[u]) {
                    props::check_user_state(self.cfg, &self.users[u], &mut found);
                    props::check_server_totals(self.cfg, self.shared.active_total, &mut found);
                    self.recount_orphans(u);
                }
                self.found(found, d);
            }
        }
    }

    /// The outage hits the device at index `i`: when it holds a session, it has to get back in.
    fn hit(&mut self, i: usize) {
        if holds(&self.hot[i].client.phase) {
            self.reentry[i] = 0;
            self.storm_hit += 1;
        }
    }

    /// The device at index `i`, hit by the outage, holds a session again.
    fn back_in(&mut self, i: usize) {
        let (at, _, _) = self
            .p
            .outage
            .expect("invariant: devices are hit only with an outage");
        self.storm_back += 1;
        self.storm_messages += u64::from(self.reentry[i]);
        self.storm_ttr.record(self.now - at);
        self.grid.back[(self.now / 1000) as usize] += 1;
        self.reentry[i] = NOT_REENTERING;
    }

    /// Read a word of every device, user and session table the batch will touch, so that the
    /// cache misses overlap instead of coming one after another. Has no effect on the run.
    fn touch(&self, batch: &[Event]) {
        let mut acc = 0u64;
        for ev in batch {
            let i = ev.device.wrapping_sub(self.first) as usize;
            if let (Some(h), Some(dev)) = (self.hot.get(i), self.devs.get(i)) {
                acc ^= u64::from(dev.epoch) ^ u64::from(h.client.last_tid);
            }
            if let Some(us) = self.users.get(self.uix(ev.device)) {
                acc ^= us.sessions.len() as u64 ^ u64::from(us.roster);
            }
        }
        for ev in batch {
            if let Some(us) = self.users.get(self.uix(ev.device)) {
                acc ^= us.sessions.first().map_or(0, |s| u64::from(s.keep_alive_s));
                acc ^= us.sessions.last().map_or(0, |s| s.last_active_ms);
            }
        }
        std::hint::black_box(acc);
    }

    fn sample(&mut self) {
        self.m.series.push(Sample {
            t_ms: self.next_sample,
            live: u64::from(self.shared.active_total),
            holding: self.holding,
            orphans: self.orphans_total,
        });
        self.next_sample += self.p.sample_every_ms;
        if self.m.series.len() + 1 == self.p.samples as usize {
            self.next_sample = self.p.end_ms; // the last point is the end, exactly
        }
    }

    fn dispatch(&mut self, ev: Event) {
        let d = ev.device;
        let di = self.ix(d);
        match ev.kind() {
            Kind::Start => {
                let dev = &mut self.devs[di];
                let c = &mut self.hot[di].client;
                if dev.lost_at_ms == NONE && !holds(&c.phase) {
                    dev.lost_at_ms = self.now as u32;
                }
                let before = *c;
                let mut out = ClientOut::default();
                c.start(self.cfg, &mut out);
                self.record(d, TraceWhat::Note("power on"));
                self.log_entry(d, LogWhat::Event(EventKind::Restart));
                self.after_client(d, &before, ClientInput::Start, &out);
            }
            Kind::Crash => {
                let mean = self
                    .p
                    .crash_mean_ms
                    .expect("invariant: crash events only with a crash rate");
                let dev = &mut self.devs[di];
                let mut rng = event_stream(self.seed, d, Purpose::Behaviour, dev.behaviour_draws);
                dev.behaviour_draws = dev.behaviour_draws.wrapping_add(1);
                let gap = (exponential(&mut rng, mean) as u64).max(1);
                let restart = uniform_u64(&mut rng, self.p.restart_min_ms, self.p.restart_max_ms);
                // Past the user's cap, the device's crash process ends.
                let cap = self.p.max_crashes_per_user;
                if cap > 0 && self.user_crashes(d) >= cap {
                    return;
                }
                if self.now + gap < self.p.faulty_end_ms {
                    self.schedule(self.now + gap, d, Kind::Crash, 0);
                }
                if self.hot[di].client.phase != Phase::Down {
                    self.crash(d, restart, true);
                }
            }
            Kind::UserAct => {
                let mean = self
                    .p
                    .user_mean_ms
                    .expect("invariant: user events only with a user rate");
                let dev = &mut self.devs[di];
                let mut rng = event_stream(self.seed, d, Purpose::User, dev.user_draws);
                dev.user_draws = dev.user_draws.wrapping_add(1);
                let gap = (exponential(&mut rng, mean) as u64).max(1);
                let r = rng.next_u64();
                if self.now + gap < self.p.faulty_end_ms {
                    self.schedule(self.now + gap, d, Kind::UserAct, 0);
                }
                let c = &mut self.hot[di].client;
                if let Phase::Established { .. } = c.phase {
                    let (groups, values) = (self.p.groups, self.p.presence_values);
                    let action = if groups > 0 && (values == 0 || r & 1 == 0) {
                        let g = ((r >> 8) % u64::from(groups)) as u8;
                        let joined = c.ctx.is_some_and(|x| x.groups & (1 << g) != 0);
                        Some(if joined {
                            UserAction::Leave(g)
                        } else {
                            UserAction::Join(g)
                        })
                    } else if values > 0 {
                        Some(UserAction::Presence(
                            1 + ((r >> 8) % u64::from(values)) as u8,
                        ))
                    } else {
                        None
                    };
                    if let Some(a) = action {
                        let before = *c;
                        let mut out = ClientOut::default();
                        c.user_action(self.cfg, a, &mut out);
                        self.after_client(d, &before, ClientInput::Other, &out);
                    }
                }
            }
            Kind::ClientTimer => {
                let aux = ev.aux();
                if aux & GEN_MASK != self.devs[di].timer_gen & GEN_MASK {
                    return; // superseded by a later timer, or cancelled by a crash
                }
                let c = &mut self.hot[di].client;
                let timer = if aux & KEEP_ALIVE_BIT != 0 {
                    ClientTimer::KeepAlive {
                        after_s: c.keep_alive_s,
                    }
                } else {
                    ClientTimer::Retry
                };
                let before = *c;
                let mut out = ClientOut::default();
                c.on_timer(self.cfg, timer, &mut out);
                self.after_client(d, &before, ClientInput::Other, &out);
            }
            Kind::ToServer => {
                let msg = self.take(ev.aux());
                self.devs[di].in_flight -= 1;
                let second = &mut self.grid.load[(self.now / 1000) as usize];
                second[req_kind(&msg.env.body)] += 1;
                self.record(
                    d,
                    TraceWhat::Message {
                        from_device: true,
                        env: msg.env,
                        fate: Fate::Delivered,
                    },
                );
                self.server_step(d, Some(&msg));
            }
            Kind::ToClient | Kind::Push => {
                let msg = self.take(ev.aux());
                let dev = &mut self.devs[di];
                let c = &mut self.hot[di].client;
                dev.in_flight -= 1;
                let current = if ev.kind() == Kind::ToClient {
                    dev.epoch
                } else {
                    dev.boot
                };
                if msg.epoch != current || c.phase == Phase::Down {
                    self.record(
                        d,
                        TraceWhat::Message {
                            from_device: false,
                            env: msg.env,
                            fate: Fate::Dropped,
                        },
                    );
                    return;
                }
                if let Primitive::LoginResponse(r) = msg.env.body {
                    if r.result.is_success() && r.session_id.is_some() {
                        self.m.logins.succeeded += 1;
                        if matches!(c.phase, Phase::LoggingIn { attempt, .. } if attempt.recover.is_some())
                        {
                            self.m.logins.recoveries_succeeded += 1;
                        }
                    }
                }
                let before = *c;
                let mut out = ClientOut::default();
                c.on_message(self.cfg, &msg.env, &mut out);
                self.record(
                    d,
                    TraceWhat::Message {
                        from_device: false,
                        env: msg.env,
                        fate: Fate::Delivered,
                    },
                );
                self.after_client(d, &before, ClientInput::Message(&msg.env), &out);
            }
            Kind::ConnLost => {
                let dev = &mut self.devs[di];
                if ev.aux() != dev.epoch & AUX_MASK {
                    return; // the connection already broke, or the device crashed
                }
                dev.epoch = dev.epoch.wrapping_add(1);
                self.m.faults.connection_losses += 1;
                let c = &mut self.hot[di].client;
                let before = *c;
                let mut out = ClientOut::default();
                c.connection_lost(&mut out);
                self.record(d, TraceWhat::Note("connection lost"));
                self.log_entry(d, LogWhat::Event(EventKind::ConnectionLost));
                self.after_client(d, &before, ClientInput::Other, &out);
            }
            Kind::Ttl => self.ttl(d, SessionId(self.part.session_base + ev.aux())),
            Kind::Outage => self.outage(d),
        }
    }

    /// Crashes of the devices of `d`'s user so far.
    fn user_crashes(&self, d: u32) -> u32 {
        let first = self.ix(d / self.p.dpu * self.p.dpu);
        let last = (first + self.p.dpu as usize).min(self.devices as usize);
        self.devs[first..last]
            .iter()
            .map(|x| u32::from(x.crashes))
            .sum()
    }

    /// Crash device `d`, to restart after `restart_ms`; `counted`: the crash counts towards
    /// the user's cap (`max_crashes_per_user`), which an outage's crash does not.
    fn crash(&mut self, d: u32, restart_ms: u64, counted: bool) {
        let i = self.ix(d);
        let dev = &mut self.devs[i];
        if counted {
            dev.crashes = dev.crashes.saturating_add(1);
        }
        let c = &mut self.hot[i].client;
        let before = *c;
        c.crash();
        dev.epoch = dev.epoch.wrapping_add(1);
        dev.boot = dev.boot.wrapping_add(1);
        dev.timer_gen = dev.timer_gen.wrapping_add(1);
        dev.retries = 0;
        self.m.faults.crashes += 1;
        self.record(d, TraceWhat::Note("crash"));
        self.log_entry(d, LogWhat::Event(EventKind::Crash));
        self.schedule(self.now + restart_ms, d, Kind::Start, 0);
        self.after_client(d, &before, ClientInput::Other, &ClientOut::default());
    }

    /// Everything that follows a client step: the monitors, the message and timer it asked for,
    /// the session bookkeeping.
    fn after_client(&mut self, d: u32, before: &Client, input: ClientInput<'_>, out: &ClientOut) {
        let di = self.ix(d);
        let after = self.hot[di].client;
        let mut found = PropSet::default();
        props::check_client_step(before, input, out, &after, &mut found);
        props::client_witnesses(before, input, out, &mut self.m.witnesses);
        if let Some(env) = out.send {
            self.send_request(d, env);
        }
        match out.timer {
            Some(ClientTimer::Retry) => {
                let dev = &mut self.devs[di];
                let exp = u32::from(dev.retries.min(40));
                let full = self
                    .p
                    .backoff_base_ms
                    .saturating_mul(1u64 << exp.min(40))
                    .min(self.p.backoff_cap_ms);
                let jitter = full * self.p.jitter_pct / 100;
                let delay = full - uniform_u64(&mut self.hot[di].net, 0, jitter);
                dev.retries = dev.retries.saturating_add(1);
                dev.timer_gen = dev.timer_gen.wrapping_add(1);
                let aux = dev.timer_gen & GEN_MASK;
                self.schedule(self.now + delay.max(1), d, Kind::ClientTimer, aux);
            }
            Some(ClientTimer::KeepAlive { after_s }) => {
                let dev = &mut self.devs[di];
                let delay = (u64::from(after_s) * 10 * self.p.ka_pct).max(1);
                dev.timer_gen = dev.timer_gen.wrapping_add(1);
                let aux = dev.timer_gen & GEN_MASK | KEEP_ALIVE_BIT;
                self.schedule(self.now + delay, d, Kind::ClientTimer, aux);
            }
            None => {}
        }
        let dev = &mut self.devs[di];
        if let Some(ClientNote::Established { .. }) = out.note {
            dev.retries = 0;
        }
        let (held, now_holds) = (holds(&before.phase), holds(&after.phase));
        if held && !now_holds {
            dev.lost_at_ms = self.now as u32;
            self.holding -= 1;
        } else if !held && now_holds {
            self.holding += 1;
            if dev.lost_at_ms != NONE {
                let dt = self.now - u64::from(dev.lost_at_ms);
                dev.downtime_ms += dt as u32;
                if dev.had_session {
                    self.m.ttr.record(dt);
                }
            }
            dev.lost_at_ms = NONE;
            dev.had_session = true;
            if !self.reentry.is_empty() && self.reentry[di] != NOT_REENTERING {
                self.back_in(di);
            }
        }
        let u = self.uix(d);
        if orphan_view(before) != orphan_view(&after) {
            self.recount_orphans(u);
        }
        self.found(found, d);
    }

    /// Count a message of device `d` (either way, lost or not).
    #[inline]
    fn count_message(&mut self, d: u32) {
        self.m.messages += 1;
        if !self.reentry.is_empty() {
            let i = self.ix(d);
            let r = &mut self.reentry[i];
            if *r != NOT_REENTERING {
                *r = r.saturating_add(1);
            }
        }
    }

    fn send_request(&mut self, d: u32, env: Envelope) {
        self.count_message(d);
        if let Primitive::LoginRequest(lr) = env.body {
            if lr.password || lr.digest_bytes.is_some() {
                self.m.logins.attempted += 1;
                if lr.session_id.is_some() {
                    self.m.logins.recoveries_attempted += 1;
                }
            }
        }
        self.log_entry(
            d,
            LogWhat::Message {
                to_server: true,
                env,
            },
        );
        let (lat, lost) = self.wire(d);
        let i = self.ix(d);
        let dev = &mut self.devs[i];
        if lost {
            self.m.faults.lost_messages += 1;
            let aux = dev.epoch & AUX_MASK;
            self.record(
                d,
                TraceWhat::Message {
                    from_device: true,
                    env,
                    fate: Fate::Lost,
                },
            );
            self.schedule(self.now + lat, d, Kind::ConnLost, aux);
        } else {
            let msg = Msg {
                env,
                epoch: dev.epoch,
            };
            dev.in_flight = dev.in_flight.saturating_add(1);
            let slot = self.alloc(msg);
            self.schedule(self.now + lat, d, Kind::ToServer, slot);
        }
    }

    fn count_code(&mut self, env: &Envelope) {
        if let Some(code) = env.body.result() {
            let n = usize::from(code.number()).min(999);
            self.m.result_codes[n] += 1;
        }
    }

    /// The server handles a request from device `d`, or (with `None`) nothing: callers that
    /// ran the server themselves pass its output in `self.sout`.
    fn server_step(&mut self, d: u32, req: Option<&Msg>) {
        let u = self.uix(d);
        let us = &self.users[u];
        self.before.sessions.clone_from(&us.sessions);
        self.before.roster = us.roster;
        self.before.presence_writer = us.presence_writer;
        debug_assert_eq!(
            &self.before, us,
            "invariant: the scratch copy is the whole user table"
        );
        if let Some(msg) = req {
            self.sout.clear();
            let origin = Origin {
                user: UserId(d / self.p.dpu),
                device: DeviceId(d),
            };
            self.users[u].handle(
                self.cfg,
                &mut self.shared,
                origin,
                self.now,
                &msg.env,
                &mut self.sout,
            );
        }
        self.after_server(d, u, req);
    }

    fn after_server(&mut self, d: u32, u: usize, req: Option<&Msg>) {
        let mut found = PropSet::default();
        let step = ServerStep {
            before: &self.before,
            request: req.map(|m| &m.env),
            out: &self.sout,
            after: &self.users[u],
        };
        props::check_server_step(step, &mut found);
        props::server_witnesses(step, &mut self.m.witnesses);
        // A keep-alive only refreshes a session's times: the state predicates, which do not
        // read them, keep their values, so they are evaluated only when the table changed.
        let changed = !same_table(&self.before, &self.users[u]);
        if changed {
            props::check_user_state(self.cfg, &self.users[u], &mut found);
            props::check_server_totals(self.cfg, self.shared.active_total, &mut found);
        }
        if let (Some(reply), Some(msg)) = (self.sout.reply, req) {
            self.count_message(d);
            self.count_code(&reply);
            let i = self.ix(d);
            if msg.epoch == self.devs[i].epoch {
                self.log_entry(
                    d,
                    LogWhat::Message {
                        to_server: false,
                        env: reply,
                    },
                );
                let (lat, lost) = self.wire(d);
                if lost {
                    self.m.faults.lost_messages += 1;
                    self.record(
                        d,
                        TraceWhat::Message {
                            from_device: false,
                            env: reply,
                            fate: Fate::Lost,
                        },
                    );
                    let aux = self.devs[i].epoch & AUX_MASK;
                    self.schedule(self.now + lat, d, Kind::ConnLost, aux);
                } else {
                    let dev = &mut self.devs[i];
                    dev.in_flight = dev.in_flight.saturating_add(1);
                    let epoch = dev.epoch;
                    let slot = self.alloc(Msg { env: reply, epoch });
                    self.schedule(self.now + lat, d, Kind::ToClient, slot);
                }
            } else {
                self.m.faults.answers_to_dead_connections += 1;
                self.record(
                    d,
                    TraceWhat::Message {
                        from_device: false,
                        env: reply,
                        fate: Fate::Dropped,
                    },
                );
            }
        }
        for i in 0..self.sout.pushes.len() {
            let (to, env) = self.sout.pushes[i];
            let to = to.0;
            if to < self.first || to - self.first >= self.devices {
                continue; // never: a session's device is one of its user's
            }
            self.count_message(to);
            self.count_code(&env);
            self.log_entry(
                to,
                LogWhat::Message {
                    to_server: false,
                    env,
                },
            );
            let (lat, lost) = self.wire(to);
            if lost {
                self.m.faults.lost_messages += 1;
                self.record(
                    to,
                    TraceWhat::Message {
                        from_device: false,
                        env,
                        fate: Fate::Lost,
                    },
                );
                continue;
            }
            let i = self.ix(to);
            let dev = &mut self.devs[i];
            dev.in_flight = dev.in_flight.saturating_add(1);
            let epoch = dev.boot;
            let slot = self.alloc(Msg { env, epoch });
            self.schedule(self.now + lat, to, Kind::Push, slot);
        }
        for i in 0..self.sout.events.len() {
            match self.sout.events[i] {
                ServerEvent::Admitted {
                    session, recovered, ..
                } => {
                    if recovered {
                        self.m.sessions.recovered += 1;
                    } else {
                        self.m.sessions.created += 1;
                    }
                    let local = session.0.wrapping_sub(self.part.session_base);
                    if local > AUX_MASK || local >= self.part.session_span {
                        let most = AUX_MASK.min(self.part.session_span.saturating_sub(1));
                        self.limit.get_or_insert_with(|| {
                            format!(
                                "more than {most} sessions created in partition {} (devices {}..{})",
                                self.part.index,
                                self.first,
                                self.first + self.devices
                            )
                        });
                    }
                    let was_active = self.before.active_session(session).is_some();
                    if self.cfg.server.ttl_expiry && !was_active {
                        // The timer runs for the session's device (the one it is bound to).
                        let us = &self.users[u];
                        let due = us
                            .ttl_deadline_ms(session)
                            .zip(us.active_session(session).map(|s| s.device));
                        if let Some((t, dev)) = due {
                            self.schedule(t, dev.0, Kind::Ttl, local);
                        }
                    }
                }
                ServerEvent::Ended { cause, .. } => match cause {
                    EndCause::Logout => self.m.sessions.ended_logout += 1,
                    EndCause::Expired => self.m.sessions.ended_expired += 1,
                    EndCause::Replaced => self.m.sessions.ended_replaced += 1,
                },
            }
        }
        let us = &mut self.users[u];
        if us.sessions.capacity() > us.sessions.len() {
            us.sessions.shrink_to_fit();
        }
        if changed {
            self.recount_orphans(u);
        }
        self.found(found, d);
    }

    fn ttl(&mut self, d: u32, session: SessionId) {
        let u = self.uix(d);
        let us = &self.users[u];
        self.before.sessions.clone_from(&us.sessions);
        self.before.roster = us.roster;
        self.before.presence_writer = us.presence_writer;
        self.sout.clear();
        let ended = self.users[u].expire(
            self.cfg,
            &mut self.shared,
            self.now,
            session,
            &mut self.sout,
        );
        if ended {
            self.after_server(d, u, None);
        } else if let Some(t) = self.users[u].ttl_deadline_ms(session) {
            let local = session.0 - self.part.session_base;
            self.schedule(t.max(self.now + 1), d, Kind::Ttl, local);
        }
    }

    fn recount_orphans(&mut self, u: usize) {
        let mut n: u16 = 0;
        for s in self.users[u].sessions.iter().filter(|s| s.active) {
            let dev = s.device.0.wrapping_sub(self.first) as usize;
            if let Some(h) = self.hot.get(dev) {
                if is_orphan(self.cfg, s, &h.client) {
                    n = n.saturating_add(1);
                }
            }
        }
        let old = std::mem::replace(&mut self.orphans[u], n);
        self.orphans_total = self.orphans_total + u64::from(n) - u64::from(old);
    }

    fn found(&mut self, found: PropSet, d: u32) {
        if found.is_empty() {
            return;
        }
        for p in found.iter() {
            let v = &mut self.m.violations[p as usize];
            if v.0 == 0 {
                *v = (0, self.events, self.now, d);
            }
            v.0 += 1;
            let stops = is_invariant(p) && !self.expected.contains(p);
            if stops && self.p.stop_on_violation && self.stop.is_none() {
                self.stop = Some(p);
            }
        }
    }

    /// The messages of device `d` still on its way at the end, in arrival order; `beyond` is
    /// sorted by device, then arrival.
    fn pending(&self, beyond: &[Event], d: u32) -> Vec<Pending> {
        let from = beyond.partition_point(|e| e.device < d);
        let dev = &self.devs[self.ix(d)];
        let down = self.hot[self.ix(d)].client.phase == Phase::Down;
        let mut out = Vec::new();
        for ev in beyond[from..].iter().take_while(|e| e.device == d) {
            let msg = |slot: u32| self.slab[slot as usize];
            match ev.kind() {
                Kind::ToServer => {
                    let m = msg(ev.aux());
                    out.push(Pending::Request {
                        env: m.env,
                        orphan: m.epoch != dev.epoch,
                    });
                }
                Kind::ToClient => {
                    let m = msg(ev.aux());
                    if m.epoch == dev.epoch && !down {
                        out.push(Pending::Answer(m.env));
                    }
                }
                Kind::Push => {
                    let m = msg(ev.aux());
                    if m.epoch == dev.boot && !down {
                        out.push(Pending::Push(m.env));
                    }
                }
                Kind::ConnLost => {
                    if ev.aux() == dev.epoch & AUX_MASK {
                        out.push(Pending::ConnectionLoss);
                    }
                }
                // Timers, restarts and expiries are not recorded: the checker's world enables
                // them from the state.
                Kind::Start
                | Kind::Crash
                | Kind::UserAct
                | Kind::ClientTimer
                | Kind::Ttl
                | Kind::Outage => {}
            }
        }
        out
    }

    /// Split the devices that want a session and hold none at the end into trapped and slow
    /// ([`classify`]): per device, whether it is trapped.
    fn classify(&mut self) -> Result<Vec<(u32, bool)>, SimError> {
        let mut beyond = std::mem::take(&mut self.beyond);
        // Stable: events of one device due at the same millisecond keep their order.
        beyond.sort_by_key(|e| (e.device, e.time_ms()));
        let dpu = self.p.dpu;
        let mut classifier = Classifier::default();
        let mut configs: Vec<(u32, Config)> = Vec::new();
        let mut verdicts: Option<(u32, Vec<bool>)> = None;
        let mut out = Vec::new();
        let end = self.first + self.devices;
        for d in self.first..end {
            let phase = self.hot[self.ix(d)].client.phase;
            if phase == Phase::Idle || holds(&phase) {
                continue;
            }
            let u = d / dpu;
            let first = u * dpu;
            let n = dpu.min(end - first);
            if verdicts.as_ref().is_none_or(|(vu, _)| *vu != u) {
                if !configs.iter().any(|(k, _)| *k == n) {
                    let c =
                        classify::world_config(self.cfg, n, self.p.groups, self.p.presence_values);
                    configs.push((n, c));
                }
                let cfg = &configs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .expect("invariant: the configuration was just made")
                    .1;
                let state = UserState {
                    table: &self.users[self.uix(d)],
                    active_total: self.shared.active_total,
                    clients: (first..first + n)
                        .map(|x| self.hot[self.ix(x)].client)
                        .collect(),
                    pending: (first..first + n)
                        .map(|x| self.pending(&beyond, x))
                        .collect(),
                };
                let world = classify::user_world(cfg, u, first, &state)?;
                verdicts = Some((u, classifier.trapped(cfg, &world, first)?));
            }
            let (_, v) = verdicts
                .as_ref()
                .expect("invariant: the user's verdicts were just made");
            let trapped = v[(d - first) as usize];
            out.push((d, trapped));
        }
        Ok(out)
    }

    fn finish(mut self, halted: bool) -> Result<PartOutput, SimError> {
        let completed = self.stop.is_none() && !halted;
        let end = self.now;
        let mut downtime = 0u64;
        for dev in &mut self.devs {
            if dev.lost_at_ms != NONE {
                dev.downtime_ms += (end - u64::from(dev.lost_at_ms)) as u32;
            }
            downtime += u64::from(dev.downtime_ms);
        }
        let (mut trapped, mut slow) = (0u64, 0u64);
        let (mut trapped_ids, mut slow_ids) = (Vec::new(), Vec::new());
        if completed {
            for (d, is_trapped) in self.classify()? {
                let (n, ids) = if is_trapped {
                    (&mut trapped, &mut trapped_ids)
                } else {
                    (&mut slow, &mut slow_ids)
                };
                *n += 1;
                if ids.len() < MAX_STUCK_IDS {
                    ids.push(d);
                }
            }
        }
        let mut sessions = std::mem::take(&mut self.m.sessions);
        sessions.live_end = u64::from(self.shared.active_total);
        sessions.orphan_end = self.orphans_total;
        let storm = self.p.outage.map(|_| {
            (
                self.storm_hit,
                self.storm_back,
                self.storm_messages,
                std::mem::take(&mut self.storm_ttr),
            )
        });
        Ok(PartOutput {
            part: self.part,
            stop: self.stop.map(|p| (p, end)),
            halted,
            end_ms: end,
            events: self.events,
            digest: self.digest.digest(),
            logins: std::mem::take(&mut self.m.logins),
            result_codes: std::mem::take(&mut self.m.result_codes),
            ttr: std::mem::take(&mut self.m.ttr),
            sessions,
            faults: std::mem::take(&mut self.m.faults),
            messages: self.m.messages,
            trapped: (trapped, trapped_ids),
            slow: (slow, slow_ids),
            downtime_ms: downtime,
            series: std::mem::take(&mut self.m.series),
            grid: std::mem::take(&mut self.grid),
            violations: std::mem::take(&mut self.m.violations),
            witnesses: self.m.witnesses,
            storm,
            trace: self.trace,
            log: self.log,
        })
    }
}

/// Run one simulation: its partitions on `spec.threads` threads ([`super::partition`]).
pub fn run(spec: &RunSpec<'_>, progress: &mut dyn FnMut(Progress)) -> Result<RunOutput, SimError> {
    super::partition::run(spec, progress)
}

/// Bytes of the per-device records, for the memory figures.
pub const fn device_record_bytes() -> usize {
    std::mem::size_of::<Dev>() + std::mem::size_of::<Hot>()
}
