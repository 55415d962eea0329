//! The CSP primitives of the protocol core, as plain data.
//!
//! These are the messages the client and server state machines exchange. They carry exactly
//! the information elements that session handling needs (Client-ID, Session-ID, result codes,
//! nonce, keep-alive times, negotiation flags), with small integer identifiers; [`crate::xml`]
//! turns them into CSP 1.3 XML and back.

use crate::codes::ResultCode;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A user (`UserID`), numbered from 0; on the wire `wv:user<N>@imps.example`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserId(pub u32);

/// A client device, numbered from 0 across all users.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceId(pub u32);

/// Whose pool a Client-ID is drawn from (`client.client_id_scope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ClientIdPool {
    /// The device's own pool, disjoint from its siblings' (a Client-ID configured in the
    /// handset): `dev<D>`.
    Device(DeviceId),
    /// The user's pool, shared by all the user's devices (a Client-ID that comes from the
    /// application, the same on every device): `u<U>`.
    User(UserId),
}

/// A Client-ID: slot `slot` of pool `pool` (`client.client_id_pool` slots). It is only a
/// name: two Client-IDs are the same Client-ID exactly when they are equal, and with a
/// user-wide pool two devices on the same slot present the same one. Nothing routes by it
/// (the server binds a session to the device of its connection, see
/// [`crate::server::Session::device`]).
///
/// Shown as `dev<D>/c<S>` or `u<U>/c<S>`; on the wire
/// `<ClientID><URL>imps://dev<D>/c<S></URL></ClientID>` or `imps://u<U>/c<S>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientId {
    /// The pool it is drawn from.
    pub pool: ClientIdPool,
    /// The index in the pool.
    pub slot: u8,
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pool {
            ClientIdPool::Device(d) => write!(f, "dev{}/c{}", d.0, self.slot),
            ClientIdPool::User(u) => write!(f, "u{}/c{}", u.0, self.slot),
        }
    }
}

/// A Session-ID chosen by the server. Only equality matters to the protocol; the model checker
/// renumbers them canonically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId(pub u32);

/// A Transaction-ID. Opaque on the wire; the core numbers them 1..=999 per client and wraps,
/// as real clients do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tid(pub u16);

/// Whether an envelope carries a request or a response (`TransactionMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mode {
    /// `Request`: client requests, and the server's Disconnect.
    Request,
    /// `Response`: answers to requests.
    Response,
}

/// The session context that the CR requires to be independent per session and to survive a
/// recovery unchanged: the joined groups (a bit set) and the session's presence value.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Context {
    /// Bit `g` set: the session has joined group `g`.
    pub groups: u8,
    /// The presence value published through this session (0 = none published).
    pub presence: u8,
}

/// `Login-Request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LoginRequest {
    /// `UserID`.
    pub user: UserId,
    /// `ClientID`.
    pub client_id: ClientId,
    /// `SessionID`: present when the client asks to re-establish (recover) a stored session.
    pub session_id: Option<SessionId>,
    /// `Password` is present (2-way login).
    pub password: bool,
    /// `DigestSchema` is present (first request of a 4-way login).
    pub digest_schema: bool,
    /// `DigestBytes` (second request of a 4-way login).
    pub digest_bytes: Option<u32>,
    /// `TimeToLive` the client asks for, in seconds.
    pub ttl_s: Option<u32>,
    /// `Functions` and `CapabilityList` present: login combined with service and capability
    /// negotiation (CR 7.1).
    pub negotiation: bool,
    /// `SystemMessageResponseList` present, and whether the user's replies conform.
    pub system_message_response: Option<bool>,
}

/// `Login-Response`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LoginResponse {
    /// `ClientID` echoed.
    pub client_id: ClientId,
    /// `Result`.
    pub result: ResultCode,
    /// `Nonce` (4-way challenge).
    pub nonce: Option<u32>,
    /// `SessionID` of the established or recovered session.
    pub session_id: Option<SessionId>,
    /// `KeepAliveTime` granted, in seconds.
    pub keep_alive_s: Option<u32>,
    /// `CapabilityRequest`: `T` asks the client to negotiate capabilities, `F` says it is done.
    pub capability_request: Option<bool>,
    /// `Functions` and `AgreedCapabilityList` present: the negotiation was done in the login.
    pub negotiated: bool,
    /// A System Message rides along (`Status` content in the login transaction).
    pub system_message: bool,
}

