//! Property tests of the CSP XML codec: every envelope the naming scheme can express survives
//! `encode` → `decode` → `to_envelope` unchanged, in CSP 1.1, 1.2 and 1.3, and `decode` never
//! panics, whatever it is given.

use imps_model::codes::ResultCode;
use imps_model::msg::{
    ClientId, ClientIdPool, DeviceId, Envelope, LoginRequest, LoginResponse, Mode, Primitive,
    SessionId, Tid, UserId,
};
use imps_model::xml::{decode, encode, encode_version, to_envelope, CspVersion};
use proptest::prelude::*;

fn result_code() -> impl Strategy<Value = ResultCode> {
    prop_oneof![
        prop::sample::select(ResultCode::ALL.to_vec()),
        any::<u16>().prop_map(ResultCode::from_number),
    ]
}

/// Client-IDs of both pools: a device's own (`client.client_id_scope = device`) and the
/// user's, shared by its devices (`user`).
fn client_id() -> impl Strategy<Value = ClientId> {
    let pool = prop_oneof![
        any::<u32>().prop_map(|d| ClientIdPool::Device(DeviceId(d))),
        any::<u32>().prop_map(|u| ClientIdPool::User(UserId(u))),
    ];
    (pool, any::<u8>()).prop_map(|(pool, slot)| ClientId { pool, slot })
}

fn session_id() -> impl Strategy<Value = SessionId> {
    any::<u32>().prop_map(SessionId)
}

fn login_request() -> impl Strategy<Value = LoginRequest> {
    (
        (any::<u32>(), client_id(), prop::option::of(session_id())),
        (any::<bool>(), any::<bool>(), any::<Option<u32>>()),
        (any::<Option<u32>>(), any::<bool>(), any::<Option<bool>>()),
    )
        .prop_map(
            |(
                (user, client_id, session_id),
                (password, digest_schema, digest_bytes),
                (ttl_s, negotiation, system_message_response),
            )| LoginRequest {
                user: UserId(user),
                client_id,
                session_id,
                password,
                digest_schema,
                digest_bytes,
                ttl_s,
                negotiation,
                system_message_response,
            },
        )
}

fn login_response() -> impl Strategy<Value = LoginResponse> {
    (
        (client_id(), result_code(), any::<Option<u32>>()),
        (prop::option::of(session_id()), any::<Option<u32>>()),
        (any::<Option<bool>>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (client_id, result, nonce),
                (session_id, keep_alive_s),
                (capability_request, negotiated, system_message),
            )| LoginResponse {
                client_id,
                result,
                nonce,
                session_id,
                keep_alive_s,
                capability_request,
                negotiated,
                system_message,
            },
        )
}

