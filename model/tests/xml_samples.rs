//! Regression inputs: every sample under `specs/xml/` decodes; the CSP 1.3 samples are exactly
//! what the encoder writes (`IMPS_BLESS_XML=1` rewrites them after a deliberate change); every
//! primitive of `msg.rs` has a sample; and every file under `specs/xml/bad/` is rejected at the
//! line its `expect-error-line` marker names.

use imps_model::codes::ResultCode;
use imps_model::msg::{
    ClientId, ClientIdPool, DeviceId, LoginRequest, LoginResponse, Primitive, UserId,
};
use imps_model::xml::{decode, encode, to_envelope, CspVersion, PRIMITIVE_NAMES};
use std::path::{Path, PathBuf};

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/xml")
}

/// The `.xml` files directly in `dir`, sorted by name.
fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .expect("UTF-8 file name")
        .to_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The primitive a sample's file name announces: the longest wire name, lowercased, that the
/// stem starts with followed by `-` or the end (`login-request-2way` → `Login-Request`).
fn primitive_of_name(stem: &str) -> Option<&'static str> {
    PRIMITIVE_NAMES
        .iter()
        .copied()
        .filter(|name| {
            let lower = name.to_lowercase();
            stem == lower || stem.starts_with(&format!("{lower}-"))
        })
        .max_by_key(|name| name.len())
}

/// What each tolerant sample must decode to, and whether it follows the naming scheme (so
/// that `to_envelope` maps it).
const TOLERANT: &[(&str, &str, CspVersion, bool)] = &[
    (
        "tolerant-android-inband-recovery",
        "Login-Request",
        CspVersion::V1_3,
        true,
    ),
    ("tolerant-baraza-preamble", "Status", CspVersion::V1_3, true),
    (
        "tolerant-baraza-recovery-child",
        "Login-Request",
        CspVersion::V1_3,
        true,
    ),
    (
        "tolerant-csp11-doctype-login",
        "Login-Request",
        CspVersion::V1_1,
        true,
    ),
    (
        "tolerant-csp11-logout-disconnect",
        "Disconnect",
        CspVersion::V1_1,
        true,
    ),
    (
        "tolerant-csp12-xsi-logout",
        "Logout-Request",
        CspVersion::V1_2,
        true,
    ),
    (
        "tolerant-csp12-xsi-polling",
        "Polling-Request",
        CspVersion::V1_2,
        true,
    ),
    (
        "tolerant-digest-schema-list-login",
        "Login-Request",
        CspVersion::V1_1,
        true,
    ),
    (
        "tolerant-msisdn-clientid-login",
        "Login-Request",
        CspVersion::V1_3,
        false,
    ),
    (
        "tolerant-plaintext-clientid-401",
        "Login-Response",
        CspVersion::V1_2,
        true,
    ),
    (
        "tolerant-poll-in-descriptor",
        "KeepAlive-Response",
        CspVersion::V1_3,
        true,
    ),
    (
        "tolerant-prefixed-comments-cdata-joingroup",
        "JoinGroup-Request",
        CspVersion::V1_3,
        true,
    ),
    (
        "tolerant-server-disconnect-601",
        "Disconnect",
        CspVersion::V1_1,
        false,
    ),
];

