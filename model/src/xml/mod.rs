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
//!
//! [`Envelope`]: crate::msg::Envelope
//! [`UserId`]: crate::msg::UserId
//! [`ClientId`]: crate::msg::ClientId
//! [`SessionId`]: crate::msg::SessionId
//! [`ResultCode::description`]: crate::codes::ResultCode::description

mod decode;
mod encode;
mod positions;

pub use decode::{decode, decode_envelope, to_envelope, Decoded, SessionType, PRIMITIVE_NAMES};
pub use encode::{encode, encode_fragment, encode_version};

use serde::Serialize;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{
        ClientId, ClientIdPool, DeviceId, Envelope, LoginRequest, Primitive, Tid, UserId,
    };

    /// A 2-way Login-Request with a password and a Time-To-Live, for the codec's tests.
    pub(super) fn login_request() -> Envelope {
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
