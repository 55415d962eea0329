//! The CSP XML codec: [`Envelope`] to a `WV-CSP-Message` document and back.
//!
//! # Encoding
//!
//! [`encode`] writes CSP 1.3 as the domain notes (sections 2 and 6) describe it:
//!
//! - an `<?xml version="1.0" encoding="UTF-8"?>` prolog, then the root
//!   `WV-CSP-Message` with the default namespace `http://www.openmobilealliance.org/DTD/IMPS-CSP1.3`;
//! - `Session/SessionDescriptor` with `SessionType` `Inband` exactly when the envelope has a
//!   Session-ID (then `SessionID` follows), `Outband` otherwise;
//! - `Transaction/TransactionDescriptor` with `TransactionMode` and, when the envelope has
//!   one, `TransactionID` (a server-initiated `Disconnect` has none);
//! - `TransactionContent`, which re-declares the default namespace as `IMPS-TRC1.3`, holding
//!   the primitive with its children in DTD order;
//! - `<Poll>F</Poll>` at `Session` level, after the transaction (CSP 1.2+ position).
//!
//! Output is pretty-printed with a 2-space indent and is a pure function of the envelope.
//! [`encode_version`] writes the same content under the CSP 1.1 or 1.2 namespaces; 1.1 moves
//! `Poll` into the `TransactionDescriptor`. Only the namespaces and the `Poll` position change:
//! the primitives keep the 1.3 superset of children (a 1.1 `Login-Request` with `Functions` is
//! not 1.1-DTD-valid, but every tolerant parser accepts it).
//!
//! A recovery Session-ID of a `Login-Request` is written as a `SessionID` child of the
//! `Login-Request` (the CR's form, also Baraza's); the `SessionDescriptor` says whatever the
//! envelope says.
//!
//! # Naming scheme
//!
//! The core uses small integers; on the wire they become (see [`scheme`]):
//!
//! | Core value | Wire form |
//! |---|---|
//! | [`UserId`]`(N)` | `<UserID>wv:user<N>@imps.example</UserID>` |
//! | [`ClientId`] `{ pool: Device(D), slot: S }` (a device's own pool) | `<ClientID><URL>imps://dev<D>/c<S></URL></ClientID>` |
//! | [`ClientId`] `{ pool: User(U), slot: S }` (the user's pool, shared by its devices) | `<ClientID><URL>imps://u<U>/c<S></URL></ClientID>` |
//! | [`SessionId`]`(N)` | `imps.example#<N>` |
//! | [`Tid`](crate::msg::Tid)`(N)` | `<TransactionID>N</TransactionID>` |
//! | nonce, digest bytes (`u32`) | 8 lowercase hex digits |
//! | group `N` | `<GroupID>wv:group<N>@imps.example</GroupID>` |
//! | presence `N` | `PresenceSubList` (PA namespace) / `UserAvailability` / `Qualifier` `T` / `PresenceValue`: 0 = `NONE`, 1 = `AVAILABLE`, 2 = `DISCREET`, 3 = `NOT_AVAILABLE`, N >= 4 = `P<N>` |
//! | password present | `<Password>secret</Password>` |
//! | digest schema present | `<DigestSchema>MD5</DigestSchema>` (also sent with a `Nonce` in a 4-way challenge) |
//! | session cookie | `<SessionCookie>wv:cookie.dev<D></SessionCookie>`, or `wv:cookie.u<U>` for a Client-ID of the user's pool (always sent, as the DTD requires; not decoded) |
//! | negotiation in a login | `Functions` (`WVCSPFeat` with `FundamentalFeat`, `PresenceFeat`, `GroupFeat`) and `CapabilityList` (request) / `AgreedCapabilityList` (response), fixed contents |
//! | System Message in a Login-Response | a `SystemMessageList` element after all DTD children, holding one `SystemMessage` `sm1` whose only offered `ResponseID` is `1` |
//! | System Message reply in a Login-Request | `SystemMessageResponseList/SystemMessageResponse` for `sm1` with `ResponseID` `1` (conformant) or `0` (non-conformant: not an offered choice) |
//! | `Service-Request` / `ClientCapability-Request` | the fixed `Functions` plus `AllFunctionsRequest` `F` / the fixed `CapabilityList` (ignored when decoding) |
//! | `*-Response`, `Status`, `Disconnect` | only `Result` (plus `KeepAliveTime` for `KeepAlive-Response`) |
//!
//! Numbers are decimal without leading zeros; [`to_envelope`] rejects anything else, so every
//! accepted wire form maps back to exactly one core value. `Result` always carries `Code` and
//! `Description` ([`ResultCode::description`]).
//!
//! [`to_envelope`] reads a reply as conformant when the list holds at least one `ResponseID`
//! and all are `1`; it takes `DigestSchema` presence (any value) as the 4-way flag of a
//! Login-Request, ignores `DigestSchema` in a Login-Response (the core has no such field), and
//! parses the `ClientID` text whatever its carrier (`URL`, `MSISDN` or plain text).
//!
//! # Decoding
//!
//! [`decode`] is tolerant of what real implementations send (domain notes section 6.1): the
//! CSP 1.1, 1.2 and 1.3 namespaces, a missing prolog, any `DOCTYPE` (skipped, never validated,
//! even Baraza's malformed one), extra `xmlns:xsi`/`xmlns:xsd`, elements matched by local name
//! with namespaces and prefixes ignored below the root, children in any order, self-closing
//! empty primitives, whitespace anywhere, `Poll` in the `TransactionDescriptor` or at `Session`
//! level, the recovery Session-ID in the `SessionDescriptor` (Android) or as a `Login-Request`
//! child (Baraza), and `ClientID` as `URL`, `MSISDN` or plain text. Unknown elements are
//! skipped. It is strict where the protocol depends on it: the root, the namespace, exactly one
//! `Transaction` and exactly one known primitive, `SessionType`, `TransactionMode`, numbers and
//! `T`/`F` booleans, and well-formed XML. Errors are [`XmlError`]s with a 1-based line and column.
//!
//! [`decode`] gives a [`Decoded`], a wire-level view that knows nothing of the naming scheme
//! (it is what `imps decode` prints as JSON). [`to_envelope`] applies the naming scheme and
//! rebuilds the core [`Envelope`]; it is the exact inverse of [`encode`]:
//!
//! ```
//! use imps_model::codes::ResultCode;
//! use imps_model::msg::{
//!     ClientId, ClientIdPool, DeviceId, Envelope, LoginResponse, Mode, Primitive, SessionId, Tid,
//! };
//! use imps_model::xml::{decode, encode, to_envelope};
//!
//! let env = Envelope {
//!     session: None,
//!     mode: Mode::Response,
//!     tid: Some(Tid(7)),
//!     body: Primitive::LoginResponse(LoginResponse {
//!         client_id: ClientId { pool: ClientIdPool::Device(DeviceId(1)), slot: 0 },
//!         result: ResultCode::Success,
//!         nonce: None,
//!         session_id: Some(SessionId(42)),
//!         keep_alive_s: Some(120),
//!         capability_request: Some(false),
//!         negotiated: false,
//!         system_message: false,
//!     }),
//! };
//! let xml = encode(&env);
//! assert!(xml.contains("<SessionID>imps.example#42</SessionID>"));
//! let decoded = decode(&xml)?;
//! assert_eq!(decoded.primitive, "Login-Response");
//! assert_eq!(decoded.session_id.as_deref(), Some("imps.example#42"));
//! assert_eq!(decoded.result_code, Some(200));
//! assert_eq!(to_envelope(&decoded)?, env);
//! # Ok::<(), imps_model::xml::XmlError>(())
//! ```
//!
//! A recovery sent Android-style (Inband `Login-Request`, no `SessionID` child) decodes with
//! `recovery_session_id` set from the descriptor, and maps to an envelope whose `session` is
//! the old Session-ID while `LoginRequest::session_id` is `None` (that is what was on the
//! wire); a server core that honours Android recovery reads `env.session` of a Login-Request.

use crate::codes::ResultCode;
use crate::msg::{
    ClientId, Envelope, LoginRequest, LoginResponse, Mode, Primitive, SessionId, UserId,
};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Serialize;
use std::collections::BTreeMap;

/// Largest document [`decode`] accepts, in bytes (real CSP messages are a few KiB).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Deepest element nesting [`decode`] accepts (the deepest known shape has 9 levels).
pub const MAX_DEPTH: usize = 64;

/// A CSP protocol version, as told by the namespace of `WV-CSP-Message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum CspVersion {
    /// CSP 1.1 (Wireless Village namespaces).
    #[serde(rename = "1.1")]
    V1_1,
    /// CSP 1.2 (`WV-` OMA namespaces).
    #[serde(rename = "1.2")]
    V1_2,
    /// CSP 1.3 (`IMPS-` OMA namespaces).
    #[serde(rename = "1.3")]
    V1_3,
}

impl CspVersion {
    /// Every version, oldest first.
    pub const ALL: [CspVersion; 3] = [CspVersion::V1_1, CspVersion::V1_2, CspVersion::V1_3];

    /// The `WV-CSP-Message` namespace.
    pub const fn csp_namespace(self) -> &'static str {
        match self {
            CspVersion::V1_1 => "http://www.wireless-village.org/CSP1.1",
            CspVersion::V1_2 => "http://www.openmobilealliance.org/DTD/WV-CSP1.2",
            CspVersion::V1_3 => "http://www.openmobilealliance.org/DTD/IMPS-CSP1.3",
        }
    }

    /// The `TransactionContent` namespace.
    pub const fn trc_namespace(self) -> &'static str {
        match self {
            CspVersion::V1_1 => "http://www.wireless-village.org/TRC1.1",
            CspVersion::V1_2 => "http://www.openmobilealliance.org/DTD/WV-TRC1.2",
            CspVersion::V1_3 => "http://www.openmobilealliance.org/DTD/IMPS-TRC1.3",
        }
    }

    /// The `PresenceSubList` namespace.
    pub const fn pa_namespace(self) -> &'static str {
        match self {
            CspVersion::V1_1 => "http://www.wireless-village.org/PA1.1",
            CspVersion::V1_2 => "http://www.openmobilealliance.org/DTD/WV-PA1.2",
            CspVersion::V1_3 => "http://www.openmobilealliance.org/DTD/IMPS-PA1.3",
        }
    }

    /// The version number as text (`"1.3"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            CspVersion::V1_1 => "1.1",
            CspVersion::V1_2 => "1.2",
            CspVersion::V1_3 => "1.3",
        }
    }

    /// The version whose `WV-CSP-Message` namespace is exactly `ns`.
    pub fn from_csp_namespace(ns: &str) -> Option<CspVersion> {
        CspVersion::ALL
            .into_iter()
            .find(|v| v.csp_namespace() == ns)
    }

    /// Whether `Poll` sits in the `TransactionDescriptor` (1.1) rather than at `Session` level.
    const fn poll_in_descriptor(self) -> bool {
        matches!(self, CspVersion::V1_1)
    }
}