/// The line a bad sample announces in its `<!-- expect-error-line: N ... -->` marker.
fn expected_line(text: &str) -> Option<usize> {
    let rest = text.split("expect-error-line:").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

fn variant_index(p: &Primitive) -> usize {
    match p {
        Primitive::LoginRequest(_) => 0,
        Primitive::LoginResponse(_) => 1,
        Primitive::LogoutRequest => 2,
        Primitive::KeepAliveRequest { .. } => 3,
        Primitive::KeepAliveResponse { .. } => 4,
        Primitive::ServiceRequest => 5,
        Primitive::ServiceResponse { .. } => 6,
        Primitive::ClientCapabilityRequest => 7,
        Primitive::ClientCapabilityResponse { .. } => 8,
        Primitive::JoinGroupRequest { .. } => 9,
        Primitive::JoinGroupResponse { .. } => 10,
        Primitive::LeaveGroupRequest { .. } => 11,
        Primitive::LeaveGroupResponse { .. } => 12,
        Primitive::UpdatePresenceRequest { .. } => 13,
        Primitive::PollingRequest => 14,
        Primitive::Status { .. } => 15,
        Primitive::Disconnect { .. } => 16,
    }
}

fn one_of_each_primitive() -> Vec<Primitive> {
    let client_id = ClientId {
        pool: ClientIdPool::Device(DeviceId(0)),
        slot: 0,
    };
    let result = ResultCode::Success;
    let all = vec![
        Primitive::LoginRequest(LoginRequest {
            user: UserId(0),
            client_id,
            session_id: None,
            password: true,
            digest_schema: false,
            digest_bytes: None,
            ttl_s: None,
            negotiation: false,
            system_message_response: None,
        }),
        Primitive::LoginResponse(LoginResponse {
            client_id,
            result,
            nonce: None,
            session_id: None,
            keep_alive_s: None,
            capability_request: None,
            negotiated: false,
            system_message: false,
        }),
        Primitive::LogoutRequest,
        Primitive::KeepAliveRequest { ttl_s: None },
        Primitive::KeepAliveResponse {
            result,
            keep_alive_s: None,
        },
        Primitive::ServiceRequest,
        Primitive::ServiceResponse { result },
        Primitive::ClientCapabilityRequest,
        Primitive::ClientCapabilityResponse { result },
        Primitive::JoinGroupRequest { group: 0 },
        Primitive::JoinGroupResponse { result },
        Primitive::LeaveGroupRequest { group: 0 },
        Primitive::LeaveGroupResponse { result },
        Primitive::UpdatePresenceRequest { presence: 0 },
        Primitive::PollingRequest,
        Primitive::Status { result },
        Primitive::Disconnect { result },
    ];
    for (i, p) in all.iter().enumerate() {
        assert_eq!(variant_index(p), i, "one value per variant, in order");
    }
    all
}

/// Named `xml` so that `cargo test -p imps-model xml` runs these.
mod xml {
    use super::*;

    #[test]
    fn every_sample_decodes_and_matches_its_name() {
        let files = xml_files(&samples_dir());
        assert!(
            !files.is_empty(),
            "no samples in {}",
            samples_dir().display()
        );
        for path in &files {
            let stem = stem(path);
            let text = read(path);
            let decoded = decode(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Some((_, primitive, version, maps)) =
                TOLERANT.iter().find(|(name, ..)| *name == stem)
            {
                assert_eq!(decoded.primitive, *primitive, "{stem}");
                assert_eq!(decoded.version, *version, "{stem}");
                assert_eq!(to_envelope(&decoded).is_ok(), *maps, "{stem}");
            } else if stem.starts_with("tolerant-") {
                // A tolerant sample added without a table entry: decoding is the check.
            } else {
                let expected = primitive_of_name(&stem)
                    .unwrap_or_else(|| panic!("{stem}: the name must start with a primitive"));
                assert_eq!(decoded.primitive, expected, "{stem}");
                assert_eq!(decoded.version, CspVersion::V1_3, "{stem}");
                // The CSP 1.3 samples are the encoder's exact output.
                let env = to_envelope(&decoded).unwrap_or_else(|e| panic!("{stem}: {e}"));
                let encoded = encode(&env);
                if std::env::var_os("IMPS_BLESS_XML").is_some() {
                    std::fs::write(path, &encoded).unwrap_or_else(|e| panic!("{stem}: {e}"));
                } else {
                    assert_eq!(
                        encoded, text,
                        "{stem}: not what the encoder writes (IMPS_BLESS_XML=1 rewrites it)"
                    );
                }
            }
        }
    }

    #[test]
    fn every_primitive_has_a_sample() {
        let stems: Vec<String> = xml_files(&samples_dir()).iter().map(|p| stem(p)).collect();
        let covered: Vec<&str> = stems.iter().filter_map(|s| primitive_of_name(s)).collect();
        for name in PRIMITIVE_NAMES {
            assert!(covered.contains(&name), "no CSP 1.3 sample for {name}");
        }
        // One value of every primitive of msg.rs; `variant_index` makes a new variant a compile
        // error here, so it cannot go without a sample.
        for p in one_of_each_primitive() {
            let _ = variant_index(&p);
            assert!(
                covered.contains(&p.wire_name()),
                "no sample for {}",
                p.wire_name()
            );
            assert!(PRIMITIVE_NAMES.contains(&p.wire_name()));
        }
        assert_eq!(one_of_each_primitive().len(), PRIMITIVE_NAMES.len());
        assert!(stems.iter().any(|s| s == "login-response-608"));
        assert!(stems.iter().any(|s| s == "login-response-502"));
        assert!(stems.iter().any(|s| s == "login-request-recovery"));
    }

    #[test]
    fn bad_samples_fail_at_the_announced_line() {
        let files = xml_files(&samples_dir().join("bad"));
        assert!(files.len() >= 3, "want at least 3 malformed samples");
        for path in &files {
            let text = read(path);
            let err = match decode(&text) {
                Ok(d) => panic!("{}: decoded as {d:?}", path.display()),
                Err(e) => e,
            };
            let lines = text.lines().count().max(1);
            assert!(
                (1..=lines + 1).contains(&err.line) && err.column >= 1,
                "{}: implausible position in {err}",
                path.display()
            );
            if let Some(line) = expected_line(&text) {
                assert_eq!(err.line, line, "{}: {err}", path.display());
            }
        }
    }
}
