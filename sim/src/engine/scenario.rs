//! Scenarios: the environment a simulation runs in (how many devices, how long, which
//! faults, which timers), as a typed TOML file under `specs/scenarios/`.
//!
//! A scenario file has a `description` and a `[scenario]` table; every knob has a default
//! ([`Scenario::default`], documented in [`SCENARIO_KNOBS`]) and unknown knobs are errors.
//! On the command line, `--set scenario.KNOB=VALUE` changes a scenario knob, and
//! `--set server.KNOB=...`, `client.KNOB=...` a knob of every variant of the run: the section
//! names which of the two a `--set` is for. The variants' `env.*` knobs are the model
//! checker's bounds; the simulator does not use them (its scale and faults come from the
//! scenario), and refuses a `--set env.KNOB=...` ([`env_knob_in_simulator`]).
//!
//! Durations are strings with a unit: `250ms`, `90s`, `30m`, `1h`, or sums such as `1h30m`.

use super::classify::MAX_DEVICES_PER_USER;
use imps_model::config::{Config, EnvConfig};
use imps_model::server::granted_keep_alive_s;
use imps_model::specs::{Entry, Kind, SpecsDir};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// The longest simulated time of a run, faulty and liveness phases together (the event key
/// holds 30 bits of milliseconds).
pub const MAX_RUN_MS: u64 = 240 * 3_600_000;
/// The most devices in one run.
pub const MAX_DEVICES: u32 = 50_000_000;

/// The largest seed: the largest integer a TOML file can hold, so that `scenario.seed`,
/// `--seed` and `--seeds` take the same range (0 to 2^63 - 1).
pub const MAX_SEED: u64 = i64::MAX as u64;

/// `scenario.seed`, with the range in the error (serde's would say "expected u64", and a
/// `--set` value too large for TOML would arrive as a string).
fn seed_in_range<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    fn out_of_range<E: serde::de::Error>(found: impl fmt::Display) -> E {
        E::custom(format!(
            "expected a seed, a whole number from 0 to {MAX_SEED}, found {found}"
        ))
    }
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a seed, a whole number from 0 to {MAX_SEED}")
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(|_| out_of_range(n))
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<u64, E> {
            (n <= MAX_SEED).then_some(n).ok_or_else(|| out_of_range(n))
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<u64, E> {
            Err(out_of_range(s))
        }
    }
    d.deserialize_any(V)
}

/// A duration in milliseconds, written with a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub u64);

impl Dur {
    /// Milliseconds.
    pub const fn ms(self) -> u64 {
        self.0
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a duration such as 90s, 30m or 1h (a number and a unit: ms, s, m, h, d; sums like 1h30m), found `{0}`")]
pub struct DurError(pub String);

impl std::str::FromStr for Dur {
    type Err = DurError;

    fn from_str(s: &str) -> Result<Dur, DurError> {
        let err = || DurError(s.to_string());
        let t = s.trim();
        if t.is_empty() {
            return Err(err());
        }
        let mut total: u64 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(err());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1000,
                "m" | "min" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(err()),
            };
            rest = &rest[unit_len..];
            total = n
                .checked_mul(scale)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(err)?;
        }
        Ok(Dur(total))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        let units = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1000, "s"),
        ];
        if ms == 0 {
            return write!(f, "0s");
        }
        for (scale, u) in units {
            if ms % scale == 0 {
                return write!(f, "{}{u}", ms / scale);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"90s\", \"30m\" or \"1h\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Dur, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(DurError(n.to_string())))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Dur, E> {
                Err(E::custom(DurError(n.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(DurError(n.to_string())))
            }
        }
        d.deserialize_any(V)
    }
}

