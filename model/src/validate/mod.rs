//! Trace validation: does a real CSP log (messages captured on a proxy, or written by a
//! client) come from some run of a variant of the model?
//!
//! The validator is a third driver of the protocol core, after the checker and the
//! simulator: it steps the checker's own [`crate::world::World`] and asks, message by
//! message, which runs of the variant, with unobserved steps between the messages, put
//! exactly the observed messages on the wire, with the log's Session-IDs, Client-IDs and
//! Transaction-IDs mapped to the model's consistently ([`engine`]). A log **conforms** when
//! one run does; it **departs** at the first line no run explains, and the report says what
//! the model allows there instead, which knob of the model would have produced the line,
//! and which requirements of the CR that breaks, read by the property monitors of
//! [`crate::props`] ([`explain`]). [`infer`] turns the question around: which settings of
//! the knobs the CR leaves open are consistent with a log.
//!
//! Users are independent (the server is sharded by user; a SAP-wide session limit is the
//! only link, and the validator lets the other users fill it at any time), so each user's
//! part of the log is validated on its own, with a world of that user's devices.
//!
//! ```
//! use imps_model::config::Config;
//! use imps_model::validate::{log::LogWriter, log::Dir, obs::prepare, validate, Options, Validation};
//! use imps_model::validate::log::parse_jsonl;
//! use imps_model::client::{Client, ClientOut};
//! use imps_model::msg::{DeviceId, UserId};
//! use imps_model::server::{Origin, ServerOut, ServerShared, UserServer};
//!
//! // One login, as the post-CR core does it, written as a log.
//! let cfg = Config::default();
//! let (mut c, mut s, mut shared) = (Client::new(UserId(0), DeviceId(0)), UserServer::default(), ServerShared::default());
//! let mut out = ClientOut::default();
//! c.start(&cfg, &mut out);
//! let login = out.send.unwrap();
//! let mut sout = ServerOut::default();
//! s.handle(&cfg, &mut shared, Origin { user: UserId(0), device: DeviceId(0) }, 0, &login, &mut sout);
//! let mut w = LogWriter::new();
//! w.message(0, "alice", "phone", Dir::ToServer, &login);
//! w.message(80, "alice", "phone", Dir::ToClient, &sout.reply.unwrap());
//! let log = prepare(&parse_jsonl("login.jsonl", &w.finish())?)?;
//!
//! let post_cr = validate(&log, &Validation::new(&cfg), Options::default())?;
//! assert!(post_cr.departure.is_none(), "post-cr conforms");
//! let mut pre = cfg.clone();
//! pre.server.duplicate_client_id = imps_model::config::DuplicateClientId::RejectGeneric;
//! assert!(validate(&log, &Validation::new(&pre), Options::default())?.departure.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod engine;
pub mod explain;
pub mod infer;
pub mod log;
pub mod obs;

use crate::config::{Config, ConfigError};
use crate::props::Prop;
use engine::{Bound, Search};
use explain::Explanation;
use obs::{describe_obs, ObKind, Prepared, UserLog};
use std::borrow::Cow;

/// A variant read for validation.
///
/// The variant's `server` and `client` knobs are the protocol; its `env` knobs are the
/// checker's bounds, which do not bind a real log: crashes and connection losses are
/// unbounded (unless `env.max_crashes` / `env.max_connection_losses` are set explicitly,
/// then that many per user), crashes and losses may hit inside a login, clients may send
/// keep-alives, and users may log out and join, leave or publish whatever the log shows.
#[derive(Clone, Debug)]
pub struct Validation {
    /// The variant, with the validation's `env`.
    pub cfg: Config,
    /// Crashes are not counted.
    pub unbounded_crashes: bool,
    /// Connection losses are not counted.
    pub unbounded_losses: bool,
    /// The network may lose a request whose connection is gone (off only when connection
    /// losses are bounded to 0).
    pub request_loss: bool,
}

impl Validation {
    /// Read `variant` for validation (see the type's documentation).
    pub fn new(variant: &Config) -> Validation {
        let mut cfg = variant.clone();
        let e = &mut cfg.env;
        e.users = 1;
        e.devices_per_user = 1;
        e.keep_alives = true;
        e.crash_during_login = true;
        e.loss_during_login = true;
        e.user_logouts = true;
        e.groups = 0;
        e.presence_values = 0;
        e.max_crashes = 0;
        e.max_connection_losses = 0;
        Validation {
            cfg,
            unbounded_crashes: true,
            unbounded_losses: true,
            request_loss: true,
        }
    }

