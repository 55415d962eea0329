//! Decoding: a CSP `WV-CSP-Message` document to a [`Decoded`], and a [`Decoded`] to the
//! core's [`Envelope`] (see the module documentation of [`crate::xml`]).

use super::positions::{resolve, Pos};
use super::{scheme, CspVersion, XmlError, MAX_DEPTH, MAX_MESSAGE_BYTES};
use crate::codes::ResultCode;
use crate::msg::{
    ClientId, Envelope, LoginRequest, LoginResponse, Mode, Primitive, SessionId, UserId,
};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

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

impl Node {
    /// Adds `child` as the last child. The first child gets room for itself alone (a Vec
    /// would make room for four): most elements with children have one, and the tree of a
    /// deeply nested document is then three times smaller.
    fn adopt(&mut self, child: Node) {
        if self.children.capacity() == 0 {
            self.children.reserve_exact(1);
        }
        self.children.push(child);
    }
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

/// The element whose start tag begins at byte `at` of `src`, with its attributes.
///
/// quick-xml's own duplicate check compares each attribute with every one before it, which is
/// quadratic in their number; it is off, and a set of the names seen does the same check.
fn open_node(src: &str, at: usize, e: &BytesStart<'_>) -> Result<Node, XmlError> {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let prefix = e
        .name()
        .prefix()
        .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned());
    let mut attrs = Vec::new();
    let mut seen = HashSet::new();
    for a in e.attributes().with_checks(false) {
        let a =
            a.map_err(|err| Pos::of(src, at).error("well-formed attributes", err.to_string()))?;
        if !seen.insert(a.key) {
            return Err(Pos::of(src, at).error(
                format!("attributes with distinct names in <{name}>"),
                format!(
                    "a second {:?} attribute",
                    String::from_utf8_lossy(a.key.as_ref())
                ),
            ));
        }
        let value = a.unescape_value().map_err(|err| {
            Pos::of(src, at).error("a well-formed attribute value", err.to_string())
        })?;
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
                    Some(parent) => parent.adopt(node),
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
                    Some(parent) => parent.adopt(node),
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
    if had_root {
        return Err(Pos::of(src, at).error(
            format!("end of document after </{ROOT}>"),
            format!("<{}>", node.name),
        ));
    }
    if node.name != ROOT {
        return Err(Pos::of(src, at).error(
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

/// The first two children of each name, found in one pass: the primitive is asked for some
/// twenty names, and scanning its children for each would read them twenty times.
struct Children<'n> {
    parent: &'n Node,
    by_name: HashMap<&'n str, (Option<&'n Node>, Option<&'n Node>)>,
}

impl<'n> Children<'n> {
    fn of(parent: &'n Node) -> Children<'n> {
        let mut by_name: HashMap<&str, (Option<&Node>, Option<&Node>)> = HashMap::new();
        for child in &parent.children {
            let slot = by_name.entry(child.name.as_str()).or_default();
            match slot {
                (None, _) => slot.0 = Some(child),
                (Some(_), None) => slot.1 = Some(child),
                (Some(_), Some(_)) => {}
            }
        }
        Children { parent, by_name }
    }
}

/// Reading helpers over the tree, with the source for positions.
struct Cx<'s> {
    src: &'s str,
}

impl Cx<'_> {
    /// The position of `offset`, for an error (one pass over the text before it).
    fn pos(&self, offset: usize) -> Pos {
        Pos::of(self.src, offset)
    }

    /// The only child named `name`, if any; a second one is an error.
    fn one<'n>(&self, parent: &'n Node, name: &str) -> Result<Option<&'n Node>, XmlError> {
        let mut found = parent.children.iter().filter(|c| c.name == name);
        self.at_most_one(parent, name, found.next(), found.next())
    }

    /// [`Cx::one`] from an index of the children.
    fn one_of<'n>(&self, kids: &Children<'n>, name: &str) -> Result<Option<&'n Node>, XmlError> {
        let (first, second) = kids.by_name.get(name).copied().unwrap_or_default();
        self.at_most_one(kids.parent, name, first, second)
    }

    fn at_most_one<'n>(
        &self,
        parent: &Node,
        name: &str,
        first: Option<&'n Node>,
        second: Option<&'n Node>,
    ) -> Result<Option<&'n Node>, XmlError> {
        if let Some(second) = second {
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

    /// Where a node's text starts (or the node, when it has none), for an error.
    fn text_pos(&self, node: &Node) -> Pos {
        self.pos(text_at(node))
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

/// The byte offset where a node's text starts (or the node, when it has none).
fn text_at(node: &Node) -> usize {
    node.text_start.unwrap_or(node.start)
}

/// The byte offsets of the fields of a [`Decoded`], turned into its `spans` at the end.
type Offsets = BTreeMap<&'static str, usize>;

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
    let mut offsets = Offsets::new();
    let header = read_header(&cx, &root, &mut offsets)?;
    let prim = header.primitive;
    offsets.insert("primitive", prim.start);
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
        spans: BTreeMap::new(),
    };
    read_fields(&cx, prim, &mut d, &mut offsets)?;

    // The derived Session-ID views.
    d.session_id = match header.descriptor_session_id {
        Some(sid) => Some(sid),
        None => {
            if let Some(p) = offsets.get("content_session_id").copied() {
                offsets.insert("session_id", p);
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
        if let Some(p) = offsets.get(key).copied() {
            offsets.insert("recovery_session_id", p);
        }
        d.recovery_session_id = d
            .content_session_id
            .clone()
            .or_else(|| d.session_id.clone());
    }
    d.spans = resolve(xml, &offsets);
    Ok(d)
}

/// The version from the root's namespace (`xmlns`, or `xmlns:p` for a prefixed root).
fn read_version(cx: &Cx<'_>, root: &Node) -> Result<CspVersion, XmlError> {
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
            cx.pos(root.start).error(
                "a CSP 1.1, 1.2 or 1.3 namespace on <WV-CSP-Message>",
                quoted(ns),
            )
        }),
        None => Err(cx.pos(root.start).error(
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
    offsets: &mut Offsets,
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
            offsets.insert("session_id", text_at(node));
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
            offsets.insert("transaction_id", text_at(node));
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
fn read_fields(
    cx: &Cx<'_>,
    prim: &Node,
    d: &mut Decoded,
    offsets: &mut Offsets,
) -> Result<(), XmlError> {
    let kids = Children::of(prim);
    let mut text_field = |name: &str, key: &'static str| -> Result<Option<String>, XmlError> {
        match cx.one_of(&kids, name)? {
            Some(node) => {
                offsets.insert(key, text_at(node));
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

    if let Some(node) = cx.one_of(&kids, "ClientID")? {
        let inner = match (cx.one(node, "URL")?, cx.one(node, "MSISDN")?) {
            (Some(url), _) => url,
            (None, Some(msisdn)) => msisdn,
            (None, None) => node,
        };
        offsets.insert("client_id", text_at(inner));
        d.client_id = Some(cx.text(inner)?.to_owned());
    }
    if let Some(node) = cx.one_of(&kids, "Result")? {
        let code = cx.required(node, "Code")?;
        offsets.insert("result_code", text_at(code));
        d.result_code = Some(cx.number(code, "a number")?);
        if let Some(desc) = cx.one(node, "Description")? {
            d.description = Some(desc.text.trim().to_owned());
        }
    }
    if let Some(node) = cx.one_of(&kids, "TimeToLive")? {
        d.time_to_live = Some(cx.number(node, "a number of seconds")?);
    }
    if let Some(node) = cx.one_of(&kids, "KeepAliveTime")? {
        d.keep_alive_time = Some(cx.number(node, "a number of seconds")?);
    }
    if let Some(node) = cx.one_of(&kids, "CapabilityRequest")? {
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
    if let Some(list) = cx.one_of(&kids, "SystemMessageResponseList")? {
        offsets.insert("system_message_responses", list.start);
        d.system_message_responses = Some(
            list.children
                .iter()
                .filter(|c| c.name == "SystemMessageResponse")
                .flat_map(|r| r.children.iter().filter(|c| c.name == "ResponseID"))
                .map(|id| id.text.trim().to_owned())
                .collect(),
        );
    }
    if let Some(list) = cx.one_of(&kids, "PresenceSubList")? {
        offsets.insert("presence_value", list.start);
        if let Some(avail) = cx.one(list, "UserAvailability")? {
            if let Some(value) = cx.one(avail, "PresenceValue")? {
                offsets.insert("presence_value", text_at(value));
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
        if let Some(node) = cx.one_of(&kids, name)? {
            *flag = true;
            offsets.insert(key, node.start);
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
    use crate::xml::encode;
    use crate::xml::tests::login_request;

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
    fn a_repeated_attribute_is_named_among_thousands() {
        let many: String = (0..5000).map(|i| format!(" k{i}=\"\"")).collect();
        let e = err_of(&format!(
            "{HEAD}  <Session{many} k4321=\"x\"></Session></WV-CSP-Message>"
        ));
        assert_eq!((e.line, e.column), (2, 3));
        assert_eq!(e.expected, "attributes with distinct names in <Session>");
        assert_eq!(e.found, "a second \"k4321\" attribute");
        // Distinct names, however many, are well-formed (the element is skipped).
        let fine = encode(&login_request()).replace(
            "<Password>",
            &format!("<Extra{many}/>\n          <Password>"),
        );
        assert_eq!(
            to_envelope(&decode(&fine).unwrap()).unwrap(),
            login_request()
        );
    }

    /// The positions a `Decoded` keeps are computed in one pass at the end of decoding: after
    /// thousands of elements on one line, they still point at their fields.
    #[test]
    fn field_positions_after_many_elements_on_one_line() {
        let filler = "<a/>".repeat(20_000);
        let flat: String = encode(&login_request())
            .lines()
            .map(str::trim)
            .collect::<String>()
            .replace("<ClientID>", &format!("{filler}<ClientID>"));
        let mut d = decode(&flat).unwrap();
        d.user_id = Some("wv:user03@imps.example".to_owned());
        d.client_id = Some("imps://dev1/c01".to_owned());
        let e = to_envelope(&d).unwrap_err();
        let user = flat.find("wv:user3").unwrap();
        assert_eq!((e.line, e.column), (1, user + 1));
        d.user_id = Some("wv:user3@imps.example".to_owned());
        let e = to_envelope(&d).unwrap_err();
        let client = flat.find("imps://dev2/c1").unwrap();
        assert!(client > 80_000, "the Client-ID is past the filler");
        assert_eq!((e.line, e.column), (1, client + 1));
        assert_eq!(e.found, "\"imps://dev1/c01\"");
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
}
