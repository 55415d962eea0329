//! criterion benchmarks live in benches/; this library holds what they share with the
//! examples (the XML shapes that `benches/xml.rs` decodes and `examples/xml_shapes.rs` writes
//! to files for `imps decode`).
#![warn(missing_docs)]

/// Documents for the decoder's benchmark: large and odd shapes up to the size cap
/// ([`imps_model::xml::MAX_MESSAGE_BYTES`]), each a valid `Login-Request` whose filler is
/// elements the decoder skips, so that a run measures the whole decode and not an early error.
pub mod xml_shapes {
    use imps_model::xml::{MAX_DEPTH, MAX_MESSAGE_BYTES};

    const HEAD: &str = concat!(
        "<WV-CSP-Message xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-CSP1.3\">",
        "<Session><SessionDescriptor><SessionType>Outband</SessionType></SessionDescriptor>",
        "<Transaction><TransactionDescriptor><TransactionMode>Request</TransactionMode>",
        "<TransactionID>1</TransactionID></TransactionDescriptor>",
        "<TransactionContent xmlns=\"http://www.openmobilealliance.org/DTD/IMPS-TRC1.3\">",
        "<Login-Request><UserID>wv:user1@imps.example</UserID>",
        "<ClientID><URL>imps://dev1/c0</URL></ClientID>",
    );
    const TAIL: &str = concat!(
        "<Password>secret</Password><SessionCookie>wv:cookie.dev1</SessionCookie>",
        "</Login-Request></TransactionContent></Transaction></Session></WV-CSP-Message>\n",
    );
    /// Elements between the root and the `Login-Request` (`Session`, `Transaction`,
    /// `TransactionContent`).
    const PRIMITIVE_DEPTH: usize = 4;

    fn wrap(filler: &str) -> String {
        let doc = format!("{HEAD}{filler}{TAIL}");
        assert!(
            doc.len() <= MAX_MESSAGE_BYTES,
            "invariant: a shape fits the cap ({} bytes)",
            doc.len()
        );
        doc
    }

    /// The room left under the cap for filler.
    fn room() -> usize {
        MAX_MESSAGE_BYTES - HEAD.len() - TAIL.len()
    }

    /// `count` empty elements `<a/>` padded to `bytes_each` bytes (`<a   />`), on one line.
    pub fn empty_elements(count: usize, bytes_each: usize) -> String {
        assert!(bytes_each >= 4, "invariant: <a/> is 4 bytes");
        let one = format!("<a{}/>", " ".repeat(bytes_each - 4));
        wrap(&one.repeat(count))
    }

    /// As many `<a/>` as fit under the cap.
    pub fn empty_elements_filling_the_cap() -> String {
        empty_elements(room() / 4, 4)
    }

    /// One element with `count` attributes of 7 bytes each (` xyz=""`, distinct names).
    pub fn attributes(count: usize) -> String {
        const FIRST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        const REST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
        assert!(
            count <= FIRST.len() * REST.len() * REST.len(),
            "invariant: three-letter names suffice"
        );
        let mut filler = String::with_capacity(count * 7 + 8);
        filler.push_str("<Extra");
        for i in 0..count {
            let (a, rest) = (i / (REST.len() * REST.len()), i % (REST.len() * REST.len()));
            filler.push(' ');
            filler.push(char::from(FIRST[a]));
            filler.push(char::from(REST[rest / REST.len()]));
            filler.push(char::from(REST[rest % REST.len()]));
            filler.push_str("=\"\"");
        }
        filler.push_str("/>");
        wrap(&filler)
    }

    /// As many attributes as fit under the cap (about 149,000).
    pub fn attributes_filling_the_cap() -> String {
        attributes((room() - 8) / 7)
    }

    /// Chains of `<a>` nested to the deepest level the decoder accepts, repeated to fill the
    /// cap, one chain a line.
    pub fn deeply_nested() -> String {
        let levels = MAX_DEPTH - PRIMITIVE_DEPTH - 1;
        let chain = format!("{}\n{}", "<a>".repeat(levels), "</a>".repeat(levels));
        let count = room() / (chain.len() + 1);
        wrap(&format!("{chain}\n").repeat(count))
    }

    /// A 2-way `Login-Request` as the encoder writes it (about 800 bytes).
    pub fn login_request() -> String {
        use imps_model::msg::{
            ClientId, ClientIdPool, DeviceId, Envelope, LoginRequest, Primitive, Tid, UserId,
        };
        imps_model::xml::encode(&Envelope::request(
            None,
            Tid(1),
            Primitive::LoginRequest(LoginRequest {
                user: UserId(1),
                client_id: ClientId {
                    pool: ClientIdPool::Device(DeviceId(1)),
                    slot: 0,
                },
                session_id: None,
                password: true,
                digest_schema: false,
                digest_bytes: None,
                ttl_s: Some(7205),
                negotiation: false,
                system_message_response: None,
            }),
        ))
    }

    /// Every shape with its name, as the benchmark and `examples/xml_shapes.rs` use them.
    #[must_use]
    pub fn all() -> Vec<(&'static str, String)> {
        vec![
            ("empty-65536x4B-256KiB", empty_elements(65_536, 4)),
            ("empty-65536x15B-960KiB", empty_elements(65_536, 15)),
            ("empty-filling-1MiB", empty_elements_filling_the_cap()),
            ("attributes-1MiB", attributes_filling_the_cap()),
            ("nested-64-deep-1MiB", deeply_nested()),
            ("login-request", login_request()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use imps_model::xml::{decode, to_envelope, MAX_MESSAGE_BYTES};

    /// The benchmark measures whole decodes: every shape is accepted and maps to the core, and
    /// the large ones come within 2% of the cap.
    #[test]
    fn every_shape_decodes_and_the_large_ones_fill_the_cap() {
        for (name, doc) in super::xml_shapes::all() {
            let d = decode(&doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(d.primitive, "Login-Request", "{name}");
            to_envelope(&d).unwrap_or_else(|e| panic!("{name}: {e}"));
            if name.ends_with("MiB") {
                assert!(
                    doc.len() > MAX_MESSAGE_BYTES * 98 / 100,
                    "{name}: {}",
                    doc.len()
                );
            }
        }
    }
}