/// The knobs of a scenario. Defaults are those of `specs/scenarios/default.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Devices in the run (`--devices`).
    pub devices: u32,
    /// Devices per user: device `d` belongs to user `d / devices_per_user`.
    pub devices_per_user: u32,
    /// Simulated time of the faulty phase (`--duration`).
    pub duration: Dur,
    /// The seed when `--seed` is not given, 0 to [`MAX_SEED`].
    #[serde(deserialize_with = "seed_in_range")]
    pub seed: u64,
    /// Devices power on at uniform random times within this window from time 0; at most
    /// `duration` ([`Scenario::check_phases`]).
    pub start_spread: Dur,
    /// A device sends a KeepAlive-Request after this percentage of the granted KeepAliveTime
    /// of idleness (the TimeToLive requested is the variant's `client.ttl_s`; the server grants
    /// at most `server.max_keep_alive_s`).
    pub keep_alive_at_pct: u32,
    /// One-way network latency: `latency_min` plus an exponential with mean
    /// `latency_mean - latency_min`, capped at `latency_max`.
    pub latency_min: Dur,
    /// Mean one-way latency.
    pub latency_mean: Dur,
    /// Largest one-way latency.
    pub latency_max: Dur,
    /// Probability that a message is lost in the faulty phase. A lost request or answer breaks
    /// the device's connection (it notices when the message would have arrived); a lost
    /// Disconnect is just gone.
    pub loss_rate: f64,
    /// Crashes per device and hour of the faulty phase (a Poisson process per device; a crash
    /// hits whatever state the device is in).
    pub crashes_per_device_hour: f64,
    /// At most this many crashes per user (all its devices together) in a run; 0: no cap. A
    /// cap runs the simulator within a model-checker bound (`env.max_crashes`, a whole world
    /// of one user there).
    pub max_crashes_per_user: u32,
    /// Shortest time from a crash to the restart.
    pub restart_delay_min: Dur,
    /// Longest time from a crash to the restart (uniform between the two).
    pub restart_delay_max: Dur,
    /// First retry delay after a refused or broken login; doubles with each retry.
    pub backoff_base: Dur,
    /// Largest retry delay.
    pub backoff_cap: Dur,
    /// Up to this percentage of each retry delay is taken off at random (jitter).
    pub backoff_jitter_pct: u32,
    /// User actions (join or leave a group, publish presence) per device and hour, in the
    /// faulty phase, applied when the device holds a session: they give sessions a context.
    pub user_actions_per_device_hour: f64,
    /// Groups a user may join (0..=8).
    pub groups: u8,
    /// Presence values a user may publish (0..=3).
    pub presence_values: u8,
    /// The liveness phase lasts this many TTLs (granted KeepAliveTimes); a device without a
    /// session at its end is reported trapped or slow. At least the way back in
    /// ([`Scenario::liveness_need_ms`]).
    pub liveness_ttls: u32,
    /// Stop the run at the first violation of a safety invariant that the variant does not
    /// expect (`[expect]` of the variant file says `violated`).
    pub stop_on_violation: bool,
    /// Points of the live/orphaned sessions time series.
    pub samples: u32,
    /// Users per partition: the run is cut into partitions of this many consecutive users
    /// (user `u` is in partition `u / partition_users`), each simulated with its own event
    /// queue, and the partitions run on `--threads` threads. The result depends on it only
    /// through the digest (which combines the partitions' digests); it never depends on the
    /// number of threads. A variant with `server.max_sessions_total` couples all users: its
    /// runs are one partition whatever this says.
    pub partition_users: u32,
    /// When the correlated outage hits (`outage_fraction` > 0), from time 0; within the
    /// faulty phase.
    pub outage_at: Dur,
    /// The share of devices (`crash`, `connection-loss`) or of users (`server-restart`) the
    /// outage hits, 0 to 1; 0: no outage.
    pub outage_fraction: f64,
    /// What the outage does.
    pub outage_kind: OutageKind,
}

/// A correlated outage: many devices hit at the same instant (`scenario.outage_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutageKind {
    /// The devices hit crash together (a faulty app update, a power cut): volatile state
    /// lost, the stored Session-ID kept; each restarts after its restart delay.
    Crash,
    /// The devices' connections drop (a cell or proxy outage): answers in flight are lost,
    /// the devices live on and re-establish their sessions (`Client::connection_lost`).
    ConnectionLoss,
    /// The server shards of the users hit restart and lose every session of those users, or
    /// keep them inactive, recoverable, when `server.keep_context_after_termination` says so
    /// (`UserServer::restart`); the devices find out at their next request (604).
    ServerRestart,
}

