//! Variant configuration: every behaviour that the CR leaves open, and the pre-CR behaviour,
//! as a knob.
//!
//! A [`Config`] is the sections `[server]`, `[client]` and `[env]` of a variant file (the
//! file itself, with its `[expect]` table of verdicts, is a [`crate::variant::Variant`]).
//! Unknown sections and knobs are errors. Every knob has a default (the defaults are the
//! `post-cr` behaviour: every MUST and SHOULD of the CR followed) and can be overridden from
//! the command line with `--set section.knob=value` ([`Config::apply_set`]). [`KNOBS`]
//! documents each knob; a test keeps it in step with the structs.
//!
//! This module reads nothing of the rest of the crate but [`crate::io`]: the protocol core
//! (client, server) reads its knobs from here, and the properties that judge the core
//! (`props`) come after it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What the server does with a login whose Client-ID another active session of the same user
/// already uses (CR 7.1, 5.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DuplicateClientId {
    /// The CR: answer 608 (Client-ID is not unique).
    #[serde(rename = "reject-608")]
    Reject608,
    /// Before the CR: refuse with 503, which does not tell the client why.
    RejectGeneric,
    /// Disconnect the old session and admit the new login (forbidden by CR 6.6.1; what
    /// last-login-wins servers such as interVillage do).
    ReplaceOld,
    /// Admit the login; both sessions carry the Client-ID (what Baraza does).
    Allow,
}

/// How the server answers a Login-Request that carries a Session-ID (CR 7.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recovery {
    /// Recover the session when it exists and belongs to the user and Client-ID; else 502.
    Supported,
    /// Never recover: answer 502.
    Unsupported,
    /// Answer 422 instead of 502 (Baraza's behaviour).
    #[serde(rename = "reject-422")]
    Reject422,
    /// Recover, but with a fresh, empty context (violates CR 7.1.1).
    ResetContext,
    /// Answer 502 but log the user in anyway (violates CR 7.1.1).
    FallbackLogin,
}

/// What the server answers to a Logout-Request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogoutReply {
    /// `Status` (CSP 1.2 and later; CR 6.6.1).
    Status,
    /// `Disconnect` (CSP 1.1 style; interVillage).
    Disconnect,
}

/// Scope of the session context at the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContextScope {
    /// Each session has its own context (CR 5.1.3).
    PerSession,
    /// One context shared by all the user's sessions (violates CR 5.1.3).
    PerUser,
}

/// How the server builds the user's presence document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PresenceMerge {
    /// Merge the presence of all sessions (CR 5.1.3).
    Merged,
    /// Only the last session that updated presence counts (violates CR 5.1.3).
    LastWriter,
}

/// When the server sets `CapabilityRequest` to `T` in a successful Login-Response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapabilityRequest {
    /// `T` unless the capability negotiation was done in the login, then `F` (CR 7.1).
    WhenNeeded,
    /// Always `T`, even after a negotiation in the login (violates CR 7.1).
    Always,
    /// Always `F`.
    Never,
}

/// The System Message flow in the login transaction (CR 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SystemMessage {
    /// No System Messages.
    None,
    /// A System Message rides along a successful Login-Response; no response required.
    Notify,
    /// The first Login-Request is answered 436; the client must resend with the replies;
    /// non-conformant replies get 607.
    RequireResponse,
}

