//! Encoding: an [`Envelope`] to a CSP `WV-CSP-Message` document (see the module
//! documentation of [`crate::xml`]).

use super::{scheme, CspVersion};
use crate::codes::ResultCode;
use crate::msg::{ClientId, Envelope, Mode, Primitive};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::SessionId;
    use crate::xml::tests::login_request;
    use crate::xml::{decode, to_envelope};

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
}