/// Every primitive of `msg.rs`, with arbitrary fields.
fn primitive() -> impl Strategy<Value = Primitive> {
    prop_oneof![
        login_request().prop_map(Primitive::LoginRequest),
        login_response().prop_map(Primitive::LoginResponse),
        Just(Primitive::LogoutRequest),
        any::<Option<u32>>().prop_map(|ttl_s| Primitive::KeepAliveRequest { ttl_s }),
        (result_code(), any::<Option<u32>>()).prop_map(|(result, keep_alive_s)| {
            Primitive::KeepAliveResponse {
                result,
                keep_alive_s,
            }
        }),
        Just(Primitive::ServiceRequest),
        result_code().prop_map(|result| Primitive::ServiceResponse { result }),
        Just(Primitive::ClientCapabilityRequest),
        result_code().prop_map(|result| Primitive::ClientCapabilityResponse { result }),
        any::<u8>().prop_map(|group| Primitive::JoinGroupRequest { group }),
        result_code().prop_map(|result| Primitive::JoinGroupResponse { result }),
        any::<u8>().prop_map(|group| Primitive::LeaveGroupRequest { group }),
        result_code().prop_map(|result| Primitive::LeaveGroupResponse { result }),
        any::<u8>().prop_map(|presence| Primitive::UpdatePresenceRequest { presence }),
        Just(Primitive::PollingRequest),
        result_code().prop_map(|result| Primitive::Status { result }),
        result_code().prop_map(|result| Primitive::Disconnect { result }),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (
        prop::option::of(session_id()),
        prop_oneof![Just(Mode::Request), Just(Mode::Response)],
        prop::option::of(any::<u16>().prop_map(Tid)),
        primitive(),
    )
        .prop_map(|(session, mode, tid, body)| Envelope {
            session,
            mode,
            tid,
            body,
        })
}

fn version() -> impl Strategy<Value = CspVersion> {
    prop::sample::select(CspVersion::ALL.to_vec())
}

/// Named `xml` so that `cargo test -p imps-model xml` runs these.
mod xml {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn csp13_round_trips(env in envelope()) {
            let xml = encode(&env);
            let decoded = decode(&xml).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
            prop_assert_eq!(decoded.version, CspVersion::V1_3);
            prop_assert_eq!(decoded.primitive.as_str(), env.body.wire_name());
            prop_assert_eq!(decoded.result_code, env.body.result().map(ResultCode::number));
            prop_assert_eq!(decoded.poll, Some(false));
            let back = to_envelope(&decoded).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
            prop_assert_eq!(back, env);
        }

        #[test]
        fn every_version_round_trips(env in envelope(), v in version()) {
            let xml = encode_version(&env, v);
            let decoded = decode(&xml).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
            prop_assert_eq!(decoded.version, v);
            let back = to_envelope(&decoded).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
            prop_assert_eq!(back, env);
        }

        /// The encoding is deterministic and independent of the version except for the
        /// namespaces and the position of `Poll`.
        #[test]
        fn versions_differ_only_in_namespaces_and_poll(env in envelope()) {
            prop_assert_eq!(encode(&env), encode(&env));
            let strip = |v: CspVersion| {
                encode_version(&env, v)
                    .replace(v.csp_namespace(), "CSP")
                    .replace(v.trc_namespace(), "TRC")
                    .replace(v.pa_namespace(), "PA")
                    .lines()
                    .filter(|l| !l.contains("<Poll>"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            prop_assert_eq!(strip(CspVersion::V1_1), strip(CspVersion::V1_3));
            prop_assert_eq!(strip(CspVersion::V1_2), strip(CspVersion::V1_3));
        }

        /// Flattened onto one line (as Android sends it), the message still decodes the same.
        #[test]
        fn whitespace_free_form_round_trips(env in envelope()) {
            let flat: String = encode(&env).lines().map(str::trim).collect();
            let back = to_envelope(&decode(&flat).map_err(|e| TestCaseError::fail(format!("{e}\n{flat}")))?)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, env);
        }

        /// `decode` never panics on arbitrary text, and errors point inside the input.
        #[test]
        fn decode_never_panics_on_text(s in ".{0,300}") {
            if let Err(e) = decode(&s) {
                prop_assert!(e.line >= 1 && e.column >= 1);
                prop_assert!(e.line <= s.lines().count().max(1) + 1);
            }
        }

        /// `decode` never panics on damaged encodings: a byte range cut out or replaced.
        #[test]
        fn decode_never_panics_on_damaged_messages(
            env in envelope(),
            cut in any::<prop::sample::Index>(),
            len in 0usize..40,
            junk in "[<>/=\"a-zA-Z &;#!?\\-\\[\\]]{0,8}",
        ) {
            let xml = encode(&env);
            let start = cut.index(xml.len());
            let end = (start + len).min(xml.len());
            let damaged = format!("{}{}{}", &xml[..start], junk, &xml[end..]);
            match decode(&damaged) {
                Ok(d) => {
                    // Whatever decodes must also map (or fail) without panicking.
                    let _ = to_envelope(&d);
                }
                Err(e) => {
                    prop_assert!(e.line >= 1 && e.column >= 1);
                    prop_assert!(e.line <= damaged.lines().count() + 1, "{}", e);
                }
            }
        }
    }

    /// A server-initiated Disconnect (no Transaction-ID) has no `TransactionID` element at all, in
    /// any version, and decodes back to `tid: None`.
    #[test]
    fn server_disconnect_has_no_transaction_id() {
        let env = Envelope {
            session: Some(SessionId(17)),
            mode: Mode::Request,
            tid: None,
            body: Primitive::Disconnect {
                result: ResultCode::SessionExpired,
            },
        };
        for v in CspVersion::ALL {
            let xml = encode_version(&env, v);
            assert!(!xml.contains("TransactionID"), "{xml}");
            assert!(xml.contains("<TransactionMode>Request</TransactionMode>"));
            let d = decode(&xml).expect("decodes");
            assert_eq!(d.transaction_id, None);
            assert_eq!(d.result_code, Some(600));
            assert_eq!(to_envelope(&d).expect("maps"), env);
        }
    }
}