/// The server's knobs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// See [`DuplicateClientId`].
    pub duplicate_client_id: DuplicateClientId,
    /// See [`Recovery`].
    pub recovery: Recovery,
    /// Keep a terminated (expired or logged-out) session's context for a later recovery.
    pub keep_context_after_termination: bool,
    /// Expire a session whose keep-alive stopped (CR 6.6.1 SHOULD).
    pub ttl_expiry: bool,
    /// The largest `KeepAliveTime` the server grants, seconds.
    pub max_keep_alive_s: u32,
    /// Sessions per user (0: no limit); past it, 610.
    pub max_sessions_per_user: u8,
    /// Sessions in the whole server (0: no limit); past it, 609.
    pub max_sessions_total: u32,
    /// The session limits also apply when a kept session is recovered.
    pub limit_applies_to_recovery: bool,
    /// Send a Disconnect whenever the server ends a session (CR 6.6.1 MUST).
    pub sends_disconnect: bool,
    /// Put a Transaction-ID on Disconnect (violates CR 6.6.1 MUST NOT).
    pub disconnect_has_tid: bool,
    /// See [`LogoutReply`].
    pub logout_reply: LogoutReply,
    /// Remove the user from the groups the session joined on logout (CR 6.6.1 MUST).
    pub logout_leaves_groups: bool,
    /// See [`ContextScope`].
    pub context_scope: ContextScope,
    /// See [`PresenceMerge`].
    pub presence_merge: PresenceMerge,
    /// See [`CapabilityRequest`].
    pub capability_request: CapabilityRequest,
    /// See [`SystemMessage`].
    pub system_message: SystemMessage,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            duplicate_client_id: DuplicateClientId::Reject608,
            recovery: Recovery::Supported,
            keep_context_after_termination: false,
            ttl_expiry: false,
            max_keep_alive_s: 600,
            max_sessions_per_user: 0,
            max_sessions_total: 0,
            limit_applies_to_recovery: true,
            sends_disconnect: true,
            disconnect_has_tid: false,
            logout_reply: LogoutReply::Status,
            logout_leaves_groups: true,
            context_scope: ContextScope::PerSession,
            presence_merge: PresenceMerge::Merged,
            capability_request: CapabilityRequest::WhenNeeded,
            system_message: SystemMessage::None,
        }
    }
}

/// The client's access control (CR 7.1: a client MUST choose one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginKind {
    /// Password in the Login-Request.
    TwoWay,
    /// Challenge (Nonce) and digest.
    FourWay,
}

/// What the client does after 608.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum On608 {
    /// Retry later with the same Client-ID (a client with one configured Client-ID).
    RetrySame,
    /// Retry with the next Client-ID of the device's pool (CR 7.1 MAY).
    NewClientId,
}

/// Whose pool the client's Client-IDs are drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIdScope {
    /// Each device has its own pool of `client.client_id_pool` Client-IDs, disjoint from its
    /// siblings' (a Client-ID configured in the handset).
    Device,
    /// The user's devices share one pool of `client.client_id_pool` Client-IDs (a Client-ID
    /// that comes from the application): two devices on the same slot present the same
    /// Client-ID, which CR 5.1.3 wants unique among the user's sessions.
    User,
}

/// What the client does when a recovery attempt fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnRecoveryFailure {
    /// Drop the stored Session-ID and log in normally (CR 7.1.1).
    FreshLogin,
    /// Fresh login after 502; after any other code retry the same stored Session-ID later
    /// (the Android client).
    #[serde(rename = "retry-stale-unless-502")]
    RetryStaleUnless502,
    /// Always retry the same stored Session-ID (violates CR 7.1.1 after 502).
    RetryStale,
}

/// When the client combines login with service and capability negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CombinedNegotiation {
    /// Never: negotiate separately after the login.
    Never,
    /// On a fresh login only, and only in the request that completes it (CR 7.1).
    FreshLogin,
    /// In every Login-Request, recovery included (violates CR 7.1).
    Always,
}

/// Whether the client negotiates capabilities when the server asks (`CapabilityRequest` T).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapabilityNegotiation {
    /// Negotiate when asked (CR 7.1 MUST).
    WhenRequested,
    /// Never negotiate capabilities (violates CR 7.1 when asked).
    Never,
}

/// What the client does after 436.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum On436 {
    /// Prompt the user and resend the Login-Request with the replies (CR 7.1).
    ResendWithResponse,
    /// Carry on with the login sequence as if logged in (violates CR 7.1).
    Continue,
}