impl std::fmt::Display for CspVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The naming scheme that maps core identifiers to their wire text and back (see the module
/// documentation). Every `parse_*` accepts exactly what the matching writer produces.
pub mod scheme {
    use crate::msg::{ClientId, ClientIdPool, DeviceId, SessionId, Tid, UserId};

    /// The domain of user, group and session identifiers.
    pub const DOMAIN: &str = "imps.example";
    /// `Password` content.
    pub const PASSWORD: &str = "secret";
    /// `DigestSchema` content.
    pub const DIGEST_SCHEMA: &str = "MD5";
    /// `SystemMessageID` of the one System Message the scheme uses.
    pub const SYSTEM_MESSAGE_ID: &str = "sm1";
    /// The only `ResponseID` the System Message offers: replying with it conforms.
    pub const CONFORMANT_RESPONSE_ID: &str = "1";
    /// The `ResponseID` of a non-conformant reply (not an offered choice).
    pub const NON_CONFORMANT_RESPONSE_ID: &str = "0";

    /// Decimal digits without leading zeros (except `0` itself), in range for `T`.
    fn canonical<T: std::str::FromStr>(s: &str) -> Option<T> {
        let digits_ok = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        if digits_ok {
            s.parse().ok()
        } else {
            None
        }
    }

    /// `UserID` text: `wv:user<N>@imps.example`.
    pub fn user_id(u: UserId) -> String {
        format!("wv:user{}@{DOMAIN}", u.0)
    }

    /// Inverse of [`user_id`].
    pub fn parse_user_id(s: &str) -> Option<UserId> {
        let n = s.strip_prefix("wv:user")?.strip_suffix("@imps.example")?;
        canonical(n).map(UserId)
    }

    /// `ClientID/URL` text: `imps://dev<D>/c<S>` (a device's pool) or `imps://u<U>/c<S>`
    /// (the user's pool).
    pub fn client_url(c: ClientId) -> String {
        format!("imps://{c}")
    }

    /// Inverse of [`client_url`].
    pub fn parse_client_url(s: &str) -> Option<ClientId> {
        let (owner, slot) = s.strip_prefix("imps://")?.split_once("/c")?;
        let pool = if let Some(d) = owner.strip_prefix("dev") {
            ClientIdPool::Device(DeviceId(canonical(d)?))
        } else {
            ClientIdPool::User(UserId(canonical(owner.strip_prefix('u')?)?))
        };
        Some(ClientId {
            pool,
            slot: canonical(slot)?,
        })
    }

    /// `SessionID` text: `imps.example#<N>`.
    pub fn session_id(s: SessionId) -> String {
        format!("{DOMAIN}#{}", s.0)
    }

    /// Inverse of [`session_id`].
    pub fn parse_session_id(s: &str) -> Option<SessionId> {
        canonical(s.strip_prefix("imps.example#")?).map(SessionId)
    }

    /// `TransactionID` text: the decimal number.
    pub fn transaction_id(t: Tid) -> String {
        t.0.to_string()
    }

    /// Inverse of [`transaction_id`].
    pub fn parse_transaction_id(s: &str) -> Option<Tid> {
        canonical(s).map(Tid)
    }

    /// `Nonce` and `DigestBytes` text: 8 lowercase hex digits.
    pub fn hex8(n: u32) -> String {
        format!("{n:08x}")
    }

    /// Inverse of [`hex8`].
    pub fn parse_hex8(s: &str) -> Option<u32> {
        let ok = s.len() == 8 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            u32::from_str_radix(s, 16).ok()
        } else {
            None
        }
    }

    /// `GroupID` text: `wv:group<N>@imps.example`.
    pub fn group_id(g: u8) -> String {
        format!("wv:group{g}@{DOMAIN}")
    }

    /// Inverse of [`group_id`].
    pub fn parse_group_id(s: &str) -> Option<u8> {
        canonical(s.strip_prefix("wv:group")?.strip_suffix("@imps.example")?)
    }

    /// `PresenceValue` text: `NONE`, `AVAILABLE`, `DISCREET`, `NOT_AVAILABLE`, or `P<N>` for N >= 4.
    pub fn presence_value(p: u8) -> String {
        match p {
            0 => "NONE".to_owned(),
            1 => "AVAILABLE".to_owned(),
            2 => "DISCREET".to_owned(),
            3 => "NOT_AVAILABLE".to_owned(),
            n => format!("P{n}"),
        }
    }

    /// Inverse of [`presence_value`].
    pub fn parse_presence_value(s: &str) -> Option<u8> {
        match s {
            "NONE" => Some(0),
            "AVAILABLE" => Some(1),
            "DISCREET" => Some(2),
            "NOT_AVAILABLE" => Some(3),
            other => canonical::<u8>(other.strip_prefix('P')?).filter(|n| *n >= 4),
        }
    }

    /// `SessionCookie` text: `wv:cookie.dev<D>`, or `wv:cookie.u<U>` for a Client-ID of the
    /// user's pool (a Login-Request names no device then).
    pub fn session_cookie(pool: ClientIdPool) -> String {
        match pool {
            ClientIdPool::Device(d) => format!("wv:cookie.dev{}", d.0),
            ClientIdPool::User(u) => format!("wv:cookie.u{}", u.0),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Encodes `env` as a CSP 1.3 `WV-CSP-Message` document.
#[must_use]
pub fn encode(env: &Envelope) -> String {
    encode_version(env, CspVersion::V1_3)
}

/// [`encode`] without the XML declaration and ending in a newline: a `WV-CSP-Message`
/// element to embed in another document (the traces of the checker and the simulator).
#[must_use]
pub fn encode_fragment(env: &Envelope) -> String {
    let doc = encode(env);
    let body = doc
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .unwrap_or(&doc)
        .trim_start();
    let mut out = body.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Encodes `env` with the namespaces of `version` (and, for 1.1, `Poll` in the
/// `TransactionDescriptor`).
#[must_use]
pub fn encode_version(env: &Envelope, version: CspVersion) -> String {
    let mut w = Writer::default();
    w.out
        .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    w.open_ns("WV-CSP-Message", version.csp_namespace());
    w.open("Session");
    w.open("SessionDescriptor");
    match env.session {
        Some(s) => {
            w.leaf("SessionType", "Inband");
            w.leaf("SessionID", &scheme::session_id(s));
        }
        None => w.leaf("SessionType", "Outband"),
    }
    w.close("SessionDescriptor");
    w.open("Transaction");
    w.open("TransactionDescriptor");
    w.leaf(
        "TransactionMode",
        match env.mode {
            Mode::Request => "Request",
            Mode::Response => "Response",
        },
    );
    if let Some(t) = env.tid {
        w.leaf("TransactionID", &scheme::transaction_id(t));
    }
    if version.poll_in_descriptor() {
        w.leaf("Poll", "F");
    }
    w.close("TransactionDescriptor");
    w.open_ns("TransactionContent", version.trc_namespace());
    encode_primitive(&mut w, &env.body, version);
    w.close("TransactionContent");
    w.close("Transaction");
    if !version.poll_in_descriptor() {
        w.leaf("Poll", "F");
    }
    w.close("Session");
    w.close("WV-CSP-Message");
    w.out
}

fn encode_primitive(w: &mut Writer, body: &Primitive, version: CspVersion) {
    let name = body.wire_name();
    match body {
        Primitive::LoginRequest(r) => {
            w.open(name);
            w.leaf("UserID", &scheme::user_id(r.user));
            client_id(w, r.client_id);
            if r.password {
                w.leaf("Password", scheme::PASSWORD);
            }
            if let Some(b) = r.digest_bytes {
                w.leaf("DigestBytes", &scheme::hex8(b));
            }
            if r.digest_schema {
                w.leaf("DigestSchema", scheme::DIGEST_SCHEMA);
            }
            if let Some(s) = r.session_id {
                w.leaf("SessionID", &scheme::session_id(s));
            }
            if let Some(t) = r.ttl_s {
                w.leaf("TimeToLive", &t.to_string());
            }
            w.leaf("SessionCookie", &scheme::session_cookie(r.client_id.pool));
            if let Some(conform) = r.system_message_response {
                w.open("SystemMessageResponseList");
                w.open("SystemMessageResponse");
                w.leaf("SystemMessageID", scheme::SYSTEM_MESSAGE_ID);
                w.leaf(
                    "ResponseID",
                    if conform {
                        scheme::CONFORMANT_RESPONSE_ID
                    } else {
                        scheme::NON_CONFORMANT_RESPONSE_ID
                    },
                );
                w.close("SystemMessageResponse");
                w.close("SystemMessageResponseList");
            }
            if r.negotiation {
                functions(w);
                w.open("CapabilityList");
                capabilities(w, true);
                w.close("CapabilityList");
            }
            w.close(name);
        }
        Primitive::LoginResponse(r) => {
            w.open(name);
            client_id(w, r.client_id);
            result(w, r.result);
            if let Some(n) = r.nonce {
                w.leaf("Nonce", &scheme::hex8(n));
                w.leaf("DigestSchema", scheme::DIGEST_SCHEMA);
            }
            if let Some(s) = r.session_id {
                w.leaf("SessionID", &scheme::session_id(s));
            }
            if let Some(k) = r.keep_alive_s {
                w.leaf("KeepAliveTime", &k.to_string());
            }
            if let Some(c) = r.capability_request {
                w.leaf("CapabilityRequest", tf(c));
            }
            if r.negotiated {
                functions(w);
                w.open("AgreedCapabilityList");
                capabilities(w, false);
                w.close("AgreedCapabilityList");
            }
            if r.system_message {
                w.open("SystemMessageList");
                w.open("SystemMessage");
                w.leaf("SystemMessageID", scheme::SYSTEM_MESSAGE_ID);
                w.leaf("Text", "Please accept the new terms of service.");
                w.open("ResponseChoice");
                w.leaf("ResponseID", scheme::CONFORMANT_RESPONSE_ID);
                w.leaf("Text", "Accept");
                w.close("ResponseChoice");
                w.close("SystemMessage");
                w.close("SystemMessageList");
            }
            w.close(name);
        }
        Primitive::LogoutRequest
        | Primitive::PollingRequest
        | Primitive::KeepAliveRequest { ttl_s: None } => w.empty(name),
        Primitive::KeepAliveRequest { ttl_s: Some(t) } => {
            w.open(name);
            w.leaf("TimeToLive", &t.to_string());
            w.close(name);
        }
        Primitive::KeepAliveResponse {
            result: code,
            keep_alive_s,
        } => {
            w.open(name);
            result(w, *code);
            if let Some(k) = keep_alive_s {
                w.leaf("KeepAliveTime", &k.to_string());
            }
            w.close(name);
        }
        Primitive::ServiceRequest => {
            w.open(name);
            functions(w);
            w.leaf("AllFunctionsRequest", "F");
            w.close(name);
        }
        Primitive::ClientCapabilityRequest => {
            w.open(name);
            w.open("CapabilityList");
            capabilities(w, true);
            w.close("CapabilityList");
            w.close(name);
        }
        Primitive::JoinGroupRequest { group } | Primitive::LeaveGroupRequest { group } => {
            w.open(name);
            w.leaf("GroupID", &scheme::group_id(*group));
            w.close(name);
        }
        Primitive::UpdatePresenceRequest { presence } => {
            w.open(name);
            w.open_ns("PresenceSubList", version.pa_namespace());
            w.open("UserAvailability");
            w.leaf("Qualifier", "T");
            w.leaf("PresenceValue", &scheme::presence_value(*presence));
            w.close("UserAvailability");
            w.close("PresenceSubList");
            w.close(name);
        }
        Primitive::ServiceResponse { result: code }
        | Primitive::ClientCapabilityResponse { result: code }
        | Primitive::JoinGroupResponse { result: code }
        | Primitive::LeaveGroupResponse { result: code }
        | Primitive::Status { result: code }
        | Primitive::Disconnect { result: code } => {
            w.open(name);
            result(w, *code);
            w.close(name);
        }
    }
}

const fn tf(b: bool) -> &'static str {
    if b {
        "T"
    } else {
        "F"
    }
}

fn client_id(w: &mut Writer, c: ClientId) {
    w.open("ClientID");
    w.leaf("URL", &scheme::client_url(c));
    w.close("ClientID");
}

fn result(w: &mut Writer, code: ResultCode) {
    w.open("Result");
    w.leaf("Code", &code.number().to_string());
    w.leaf("Description", code.description());
    w.close("Result");
}

/// The fixed `Functions` content: the session, presence and group features.
fn functions(w: &mut Writer) {
    w.open("Functions");
    w.open("WVCSPFeat");
    w.empty("FundamentalFeat");
    w.empty("PresenceFeat");
    w.empty("GroupFeat");
    w.close("WVCSPFeat");
    w.close("Functions");
}

/// The fixed capability content of `CapabilityList` (`client`) and `AgreedCapabilityList`.
fn capabilities(w: &mut Writer, client: bool) {
    if client {
        w.leaf("ClientType", "MOBILE_PHONE");
    }
    w.leaf("AcceptedContentType", "text/plain");
    w.leaf("SupportedBearer", "HTTP");
    w.leaf("InitialDeliveryMethod", "P");
}

/// A minimal pretty-printing XML writer (2-space indent, leaf elements on one line).
#[derive(Default)]
struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, name: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn open_ns(&mut self, name: &str, ns: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        escape_into(&mut self.out, ns);
        self.out.push_str("\">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn leaf(&mut self, name: &str, text: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        escape_into(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn empty(&mut self, name: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str("/>\n");
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            other => out.push(other),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A message that could not be decoded (or mapped to the core), and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: expected {expected}, found {found}")]
pub struct XmlError {
    /// 1-based line of the offending spot.
    pub line: usize,
    /// 1-based column (in characters) of the offending spot.
    pub column: usize,
    /// What the decoder expected there.
    pub expected: String,
    /// What it found instead (quoted text, `<Element>`, or `end of document`).
    pub found: String,
}

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

impl Pos {
    /// The line and column of byte `offset` of `src` (clamped to the end).
    fn of(src: &str, offset: usize) -> Pos {
        let bytes = src.as_bytes();
        let before = bytes.get(..offset).unwrap_or(bytes);
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let column = 1 + before
            .get(line_start..)
            .unwrap_or_default()
            .iter()
            .filter(|b| (**b & 0xC0) != 0x80)
            .count();
        Pos { line, column }
    }

    fn error(self, expected: impl Into<String>, found: impl Into<String>) -> XmlError {
        XmlError {
            line: self.line,
            column: self.column,
            expected: expected.into(),
            found: found.into(),
        }
    }
}

/// Text quoted for an error message, shortened when long.
fn quoted(text: &str) -> String {
    const MAX_CHARS: usize = 80;
    if text.chars().count() > MAX_CHARS {
        let head: String = text.chars().take(MAX_CHARS).collect();
        format!("{head:?}...")
    } else {
        format!("{text:?}")
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing into a small element tree
// ---------------------------------------------------------------------------------------------

/// An element, with the byte offsets needed for error positions.
#[derive(Debug)]
struct Node {
    /// Local name (prefix removed).
    name: String,
    /// Prefix, if the element had one.
    prefix: Option<String>,
    /// Attributes as written (qualified key, unescaped value).
    attrs: Vec<(String, String)>,
    /// Byte offset of `<` of the start tag.
    start: usize,
    /// Byte offset of `<` of the end tag (`start` for an empty element).
    end: usize,
    children: Vec<Node>,
    /// Character data, concatenated.
    text: String,
    /// Byte offset of the first non-whitespace character of the text.
    text_start: Option<usize>,
}

fn is_blank(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_whitespace() || c == '\u{feff}')
}

fn to_offset(pos: u64) -> usize {
    usize::try_from(pos).unwrap_or(usize::MAX)
}

fn quick_error(src: &str, offset: usize, e: &quick_xml::Error) -> XmlError {
    use quick_xml::errors::IllFormedError;
    let pos = Pos::of(src, offset);
    match e {
        quick_xml::Error::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => {
            pos.error(format!("</{expected}>"), format!("</{found}>"))
        }
        quick_xml::Error::IllFormed(IllFormedError::UnmatchedEndTag(name)) => {
            pos.error("no end tag without a start tag", format!("</{name}>"))
        }
        other => pos.error("well-formed XML", other.to_string()),
    }
}

fn open_node(src: &str, at: usize, e: &BytesStart<'_>) -> Result<Node, XmlError> {
    let pos = Pos::of(src, at);
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let prefix = e
        .name()
        .prefix()
        .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned());
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| pos.error("well-formed attributes", err.to_string()))?;
        let value = a
            .unescape_value()
            .map_err(|err| pos.error("a well-formed attribute value", err.to_string()))?;
        attrs.push((
            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(Node {
        name,
        prefix,
        attrs,
        start: at,
        end: at,
        children: Vec::new(),
        text: String::new(),
        text_start: None,
    })
}

const ROOT: &str = "WV-CSP-Message";

/// Parses `src` into the root element, checking well-formedness and the root's name.
fn parse_tree(src: &str) -> Result<Node, XmlError> {
    if src.len() > MAX_MESSAGE_BYTES {
        return Err(Pos::of(src, 0).error(
            format!("a message of at most {MAX_MESSAGE_BYTES} bytes"),
            format!("{} bytes", src.len()),
        ));
    }
    let mut reader = Reader::from_str(src);
    {
        let config = reader.config_mut();
        config.trim_text(false);
        config.expand_empty_elements = false;
        config.check_end_names = true;
    }
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let at = to_offset(reader.buffer_position());
        let event = match reader.read_event() {
            Ok(event) => event,
            // `<!DOCTYPE>` without a name: skipped like any DOCTYPE (the reader is past it).
            Err(quick_xml::Error::IllFormed(
                quick_xml::errors::IllFormedError::MissingDoctypeName,
            )) if to_offset(reader.buffer_position()) > at => continue,
            Err(e) => return Err(quick_error(src, to_offset(reader.error_position()), &e)),
        };
        match event {
            Event::Start(e) => {
                let node = open_node(src, at, &e)?;
                if stack.is_empty() {
                    check_root(src, at, &node, root.is_some())?;
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(Pos::of(src, at).error(
                        format!("elements nested at most {MAX_DEPTH} deep"),
                        format!("<{}>", node.name),
                    ));
                }
                stack.push(node);
            }
            Event::Empty(e) => {
                let node = open_node(src, at, &e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => {
                        check_root(src, at, &node, root.is_some())?;
                        root = Some(node);
                    }
                }
            }
            Event::End(_) => {
                let Some(mut node) = stack.pop() else {
                    return Err(Pos::of(src, at).error("no end tag outside the root", "an end tag"));
                };
                node.end = at;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| {
                    Pos::of(src, at).error("text with known character references", e.to_string())
                })?;
                let raw: &[u8] = &t;
                let raw_lead = raw
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .unwrap_or(0);
                add_text(src, &mut stack, at, at + raw_lead, &text)?;
            }
            Event::CData(c) => {
                let text = String::from_utf8_lossy(c.as_ref()).into_owned();
                // `<![CDATA[` is 9 bytes.
                add_text(src, &mut stack, at, at + 9, &text)?;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        let qualified = match &open.prefix {
            Some(p) => format!("{p}:{}", open.name),
            None => open.name.clone(),
        };
        return Err(
            Pos::of(src, end_of_content(src)).error(format!("</{qualified}>"), "end of document")
        );
    }
    root.ok_or_else(|| {
        Pos::of(src, end_of_content(src)).error(format!("<{ROOT}>"), "end of document")
    })
}

/// Where "end of document" is reported: just after the last non-whitespace character.
fn end_of_content(src: &str) -> usize {
    src.trim_end().len()
}

/// The first top-level element must be `WV-CSP-Message`, and there is only one.
fn check_root(src: &str, at: usize, node: &Node, had_root: bool) -> Result<(), XmlError> {
    let pos = Pos::of(src, at);
    if had_root {
        return Err(pos.error(
            format!("end of document after </{ROOT}>"),
            format!("<{}>", node.name),
        ));
    }
    if node.name != ROOT {
        return Err(pos.error(
            format!("<{ROOT}> as the root element"),
            format!("<{}>", node.name),
        ));
    }
    Ok(())
}

fn add_text(
    src: &str,
    stack: &mut [Node],
    at: usize,
    lead: usize,
    text: &str,
) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(node) => {
            if node.text_start.is_none() && !is_blank(text) {
                node.text_start = Some(lead);
            }
            node.text.push_str(text);
            Ok(())
        }
        None if is_blank(text) => Ok(()),
        None => {
            Err(Pos::of(src, at)
                .error(format!("only markup outside <{ROOT}>"), quoted(text.trim())))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Interpreting the tree
// ---------------------------------------------------------------------------------------------

/// `SessionDescriptor/SessionType`, a closed set on the wire (case-sensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum SessionType {
    /// `Inband`: the message carries a `SessionID` in its `SessionDescriptor`.
    Inband,
    /// `Outband`: no session (login, or a response outside any session).
    Outband,
}

/// Every primitive name [`decode`] knows.
pub const PRIMITIVE_NAMES: [&str; 17] = [
    "Login-Request",
    "Login-Response",
    "Logout-Request",
    "KeepAlive-Request",
    "KeepAlive-Response",
    "Service-Request",
    "Service-Response",
    "ClientCapability-Request",
    "ClientCapability-Response",
    "JoinGroup-Request",
    "JoinGroup-Response",
    "LeaveGroup-Request",
    "LeaveGroup-Response",
    "UpdatePresence-Request",
    "Polling-Request",
    "Status",
    "Disconnect",
];

/// A decoded `WV-CSP-Message`: what was on the wire, without the naming scheme applied.
///
/// Serialises (as `imps decode` prints it) with the keys `version`, `primitive`, `session_id`,
/// `transaction_id`, `user_id`, `client_id`, `result_code` first, then the other fields in
/// declaration order; absent values are `null`. [`to_envelope`] reads the public fields, so a
/// caller may edit them before mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decoded {
    /// The CSP version of the root namespace.
    pub version: CspVersion,
    /// The primitive's element name, e.g. `Login-Request`.
    pub primitive: String,
    /// The `SessionDescriptor`'s `SessionID`, else the primitive's `SessionID` child
    /// (Login-Request, Login-Response).
    pub session_id: Option<String>,
    /// `TransactionDescriptor/TransactionID`.
    pub transaction_id: Option<String>,
    /// The primitive's `UserID` child.
    pub user_id: Option<String>,
    /// The primitive's `ClientID`: its `URL`, else its `MSISDN`, else its text.
    pub client_id: Option<String>,
    /// `Result/Code`.
    pub result_code: Option<u16>,
    /// `TransactionMode` (always present after a successful decode).
    pub mode: Option<Mode>,
    /// `SessionType` (always present after a successful decode).
    pub session_type: Option<SessionType>,
    /// `Poll`, wherever it was (`TransactionDescriptor` or `Session`).
    pub poll: Option<bool>,
    /// For a Login-Request: the Session-ID it asks to recover, from its `SessionID` child
    /// (CR/Baraza form) or else from an Inband `SessionDescriptor` (Android form).
    pub recovery_session_id: Option<String>,
    /// `Nonce`.
    pub nonce: Option<String>,
    /// `KeepAliveTime`, seconds.
    pub keep_alive_time: Option<u32>,
    /// `TimeToLive`, seconds.
    pub time_to_live: Option<u32>,
    /// `CapabilityRequest`.
    pub capability_request: Option<bool>,
    /// `Result/Description`.
    pub description: Option<String>,
    /// The primitive's own `SessionID` child, exactly as on the wire.
    pub content_session_id: Option<String>,
    /// A `Password` child is present (its content is never reported).
    pub has_password: bool,
    /// The `DigestSchema` values (repeated elements and comma-separated lists flattened).
    pub digest_schemas: Vec<String>,
    /// `DigestBytes`.
    pub digest_bytes: Option<String>,
    /// `SessionCookie`.
    pub session_cookie: Option<String>,
    /// The `ResponseID`s of a `SystemMessageResponseList` (absent when there is no list).
    pub system_message_responses: Option<Vec<String>>,
    /// A `Functions` child is present.
    pub has_functions: bool,
    /// A `CapabilityList` child is present.
    pub has_capability_list: bool,
    /// An `AgreedCapabilityList` child is present.
    pub has_agreed_capability_list: bool,
    /// A `SystemMessageList` child is present.
    pub has_system_message: bool,
    /// `GroupID`.
    pub group_id: Option<String>,
    /// `PresenceSubList/UserAvailability/PresenceValue`.
    pub presence_value: Option<String>,
    /// Where each field came from, for the errors of [`to_envelope`].
    #[serde(skip)]
    spans: BTreeMap<&'static str, Pos>,
}

/// Reading helpers over the tree, with the source for positions.
struct Cx<'s> {
    src: &'s str,
}

impl Cx<'_> {
    fn pos(&self, offset: usize) -> Pos {
        Pos::of(self.src, offset)
    }

    /// The only child named `name`, if any; a second one is an error.
    fn one<'n>(&self, parent: &'n Node, name: &str) -> Result<Option<&'n Node>, XmlError> {
        let mut found = parent.children.iter().filter(|c| c.name == name);
        let first = found.next();
        if let Some(second) = found.next() {
            return Err(self.pos(second.start).error(
                format!("at most one <{name}> in <{}>", parent.name),
                format!("a second <{name}>"),
            ));
        }
        Ok(first)
    }

    /// The only child named `name`; missing or repeated is an error.
    fn required<'n>(&self, parent: &'n Node, name: &str) -> Result<&'n Node, XmlError> {
        self.one(parent, name)?.ok_or_else(|| {
            self.pos(parent.end).error(
                format!("<{name}> in <{}>", parent.name),
                format!("</{}>", parent.name),
            )
        })
    }

    /// Where a node's text starts (or the node, when it has none).
    fn text_pos(&self, node: &Node) -> Pos {
        self.pos(node.text_start.unwrap_or(node.start))
    }

    /// The trimmed text of `node`, which must not be empty.
    fn text<'n>(&self, node: &'n Node) -> Result<&'n str, XmlError> {
        let text = node.text.trim();
        if text.is_empty() {
            Err(self
                .text_pos(node)
                .error(format!("<{}> to have content", node.name), "\"\""))
        } else {
            Ok(text)
        }
    }

    fn boolean(&self, node: &Node) -> Result<bool, XmlError> {
        match node.text.trim() {
            "T" => Ok(true),
            "F" => Ok(false),
            other => Err(self
                .text_pos(node)
                .error(format!("<{}> to be T or F", node.name), quoted(other))),
        }
    }

    fn number<T: std::str::FromStr>(&self, node: &Node, what: &str) -> Result<T, XmlError> {
        let text = node.text.trim();
        let parsed = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse().ok()
        } else {
            None
        };
        parsed.ok_or_else(|| {
            self.text_pos(node)
                .error(format!("<{}> to be {what}", node.name), quoted(text))
        })
    }
}