impl OutageKind {
    /// The name in scenario files and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            OutageKind::Crash => "crash",
            OutageKind::ConnectionLoss => "connection-loss",
            OutageKind::ServerRestart => "server-restart",
        }
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            devices: 100_000,
            devices_per_user: 2,
            duration: Dur(3_600_000),
            seed: 1,
            start_spread: Dur(60_000),
            keep_alive_at_pct: 80,
            latency_min: Dur(20),
            latency_mean: Dur(80),
            latency_max: Dur(3000),
            loss_rate: 0.0001,
            crashes_per_device_hour: 0.2,
            max_crashes_per_user: 0,
            restart_delay_min: Dur(5000),
            restart_delay_max: Dur(60_000),
            backoff_base: Dur(1000),
            backoff_cap: Dur(60_000),
            backoff_jitter_pct: 50,
            user_actions_per_device_hour: 1.0,
            groups: 2,
            presence_values: 3,
            liveness_ttls: 2,
            stop_on_violation: true,
            samples: 240,
            partition_users: 1024,
            outage_at: Dur(1_800_000),
            outage_fraction: 0.0,
            outage_kind: OutageKind::Crash,
        }
    }
}

/// A scenario file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScenarioFile {
    /// One line on what the scenario is for.
    pub description: String,
    /// The knobs.
    pub scenario: Scenario,
}

/// Documentation of one scenario knob.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioKnob {
    /// `scenario.knob`.
    pub key: &'static str,
    /// What it means.
    pub meaning: &'static str,
}

/// Every scenario knob, in file order; defaults come from [`Scenario::default`].
pub const SCENARIO_KNOBS: &[ScenarioKnob] = &[
    ScenarioKnob { key: "scenario.devices", meaning: "devices in the run (--devices)" },
    ScenarioKnob { key: "scenario.devices_per_user", meaning: "devices per user (1..=4); device d belongs to user d / devices_per_user" },
    ScenarioKnob { key: "scenario.duration", meaning: "simulated time of the faulty phase (--duration)" },
    ScenarioKnob { key: "scenario.seed", meaning: "seed when --seed is not given, 0 to 2^63 - 1 (as --seed)" },
    ScenarioKnob { key: "scenario.start_spread", meaning: "devices power on at uniform random times in [0, start_spread); at most scenario.duration" },
    ScenarioKnob { key: "scenario.keep_alive_at_pct", meaning: "keep-alive sent after this % of the granted KeepAliveTime (TTL: client.ttl_s, capped by server.max_keep_alive_s)" },
    ScenarioKnob { key: "scenario.latency_min", meaning: "one-way latency: min + exponential(mean - min), capped at max" },
    ScenarioKnob { key: "scenario.latency_mean", meaning: "mean one-way latency" },
    ScenarioKnob { key: "scenario.latency_max", meaning: "largest one-way latency" },
    ScenarioKnob { key: "scenario.loss_rate", meaning: "probability that a message is lost (faulty phase); a lost request or answer breaks the connection" },
    ScenarioKnob { key: "scenario.crashes_per_device_hour", meaning: "Poisson crash rate per device (faulty phase); a crash may hit any state" },
    ScenarioKnob { key: "scenario.max_crashes_per_user", meaning: "at most this many crashes per user, all its devices together (0: no cap)" },
    ScenarioKnob { key: "scenario.restart_delay_min", meaning: "shortest crash-to-restart time" },
    ScenarioKnob { key: "scenario.restart_delay_max", meaning: "longest crash-to-restart time (uniform)" },
    ScenarioKnob { key: "scenario.backoff_base", meaning: "first login retry delay; doubles per retry" },
    ScenarioKnob { key: "scenario.backoff_cap", meaning: "largest login retry delay" },
    ScenarioKnob { key: "scenario.backoff_jitter_pct", meaning: "up to this % of a retry delay is taken off at random" },
    ScenarioKnob { key: "scenario.user_actions_per_device_hour", meaning: "join/leave/presence actions per device-hour (faulty phase), giving sessions a context" },
    ScenarioKnob { key: "scenario.groups", meaning: "groups a user may join (0..=8)" },
    ScenarioKnob { key: "scenario.presence_values", meaning: "presence values a user may publish (0..=3)" },
    ScenarioKnob { key: "scenario.liveness_ttls", meaning: "liveness phase length in TTLs; devices without a session at its end are trapped or slow; at least the way back in" },
    ScenarioKnob { key: "scenario.stop_on_violation", meaning: "stop at the first unexpected safety-invariant violation" },
    ScenarioKnob { key: "scenario.samples", meaning: "points of the sessions-over-time series" },
    ScenarioKnob { key: "scenario.partition_users", meaning: "users per partition (each with its own event queue; partitions run on --threads threads); changes the digest only" },
    ScenarioKnob { key: "scenario.outage_at", meaning: "when the correlated outage hits (with outage_fraction > 0); within the faulty phase" },
    ScenarioKnob { key: "scenario.outage_fraction", meaning: "share of devices (crash, connection-loss) or users (server-restart) the outage hits, 0..=1; 0: none" },
    ScenarioKnob { key: "scenario.outage_kind", meaning: "crash | connection-loss | server-restart" },
];