/// The client's knobs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// See [`LoginKind`].
    pub login: LoginKind,
    /// Store the Session-ID in crash-safe storage when a session is established (CR 7.1.1 SHOULD).
    pub stores_session_id: bool,
    /// On restart with a stored Session-ID, try to recover before logging in (CR 7.1.1 SHOULD).
    pub recover_on_restart: bool,
    /// Remove the stored Session-ID on logout and Disconnect (CR 7.1.1 MUST).
    pub remove_stored_on_logout: bool,
    /// After recovering a session whose context it lost, log out and log in again (CR 7.1.1 MUST).
    pub logout_after_recovery: bool,
    /// See [`On608`].
    pub on_608: On608,
    /// How many distinct Client-IDs a pool holds (at least 1): the device's pool, or the
    /// user's with [`ClientIdScope::User`].
    pub client_id_pool: u8,
    /// See [`ClientIdScope`].
    pub client_id_scope: ClientIdScope,
    /// See [`OnRecoveryFailure`].
    pub on_recovery_failure: OnRecoveryFailure,
    /// See [`CombinedNegotiation`].
    pub combined_negotiation: CombinedNegotiation,
    /// See [`CapabilityNegotiation`].
    pub capability_negotiation: CapabilityNegotiation,
    /// See [`On436`].
    pub on_436: On436,
    /// The user's replies to System Messages conform (false: the server answers 607).
    pub system_message_replies_conform: bool,
    /// Answer a Disconnect with a Status (violates CR 6.6.1 MUST NOT).
    pub answers_disconnect: bool,
    /// The `TimeToLive` the client asks for, seconds.
    pub ttl_s: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            login: LoginKind::TwoWay,
            stores_session_id: true,
            recover_on_restart: true,
            remove_stored_on_logout: true,
            logout_after_recovery: true,
            on_608: On608::NewClientId,
            client_id_pool: 2,
            client_id_scope: ClientIdScope::Device,
            on_recovery_failure: OnRecoveryFailure::FreshLogin,
            combined_negotiation: CombinedNegotiation::Never,
            capability_negotiation: CapabilityNegotiation::WhenRequested,
            on_436: On436::ResendWithResponse,
            system_message_replies_conform: true,
            answers_disconnect: false,
            ttl_s: 120,
        }
    }
}

/// The environment of the model checker: the bounds within which a verdict holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvConfig {
    /// Users.
    pub users: u8,
    /// Devices per user (each with its own Client-ID pool, or sharing the user's: see
    /// [`ClientIdScope`]).
    pub devices_per_user: u8,
    /// Crashes in a run, all devices together.
    pub max_crashes: u8,
    /// Connection losses without a crash (the client keeps its context) in a run.
    pub max_connection_losses: u8,
    /// A crash may hit a device while its Login-Request is unanswered (false: only outside
    /// login transactions, to separate the two ways a session gets orphaned).
    pub crash_during_login: bool,
    /// A connection loss may hit between a Login-Request and its answer (false: losses only
    /// outside login transactions).
    pub loss_during_login: bool,
    /// Groups a session may join (0 to 8).
    pub groups: u8,
    /// Presence values a session may publish besides "none" (0 to 3).
    pub presence_values: u8,
    /// Users may log out and later log in again of their own accord.
    pub user_logouts: bool,
    /// Clients send keep-alives while logged in.
    pub keep_alives: bool,
    /// A pushed Disconnect that names a session the device refers to nowhere is taken at
    /// once: taking it cannot change anything ([`crate::world::Device::inert`]). Off, it is
    /// queued like any other, and a device with more than
    /// [`crate::world::MAX_PUSHES`] waiting is an exploration error.
    pub settle_inert_disconnects: bool,
}

impl Default for EnvConfig {
    fn default() -> Self {
        EnvConfig {
            users: 1,
            devices_per_user: 1,
            max_crashes: 1,
            max_connection_losses: 0,
            crash_during_login: true,
            loss_during_login: true,
            groups: 1,
            presence_values: 1,
            user_logouts: false,
            keep_alives: false,
            settle_inert_disconnects: true,
        }
    }
}