    /// Apply one `--set section.knob=value`: `env.max_crashes` and
    /// `env.max_connection_losses` bound the faults per user (0 to 255); any other knob as
    /// [`Config::apply_set`] does.
    ///
    /// # Errors
    ///
    /// An unknown knob or a bad value, naming the flag.
    pub fn set(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let (key, value) = assignment.split_once('=').unwrap_or((assignment, ""));
        let budget = |v: &str| {
            v.trim().parse::<u8>().map_err(|_| ConfigError::Invalid {
                origin: format!("--set {assignment}"),
                message: format!(
                    "expected a number of faults per user from 0 to 255, found {:?}",
                    v.trim()
                ),
            })
        };
        match key.trim() {
            "env.max_crashes" => {
                self.cfg.env.max_crashes = budget(value)?;
                self.unbounded_crashes = false;
                return Ok(());
            }
            "env.max_connection_losses" => {
                let n = budget(value)?;
                self.cfg.env.max_connection_losses = n;
                self.unbounded_losses = false;
                self.request_loss = n > 0;
                return Ok(());
            }
            _ => {}
        }
        let (mc, ml) = (self.cfg.env.max_crashes, self.cfg.env.max_connection_losses);
        let mut c = self.cfg.clone();
        c.env.max_crashes = 0;
        c.env.max_connection_losses = 0;
        c.apply_set(assignment)?;
        c.env.max_crashes = mc;
        c.env.max_connection_losses = ml;
        self.cfg = c;
        Ok(())
    }

    /// The search for one user's log.
    pub fn search<'a>(&self, user: &'a UserLog, max_states: usize) -> Search<'a> {
        self.search_part(user, max_states, Vec::new())
    }

    /// The search for one unit of a user's log, with the Client-IDs other devices presented
    /// first (see [`Search::foreign_cids`]).
    pub fn search_part<'a>(
        &self,
        user: &'a UserLog,
        max_states: usize,
        foreign_cids: Vec<bool>,
    ) -> Search<'a> {
        let mut cfg = self.cfg.clone();
        cfg.env.users = 1;
        cfg.env.devices_per_user = user.devices.len().max(1) as u8;
        let sap_limit = cfg.server.max_sessions_total > 0;
        Search {
            cfg,
            user,
            unbounded_crashes: self.unbounded_crashes,
            unbounded_losses: self.unbounded_losses,
            request_loss: self.request_loss,
            sap_limit,
            max_states,
            foreign_cids,
        }
    }
}

/// Options of a validation.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The most model states tracked at once, per user.
    pub max_states: usize,
    /// At a departure, say what the model allows instead.
    pub allowed: bool,
    /// At a departure, look for the knobs that explain it and the requirements it breaks.
    pub explain: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_states: 100_000,
            allowed: true,
            explain: true,
        }
    }
}

/// Where and how a log departs from the model.
#[derive(Clone, Debug)]
pub struct Departure {
    /// The index of the line in the log.
    pub line: usize,
    /// `file:line`.
    pub at: String,
    /// The user.
    pub user: String,
    /// The device.
    pub device: String,
    /// The line, in one line of text.
    pub observed: String,
    /// What the model allows for that device at that point instead.
    pub allowed: Vec<String>,
    /// The single knob changes that would have produced the line.
    pub explanations: Vec<Explanation>,
    /// The safety properties the departure violates: those every explanation violates, or,
    /// with no explanation, those the monitors flag on the observed message itself.
    pub properties: Vec<Prop>,
    /// No knob explains the line: the properties come from the monitors on the line itself.
    pub by_monitors_only: bool,
}

impl Departure {
    /// The CR requirement IDs (specs/requirements.toml) of [`Departure::properties`].
    pub fn requirements(&self) -> Vec<&'static str> {
        explain::requirements(&self.properties)
    }
}

/// What a validation found.
#[derive(Clone, Debug)]
pub struct Report {
    /// `None` when the log conforms.
    pub departure: Option<Departure>,
    /// The largest set of model states tracked for one user at one point.
    pub states_tracked_max: usize,
}

/// A bound of the validator passed, at a line of the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {bound}")]
pub struct ValidateError {
    /// `file:line`.
    pub at: String,
    /// The bound.
    pub bound: Bound,
}

impl std::error::Error for Bound {}