/// Decodes one `WV-CSP-Message` document (tolerantly: see the module documentation).
///
/// # Errors
///
/// An [`XmlError`] at the offending spot when the text is not well-formed XML (or is larger
/// than [`MAX_MESSAGE_BYTES`], or nested deeper than [`MAX_DEPTH`]), the root is not a
/// `WV-CSP-Message` with a CSP 1.1/1.2/1.3 namespace, a descriptor element is missing or has a
/// value outside its closed set, there is not exactly one `Transaction` with exactly one known
/// primitive, or a number or `T`/`F` field does not parse.
pub fn decode(xml: &str) -> Result<Decoded, XmlError> {
    let root = parse_tree(xml)?;
    let cx = Cx { src: xml };
    let version = read_version(&cx, &root)?;
    let mut spans = BTreeMap::new();
    let header = read_header(&cx, &root, &mut spans)?;
    let prim = header.primitive;
    spans.insert("primitive", cx.pos(prim.start));
    let mut d = Decoded {
        version,
        primitive: prim.name.clone(),
        session_id: None,
        transaction_id: header.transaction_id,
        user_id: None,
        client_id: None,
        result_code: None,
        mode: Some(header.mode),
        session_type: Some(header.session_type),
        poll: header.poll,
        recovery_session_id: None,
        nonce: None,
        keep_alive_time: None,
        time_to_live: None,
        capability_request: None,
        description: None,
        content_session_id: None,
        has_password: false,
        digest_schemas: Vec::new(),
        digest_bytes: None,
        session_cookie: None,
        system_message_responses: None,
        has_functions: false,
        has_capability_list: false,
        has_agreed_capability_list: false,
        has_system_message: false,
        group_id: None,
        presence_value: None,
        spans,
    };
    read_fields(&cx, prim, &mut d)?;

    // The derived Session-ID views.
    d.session_id = match header.descriptor_session_id {
        Some(sid) => Some(sid),
        None => {
            if let Some(p) = d.spans.get("content_session_id").copied() {
                d.spans.insert("session_id", p);
            }
            d.content_session_id.clone()
        }
    };
    if d.primitive == "Login-Request" {
        let key = if d.content_session_id.is_some() {
            "content_session_id"
        } else {
            "session_id"
        };
        if let Some(p) = d.spans.get(key).copied() {
            d.spans.insert("recovery_session_id", p);
        }
        d.recovery_session_id = d
            .content_session_id
            .clone()
            .or_else(|| d.session_id.clone());
    }
    Ok(d)
}