/// The knobs and bounds of a variant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// One line on what the variant is.
    pub description: String,
    /// Server knobs.
    pub server: ServerConfig,
    /// Client knobs.
    pub client: ClientConfig,
    /// Checker bounds.
    pub env: EnvConfig,
}

/// A configuration error: the file or flag, where in it, and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file could not be read, or is larger than [`crate::io::Cap::VARIANT_FILE`].
    #[error("{0}")]
    Read(#[from] crate::io::ReadError),
    /// The TOML did not parse or did not fit the knobs.
    #[error("{origin}: {message}")]
    Invalid {
        /// The file or the `--set` flag.
        origin: String,
        /// What was wrong, where, and what was expected.
        message: String,
    },
    /// No variant of that name.
    #[error("unknown variant `{name}`; named variants: {known}")]
    UnknownVariant {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
    },
}

pub(crate) fn invalid(origin: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.into(),
        message: message.into(),
    }
}

impl Config {
    /// Apply one `section.knob=value` override and check the result ([`Config::apply_sets`]
    /// with one assignment).
    pub fn apply_set(&mut self, assignment: &str) -> Result<(), ConfigError> {
        self.apply_sets(&[assignment])
    }

    /// Apply `section.knob=value` overrides in order, then check the final configuration
    /// once ([`Config::validate`]): the bounds that tie knobs together (crashes plus losses,
    /// users times devices) are judged on the result, whatever the order of the overrides.
    /// A value is read as TOML (`true`, `3`, `"x"`), and a bare word such as `reject-608` as
    /// a string.
    pub fn apply_sets<S: AsRef<str>>(&mut self, assignments: &[S]) -> Result<(), ConfigError> {
        let mut cfg = self.clone();
        for a in assignments {
            cfg.apply_set_unvalidated(a.as_ref())?;
        }
        if let Err(m) = cfg.validate() {
            let sets: Vec<String> = assignments
                .iter()
                .map(|a| format!("--set {}", a.as_ref()))
                .collect();
            let origin = if sets.is_empty() {
                "the configuration".to_string()
            } else {
                sets.join(" ")
            };
            return Err(invalid(&origin, m));
        }
        *self = cfg;
        Ok(())
    }

    /// Apply one override without checking the bounds that tie knobs together: the caller
    /// applies the others, then calls [`Config::validate`] on the result.
    pub fn apply_set_unvalidated(&mut self, assignment: &str) -> Result<(), ConfigError> {
        let origin = format!("--set {assignment}");
        let (key, raw) = assignment
            .split_once('=')
            .ok_or_else(|| invalid(&origin, "expected section.knob=value"))?;
        let (section, knob) = key.trim().split_once('.').ok_or_else(|| {
            invalid(
                &origin,
                "expected section.knob=value, e.g. server.recovery=unsupported",
            )
        })?;
        let raw = raw.trim();
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        let mut doc = toml::Value::try_from(&*self).map_err(|e| invalid(&origin, e.to_string()))?;
        let table = doc
            .get_mut(section)
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(|| {
                invalid(
                    &origin,
                    format!(
                        "unknown section `{section}`, expected one of: server, client, env{}",
                        if section == "expect" {
                            " ([expect] is a variant's, not a configuration's)"
                        } else {
                            ""
                        }
                    ),
                )
            })?;
        if !table.contains_key(knob) {
            let known: Vec<&str> = KNOBS
                .iter()
                .filter_map(|k| {
                    k.key
                        .strip_prefix(section)
                        .and_then(|s| s.strip_prefix('.'))
                })
                .collect();
            return Err(invalid(
                &origin,
                format!(
                    "unknown knob `{knob}` in [{section}], expected one of: {}",
                    known.join(", ")
                ),
            ));
        }
        table.insert(knob.to_string(), value);
        let cfg: Config = doc
            .try_into()
            .map_err(|e: toml::de::Error| invalid(&origin, e.message().to_string()))?;
        *self = cfg;
        Ok(())
    }