/// Why the simulator does not use a variant's `env.*` knob, and what plays its part there;
/// `None` when `knob` is no env knob. The `[env]` table of a variant holds the model checker's
/// bounds (how many users, devices, crashes it explores); the simulator's scale and faults come
/// from the scenario, so an explicit `--set env.KNOB=...` for a simulation is refused rather
/// than silently ignored (a variant file's own `[env]` table is the checker's and is not an
/// error).
pub fn env_knob_in_simulator(knob: &str) -> Option<&'static str> {
    // Every field named: a new env knob does not compile until it has a reason below.
    let EnvConfig {
        users: _,
        devices_per_user: _,
        max_crashes: _,
        max_connection_losses: _,
        crash_during_login: _,
        loss_during_login: _,
        groups: _,
        presence_values: _,
        user_logouts: _,
        keep_alives: _,
        settle_inert_disconnects: _,
    } = EnvConfig::default();
    Some(match knob {
        "users" => "its users are scenario.devices / scenario.devices_per_user (--devices)",
        "devices_per_user" => "its devices per user are scenario.devices_per_user",
        "max_crashes" => {
            "its crashes come from scenario.crashes_per_device_hour, capped per user by scenario.max_crashes_per_user"
        }
        "max_connection_losses" => "its broken connections come from scenario.loss_rate",
        "crash_during_login" => {
            "its crashes hit any state, logins included (scenario.crashes_per_device_hour)"
        }
        "loss_during_login" => "its broken connections hit any state, logins included (scenario.loss_rate)",
        "settle_inert_disconnects" => {
            "it delivers every Disconnect with its latency, with no queue to bound"
        }
        "groups" => "its groups are scenario.groups",
        "presence_values" => "its presence values are scenario.presence_values",
        "user_logouts" => "its users never log out of their own accord",
        "keep_alives" => "its devices always send keep-alives (scenario.keep_alive_at_pct)",
        _ => return None,
    })
}

/// A scenario error: the file or flag, the place, and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read, or is larger than
    /// [`imps_model::io::Cap::SCENARIO_FILE`].
    #[error("{0}")]
    Read(#[from] imps_model::io::ReadError),
    /// The TOML did not parse, did not fit the knobs, or broke a bound.
    #[error("{origin}: {message}")]
    Invalid {
        /// The file, or the flag.
        origin: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// No scenario of that name.
    #[error("--scenario: unknown scenario `{name}`; named scenarios: {known}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
    },
}

fn invalid(origin: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        origin: origin.into(),
        message: message.into(),
    }
}

/// The named scenarios: `specs/scenarios` under the current directory when there is one, else
/// the ones built into the binary ([`imps_model::specs`]).
pub fn scenarios_dir() -> SpecsDir {
    SpecsDir::find(Kind::Scenarios)
}

/// The named scenarios in `dir`, sorted (none when a directory cannot be read).
pub fn named_scenarios(dir: &SpecsDir) -> Vec<String> {
    dir.names().unwrap_or_default()
}

impl ScenarioFile {
    /// Parse a scenario from TOML; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<ScenarioFile, ScenarioError> {
        let f: ScenarioFile = toml::from_str(text)
            .map_err(|e| invalid(origin, imps_model::io::toml_error_line(text, &e)))?;
        f.scenario.validate().map_err(|m| invalid(origin, m))?;
        Ok(f)
    }

    /// Read a scenario file.
    pub fn load(path: &Path) -> Result<ScenarioFile, ScenarioError> {
        let text = imps_model::io::read_capped_string(path, imps_model::io::Cap::SCENARIO_FILE)?;
        ScenarioFile::from_toml(&text, &path.display().to_string())
    }
}

/// A scenario by name (a file stem under `dir`) or path; returns its name and contents.
pub fn resolve_scenario(
    name_or_path: &str,
    dir: &SpecsDir,
) -> Result<(String, ScenarioFile), ScenarioError> {
    match dir.resolve(name_or_path) {
        Some((name, Entry::File(file))) => Ok((name, ScenarioFile::load(&file)?)),
        Some((name, Entry::BuiltIn { origin, text })) => {
            Ok((name, ScenarioFile::from_toml(text, &origin)?))
        }
        None => Err(ScenarioError::Unknown {
            name: name_or_path.to_string(),
            known: named_scenarios(dir).join(", "),
        }),
    }
}