/// The version from the root's namespace (`xmlns`, or `xmlns:p` for a prefixed root).
fn read_version(cx: &Cx<'_>, root: &Node) -> Result<CspVersion, XmlError> {
    let root_pos = cx.pos(root.start);
    let ns_key = match &root.prefix {
        Some(p) => format!("xmlns:{p}"),
        None => "xmlns".to_owned(),
    };
    let ns = root
        .attrs
        .iter()
        .find(|(k, _)| *k == ns_key)
        .map(|(_, v)| v.trim());
    match ns {
        Some(ns) => CspVersion::from_csp_namespace(ns).ok_or_else(|| {
            root_pos.error(
                "a CSP 1.1, 1.2 or 1.3 namespace on <WV-CSP-Message>",
                quoted(ns),
            )
        }),
        None => Err(root_pos.error(
            "a CSP namespace (xmlns) on <WV-CSP-Message>",
            "no namespace",
        )),
    }
}

/// The session and transaction descriptors, and the primitive element.
struct Header<'n> {
    session_type: SessionType,
    descriptor_session_id: Option<String>,
    mode: Mode,
    transaction_id: Option<String>,
    poll: Option<bool>,
    primitive: &'n Node,
}

fn read_header<'n>(
    cx: &Cx<'_>,
    root: &'n Node,
    spans: &mut BTreeMap<&'static str, Pos>,
) -> Result<Header<'n>, XmlError> {
    let session = cx.required(root, "Session")?;

    // Session descriptor: SessionType is Inband exactly when there is a SessionID.
    let descriptor = cx.required(session, "SessionDescriptor")?;
    let type_node = cx.required(descriptor, "SessionType")?;
    let session_type = match type_node.text.trim() {
        "Inband" => SessionType::Inband,
        "Outband" => SessionType::Outband,
        other => {
            return Err(cx
                .text_pos(type_node)
                .error("<SessionType> to be Inband or Outband", quoted(other)))
        }
    };
    let sid_node = cx.one(descriptor, "SessionID")?;
    let descriptor_session_id = match (session_type, sid_node) {
        (SessionType::Inband, Some(node)) => {
            spans.insert("session_id", cx.text_pos(node));
            Some(cx.text(node)?.to_owned())
        }
        (SessionType::Outband, None) => None,
        (SessionType::Inband, None) => {
            return Err(cx.pos(descriptor.end).error(
                "<SessionID> in an Inband <SessionDescriptor>",
                "</SessionDescriptor>",
            ))
        }
        (SessionType::Outband, Some(node)) => {
            return Err(cx.pos(node.start).error(
                "no <SessionID> in an Outband <SessionDescriptor>",
                "<SessionID>",
            ))
        }
    };

    let transaction = {
        let mut all = session.children.iter().filter(|c| c.name == "Transaction");
        let first = all.next();
        if let Some(second) = all.next() {
            return Err(cx.pos(second.start).error(
                "exactly one <Transaction> in <Session>",
                "a second <Transaction>",
            ));
        }
        first.ok_or_else(|| {
            cx.pos(session.end)
                .error("<Transaction> in <Session>", "</Session>")
        })?
    };

    // Transaction descriptor; Poll is here in 1.1 and at Session level in 1.2+.
    let tdesc = cx.required(transaction, "TransactionDescriptor")?;
    let mode_node = cx.required(tdesc, "TransactionMode")?;
    let mode = match mode_node.text.trim() {
        "Request" => Mode::Request,
        "Response" => Mode::Response,
        other => {
            return Err(cx
                .text_pos(mode_node)
                .error("<TransactionMode> to be Request or Response", quoted(other)))
        }
    };
    let transaction_id = match cx.one(tdesc, "TransactionID")? {
        Some(node) => {
            spans.insert("transaction_id", cx.text_pos(node));
            Some(cx.text(node)?.to_owned())
        }
        None => None,
    };
    let poll = match (cx.one(tdesc, "Poll")?, cx.one(session, "Poll")?) {
        (Some(_), Some(second)) => {
            return Err(cx.pos(second.start).error(
                "one <Poll>, in <TransactionDescriptor> or in <Session>",
                "a second <Poll>",
            ))
        }
        (Some(node), None) | (None, Some(node)) => Some(cx.boolean(node)?),
        (None, None) => None,
    };

    // Exactly one known primitive.
    let content = cx.required(transaction, "TransactionContent")?;
    let mut primitives = content.children.iter();
    let primitive = primitives.next().ok_or_else(|| {
        cx.pos(content.end).error(
            "a primitive in <TransactionContent>",
            "</TransactionContent>",
        )
    })?;
    if let Some(second) = primitives.next() {
        return Err(cx.pos(second.start).error(
            "exactly one primitive in <TransactionContent>",
            format!("<{}>", second.name),
        ));
    }
    if !PRIMITIVE_NAMES.contains(&primitive.name.as_str()) {
        return Err(cx
            .pos(primitive.start)
            .error("a known CSP primitive", format!("<{}>", primitive.name)));
    }
    Ok(Header {
        session_type,
        descriptor_session_id,
        mode,
        transaction_id,
        poll,
        primitive,
    })
}