    /// Check the bounds that serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        let e = &self.env;
        if self.client.client_id_pool == 0 {
            return Err("client.client_id_pool must be at least 1".into());
        }
        if self.client.client_id_pool > 8 {
            return Err("client.client_id_pool must be at most 8".into());
        }
        if e.users == 0 || e.devices_per_user == 0 {
            return Err("env.users and env.devices_per_user must be at least 1".into());
        }
        if u32::from(e.users) * u32::from(e.devices_per_user) > 8 {
            return Err(format!(
                "env.users x env.devices_per_user must be at most 8 (the checker tracks devices in 8-bit masks), got {} x {}",
                e.users, e.devices_per_user
            ));
        }
        if u32::from(e.max_crashes) + u32::from(e.max_connection_losses) > 4 {
            return Err(format!(
                "env.max_crashes + env.max_connection_losses must be at most 4 (each leaves a request in flight, and a device holds at most 6), got {} + {}",
                e.max_crashes, e.max_connection_losses
            ));
        }
        if e.groups > 8 {
            return Err("env.groups must be at most 8".into());
        }
        if e.presence_values > 3 {
            return Err("env.presence_values must be at most 3".into());
        }
        if self.client.ttl_s == 0 || self.server.max_keep_alive_s == 0 {
            return Err("client.ttl_s and server.max_keep_alive_s must be at least 1".into());
        }
        Ok(())
    }
}

/// Documentation of one knob, for `imps variants`.
#[derive(Clone, Copy, Debug)]
pub struct KnobDoc {
    /// `section.knob`.
    pub key: &'static str,
    /// The values it takes.
    pub values: &'static str,
    /// What it means, and which CR statement it concerns.
    pub meaning: &'static str,
}