impl Scenario {
    /// Apply one `scenario.knob=value` override and check the result.
    pub fn apply_set(&mut self, assignment: &str) -> Result<(), ScenarioError> {
        self.apply_sets(&[assignment])
    }

    /// Apply `scenario.knob=value` overrides in order, then check the final scenario once, so
    /// that bounds between knobs (`latency_min <= latency_mean`) are judged on the result,
    /// whatever the order. A value is read as TOML, and as a string when it is not TOML
    /// (`90s`).
    pub fn apply_sets<S: AsRef<str>>(&mut self, assignments: &[S]) -> Result<(), ScenarioError> {
        let overrides: Vec<(String, String)> = assignments
            .iter()
            .map(|a| (format!("--set {}", a.as_ref()), a.as_ref().to_string()))
            .collect();
        self.apply_overrides(&overrides)
    }

    /// [`Scenario::apply_sets`] with the flag each assignment came from (`--devices 10`
    /// sets `scenario.devices=10`), for the messages.
    pub fn apply_overrides(&mut self, overrides: &[(String, String)]) -> Result<(), ScenarioError> {
        let mut sc = self.clone();
        for (origin, a) in overrides {
            sc.assign(origin, a)?;
        }
        if let Err(m) = sc.validate() {
            let origins: Vec<&str> = overrides.iter().map(|(o, _)| o.as_str()).collect();
            return Err(invalid(origins.join(" "), m));
        }
        *self = sc;
        Ok(())
    }