/// The report of a departure at observation `k` of the search's log.
fn departure(
    p: &Prepared,
    v: &Validation,
    opts: Options,
    search: &Search<'_>,
    outcome: &engine::UserOutcome,
    k: usize,
) -> Result<Departure, ValidateError> {
    let user = search.user;
    let ob = &user.obs[k];
    let device = user.devices[ob.device as usize].clone();
    let observed = match &ob.kind {
        ObKind::Msg(o) => describe_obs(user, &device, o),
        ObKind::Event(e) => format!("{device}: event {}", e.as_str()),
    };
    let allowed = if opts.allowed {
        explain::allowed(search, &outcome.closed, ob)
    } else {
        Vec::new()
    };
    let (explanations, properties, by_monitors_only) = if opts.explain {
        let mut ex = explain::explain(search, &outcome.frontier, ob);
        for e in &mut ex {
            let Some(cfg) = explain::with_knob(&v.cfg, e.knob, e.value) else {
                continue;
            };
            let alt = Validation { cfg, ..v.clone() };
            let quick = Options {
                allowed: false,
                explain: false,
                ..opts
            };
            e.then_departs = validate(p, &alt, quick)?.departure.map(|d| d.line);
        }
        if ex.is_empty() {
            (ex, explain::forced(search, &outcome.closed, ob), true)
        } else {
            let common: Vec<Prop> = ex[0]
                .props
                .iter()
                .copied()
                .filter(|p| ex.iter().all(|e| e.props.contains(p)))
                .collect();
            (ex, common, false)
        }
    } else {
        (Vec::new(), Vec::new(), false)
    };
    Ok(Departure {
        line: ob.line,
        at: p.locate(ob.line),
        user: user.name.clone(),
        device,
        observed,
        allowed,
        explanations,
        properties,
        by_monitors_only,
    })
}

/// Whether the server's answers to one of a user's devices can depend on what the user's
/// other devices did: with a user-wide Client-ID pool (`client.client_id_scope = user`) they
/// collide on Client-IDs, and with a per-user session limit they share it. Otherwise every
/// session the server holds for a device was made by that device, under its own Client-IDs,
/// and nothing in a device's messages depends on another's: each device is validated in a
/// world of its own, which is exact and keeps the states of one device from multiplying with
/// those of its siblings. (A SAP-wide limit couples everyone, and the validator already lets
/// the others fill it at any time.)
pub fn devices_coupled(cfg: &Config) -> bool {
    cfg.client.client_id_scope == crate::config::ClientIdScope::User
        || cfg.server.max_sessions_per_user > 0
}

/// Validate a prepared log against a variant.
///
/// # Errors
///
/// When a bound of the validator is passed ([`Options::max_states`], or a bound of the
/// model's world), naming it and the line.
pub fn validate(p: &Prepared, v: &Validation, opts: Options) -> Result<Report, ValidateError> {
    let mut first: Option<Departure> = None;
    let mut max = 0;
    let split = !devices_coupled(&v.cfg);
    let at = |user: &UserLog, k: usize| p.locate(user.obs[k].line);
    for u in &p.users {
        let units: Vec<(Cow<'_, UserLog>, Vec<bool>)> = if split && u.devices.len() > 1 {
            let owner = u.client_id_owners();
            (0..u.devices.len() as u8)
                .map(|d| {
                    let foreign = owner.iter().map(|o| o.is_some_and(|x| x != d)).collect();
                    (Cow::Owned(u.device_part(d)), foreign)
                })
                .collect()
        } else {
            vec![(Cow::Borrowed(u), Vec::new())]
        };
        // The user's first departure, over its units.
        let mut dep: Option<(usize, usize)> = None; // (unit, observation)
        let mut outcomes = Vec::new();
        for (i, (unit, foreign)) in units.iter().enumerate() {
            let search = v.search_part(unit, opts.max_states, foreign.clone());
            let outcome = search.run().map_err(|(k, bound)| ValidateError {
                at: at(unit, k),
                bound,
            })?;
            max = max.max(outcome.states_tracked_max);
            if let Some(k) = outcome.departure {
                let line = unit.obs[k].line;
                if dep.is_none_or(|(j, kj)| line < units[j].0.obs[kj].line) {
                    dep = Some((i, k));
                }
            }
            outcomes.push(outcome);
        }
        let Some((i, k)) = dep else { continue };
        let line = units[i].0.obs[k].line;
        if first.as_ref().is_some_and(|f| f.line <= line) {
            continue;
        }
        // Explain it in the world of all the user's devices when they were validated one by
        // one (a knob that couples them, such as a session limit, needs that world); the
        // departure is the same there, and if a bound stops that run, the device's own world
        // explains it.
        if units.len() > 1 && (opts.allowed || opts.explain) {
            let joint = v.search(u, opts.max_states);
            if let Ok(o) = joint.run() {
                if let Some(kj) = o.departure.filter(|&kj| u.obs[kj].line == line) {
                    first = Some(departure(p, v, opts, &joint, &o, kj)?);
                    continue;
                }
            }
        }
        let search = v.search_part(&units[i].0, opts.max_states, units[i].1.clone());
        first = Some(departure(p, v, opts, &search, &outcomes[i], k)?);
    }
    Ok(Report {
        departure: first,
        states_tracked_max: max,
    })
}