/// Every knob, in the order `imps variants` lists them. Defaults come from [`Config::default`].
pub const KNOBS: &[KnobDoc] = &[
    KnobDoc { key: "server.duplicate_client_id", values: "reject-608 | reject-generic | replace-old | allow", meaning: "login with a Client-ID in use: 608 (the CR), 503 (pre-CR, no reason given), disconnect the old session (forbidden by 6.6.1; interVillage), accept both (Baraza)" },
    KnobDoc { key: "server.recovery", values: "supported | unsupported | reject-422 | reset-context | fallback-login", meaning: "Login-Request with a Session-ID: recover; 502; 422 (Baraza); recover with an empty context (bug); 502 but logged in anyway (bug)" },
    KnobDoc { key: "server.keep_context_after_termination", values: "bool", meaning: "keep an ended session's context so that it can be recovered later (6.6.1 'unless the server offers session recovery')" },
    KnobDoc { key: "server.ttl_expiry", values: "bool", meaning: "expire a session whose Keep-Alive/Time-To-Live ran out (6.6.1 SHOULD)" },
    KnobDoc { key: "server.max_keep_alive_s", values: "seconds", meaning: "largest KeepAliveTime granted; a longer TimeToLive request is clamped" },
    KnobDoc { key: "server.max_sessions_per_user", values: "0 (no limit) | N", meaning: "parallel sessions per user; past it, 610 (5.1.3 MAY limit)" },
    KnobDoc { key: "server.max_sessions_total", values: "0 (no limit) | N", meaning: "sessions in the whole server; past it, 609" },
    KnobDoc { key: "server.limit_applies_to_recovery", values: "bool", meaning: "the session limits are also checked when a kept session is recovered (false: a recovery can exceed them)" },
    KnobDoc { key: "server.sends_disconnect", values: "bool", meaning: "send Disconnect whenever the server ends a session (6.6.1 MUST; Baraza expires silently)" },
    KnobDoc { key: "server.disconnect_has_tid", values: "bool", meaning: "put a Transaction-ID on Disconnect (6.6.1 MUST NOT)" },
    KnobDoc { key: "server.logout_reply", values: "status | disconnect", meaning: "answer to Logout-Request: Status (6.6.1, CSP 1.2+) or Disconnect (CSP 1.1, interVillage)" },
    KnobDoc { key: "server.logout_leaves_groups", values: "bool", meaning: "remove the user from the session's groups at logout (6.6.1 MUST)" },
    KnobDoc { key: "server.context_scope", values: "per-session | per-user", meaning: "session context independent per session (5.1.3 MUST) or shared by the user's sessions" },
    KnobDoc { key: "server.presence_merge", values: "merged | last-writer", meaning: "presence of all sessions merged into one document (5.1.3 MUST) or last update wins" },
    KnobDoc { key: "server.capability_request", values: "when-needed | always | never", meaning: "CapabilityRequest in Login-Response: T unless negotiated in the login (7.1 MUST F after), always T, always F" },
    KnobDoc { key: "server.system_message", values: "none | notify | require-response", meaning: "System Messages in the login: none; informative; 436 until the user replies (7.1)" },
    KnobDoc { key: "client.login", values: "two-way | four-way", meaning: "access control the client chooses (7.1 MUST choose one)" },
    KnobDoc { key: "client.stores_session_id", values: "bool", meaning: "store the Session-ID crash-safely when a session is established (7.1.1 SHOULD)" },
    KnobDoc { key: "client.recover_on_restart", values: "bool", meaning: "with a stored Session-ID, try recovery before a normal login (7.1.1 SHOULD; Android does not after a restart)" },
    KnobDoc { key: "client.remove_stored_on_logout", values: "bool", meaning: "remove the stored Session-ID upon logout/disconnect (7.1.1 MUST)" },
    KnobDoc { key: "client.logout_after_recovery", values: "bool", meaning: "after recovering a session whose context it lost, log out and in again (7.1.1 MUST)" },
    KnobDoc { key: "client.on_608", values: "retry-same | new-client-id", meaning: "after 608: retry later with the same Client-ID, or take the next one of the pool (7.1 MAY)" },
    KnobDoc { key: "client.client_id_pool", values: "1..8", meaning: "how many distinct Client-IDs a pool holds (a device's, or the user's with client.client_id_scope = user)" },
    KnobDoc { key: "client.client_id_scope", values: "device | user", meaning: "whose pool the Client-IDs come from: each device its own (configured in the handset), or one pool shared by the user's devices (taken from the application), whose same-slot IDs collide under 5.1.3's uniqueness" },
    KnobDoc { key: "client.on_recovery_failure", values: "fresh-login | retry-stale-unless-502 | retry-stale", meaning: "after a failed recovery: log in normally (7.1.1); Android's retry of the stale Session-ID unless 502; always retry it" },
    KnobDoc { key: "client.combined_negotiation", values: "never | fresh-login | always", meaning: "service/capability negotiation inside the Login-Request (7.1 MAY, never on re-establishment, SHOULD NOT in the first 4-way request)" },
    KnobDoc { key: "client.capability_negotiation", values: "when-requested | never", meaning: "negotiate capabilities when CapabilityRequest is T (7.1 MUST)" },
    KnobDoc { key: "client.on_436", values: "resend-with-response | continue", meaning: "after 436: resend the login with the user's replies (7.1 MUST) or carry on (violation)" },
    KnobDoc { key: "client.system_message_replies_conform", values: "bool", meaning: "the user's replies to System Messages conform (false: 607)" },
    KnobDoc { key: "client.answers_disconnect", values: "bool", meaning: "answer a Disconnect with a Status (6.6.1 MUST NOT)" },
    KnobDoc { key: "client.ttl_s", values: "seconds", meaning: "TimeToLive the client asks for in Login-Request and KeepAlive-Request" },
    KnobDoc { key: "env.users", values: "1..", meaning: "users in the checked world" },
    KnobDoc { key: "env.devices_per_user", values: "1..", meaning: "devices per user (each with its own Client-ID pool unless client.client_id_scope = user)" },
    KnobDoc { key: "env.max_crashes", values: "0..", meaning: "crashes in a run, all devices together (volatile state lost, stored Session-ID kept, answers in flight lost)" },
    KnobDoc { key: "env.crash_during_login", values: "bool", meaning: "a crash may hit between a Login-Request and its answer (false: crashes only outside login transactions)" },
    KnobDoc { key: "env.loss_during_login", values: "bool", meaning: "a connection loss may hit between a Login-Request and its answer (false: losses only outside login transactions)" },
    KnobDoc { key: "env.max_connection_losses", values: "0..", meaning: "connection losses without a crash (the client keeps its context)" },
    KnobDoc { key: "env.groups", values: "0..8", meaning: "groups a session may join (the session context)" },
    KnobDoc { key: "env.presence_values", values: "0..3", meaning: "presence values a session may publish" },
    KnobDoc { key: "env.user_logouts", values: "bool", meaning: "users may log out and back in of their own accord" },
    KnobDoc { key: "env.keep_alives", values: "bool", meaning: "clients exchange KeepAlive-Request/Response while logged in" },
    KnobDoc { key: "env.settle_inert_disconnects", values: "bool", meaning: "take at once a pushed Disconnect of a session the device refers to nowhere (it cannot change anything); false queues it (more than 4 waiting is an exploration error)" },
];