    /// Apply one override without checking the bounds between knobs.
    fn assign(&mut self, origin: &str, assignment: &str) -> Result<(), ScenarioError> {
        let origin = origin.to_string();
        let (key, raw) = assignment
            .split_once('=')
            .ok_or_else(|| invalid(&origin, "expected scenario.knob=value"))?;
        let knob = key
            .trim()
            .strip_prefix("scenario.")
            .ok_or_else(|| invalid(&origin, "expected scenario.knob=value"))?;
        let raw = raw.trim();
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        let mut table =
            toml::Table::try_from(&*self).map_err(|e| invalid(&origin, e.to_string()))?;
        if !table.contains_key(knob) {
            let known: Vec<&str> = SCENARIO_KNOBS
                .iter()
                .map(|k| &k.key["scenario.".len()..])
                .collect();
            return Err(invalid(
                &origin,
                format!(
                    "unknown knob `{knob}` in [scenario], expected one of: {}",
                    known.join(", ")
                ),
            ));
        }
        table.insert(knob.to_string(), value);
        let sc: Scenario = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| {
                invalid(&origin, format!("scenario.{knob}: {}", e.message()))
            })?;
        *self = sc;
        Ok(())
    }

    /// Check the bounds that serde cannot express. The message names the knob and the bound.
    pub fn validate(&self) -> Result<(), String> {
        let s = self;
        let fail = |knob: &str, what: String| Err(format!("scenario.{knob}: {what}"));
        if s.devices == 0 || s.devices > MAX_DEVICES {
            return fail(
                "devices",
                format!("expected 1..={MAX_DEVICES}, found {}", s.devices),
            );
        }
        if s.seed > MAX_SEED {
            return fail("seed", format!("expected 0..={MAX_SEED}, found {}", s.seed));
        }
        if s.devices_per_user == 0 || s.devices_per_user > MAX_DEVICES_PER_USER {
            return fail(
                "devices_per_user",
                format!(
                    "expected 1..={MAX_DEVICES_PER_USER} (the devices left without a session are classified by a \
                     search of their user's world, which grows exponentially with its devices), found {}",
                    s.devices_per_user
                ),
            );
        }
        if s.duration.ms() == 0 || s.duration.ms() > MAX_RUN_MS {
            return fail(
                "duration",
                format!(
                    "expected more than 0 and at most 240h, found {}",
                    s.duration
                ),
            );
        }
        if s.keep_alive_at_pct == 0 || s.keep_alive_at_pct > 100 {
            return fail(
                "keep_alive_at_pct",
                format!("expected 1..=100, found {}", s.keep_alive_at_pct),
            );
        }
        if !(s.latency_min <= s.latency_mean && s.latency_mean <= s.latency_max) {
            return fail(
                "latency_mean",
                format!(
                    "expected latency_min <= latency_mean <= latency_max, found {} <= {} <= {}",
                    s.latency_min, s.latency_mean, s.latency_max
                ),
            );
        }
        if s.latency_max.ms() > 600_000 {
            return fail(
                "latency_max",
                format!("expected at most 10m, found {}", s.latency_max),
            );
        }
        if !(0.0..=0.5).contains(&s.loss_rate) {
            return fail(
                "loss_rate",
                format!("expected a probability in 0..=0.5, found {}", s.loss_rate),
            );
        }
        if !(0.0..=3600.0).contains(&s.crashes_per_device_hour) {
            return fail(
                "crashes_per_device_hour",
                format!("expected 0..=3600, found {}", s.crashes_per_device_hour),
            );
        }
        if s.max_crashes_per_user > 255 {
            return fail(
                "max_crashes_per_user",
                format!("expected 0..=255, found {}", s.max_crashes_per_user),
            );
        }
        if s.restart_delay_min > s.restart_delay_max {
            return fail(
                "restart_delay_min",
                format!(
                    "expected at most restart_delay_max ({}), found {}",
                    s.restart_delay_max, s.restart_delay_min
                ),
            );
        }
        if s.backoff_base.ms() == 0 || s.backoff_base > s.backoff_cap {
            return fail(
                "backoff_base",
                format!(
                    "expected more than 0 and at most backoff_cap ({}), found {}",
                    s.backoff_cap, s.backoff_base
                ),
            );
        }
        if s.backoff_jitter_pct > 100 {
            return fail(
                "backoff_jitter_pct",
                format!("expected 0..=100, found {}", s.backoff_jitter_pct),
            );
        }
        if !(0.0..=3600.0).contains(&s.user_actions_per_device_hour) {
            return fail(
                "user_actions_per_device_hour",
                format!(
                    "expected 0..=3600, found {}",
                    s.user_actions_per_device_hour
                ),
            );
        }
        if s.groups > 8 {
            return fail("groups", format!("expected 0..=8, found {}", s.groups));
        }
        if s.presence_values > 3 {
            return fail(
                "presence_values",
                format!("expected 0..=3, found {}", s.presence_values),
            );
        }
        if s.liveness_ttls == 0 {
            return fail("liveness_ttls", "expected at least 1, found 0".into());
        }
        if s.partition_users == 0 {
            return fail("partition_users", "expected at least 1, found 0".into());
        }
        if !(0.0..=1.0).contains(&s.outage_fraction) {
            return fail(
                "outage_fraction",
                format!("expected a share in 0..=1, found {}", s.outage_fraction),
            );
        }
        if !(2..=10_000).contains(&s.samples) {
            return fail(
                "samples",
                format!("expected 2..=10000, found {}", s.samples),
            );
        }
        Ok(())
    }

    /// The granted KeepAliveTime (the TTL) under a variant, ms.
    pub fn ttl_ms(cfg: &Config) -> u64 {
        u64::from(granted_keep_alive_s(cfg, Some(cfg.client.ttl_s))) * 1000
    }

    /// The liveness bound under a variant, ms.
    pub fn liveness_ms(&self, cfg: &Config) -> u64 {
        u64::from(self.liveness_ttls) * Scenario::ttl_ms(cfg)
    }

    /// One-way messages of the longest way back in at the largest latency, see
    /// [`Scenario::liveness_need_ms`].
    pub const WAY_BACK_MESSAGES: u64 = 18;

    /// The time a device that is not trapped may need to hold a session again after the last
    /// fault, when nothing else goes wrong, ms: the later of its restart (`restart_delay_max`)
    /// and, when the server expires sessions, the expiry of a session orphaned by the last
    /// faults (the request that makes it arrives up to `latency_max` after the faulty phase,
    /// and its Time-To-Live runs a TTL after that); then the retry timer armed meanwhile
    /// (`backoff_cap` at most); then [`Scenario::WAY_BACK_MESSAGES`] one-way messages at
    /// `latency_max`: the attempt under way when the way opened and its answer (2), a refused
    /// 4-way recovery (4), the logout after a recovery without context (2), a 4-way login
    /// resent after 436 (6), and both negotiations (4).
    pub fn liveness_need_ms(&self, cfg: &Config) -> u64 {
        let expiry = if cfg.server.ttl_expiry {
            self.latency_max.ms() + Scenario::ttl_ms(cfg)
        } else {
            0
        };
        self.restart_delay_max.ms().max(expiry)
            + self.backoff_cap.ms()
            + Scenario::WAY_BACK_MESSAGES * self.latency_max.ms()
    }

    /// Check the knobs that only make sense together, once every override is applied (so that
    /// `--set` and `--duration` may come in any order): every device must power on within the
    /// faulty phase, or a device that never powered on (or did so too late to be measured by the
    /// liveness phase) would count as one without a session.
    pub fn check_phases(&self) -> Result<(), String> {
        if self.outage_fraction > 0.0 && self.outage_at >= self.duration {
            return Err(format!(
                "scenario.outage_at: the outage would hit at {}, not within the faulty phase (scenario.duration {}); \
                 set scenario.outage_at below scenario.duration",
                self.outage_at, self.duration
            ));
        }
        if self.start_spread > self.duration {
            return Err(format!(
                "scenario.start_spread: devices power on up to {} after time 0, after the faulty phase ends \
                 (scenario.duration {}); a device that powers on later is not measured by the liveness phase, \
                 so set scenario.start_spread to at most scenario.duration",
                self.start_spread, self.duration
            ));
        }
        Ok(())
    }

    /// Check the scenario against a variant: the liveness phase must be long enough for every
    /// device that is not trapped to get back in ([`Scenario::liveness_need_ms`]), and the whole
    /// run must fit the time limit.
    pub fn check_variant(&self, name: &str, cfg: &Config) -> Result<(), String> {
        let ttl = Scenario::ttl_ms(cfg);
        let bound = self.liveness_ms(cfg);
        let need = self.liveness_need_ms(cfg);
        if bound < need {
            let expiry = if cfg.server.ttl_expiry {
                format!(
                    "max(restart_delay_max {}, latency_max {} + an orphaned session's TTL {} (server.ttl_expiry))",
                    self.restart_delay_max,
                    self.latency_max,
                    Dur(ttl)
                )
            } else {
                format!("restart_delay_max {}", self.restart_delay_max)
            };
            return Err(format!(
                "scenario.liveness_ttls: with variant {name} the liveness phase would be {} x TTL {} = {}, shorter than \
                 the {} a device that is not trapped may need to get back in after the last fault ({expiry} + \
                 backoff_cap {} + {} x latency_max {}); set scenario.liveness_ttls to at least {}, or lower those knobs",
                self.liveness_ttls,
                Dur(ttl),
                Dur(bound),
                Dur(need),
                self.backoff_cap,
                Scenario::WAY_BACK_MESSAGES,
                self.latency_max,
                need.div_ceil(ttl.max(1))
            ));
        }
        if self.duration.ms() + bound > MAX_RUN_MS {
            return Err(format!(
                "scenario.duration: the run with variant {name} would last {} + liveness {} = {}, more than the limit of 240h",
                self.duration,
                Dur(bound),
                Dur(self.duration.ms() + bound)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        for (s, ms) in [
            ("90s", 90_000),
            ("30m", 1_800_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("250ms", 250),
            ("2d", 172_800_000),
        ] {
            let d: Dur = s.parse().unwrap();
            assert_eq!(d.ms(), ms, "{s}");
            assert_eq!(d.to_string().parse::<Dur>().unwrap(), d);
        }
        for bad in [
            "",
            "10",
            "h",
            "1x",
            "1.5h",
            "-1s",
            "1h 30m",
            "99999999999999999999h",
        ] {
            let e = bad.parse::<Dur>().unwrap_err().to_string();
            assert!(e.contains("expected a duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_knob_is_documented() {
        let t = toml::Table::try_from(Scenario::default()).unwrap();
        let mut keys: Vec<String> = t.keys().map(|k| format!("scenario.{k}")).collect();
        let mut documented: Vec<String> =
            SCENARIO_KNOBS.iter().map(|k| k.key.to_string()).collect();
        keys.sort();
        documented.sort();
        assert_eq!(keys, documented);
    }

    #[test]
    fn named_scenarios_parse_and_default_matches_the_struct() {
        let dir = scenarios_dir();
        let names = named_scenarios(&dir);
        assert!(names.contains(&"default".to_string()), "{names:?}");
        for n in &names {
            resolve_scenario(n, &dir).unwrap_or_else(|e| panic!("{e}"));
        }
        let (_, f) = resolve_scenario("default", &dir).unwrap();
        assert_eq!(
            f.scenario,
            Scenario::default(),
            "default.toml spells out the defaults"
        );
    }

    #[test]
    fn set_changes_knobs_and_names_the_flag_on_error() {
        let mut s = Scenario::default();
        s.apply_set("scenario.duration=90s").unwrap();
        assert_eq!(s.duration, Dur(90_000));
        s.apply_set("scenario.loss_rate=0.01").unwrap();
        assert_eq!(s.loss_rate, 0.01);
        s.apply_set("scenario.crashes_per_device_hour=2").unwrap();
        assert_eq!(s.crashes_per_device_hour, 2.0);
        let e = s.apply_set("scenario.nope=1").unwrap_err().to_string();
        assert!(
            e.starts_with("--set scenario.nope=1: unknown knob `nope`") && e.contains("devices"),
            "{e}"
        );
        let e = s.apply_set("scenario.duration=10").unwrap_err().to_string();
        assert!(
            e.contains("scenario.duration") && e.contains("expected a duration"),
            "{e}"
        );
        let e = s.apply_set("scenario.devices=0").unwrap_err().to_string();
        assert!(e.contains("scenario.devices: expected 1..="), "{e}");
    }

    #[test]
    fn bad_files_name_the_file_and_line() {
        let e = ScenarioFile::from_toml("[scenario]\ndevices = 10\nbogus = 1\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("x.toml:") && e.contains("line 3") && e.contains("bogus"),
            "{e}"
        );
        let e = ScenarioFile::from_toml("[scenario]\nduration = \"forever\"\n", "y.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("expected a duration"),
            "{e}"
        );
    }

    #[test]
    fn a_liveness_phase_too_short_to_get_back_in_is_refused() {
        let s = Scenario {
            restart_delay_max: Dur(3_600_000),
            ..Scenario::default()
        };
        let e = s.check_variant("post-cr", &Config::default()).unwrap_err();
        assert!(e.starts_with("scenario.liveness_ttls:"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        // With expiry, the way back in waits for an orphaned session's Time-To-Live: 2 TTLs are
        // enough with the default timers, 1 is not (the issue's reproducer), and the message
        // says how many are.
        let mut expiry = Config::default();
        expiry.apply_set("server.ttl_expiry=true").unwrap();
        let one = Scenario {
            liveness_ttls: 1,
            restart_delay_max: Dur(5000),
            backoff_cap: Dur(30_000),
            ..Scenario::default()
        };
        assert_eq!(
            one.liveness_need_ms(&expiry),
            3000 + 120_000 + 30_000 + 18 * 3000
        );
        let e = one.check_variant("post-cr-expiry", &expiry).unwrap_err();
        assert!(
            e.contains("server.ttl_expiry") && e.ends_with("at least 2, or lower those knobs"),
            "{e}"
        );
        one.check_variant("post-cr", &Config::default()).unwrap();
        Scenario::default()
            .check_variant("post-cr", &Config::default())
            .unwrap();
        Scenario::default()
            .check_variant("post-cr-expiry", &expiry)
            .unwrap();
    }

    #[test]
    fn every_named_scenario_accepts_every_named_variant() {
        let dir = imps_model::variant::variants_dir();
        for (name, _) in imps_model::variant::named_variants(&dir).unwrap() {
            let cfg = imps_model::variant::resolve_variant(&name, &dir)
                .unwrap()
                .1
                .cfg;
            for sc in named_scenarios(&scenarios_dir()) {
                let (_, f) = resolve_scenario(&sc, &scenarios_dir()).unwrap();
                f.scenario
                    .check_variant(&name, &cfg)
                    .unwrap_or_else(|e| panic!("{sc} with {name}: {e}"));
            }
        }
    }

    #[test]
    fn every_device_powers_on_within_the_faulty_phase() {
        let s = Scenario {
            start_spread: Dur(3_600_000),
            ..Scenario::default()
        };
        s.check_phases().unwrap();
        let late = Scenario {
            start_spread: Dur(3_600_001),
            ..s
        };
        let e = late.check_phases().unwrap_err();
        assert!(
            e.starts_with("scenario.start_spread:") && e.contains("scenario.duration 1h"),
            "{e}"
        );
    }
}