/// A CSP primitive (the child of `TransactionContent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Primitive {
    /// `Login-Request`.
    LoginRequest(LoginRequest),
    /// `Login-Response`.
    LoginResponse(LoginResponse),
    /// `Logout-Request`.
    LogoutRequest,
    /// `KeepAlive-Request`.
    KeepAliveRequest {
        /// `TimeToLive`, seconds.
        ttl_s: Option<u32>,
    },
    /// `KeepAlive-Response`.
    KeepAliveResponse {
        /// `Result`.
        result: ResultCode,
        /// `KeepAliveTime`, seconds.
        keep_alive_s: Option<u32>,
    },
    /// `Service-Request` (service negotiation).
    ServiceRequest,
    /// `Service-Response`.
    ServiceResponse {
        /// `Result`.
        result: ResultCode,
    },
    /// `ClientCapability-Request`.
    ClientCapabilityRequest,
    /// `ClientCapability-Response`.
    ClientCapabilityResponse {
        /// `Result`.
        result: ResultCode,
    },
    /// `JoinGroup-Request`.
    JoinGroupRequest {
        /// The group, `wv:group<N>@imps.example` on the wire.
        group: u8,
    },
    /// `JoinGroup-Response`.
    JoinGroupResponse {
        /// `Result`.
        result: ResultCode,
    },
    /// `LeaveGroup-Request`.
    LeaveGroupRequest {
        /// The group.
        group: u8,
    },
    /// `LeaveGroup-Response`.
    LeaveGroupResponse {
        /// `Result`.
        result: ResultCode,
    },
    /// `UpdatePresence-Request` with the session's presence value.
    UpdatePresenceRequest {
        /// The presence value.
        presence: u8,
    },
    /// `Polling-Request`.
    PollingRequest,
    /// `Status`.
    Status {
        /// `Result`.
        result: ResultCode,
    },
    /// `Disconnect`: server-initiated (or a CSP 1.1 logout answer).
    Disconnect {
        /// `Result`.
        result: ResultCode,
    },
}

impl Primitive {
    /// The element name on the wire.
    pub const fn wire_name(&self) -> &'static str {
        match self {
            Primitive::LoginRequest(_) => "Login-Request",
            Primitive::LoginResponse(_) => "Login-Response",
            Primitive::LogoutRequest => "Logout-Request",
            Primitive::KeepAliveRequest { .. } => "KeepAlive-Request",
            Primitive::KeepAliveResponse { .. } => "KeepAlive-Response",
            Primitive::ServiceRequest => "Service-Request",
            Primitive::ServiceResponse { .. } => "Service-Response",
            Primitive::ClientCapabilityRequest => "ClientCapability-Request",
            Primitive::ClientCapabilityResponse { .. } => "ClientCapability-Response",
            Primitive::JoinGroupRequest { .. } => "JoinGroup-Request",
            Primitive::JoinGroupResponse { .. } => "JoinGroup-Response",
            Primitive::LeaveGroupRequest { .. } => "LeaveGroup-Request",
            Primitive::LeaveGroupResponse { .. } => "LeaveGroup-Response",
            Primitive::UpdatePresenceRequest { .. } => "UpdatePresence-Request",
            Primitive::PollingRequest => "Polling-Request",
            Primitive::Status { .. } => "Status",
            Primitive::Disconnect { .. } => "Disconnect",
        }
    }

    /// The `Result` code, for primitives that carry one.
    pub const fn result(&self) -> Option<ResultCode> {
        match self {
            Primitive::LoginResponse(r) => Some(r.result),
            Primitive::KeepAliveResponse { result, .. }
            | Primitive::ServiceResponse { result }
            | Primitive::ClientCapabilityResponse { result }
            | Primitive::JoinGroupResponse { result }
            | Primitive::LeaveGroupResponse { result }
            | Primitive::Status { result }
            | Primitive::Disconnect { result } => Some(*result),
            Primitive::LoginRequest(_)
            | Primitive::LogoutRequest
            | Primitive::KeepAliveRequest { .. }
            | Primitive::ServiceRequest
            | Primitive::ClientCapabilityRequest
            | Primitive::JoinGroupRequest { .. }
            | Primitive::LeaveGroupRequest { .. }
            | Primitive::UpdatePresenceRequest { .. }
            | Primitive::PollingRequest => None,
        }
    }
}

/// One `WV-CSP-Message`: the session and transaction descriptors around a primitive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Envelope {
    /// `SessionDescriptor/SessionID` (`SessionType` is `Inband` exactly when present).
    pub session: Option<SessionId>,
    /// `TransactionDescriptor/TransactionMode`.
    pub mode: Mode,
    /// `TransactionDescriptor/TransactionID`; absent only on a server-initiated Disconnect.
    pub tid: Option<Tid>,
    /// The primitive inside `TransactionContent`.
    pub body: Primitive,
}

impl Envelope {
    /// A client request.
    pub const fn request(session: Option<SessionId>, tid: Tid, body: Primitive) -> Envelope {
        Envelope {
            session,
            mode: Mode::Request,
            tid: Some(tid),
            body,
        }
    }

    /// The server's answer to `req`: same session descriptor, same Transaction-ID.
    pub const fn response_to(req: &Envelope, body: Primitive) -> Envelope {
        Envelope {
            session: req.session,
            mode: Mode::Response,
            tid: req.tid,
            body,
        }
    }
}