/// Flatten a config into `section.knob = value` pairs, for listings and the configuration
/// hash.
pub fn knob_values(cfg: &Config) -> Vec<(String, String)> {
    let doc = toml::Value::try_from(cfg).expect("invariant: a Config always serializes to TOML");
    let mut out = Vec::new();
    for section in ["server", "client", "env"] {
        if let Some(t) = doc.get(section).and_then(toml::Value::as_table) {
            for (k, v) in t {
                out.push((format!("{section}.{k}"), v.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_is_documented_and_every_doc_is_a_knob() {
        let keys: Vec<String> = knob_values(&Config::default())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut documented: Vec<&str> = KNOBS.iter().map(|k| k.key).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        documented.sort();
        assert_eq!(sorted, documented);
    }

    #[test]
    fn set_overrides_and_rejects_unknown_knobs() {
        let mut c = Config::default();
        c.apply_set("server.duplicate_client_id=allow").unwrap();
        assert_eq!(c.server.duplicate_client_id, DuplicateClientId::Allow);
        c.apply_set("env.max_crashes=3").unwrap();
        assert_eq!(c.env.max_crashes, 3);
        c.apply_set("server.ttl_expiry=true").unwrap();
        assert!(c.server.ttl_expiry);
        let e = c.apply_set("server.nope=1").unwrap_err().to_string();
        assert!(
            e.contains("unknown knob `nope`") && e.contains("duplicate_client_id"),
            "{e}"
        );
        let e = c
            .apply_set("server.recovery=maybe")
            .unwrap_err()
            .to_string();
        assert!(e.contains("maybe") && e.contains("supported"), "{e}");
        let e = c
            .apply_set("client.client_id_pool=0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1"), "{e}");
        let e = c.apply_set("bogus").unwrap_err().to_string();
        assert!(e.contains("section.knob=value"), "{e}");
    }

    #[test]
    fn client_id_scope_defaults_to_device_and_a_bad_value_names_the_knob() {
        let mut c = Config::default();
        assert_eq!(c.client.client_id_scope, ClientIdScope::Device);
        c.apply_set("client.client_id_scope=user").unwrap();
        assert_eq!(c.client.client_id_scope, ClientIdScope::User);
        let e = c
            .apply_set("client.client_id_scope=app")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("client.client_id_scope")
                && e.contains("app")
                && e.contains("device")
                && e.contains("user"),
            "{e}"
        );
    }
}