/// The primitive's children, whatever the primitive (unknown ones are skipped).
fn read_fields(cx: &Cx<'_>, prim: &Node, d: &mut Decoded) -> Result<(), XmlError> {
    let spans = &mut d.spans;
    let mut text_field = |name: &str, key: &'static str| -> Result<Option<String>, XmlError> {
        match cx.one(prim, name)? {
            Some(node) => {
                spans.insert(key, cx.text_pos(node));
                Ok(Some(cx.text(node)?.to_owned()))
            }
            None => Ok(None),
        }
    };
    d.user_id = text_field("UserID", "user_id")?;
    d.digest_bytes = text_field("DigestBytes", "digest_bytes")?;
    d.session_cookie = text_field("SessionCookie", "session_cookie")?;
    d.nonce = text_field("Nonce", "nonce")?;
    d.group_id = text_field("GroupID", "group_id")?;
    d.content_session_id = text_field("SessionID", "content_session_id")?;

    if let Some(node) = cx.one(prim, "ClientID")? {
        let inner = match (cx.one(node, "URL")?, cx.one(node, "MSISDN")?) {
            (Some(url), _) => url,
            (None, Some(msisdn)) => msisdn,
            (None, None) => node,
        };
        d.spans.insert("client_id", cx.text_pos(inner));
        d.client_id = Some(cx.text(inner)?.to_owned());
    }
    if let Some(node) = cx.one(prim, "Result")? {
        let code = cx.required(node, "Code")?;
        d.spans.insert("result_code", cx.text_pos(code));
        d.result_code = Some(cx.number(code, "a number")?);
        if let Some(desc) = cx.one(node, "Description")? {
            d.description = Some(desc.text.trim().to_owned());
        }
    }
    if let Some(node) = cx.one(prim, "TimeToLive")? {
        d.time_to_live = Some(cx.number(node, "a number of seconds")?);
    }
    if let Some(node) = cx.one(prim, "KeepAliveTime")? {
        d.keep_alive_time = Some(cx.number(node, "a number of seconds")?);
    }
    if let Some(node) = cx.one(prim, "CapabilityRequest")? {
        d.capability_request = Some(cx.boolean(node)?);
    }
    for node in prim.children.iter().filter(|c| c.name == "DigestSchema") {
        d.digest_schemas.extend(
            node.text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
    }
    if let Some(list) = cx.one(prim, "SystemMessageResponseList")? {
        d.spans
            .insert("system_message_responses", cx.pos(list.start));
        d.system_message_responses = Some(
            list.children
                .iter()
                .filter(|c| c.name == "SystemMessageResponse")
                .flat_map(|r| r.children.iter().filter(|c| c.name == "ResponseID"))
                .map(|id| id.text.trim().to_owned())
                .collect(),
        );
    }
    if let Some(list) = cx.one(prim, "PresenceSubList")? {
        d.spans.insert("presence_value", cx.pos(list.start));
        if let Some(avail) = cx.one(list, "UserAvailability")? {
            if let Some(value) = cx.one(avail, "PresenceValue")? {
                d.spans.insert("presence_value", cx.text_pos(value));
                d.presence_value = Some(cx.text(value)?.to_owned());
            }
        }
    }
    for (name, flag, key) in [
        ("Password", &mut d.has_password, "has_password"),
        ("Functions", &mut d.has_functions, "has_functions"),
        (
            "CapabilityList",
            &mut d.has_capability_list,
            "has_capability_list",
        ),
        (
            "AgreedCapabilityList",
            &mut d.has_agreed_capability_list,
            "has_agreed_capability_list",
        ),
        (
            "SystemMessageList",
            &mut d.has_system_message,
            "has_system_message",
        ),
    ] {
        if let Some(node) = cx.one(prim, name)? {
            *flag = true;
            d.spans.insert(key, cx.pos(node.start));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Mapping to the core
// ---------------------------------------------------------------------------------------------

impl Decoded {
    fn pos(&self, key: &str) -> Pos {
        self.spans
            .get(key)
            .or_else(|| self.spans.get("primitive"))
            .copied()
            .unwrap_or(Pos { line: 1, column: 1 })
    }

    fn missing(&self, element: &str) -> XmlError {
        self.pos("primitive").error(
            format!("<{element}> in <{}>", self.primitive),
            "no such element",
        )
    }

    /// Parses an optional field with `parse`, reporting `what` on failure.
    fn scheme<T>(
        &self,
        value: Option<&String>,
        key: &str,
        element: &str,
        what: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, XmlError> {
        match value {
            None => Ok(None),
            Some(text) => parse(text).map(Some).ok_or_else(|| {
                self.pos(key)
                    .error(format!("<{element}> to be {what}"), quoted(text))
            }),
        }
    }

    fn user(&self) -> Result<UserId, XmlError> {
        self.scheme(
            self.user_id.as_ref(),
            "user_id",
            "UserID",
            "of the form wv:user<N>@imps.example",
            scheme::parse_user_id,
        )?
        .ok_or_else(|| self.missing("UserID"))
    }

    fn client(&self) -> Result<ClientId, XmlError> {
        self.scheme(
            self.client_id.as_ref(),
            "client_id",
            "ClientID",
            "of the form imps://dev<D>/c<S> or imps://u<U>/c<S>",
            scheme::parse_client_url,
        )?
        .ok_or_else(|| self.missing("ClientID"))
    }

    fn content_session(&self) -> Result<Option<SessionId>, XmlError> {
        self.scheme(
            self.content_session_id.as_ref(),
            "content_session_id",
            "SessionID",
            "of the form imps.example#<N>",
            scheme::parse_session_id,
        )
    }

    fn hex(
        &self,
        value: Option<&String>,
        key: &str,
        element: &str,
    ) -> Result<Option<u32>, XmlError> {
        self.scheme(
            value,
            key,
            element,
            "8 lowercase hex digits",
            scheme::parse_hex8,
        )
    }

    fn result(&self) -> Result<ResultCode, XmlError> {
        self.result_code
            .map(ResultCode::from_number)
            .ok_or_else(|| self.missing("Result"))
    }

    fn group(&self) -> Result<u8, XmlError> {
        self.scheme(
            self.group_id.as_ref(),
            "group_id",
            "GroupID",
            "of the form wv:group<N>@imps.example",
            scheme::parse_group_id,
        )?
        .ok_or_else(|| self.missing("GroupID"))
    }

    /// Both negotiation elements or neither.
    fn pair(&self, a: (&str, bool), b: (&str, bool)) -> Result<bool, XmlError> {
        match (a.1, b.1) {
            (true, true) => Ok(true),
            (false, false) => Ok(false),
            (true, false) | (false, true) => Err(self.pos("primitive").error(
                format!("<{}> and <{}> together in <{}>", a.0, b.0, self.primitive),
                format!("only <{}>", if a.1 { a.0 } else { b.0 }),
            )),
        }
    }
}

/// Maps a decoded message that follows the naming scheme back to the core [`Envelope`].
///
/// # Errors
///
/// An [`XmlError`] with the position of the offending element when an identifier does not
/// follow the scheme, when an element the primitive needs is missing, or when only one of the
/// two negotiation elements of a login is present.
pub fn to_envelope(d: &Decoded) -> Result<Envelope, XmlError> {
    let session = match d.session_type {
        Some(SessionType::Inband) => {
            let sid = d.scheme(
                d.session_id.as_ref(),
                "session_id",
                "SessionID",
                "of the form imps.example#<N>",
                scheme::parse_session_id,
            )?;
            Some(sid.ok_or_else(|| d.missing("SessionID"))?)
        }
        Some(SessionType::Outband) => None,
        None => return Err(d.missing("SessionType")),
    };
    let mode = d.mode.ok_or_else(|| d.missing("TransactionMode"))?;
    let tid = d.scheme(
        d.transaction_id.as_ref(),
        "transaction_id",
        "TransactionID",
        "a decimal number up to 65535",
        scheme::parse_transaction_id,
    )?;
    let body = match d.primitive.as_str() {
        "Login-Request" => Primitive::LoginRequest(LoginRequest {
            user: d.user()?,
            client_id: d.client()?,
            session_id: d.content_session()?,
            password: d.has_password,
            digest_schema: !d.digest_schemas.is_empty(),
            digest_bytes: d.hex(d.digest_bytes.as_ref(), "digest_bytes", "DigestBytes")?,
            ttl_s: d.time_to_live,
            negotiation: d.pair(
                ("Functions", d.has_functions),
                ("CapabilityList", d.has_capability_list),
            )?,
            system_message_response: d.system_message_responses.as_ref().map(|ids| {
                !ids.is_empty() && ids.iter().all(|id| id == scheme::CONFORMANT_RESPONSE_ID)
            }),
        }),
        "Login-Response" => Primitive::LoginResponse(LoginResponse {
            client_id: d.client()?,
            result: d.result()?,
            nonce: d.hex(d.nonce.as_ref(), "nonce", "Nonce")?,
            session_id: d.content_session()?,
            keep_alive_s: d.keep_alive_time,
            capability_request: d.capability_request,
            negotiated: d.pair(
                ("Functions", d.has_functions),
                ("AgreedCapabilityList", d.has_agreed_capability_list),
            )?,
            system_message: d.has_system_message,
        }),
        "Logout-Request" => Primitive::LogoutRequest,
        "KeepAlive-Request" => Primitive::KeepAliveRequest {
            ttl_s: d.time_to_live,
        },
        "KeepAlive-Response" => Primitive::KeepAliveResponse {
            result: d.result()?,
            keep_alive_s: d.keep_alive_time,
        },
        "Service-Request" => Primitive::ServiceRequest,
        "Service-Response" => Primitive::ServiceResponse {
            result: d.result()?,
        },
        "ClientCapability-Request" => Primitive::ClientCapabilityRequest,
        "ClientCapability-Response" => Primitive::ClientCapabilityResponse {
            result: d.result()?,
        },
        "JoinGroup-Request" => Primitive::JoinGroupRequest { group: d.group()? },
        "JoinGroup-Response" => Primitive::JoinGroupResponse {
            result: d.result()?,
        },
        "LeaveGroup-Request" => Primitive::LeaveGroupRequest { group: d.group()? },
        "LeaveGroup-Response" => Primitive::LeaveGroupResponse {
            result: d.result()?,
        },
        "UpdatePresence-Request" => Primitive::UpdatePresenceRequest {
            presence: d
                .scheme(
                    d.presence_value.as_ref(),
                    "presence_value",
                    "PresenceValue",
                    "NONE, AVAILABLE, DISCREET, NOT_AVAILABLE or P<N> with N >= 4",
                    scheme::parse_presence_value,
                )?
                .ok_or_else(|| d.missing("PresenceValue"))?,
        },
        "Polling-Request" => Primitive::PollingRequest,
        "Status" => Primitive::Status {
            result: d.result()?,
        },
        "Disconnect" => Primitive::Disconnect {
            result: d.result()?,
        },
        other => {
            return Err(d
                .pos("primitive")
                .error("a known CSP primitive", format!("<{other}>")))
        }
    };
    Ok(Envelope {
        session,
        mode,
        tid,
        body,
    })
}

/// [`decode`] then [`to_envelope`].
///
/// # Errors
///
/// Those of [`decode`], then those of [`to_envelope`].
pub fn decode_envelope(xml: &str) -> Result<Envelope, XmlError> {
    to_envelope(&decode(xml)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{ClientIdPool, DeviceId, Tid};

    fn login_request() -> Envelope {
        Envelope::request(
            None,
            Tid(1),
            Primitive::LoginRequest(LoginRequest {
                user: UserId(3),
                client_id: ClientId {
                    pool: ClientIdPool::Device(DeviceId(2)),
                    slot: 1,
                },
                session_id: None,
                password: true,
                digest_schema: false,
                digest_bytes: None,
                ttl_s: Some(7205),
                negotiation: false,
                system_message_response: None,
            }),
        )
    }

    /// The exact CSP 1.3 text of a 2-way Login-Request, pinned.
    #[test]
    fn encode_login_request_is_pinned() {
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<WV-CSP-Message xmlns="http://www.openmobilealliance.org/DTD/IMPS-CSP1.3">
  <Session>
    <SessionDescriptor>
      <SessionType>Outband</SessionType>
    </SessionDescriptor>
    <Transaction>
      <TransactionDescriptor>
        <TransactionMode>Request</TransactionMode>
        <TransactionID>1</TransactionID>
      </TransactionDescriptor>
      <TransactionContent xmlns="http://www.openmobilealliance.org/DTD/IMPS-TRC1.3">
        <Login-Request>
          <UserID>wv:user3@imps.example</UserID>
          <ClientID>
            <URL>imps://dev2/c1</URL>
          </ClientID>
          <Password>secret</Password>
          <TimeToLive>7205</TimeToLive>
          <SessionCookie>wv:cookie.dev2</SessionCookie>
        </Login-Request>
      </TransactionContent>
    </Transaction>
    <Poll>F</Poll>
  </Session>
</WV-CSP-Message>
"#;
        assert_eq!(encode(&login_request()), expected);
    }

    #[test]
    fn encode_1_1_puts_poll_in_the_descriptor() {
        let xml = encode_version(&login_request(), CspVersion::V1_1);
        assert!(xml.contains("xmlns=\"http://www.wireless-village.org/CSP1.1\""));
        assert!(xml.contains("xmlns=\"http://www.wireless-village.org/TRC1.1\""));
        let poll = xml.find("<Poll>").unwrap();
        assert!(poll < xml.find("</TransactionDescriptor>").unwrap());
        let d = decode(&xml).unwrap();
        assert_eq!(d.version, CspVersion::V1_1);
        assert_eq!(d.poll, Some(false));
        assert_eq!(to_envelope(&d).unwrap(), login_request());
    }

    #[test]
    fn encode_server_disconnect_has_no_transaction_id() {
        let env = Envelope {
            session: Some(SessionId(9)),
            mode: Mode::Request,
            tid: None,
            body: Primitive::Disconnect {
                result: ResultCode::ForcedLogout,
            },
        };
        let xml = encode(&env);
        assert!(!xml.contains("TransactionID"));
        assert!(xml.contains("<Description>Forced logout.</Description>"));
        let d = decode(&xml).unwrap();
        assert_eq!(d.transaction_id, None);
        assert_eq!(d.result_code, Some(601));
        assert_eq!(to_envelope(&d).unwrap(), env);
    }

    #[test]
    fn recovery_goes_as_a_login_request_child() {
        let mut env = login_request();
        if let Primitive::LoginRequest(r) = &mut env.body {
            r.session_id = Some(SessionId(77));
        }
        let xml = encode(&env);
        assert!(xml.contains("<SessionType>Outband</SessionType>"));
        let d = decode(&xml).unwrap();
        assert_eq!(d.session_id.as_deref(), Some("imps.example#77"));
        assert_eq!(d.recovery_session_id.as_deref(), Some("imps.example#77"));
        assert_eq!(d.content_session_id.as_deref(), Some("imps.example#77"));
        assert_eq!(to_envelope(&d).unwrap(), env);
    }

    /// Shape A: a CSP 1.3 server Status with nested DetailedResults (whose Codes and UserIDs
    /// must not be taken for the primitive's).
    #[test]
    fn decode_status_with_detailed_results() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<WV-CSP-Message xmlns="http://www.openmobilealliance.org/DTD/IMPS-CSP1.3">
 <Session>
  <SessionDescriptor><SessionType>Inband</SessionType>
   <SessionID>srv.example#1001</SessionID></SessionDescriptor>
  <Transaction>
   <TransactionDescriptor><TransactionMode>Response</TransactionMode>
    <TransactionID>Cli7#88@phone</TransactionID></TransactionDescriptor>
   <TransactionContent xmlns="http://www.openmobilealliance.org/DTD/IMPS-TRC1.3">
    <Status><Result><Code>201</Code><Description>Partly done.</Description>
      <DetailedResult><Code>531</Code><Description>No such user.</Description>
       <UserID>wv:nobody@srv.example</UserID></DetailedResult></Result></Status>
   </TransactionContent>
  </Transaction>
  <Poll>T</Poll>
 </Session>
</WV-CSP-Message>"#;
        let d = decode(xml).unwrap();
        assert_eq!(d.version, CspVersion::V1_3);
        assert_eq!(d.primitive, "Status");
        assert_eq!(d.session_id.as_deref(), Some("srv.example#1001"));
        assert_eq!(d.transaction_id.as_deref(), Some("Cli7#88@phone"));
        assert_eq!(d.result_code, Some(201));
        assert_eq!(d.description.as_deref(), Some("Partly done."));
        assert_eq!(d.user_id, None);
        assert_eq!(d.poll, Some(true));
        assert_eq!(d.session_type, Some(SessionType::Inband));
        assert_eq!(d.mode, Some(Mode::Response));
        // Not in the naming scheme: to_envelope says where.
        let err = to_envelope(&d).unwrap_err();
        assert_eq!((err.line, err.column), (5, 15));
        assert!(
            err.expected.contains("of the form imps.example#<N>"),
            "{err}"
        );
    }

    /// Shape B: a CSP 1.1 login with a DOCTYPE, Outband, then its response with `Poll` in the
    /// TransactionDescriptor.
    #[test]
    fn decode_csp11_login_exchange() {
        let req = r#"<!DOCTYPE WV-CSP-Message PUBLIC "-//OMA//DTD WV-CSP 1.1//EN" "http://www.openmobilealliance.org/DTD/WV-CSP.XML">
<WV-CSP-Message xmlns="http://www.wireless-village.org/CSP1.1"><Session>
 <SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor>
 <Transaction><TransactionDescriptor><TransactionMode>Request</TransactionMode>
   <TransactionID>PhoneApp#4711</TransactionID></TransactionDescriptor>
  <TransactionContent xmlns="http://www.wireless-village.org/TRC1.1"><Login-Request>
   <UserID>wv:alice@chat.example</UserID><ClientID><URL>http://10.1.2.3:8080/IMAPP</URL></ClientID>
   <Password>hunter2</Password><TimeToLive>300</TimeToLive>
   <SessionCookie>chat.example#cookie#99</SessionCookie>
  </Login-Request></TransactionContent></Transaction></Session></WV-CSP-Message>"#;
        let d = decode(req).unwrap();
        assert_eq!(d.version, CspVersion::V1_1);
        assert_eq!(d.primitive, "Login-Request");
        assert_eq!(d.session_type, Some(SessionType::Outband));
        assert_eq!(d.session_id, None);
        assert_eq!(d.recovery_session_id, None);
        assert_eq!(d.user_id.as_deref(), Some("wv:alice@chat.example"));
        assert_eq!(d.client_id.as_deref(), Some("http://10.1.2.3:8080/IMAPP"));
        assert!(d.has_password);
        assert_eq!(d.time_to_live, Some(300));
        assert_eq!(d.session_cookie.as_deref(), Some("chat.example#cookie#99"));
        assert_eq!(d.poll, None);

        let resp = r#"<WV-CSP-Message xmlns="http://www.wireless-village.org/CSP1.1"><Session>
 <SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor>
 <Transaction><TransactionDescriptor><TransactionMode>Response</TransactionMode>
   <TransactionID>PhoneApp#4711</TransactionID><Poll>F</Poll></TransactionDescriptor>
  <TransactionContent xmlns="http://www.wireless-village.org/TRC1.1"><Login-Response>
   <ClientID><URL>http://10.1.2.3:8080/IMAPP</URL></ClientID>
   <Result><Code>200</Code><Description>Welcome.</Description></Result>
   <SessionID>chat.example#s-5150</SessionID><KeepAliveTime>240</KeepAliveTime>
   <CapabilityRequest>T</CapabilityRequest>
  </Login-Response></TransactionContent></Transaction></Session></WV-CSP-Message>"#;
        let d = decode(resp).unwrap();
        assert_eq!(d.primitive, "Login-Response");
        assert_eq!(d.poll, Some(false));
        assert_eq!(d.session_type, Some(SessionType::Outband));
        assert_eq!(d.session_id.as_deref(), Some("chat.example#s-5150"));
        assert_eq!(d.recovery_session_id, None);
        assert_eq!(d.result_code, Some(200));
        assert_eq!(d.keep_alive_time, Some(240));
        assert_eq!(d.capability_request, Some(true));
    }

    /// 4-way login: a list of digest schemas, then a 401 challenge with a plain-text ClientID.
    #[test]
    fn decode_four_way_login() {
        let req = r#"<WV-CSP-Message xmlns="http://www.openmobilealliance.org/DTD/WV-CSP1.2">
<Session><SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor>
<Transaction><TransactionDescriptor><TransactionMode>Request</TransactionMode><TransactionID>2</TransactionID></TransactionDescriptor>
<TransactionContent xmlns="http://www.openmobilealliance.org/DTD/WV-TRC1.2"><Login-Request>
<UserID>wv:user0@imps.example</UserID><ClientID><URL>imps://dev0/c0</URL></ClientID>
<DigestSchema>PWD, SHA,MD5</DigestSchema><DigestSchema>MD6</DigestSchema>
<SessionCookie>wv:cookie.dev0</SessionCookie></Login-Request></TransactionContent></Transaction></Session></WV-CSP-Message>"#;
        let d = decode(req).unwrap();
        assert_eq!(d.digest_schemas, ["PWD", "SHA", "MD5", "MD6"]);
        let env = to_envelope(&d).unwrap();
        match env.body {
            Primitive::LoginRequest(r) => {
                assert!(r.digest_schema);
                assert!(!r.password);
                assert_eq!(r.client_id.pool, ClientIdPool::Device(DeviceId(0)));
            }
            other => panic!("expected a Login-Request, got {other:?}"),
        }

        let challenge = r#"<WV-CSP-Message xmlns="http://www.openmobilealliance.org/DTD/WV-CSP1.2">
<Session><SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor>
<Transaction><TransactionDescriptor><TransactionMode>Response</TransactionMode><TransactionID>2</TransactionID></TransactionDescriptor>
<TransactionContent xmlns="http://www.openmobilealliance.org/DTD/WV-TRC1.2"><Login-Response>
<ClientID>imps://dev0/c0</ClientID><Result><Code>401</Code></Result>
<Nonce>0badcafe</Nonce><DigestSchema>MD5</DigestSchema>
</Login-Response></TransactionContent></Transaction></Session><Poll>F</Poll></WV-CSP-Message>"#;
        let d = decode(challenge).unwrap();
        assert_eq!(d.client_id.as_deref(), Some("imps://dev0/c0"));
        assert_eq!(d.result_code, Some(401));
        assert_eq!(d.description, None);
        assert_eq!(d.nonce.as_deref(), Some("0badcafe"));
        let env = to_envelope(&d).unwrap();
        match env.body {
            Primitive::LoginResponse(r) => {
                assert_eq!(r.nonce, Some(0x0bad_cafe));
                assert_eq!(r.result, ResultCode::Unauthorized);
            }
            other => panic!("expected a Login-Response, got {other:?}"),
        }
    }

    /// Shape C: keep-alive with a different granted time, a 1.1 logout answered by
    /// Disconnect, and a server-initiated Disconnect without TransactionID.
    #[test]
    fn decode_keep_alive_logout_and_disconnect() {
        let wrap = |ns: &str, sid: &str, mode: &str, tid: &str, body: &str| {
            format!(
                "<WV-CSP-Message xmlns=\"{ns}\"><Session><SessionDescriptor><SessionType>Inband</SessionType>\
                 <SessionID>{sid}</SessionID></SessionDescriptor><Transaction><TransactionDescriptor>\
                 <TransactionMode>{mode}</TransactionMode>{tid}</TransactionDescriptor>\
                 <TransactionContent>{body}</TransactionContent></Transaction></Session></WV-CSP-Message>"
            )
        };
        let v13 = CspVersion::V1_3.csp_namespace();
        let v11 = CspVersion::V1_1.csp_namespace();
        let d = decode(&wrap(
            v13,
            "imps.example#4",
            "Request",
            "<TransactionID>12</TransactionID>",
            "<KeepAlive-Request><TimeToLive>30</TimeToLive></KeepAlive-Request>",
        ))
        .unwrap();
        assert_eq!(d.time_to_live, Some(30));
        assert_eq!(
            to_envelope(&d).unwrap().body,
            Primitive::KeepAliveRequest { ttl_s: Some(30) }
        );
        let d = decode(&wrap(
            v13,
            "imps.example#4",
            "Response",
            "<TransactionID>12</TransactionID>",
            "<KeepAlive-Response><Result><Code>200</Code></Result><KeepAliveTime>600</KeepAliveTime></KeepAlive-Response>",
        ))
        .unwrap();
        assert_eq!((d.result_code, d.keep_alive_time), (Some(200), Some(600)));
        let d = decode(&wrap(
            v11,
            "x#1",
            "Request",
            "<TransactionID>13</TransactionID>",
            "<Logout-Request />",
        ))
        .unwrap();
        assert_eq!(d.primitive, "Logout-Request");
        assert_eq!(d.version, CspVersion::V1_1);
        let d = decode(&wrap(
            v11,
            "x#1",
            "Response",
            "<TransactionID>13</TransactionID>",
            "<Disconnect><Result><Code>200</Code></Result></Disconnect>",
        ))
        .unwrap();
        assert_eq!(
            (d.primitive.as_str(), d.result_code),
            ("Disconnect", Some(200))
        );
        let d = decode(&wrap(
            v13,
            "imps.example#4",
            "Request",
            "",
            "<Disconnect><Result><Code>601</Code><Description>Maintenance window.</Description></Result></Disconnect>",
        ))
        .unwrap();
        assert_eq!(d.transaction_id, None);
        assert_eq!(d.mode, Some(Mode::Request));
        let env = to_envelope(&d).unwrap();
        assert_eq!(env.tid, None);
        assert_eq!(env.session, Some(SessionId(4)));
        assert_eq!(
            env.body,
            Primitive::Disconnect {
                result: ResultCode::ForcedLogout
            }
        );
    }

    /// Shape D: a CSP 1.2 client header with xsi/xsd declarations and self-closing primitives.
    #[test]
    fn decode_csp12_xsi_header() {
        for body in [
            "<Logout-Request/>",
            "<Polling-Request />",
            "<Logout-Request></Logout-Request>",
        ] {
            let xml = format!(
                r#"<WV-CSP-Message xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns="http://www.openmobilealliance.org/DTD/WV-CSP1.2">
  <Session><SessionDescriptor><SessionType>Inband</SessionType><SessionID>imps.example#31</SessionID></SessionDescriptor>
    <Transaction><TransactionDescriptor><TransactionMode>Request</TransactionMode><TransactionID>7</TransactionID>
      </TransactionDescriptor><TransactionContent xmlns="http://www.openmobilealliance.org/DTD/WV-TRC1.2">
        {body}
      </TransactionContent></Transaction></Session></WV-CSP-Message>"#
            );
            let d = decode(&xml).unwrap();
            assert_eq!(d.version, CspVersion::V1_2);
            let env = to_envelope(&d).unwrap();
            assert_eq!(env.session, Some(SessionId(31)));
            assert_eq!(env.tid, Some(Tid(7)));
            assert_eq!(env.body.wire_name(), d.primitive);
        }
    }

    /// Shape E: Android's 1.3 recovery login: no prolog, Inband with the old Session-ID in
    /// the descriptor, children out of DTD order.
    #[test]
    fn decode_android_inband_recovery() {
        let xml = "<WV-CSP-Message xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-CSP1.3\"><Session><SessionDescriptor>\
<SessionType>Inband</SessionType><SessionID>imps.example#5</SessionID></SessionDescriptor>\
<Transaction><TransactionDescriptor><TransactionMode>Request</TransactionMode><TransactionID>1</TransactionID>\
</TransactionDescriptor><TransactionContent xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-TRC1.3\"><Login-Request>\
<UserID>wv:user1@imps.example</UserID><ClientID><URL>imps://dev1/c0</URL></ClientID><TimeToLive>7205</TimeToLive>\
<SessionCookie>wv:cookie.dev1</SessionCookie><Password>pw</Password></Login-Request></TransactionContent></Transaction></Session></WV-CSP-Message>";
        let d = decode(xml).unwrap();
        assert_eq!(d.recovery_session_id.as_deref(), Some("imps.example#5"));
        assert_eq!(d.content_session_id, None);
        assert!(d.has_password);
        let env = to_envelope(&d).unwrap();
        assert_eq!(env.session, Some(SessionId(5)));
        match env.body {
            Primitive::LoginRequest(r) => {
                assert_eq!(r.session_id, None);
                assert!(r.password);
                assert_eq!(r.ttl_s, Some(7205));
            }
            other => panic!("expected a Login-Request, got {other:?}"),
        }
    }

    /// Shape F: Baraza's reply preamble with its malformed DOCTYPE, a Baraza-style recovery
    /// child, an MSISDN ClientID, and prefixed elements below the root.
    #[test]
    fn decode_baraza_preamble() {
        let xml = "<?xml version='1.0'?>\n\t<!DOCTYPE IMPS-CSP \"-//OMA//DTD WV-CSP 1.1//EN\" \n\t\"http://www.openmobilealliance.org/DTD/WV-CSP.XML\">\n\
<WV-CSP-Message xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-CSP1.3\">\n\
<Session><SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor>\n\
<Transaction><TransactionDescriptor><TransactionMode>Request</TransactionMode><TransactionID>3</TransactionID></TransactionDescriptor>\n\
<t:TransactionContent xmlns:t=\"http://www.openmobilealliance.org/DTD/IMPS-TRC1.3\"><t:Login-Request>\n\
<t:SessionID>imps.example#12</t:SessionID><t:ClientID><t:MSISDN>+15550100</t:MSISDN></t:ClientID>\n\
<t:UserID>wv:user2@imps.example</t:UserID><t:ApplicationID>app</t:ApplicationID>\n\
</t:Login-Request></t:TransactionContent></Transaction></Session></WV-CSP-Message>\n";
        let d = decode(xml).unwrap();
        assert_eq!(d.primitive, "Login-Request");
        assert_eq!(d.client_id.as_deref(), Some("+15550100"));
        assert_eq!(d.session_id.as_deref(), Some("imps.example#12"));
        assert_eq!(d.recovery_session_id.as_deref(), Some("imps.example#12"));
        let err = to_envelope(&d).unwrap_err();
        assert_eq!(err.line, 8);
        assert_eq!(err.found, "\"+15550100\"");
    }

    /// Prologs seen in the wild: leading whitespace, a BOM, CRLF line ends, a DOCTYPE with an
    /// internal subset, a DOCTYPE without a name, comments and PIs around the root.
    #[test]
    fn decode_prolog_variants() {
        let body = encode(&Envelope::request(
            Some(SessionId(2)),
            Tid(5),
            Primitive::PollingRequest,
        ));
        let body = body.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let prologs = [
            "\n  <?xml version=\"1.0\"?>",
            "\u{feff}<?xml version=\"1.0\"?>",
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\r\n<!DOCTYPE WV-CSP-Message [ <!ENTITY e \"x\"> ]>\r\n",
            "<!DOCTYPE>",
            "<!-- before --><?app hint?>",
        ];
        for prolog in prologs {
            let xml = format!("{prolog}{body}<!-- after -->\n");
            let d = decode(&xml).unwrap_or_else(|e| panic!("{prolog:?}: {e}"));
            assert_eq!(d.primitive, "Polling-Request");
            assert_eq!(to_envelope(&d).unwrap().tid, Some(Tid(5)));
        }
    }

    #[test]
    fn json_keys_come_in_the_required_order() {
        let d = decode(&encode(&login_request())).unwrap();
        let json = serde_json::to_string(&d).unwrap();
        let keys = [
            "\"version\":\"1.3\"",
            "\"primitive\":\"Login-Request\"",
            "\"session_id\":null",
            "\"transaction_id\":\"1\"",
            "\"user_id\":\"wv:user3@imps.example\"",
            "\"client_id\":\"imps://dev2/c1\"",
            "\"result_code\":null",
            "\"mode\":\"Request\"",
            "\"session_type\":\"Outband\"",
        ];
        let mut last = 0;
        for k in keys {
            let at = json
                .find(k)
                .unwrap_or_else(|| panic!("{k} missing in {json}"));
            assert!(at >= last, "{k} out of order in {json}");
            last = at;
        }
        assert!(json.starts_with("{\"version\""));
        assert!(!json.contains("spans"));
    }

    fn err_of(xml: &str) -> XmlError {
        match decode(xml) {
            Ok(d) => panic!("expected an error, decoded {d:?}"),
            Err(e) => e,
        }
    }

    const HEAD: &str =
        "<WV-CSP-Message xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-CSP1.3\">\n";

    #[test]
    fn error_bad_transaction_mode_points_at_the_value() {
        let xml = format!(
            "{HEAD}<Session><SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor>\n\
             <Transaction><TransactionDescriptor><TransactionMode>Foo</TransactionMode></TransactionDescriptor>\n\
             <TransactionContent><Logout-Request/></TransactionContent></Transaction></Session></WV-CSP-Message>"
        );
        let e = err_of(&xml);
        assert_eq!((e.line, e.column), (3, 54));
        assert_eq!(
            e.to_string(),
            "line 3, column 54: expected <TransactionMode> to be Request or Response, found \"Foo\""
        );
    }

    #[test]
    fn error_unknown_namespace_wrong_root_and_missing_root() {
        let e =
            err_of("<WV-CSP-Message xmlns=\"http://www.openmobilealliance.org/DTD/WV-CSP1.3\"/>");
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.expected.contains("namespace"), "{e}");
        let e = err_of("<WV-CSP-Message/>");
        assert_eq!(e.found, "no namespace");
        let e = err_of("<?xml version=\"1.0\"?>\n  <CSP-Message/>");
        assert_eq!(
            (e.line, e.column, e.found.as_str()),
            (2, 3, "<CSP-Message>")
        );
        let e = err_of("");
        assert_eq!(
            (e.line, e.column, e.found.as_str()),
            (1, 1, "end of document")
        );
        let e = err_of("  hello");
        assert_eq!((e.line, e.column), (1, 1));
    }

    #[test]
    fn error_primitives_must_be_exactly_one_known() {
        let base = |content: &str| {
            format!(
                "{HEAD}<Session><SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor>\n\
                 <Transaction><TransactionDescriptor><TransactionMode>Request</TransactionMode></TransactionDescriptor>\n\
                 <TransactionContent>{content}</TransactionContent></Transaction></Session></WV-CSP-Message>"
            )
        };
        let e = err_of(&base("<Logout-Request/><Polling-Request/>"));
        assert_eq!(
            (e.line, e.column, e.found.as_str()),
            (4, 38, "<Polling-Request>")
        );
        let e = err_of(&base("<GetList-Request/>"));
        assert_eq!(
            (e.line, e.column, e.found.as_str()),
            (4, 21, "<GetList-Request>")
        );
        let e = err_of(&base(" "));
        assert_eq!(
            (e.line, e.column, e.found.as_str()),
            (4, 22, "</TransactionContent>")
        );
        let e = err_of(&base("<Status><Result><Code>2OO</Code></Result></Status>"));
        assert_eq!((e.line, e.column, e.found.as_str()), (4, 43, "\"2OO\""));
        assert_eq!(e.expected, "<Code> to be a number");
    }

    #[test]
    fn error_envelope_structure() {
        let e = err_of(&format!(
            "{HEAD}<Session><SessionDescriptor><SessionType>Inband</SessionType></SessionDescriptor></Session></WV-CSP-Message>"
        ));
        assert_eq!(e.found, "</SessionDescriptor>");
        assert_eq!((e.line, e.column), (2, 62));
        let e = err_of(&format!(
            "{HEAD}<Session><SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor>\n\
             <Transaction/><Transaction/></Session></WV-CSP-Message>"
        ));
        assert_eq!(
            (e.line, e.column, e.found.as_str()),
            (3, 15, "a second <Transaction>")
        );
        let e = err_of(&format!(
            "{HEAD}<Session><SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor>\n\
             <Transaction><TransactionDescriptor><TransactionMode>Response</TransactionMode><Poll>maybe</Poll></TransactionDescriptor>\n\
             <TransactionContent><Polling-Request/></TransactionContent></Transaction></Session></WV-CSP-Message>"
        ));
        assert_eq!(e.expected, "<Poll> to be T or F");
    }

    #[test]
    fn error_malformed_xml() {
        let e = err_of(&format!(
            "{HEAD}<Session>\n  <SessionDescriptor>\n</Session></WV-CSP-Message>"
        ));
        assert_eq!(e.line, 4);
        assert_eq!(e.expected, "</SessionDescriptor>");
        assert_eq!(e.found, "</Session>");
        let e = err_of(&format!("{HEAD}<Session>\n  <SessionDescriptor>"));
        assert_eq!((e.line, e.found.as_str()), (3, "end of document"));
        assert_eq!(e.expected, "</SessionDescriptor>");
        let e = err_of(&format!("{HEAD}</WV-CSP-Message>\n<WV-CSP-Message/>"));
        assert_eq!((e.line, e.column), (3, 1));
        let e = err_of(&format!("{HEAD}</WV-CSP-Message> trailing"));
        assert_eq!(e.line, 2);
        let e = err_of(&format!(
            "{HEAD}<Session a=\"1\" a=\"2\"></Session></WV-CSP-Message>"
        ));
        assert_eq!(e.line, 2);
        let e = err_of(&format!(
            "{HEAD}<Session>&bogus;</Session></WV-CSP-Message>"
        ));
        assert_eq!(e.line, 2);
        let e = err_of(&format!("{HEAD}<Session"));
        assert_eq!(e.line, 2);
    }

    #[test]
    fn error_depth_and_size_are_limited() {
        let deep = format!("{HEAD}{}", "<a>".repeat(MAX_DEPTH + 5));
        let e = err_of(&deep);
        assert!(e.expected.contains("nested"), "{e}");
        let big = format!("{HEAD}{}", " ".repeat(MAX_MESSAGE_BYTES));
        let e = err_of(&big);
        assert!(e.expected.contains("bytes"), "{e}");
    }

    #[test]
    fn to_envelope_rejects_ids_outside_the_scheme() {
        let mut d = decode(&encode(&login_request())).unwrap();
        d.user_id = Some("wv:user03@imps.example".to_owned());
        let e = to_envelope(&d).unwrap_err();
        assert_eq!((e.line, e.column), (14, 19));
        assert_eq!(
            e.expected,
            "<UserID> to be of the form wv:user<N>@imps.example"
        );
        d.user_id = None;
        assert_eq!(to_envelope(&d).unwrap_err().found, "no such element");
        let mut d = decode(&encode(&login_request())).unwrap();
        d.has_functions = true;
        assert!(to_envelope(&d).unwrap_err().expected.contains("together"));
        let mut d = decode(&encode(&login_request())).unwrap();
        d.transaction_id = Some("1000000".to_owned());
        assert_eq!(to_envelope(&d).unwrap_err().line, 10);
    }

    #[test]
    fn scheme_parsers_accept_exactly_the_written_forms() {
        assert_eq!(
            scheme::parse_user_id("wv:user0@imps.example"),
            Some(UserId(0))
        );
        assert_eq!(scheme::parse_user_id("wv:user@imps.example"), None);
        assert_eq!(scheme::parse_user_id("wv:user+1@imps.example"), None);
        assert_eq!(
            scheme::parse_client_url("imps://dev4294967295/c255").map(|c| c.slot),
            Some(255)
        );
        assert_eq!(scheme::parse_client_url("imps://dev1/c256"), None);
        assert_eq!(
            scheme::parse_client_url("imps://u7/c2"),
            Some(ClientId {
                pool: ClientIdPool::User(UserId(7)),
                slot: 2
            })
        );
        for bad in [
            "imps://u/c0",
            "imps://u07/c0",
            "imps://user1/c0",
            "imps://dev/c0",
        ] {
            assert_eq!(scheme::parse_client_url(bad), None, "{bad}");
        }
        assert_eq!(scheme::parse_hex8("DEADBEEF"), None);
        assert_eq!(scheme::parse_hex8("deadbeef"), Some(0xdead_beef));
        assert_eq!(scheme::parse_hex8("+eadbeef"), None);
        for p in 0..=u8::MAX {
            assert_eq!(
                scheme::parse_presence_value(&scheme::presence_value(p)),
                Some(p)
            );
        }
        assert_eq!(scheme::parse_presence_value("P3"), None);
        assert_eq!(scheme::parse_presence_value("P04"), None);
        assert_eq!(scheme::parse_group_id("wv:group256@imps.example"), None);
        assert_eq!(scheme::parse_session_id("imps.example#007"), None);
    }
}
