//! Webhook providers behind one seam: the guard asks each route's scheme the same
//! questions and does freshness, replay and forwarding the same way for all of them.
//!
//! A scheme says, in one place: what it reads at the headers ([`Provider::at_headers`]),
//! how it verifies once the body is complete ([`Provider::at_body`]), the message its
//! signature covers ([`Signed`]: the replay identity is that whole message, never a piece
//! of it, and never an unsigned delivery-id header an attacker could change), the request's
//! signed time for freshness, the bodies it accepts ([`Media`]) and the unsigned headers the
//! application dispatches on, which the replay fingerprint binds with everything else the
//! application reads. Adding a provider adds a module, whose [`entry::Entry`] says how
//! the provider builds itself from a route, and one line in [`registry::ALL`]; the request
//! flow does not change.

use std::borrow::Cow;

use hmac::Mac;

use crate::form;
use crate::keys::{macs_equal, HmacSha256, Key};
use crate::request::{Lookup, RequestHead};
use crate::timestamp::{Freshness, Stamp};
use crate::verdict::{Reason, Rejection};

/// `entry.signs(signer)` where the signers are built (feature `sign`, and the tests); the
/// entry alone elsewhere, so that the filter's module compiles no signer: code that exists
/// only for the command line changes nothing the filter's compiler decides.
#[cfg(any(test, feature = "sign"))]
macro_rules! signs {
    ($entry:expr, $signer:expr) => {
        $entry.signs($signer)
    };
}
#[cfg(not(any(test, feature = "sign")))]
macro_rules! signs {
    ($entry:expr, $signer:expr) => {
        $entry
    };
}

pub mod asymmetric;
pub mod bitbucket;
pub mod body_mac;
pub mod contentful;
pub mod endpoint_check;
pub mod entry;
pub mod generic;
pub mod github;
pub mod google_pubsub;
pub mod hygraph;
pub mod mailgun;
pub mod meta;
pub mod paypal;
pub mod presets;
pub mod registry;
pub mod shopify;
#[cfg(any(test, feature = "sign"))]
pub mod sign;
pub mod slack;
pub mod sns;
pub mod standard_webhooks;
pub mod stripe;
pub mod token;
pub mod twilio;
pub mod vobiz;

/// What the headers alone say about a request the scheme protects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtHeaders<'p> {
    /// A signature verified already: the request may go on now unless the route needs the
    /// body anyway (replay protection, freshness).
    Verified { scheme: &'static str, key: &'p str },
    /// The verdict needs the complete body.
    NeedBody,
    /// The provider's endpoint check, answered at the edge (Meta's `GET hub.challenge`).
    Reply(Reply),
}

/// The edge's reply to a provider's endpoint check, in the format the provider expects:
/// the application needs no code for it and never sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// For metrics and logs: `url_verification`, `subscribe`, ...
    pub handshake: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// A GET the edge makes before it replies (SNS's `SubscribeURL`, confirming the
    /// subscription): the reply only if it answers 200, else `503 key_unavailable`, which
    /// the provider retries.
    pub confirm: Option<crate::remote_key::Fetch>,
}

impl Reply {
    /// `{"<name>": "<value>"}`, the value escaped as JSON.
    pub fn json(handshake: &'static str, fields: &[(&str, &str)]) -> Reply {
        let object: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(name, value)| (name.to_string(), serde_json::Value::from(*value)))
            .collect();
        Reply {
            handshake,
            content_type: "application/json",
            body: serde_json::Value::Object(object).to_string().into_bytes(),
            confirm: None,
        }
    }

    pub fn text(handshake: &'static str, text: &[u8]) -> Reply {
        Reply {
            handshake,
            content_type: "text/plain",
            body: text.to_vec(),
            confirm: None,
        }
    }
}

/// What a signature covers, as the replay memory knows a delivery by it: the whole signed
/// message (its BLAKE3 hash) under the scheme's family, and how the message splits into the
/// request's parts. Built only from the bytes a signature was checked over, so no scheme can
/// name a piece of its message as the identity: two requests under one signature are one
/// delivery, however the message is re-split between path, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    family: &'static str,
    digest: [u8; 32],
    /// The length of each part, in order: with the identity, it fixes every signed part,
    /// so a request that moved bytes between them has another fingerprint.
    split: Vec<usize>,
    /// Whether the raw body is one of the parts, whole: then the identity binds it and
    /// the fingerprint need not hash it again.
    body: bool,
}

impl Signed {
    /// The message `parts` (as the signature covers them, in order) of a scheme `family`;
    /// `body` is the request's body, signed if it is one of the parts.
    pub fn over(family: &'static str, parts: &[&[u8]], body: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new();
        for part in parts {
            hasher.update(part);
        }
        let whole = |part: &&[u8]| part.as_ptr() == body.as_ptr() && part.len() == body.len();
        Signed {
            family,
            digest: hasher.finalize().into(),
            split: parts.iter().map(|part| part.len()).collect(),
            body: !body.is_empty() && parts.iter().any(whole),
        }
    }

    /// A streamed scheme's message: its prefix's parts, then the body, hashed as it
    /// arrived. Equal to [`over`](Self::over) the same parts and body.
    pub fn streamed(family: &'static str, hashed: &Hashed) -> Self {
        let mut split = hashed.split.clone();
        split.push(hashed.body_len);
        Signed {
            family,
            digest: hashed.digest,
            split,
            body: hashed.body_len > 0,
        }
    }

    pub fn family(&self) -> &'static str {
        self.family
    }

    /// BLAKE3 of the whole signed message.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    pub fn split(&self) -> &[usize] {
        &self.split
    }

    /// Whether the identity binds the body already.
    pub fn covers_body(&self) -> bool {
        self.body
    }
}

/// A request whose signature verified, as the guard needs it for freshness and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'p> {
    /// What matched, for metrics and logs: `v3`, `whatsapp`, `stripe`, ...
    pub scheme: &'static str,
    /// The name of the key that verified.
    pub key: &'p str,
    /// The message the signature covers: the replay identity.
    pub signed: Signed,
    /// The request's own time, for the route's freshness window.
    pub time: Option<Stamp>,
}

impl<'p> Verified<'p> {
    /// A streamed scheme's verdict: its MAC verified under the key named `key`, over the
    /// message `hashed` (the scheme's family is its name).
    pub fn streamed(
        scheme: &'static str,
        key: &'p str,
        hashed: &Hashed,
        time: Option<Stamp>,
    ) -> Self {
        Verified {
            scheme,
            key,
            signed: Signed::streamed(scheme, hashed),
            time,
        }
    }
}

/// Route settings a scheme's verdict depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// Name the exact signed strings in a mismatch's log detail (never the key).
    pub explain: bool,
    pub freshness: Option<Freshness>,
}

/// What a scheme's freshness check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Time {
    /// A signed time, checked by default with the provider SDK's tolerance (the future
    /// bounded as well).
    Signed(Freshness),
    /// An unsigned time the route may choose to check (a sanity check only).
    Unsigned,
    /// Nothing time-like: a freshness setting would check nothing.
    None,
}

/// The questions the guard asks of every scheme. `Any`, so that a test can look at the
/// scheme a configuration built.
pub trait Provider: std::any::Any + Send + Sync {
    /// What the route's freshness check reads, and its default window: the provider
    /// SDK's.
    fn time(&self) -> Time {
        Time::None
    }

    /// Judges what the headers alone can: a missing, duplicated or malformed signature is
    /// refused here, before any body is buffered.
    fn at_headers(&self, head: &RequestHead, checks: &Checks) -> Result<AtHeaders<'_>, Rejection>;

    /// Verifies the request with its complete body, and what the headers step learned
    /// ([`Body::prior`]): a scheme that verified at the headers does not verify again, and a
    /// streamed scheme takes its MACs from [`Body::hashed`].
    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        checks: &Checks,
    ) -> Result<Verified<'p>, Rejection>;

    /// For a scheme whose signature is an HMAC-SHA256 of bytes the headers fix (often
    /// none) followed by the raw body: its keys and those bytes, so that the filter can hash
    /// the body as it arrives. `None` for every other scheme, and where the headers do not
    /// give the bytes (the body step then judges as usual).
    fn streamed_mac(&self, _head: &RequestHead) -> Option<StreamedMac<'_>> {
        None
    }

    /// What the streamed MACs alone decide, before the filter reads the body: a body
    /// that cannot verify is refused without being copied. The default decides nothing.
    fn check_hashed(&self, _head: &RequestHead, _hashed: &Hashed) -> Result<(), Rejection> {
        Ok(())
    }

    /// For a scheme whose verification costs far more than reading its signed time (a
    /// public-key signature: a P-256 verification costs a thousand HMACs): that time as the
    /// request states it, so that the guard refuses a stale or future request before any
    /// public-key work. Nothing is accepted on it: the verified request's time is checked
    /// again. `None` for every other scheme.
    fn time_before_verifying(&self, _head: &RequestHead) -> Option<Stamp> {
        None
    }

    /// For a scheme whose key the network holds (SNS's certificate): where this request's
    /// key is fetched from, checked before any I/O, with the request's signed time, so that a
    /// stale copy is refused before any fetch. The body step then verifies with the key as
    /// [`Prior::Fetched`]. `None` for every other scheme.
    fn remote_key(
        &self,
        _head: &RequestHead,
        _body: &[u8],
    ) -> Result<Option<(crate::remote_key::Fetch, Stamp)>, Rejection> {
        Ok(None)
    }

    /// Every scheme name it reports, with the names of the keys that can verify it, so
    /// that each metric exists from the start.
    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)>;

    /// The edge's reply when a request that verified (and is fresh) is the provider's
    /// endpoint check; `None` for every other request. `key` names the key that verified
    /// (Zoom's reply is a MAC under it).
    fn handshake(
        &self,
        _head: &RequestHead,
        _body: &[u8],
        _key: &str,
    ) -> Result<Option<Reply>, Rejection> {
        Ok(None)
    }

    /// Unsigned headers the application dispatches on (event type, topic, shop), which
    /// the provider keeps on its retries: the replay fingerprint binds them, so a copy of
    /// a delivery cannot come back as another kind of event. Lowercase names.
    fn dispatch_headers(&self) -> Vec<&str> {
        Vec::new()
    }

    /// What the body may be, as its `Content-Type` says and its bytes must show.
    fn media(&self) -> Media {
        Media::ANY
    }

    /// Whether every body this scheme verifies it has parsed whole, as one document of its
    /// [`media`](Self::media) (UTF-8, the top-level kind): the guard then does not parse it
    /// again. Tested for each scheme that says so.
    fn parses_body(&self) -> bool {
        false
    }

    /// The statuses its provider insists on for some refusals (Xero's intent-to-receive
    /// check: 401 for a bad signature), under the route's own `refusal_status`.
    fn refusal_status(&self) -> &[(Reason, u16)] {
        &[]
    }

    /// Whether it answers anyone with a MAC under its key over bytes the caller chose (X's
    /// CRC): then no other route may hold that key, whose messages such an answer could
    /// sign.
    fn answers_with_macs(&self) -> bool {
        false
    }

    /// Whether the provider itself sends identical signed requests as new ones (Twilio:
    /// the same digits twice in a `<Gather>`), so that a repeat is not a replay by itself.
    fn repeats(&self) -> bool {
        false
    }
}

/// The bodies a scheme's provider sends, by `Content-Type`: the guard refuses any other
/// type (415), or an encoded body, and once the signature verified, a body that is not
/// what its type says (400). The application parses by the type: a signed form sent as
/// `text/plain` would reach it as no parameters at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Media {
    /// `application/json` (or `+json`), and which top-level values it may hold.
    pub json: Option<Json>,
    /// `application/x-www-form-urlencoded`.
    pub form: bool,
    /// `text/plain`, holding the JSON `json` says (SNS's type, where a topic's delivery
    /// policy does not set `application/json`).
    pub text: bool,
}

/// The top-level JSON values a scheme's provider sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Json {
    Object,
    Array,
    /// An object or an array.
    Either,
}

/// What a request's `Content-Type` says its body is, as an application's framework reads
/// it: the media type without case or parameters, and whether a `charset` other than
/// UTF-8 would make it decode the bytes as something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Absent,
    Json,
    Form,
    /// `text/plain`.
    Text,
    /// Any other type, a second `Content-Type`, a charset that is not UTF-8, or bytes no
    /// media type has.
    Other,
}

impl ContentType {
    pub fn of(head: &RequestHead) -> ContentType {
        let value = match head.lookup("content-type") {
            Lookup::Missing => return ContentType::Absent,
            Lookup::Duplicate => return ContentType::Other,
            Lookup::One(value) => value,
        };
        let mut parameters = value.split(|&b| b == b';');
        let essence = parameters.next().unwrap_or_default().trim_ascii();
        for parameter in parameters {
            let parameter = parameter.trim_ascii();
            let Some(eq) = parameter.iter().position(|&b| b == b'=') else {
                return ContentType::Other;
            };
            let (name, value) = (parameter[..eq].trim_ascii(), &parameter[eq + 1..]);
            let value = value.trim_ascii();
            let value = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value);
            if name.eq_ignore_ascii_case(b"charset")
                && !value.eq_ignore_ascii_case(b"utf-8")
                && !value.eq_ignore_ascii_case(b"utf8")
            {
                return ContentType::Other;
            }
        }
        let lower = essence.to_ascii_lowercase();
        match lower.as_slice() {
            b"application/json" => ContentType::Json,
            b"application/x-www-form-urlencoded" => ContentType::Form,
            b"text/plain" => ContentType::Text,
            _ if lower.starts_with(b"application/") && lower.ends_with(b"+json") => {
                ContentType::Json
            }
            _ => ContentType::Other,
        }
    }
}

impl Media {
    /// No rule: whatever the body is, the fingerprint binds it and its type.
    pub const ANY: Media = Media {
        json: None,
        form: false,
        text: false,
    };
    pub const JSON_OBJECT: Media = Media {
        json: Some(Json::Object),
        form: false,
        text: false,
    };
    pub const JSON_ARRAY: Media = Media {
        json: Some(Json::Array),
        form: false,
        text: false,
    };
    pub const FORM: Media = Media {
        json: None,
        form: true,
        text: false,
    };
    /// A JSON object, as `application/json` or `text/plain` (SNS).
    pub const JSON_OBJECT_OR_TEXT: Media = Media {
        json: Some(Json::Object),
        form: false,
        text: true,
    };
    /// A JSON object or a form (Slack, GitHub, Mailgun).
    pub const JSON_OBJECT_OR_FORM: Media = Media {
        json: Some(Json::Object),
        form: true,
        text: false,
    };

    pub fn restricts(self) -> bool {
        self != Media::ANY
    }

    /// Whether a body of this type is one of these media. An empty body needs no type.
    pub fn admits(self, content_type: ContentType, empty: bool) -> bool {
        match content_type {
            ContentType::Absent => empty,
            ContentType::Json => self.json.is_some(),
            ContentType::Form => self.form,
            ContentType::Text => self.text,
            ContentType::Other => false,
        }
    }
}

/// What a body is hashed with as it arrives: each key's HMAC-SHA256 over `prefix` and then
/// the body.
pub struct StreamedMac<'p> {
    pub keys: &'p [Key],
    prefix: Vec<u8>,
    /// The lengths of the parts the prefix is made of.
    split: Vec<usize>,
}

impl<'p> StreamedMac<'p> {
    /// The raw body alone.
    pub fn body(keys: &'p [Key]) -> Self {
        Self::after(keys, &[])
    }

    /// The signed parts the headers fix (`t`, `.`), then the body.
    pub fn after(keys: &'p [Key], parts: &[&[u8]]) -> Self {
        StreamedMac {
            keys,
            prefix: parts.concat(),
            split: parts.iter().map(|part| part.len()).collect(),
        }
    }

    /// The hashes of the prefix and then bytes fed to [`Hasher::update`].
    pub fn start(&self) -> Hasher {
        let mut macs: Vec<HmacSha256> = self.keys.iter().map(Key::sha256).collect();
        for mac in &mut macs {
            mac.update(&self.prefix);
        }
        let mut message = blake3::Hasher::new();
        message.update(&self.prefix);
        Hasher {
            macs,
            message,
            split: self.split.clone(),
            body_len: 0,
        }
    }

    /// [`start`](Self::start), fed the whole `body` in one pass.
    pub fn hash(&self, body: &[u8]) -> Hashed {
        let mut hasher = self.start();
        hasher.update(body);
        hasher.finish()
    }
}

/// A streamed scheme's hashes as the body arrives: each key's HMAC, and the BLAKE3 of the
/// signed message (the replay identity), over the same bytes in one pass.
pub struct Hasher {
    macs: Vec<HmacSha256>,
    message: blake3::Hasher,
    split: Vec<usize>,
    body_len: usize,
}

impl Hasher {
    pub fn update(&mut self, more: &[u8]) {
        for mac in &mut self.macs {
            mac.update(more);
        }
        self.message.update(more);
        self.body_len += more.len();
    }

    /// Bytes of body taken in so far.
    pub fn body_len(&self) -> usize {
        self.body_len
    }

    pub fn finish(self) -> Hashed {
        Hashed {
            macs: self
                .macs
                .into_iter()
                .map(|mac| mac.finalize().into_bytes().into())
                .collect(),
            digest: self.message.finalize().into(),
            split: self.split,
            body_len: self.body_len,
        }
    }
}

/// A streamed scheme's prefix and body, hashed: see [`Hasher`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hashed {
    /// HMAC-SHA256 under each of the scheme's keys, in their order.
    pub macs: Vec<[u8; 32]>,
    /// BLAKE3 of the prefix and the body.
    pub digest: [u8; 32],
    /// The lengths of the prefix's parts.
    pub split: Vec<usize>,
    pub body_len: usize,
}

/// What the headers step learned that the body step can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prior<'a> {
    /// A signature verified at the headers ([`AtHeaders::Verified`]), as `scheme` under the
    /// key named `key`.
    Verified(&'static str, &'a str),
    /// The scheme's [`streamed_mac`](Provider::streamed_mac) prefix and the body, hashed as
    /// the body arrived.
    Hashed(&'a Hashed),
    /// The key [`remote_key`](Provider::remote_key) named, as fetched and kept
    /// ([`crate::remote_key::kept`]).
    Fetched(&'a [u8]),
}

/// The body step's one input: the complete body, and what came before it.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    pub bytes: &'a [u8],
    pub prior: Option<Prior<'a>>,
}

impl<'a> Body<'a> {
    /// A body nothing is known of yet.
    pub fn whole(bytes: &'a [u8]) -> Self {
        Body { bytes, prior: None }
    }

    /// What the headers step verified: `(scheme, key name)`.
    pub fn verified(&self) -> Option<(&'static str, &'a str)> {
        match self.prior {
            Some(Prior::Verified(scheme, key)) => Some((scheme, key)),
            _ => None,
        }
    }

    /// The MACs `streamed` describes over this body: as the filter computed them while the
    /// body arrived, or now, in one pass; judged the same either way.
    pub fn hashed(&self, streamed: Option<StreamedMac>) -> Cow<'a, Hashed> {
        match self.prior {
            Some(Prior::Hashed(hashed)) => Cow::Borrowed(hashed),
            _ => Cow::Owned(
                streamed
                    .map(|streamed| streamed.hash(self.bytes))
                    .unwrap_or_default(),
            ),
        }
    }
}

/// Longest challenge echoed: providers send 20 to 64 characters.
pub const MAX_CHALLENGE_BYTES: usize = 256;

/// A handshake's challenge, which the edge may echo: 1 to [`MAX_CHALLENGE_BYTES`] visible
/// ASCII characters, else refused with `reason`, naming `what`.
pub fn challenge<'v>(
    value: Option<&'v str>,
    reason: Reason,
    what: &str,
) -> Result<&'v str, Rejection> {
    match value {
        Some(text)
            if !text.is_empty()
                && text.len() <= MAX_CHALLENGE_BYTES
                && text.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(text)
        }
        _ => Err(Rejection::new(
            reason,
            format!("{what} is not 1 to {MAX_CHALLENGE_BYTES} visible ASCII characters"),
        )),
    }
}

/// A JSON body's challenge field, as Slack, Zoom and Twitch send it.
pub fn json_challenge(value: Option<&serde_json::Value>) -> Result<&str, Rejection> {
    challenge(
        value.and_then(serde_json::Value::as_str),
        Reason::MalformedBody,
        "the handshake's challenge",
    )
}

/// A JSON body's top-level object, when the body is one and `marker` occurs in it: the
/// cheap test first, so that ordinary deliveries are not parsed twice.
pub fn json_with(body: &[u8], marker: &[u8]) -> Option<serde_json::Map<String, serde_json::Value>> {
    if !body.windows(marker.len()).any(|window| window == marker) {
        return None;
    }
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// Whether `text` is written exactly as `pattern`: each `9` an ASCII digit, each `x` a
/// lowercase hex digit, every other byte itself (`9999-99-99T99:99:99Z`, a lowercase UUID).
pub fn shaped(text: &[u8], pattern: &[u8]) -> bool {
    text.len() == pattern.len()
        && text.iter().zip(pattern).all(|(&b, &want)| match want {
            b'9' => b.is_ascii_digit(),
            b'x' => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            _ => b == want,
        })
}

/// `YYYY-MM-DDTHH:MM:SSZ` exactly, as PayPal and Zendesk write their times: UTC, whole
/// seconds, nothing else.
pub fn utc_seconds(text: &[u8]) -> Option<Stamp> {
    shaped(text, b"9999-99-99T99:99:99Z")
        .then(|| crate::timestamp::parse_rfc3339_stamp(text))
        .flatten()
}

/// A lowercase UUID, as SNS and PayPal write their ids.
pub const UUID: &[u8] = b"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

/// The one value of a header a scheme cannot do without: missing is 401, duplicated 400
/// (the filter and the application could read different copies).
pub fn required<'r>(head: &RequestHead<'r>, name: &str) -> Result<&'r [u8], Rejection> {
    match head.lookup(name) {
        Lookup::One(value) => Ok(value),
        Lookup::Missing => Err(Rejection::new(
            Reason::MissingSignature,
            format!("{name} is missing"),
        )),
        Lookup::Duplicate => Err(Rejection::new(
            Reason::DuplicateHeader,
            format!("{name} appears more than once"),
        )),
    }
}

/// The decoded pairs of a form body or query, bounded by [`form::MAX_PAIRS`]: more is
/// refused with `reason`, naming `what` was too long.
pub fn form_pairs(
    input: &[u8],
    reason: Reason,
    what: &str,
) -> Result<Vec<(String, String)>, Rejection> {
    form::parse(input, form::MAX_PAIRS).map_err(|e| {
        Rejection::new(
            reason,
            format!("{what} has more than {} parameters", e.limit),
        )
    })
}

/// Query parameter `name` of `pairs` (a query's, from [`form_pairs`]): once, or refused as
/// a duplicate (the filter and the application could read different copies).
pub fn query_param<'p>(
    pairs: &'p [(String, String)],
    name: &str,
) -> Result<Option<&'p str>, Rejection> {
    form::single(pairs, name).map_err(|_| {
        Rejection::new(
            Reason::DuplicateHeader,
            format!("query parameter {name} appears more than once"),
        )
    })
}

pub fn malformed(detail: impl Into<Cow<'static, str>>) -> Rejection {
    Rejection::new(Reason::MalformedHeader, detail)
}

/// Unix seconds as the provider sends them: 1 to 12 ASCII digits without a leading zero,
/// nothing else (no sign, no fraction: the signed bytes are these bytes, and an SDK that
/// re-formats the number would sign other ones).
pub fn unix_seconds(name: &str, value: &[u8]) -> Result<i64, Rejection> {
    let digits = decimal(value, 12);
    let parsed = digits
        .then(|| std::str::from_utf8(value).ok()?.parse::<i64>().ok())
        .flatten();
    parsed.ok_or_else(|| malformed(format!("{name} is not unix seconds")))
}

/// Milliseconds since the epoch as the provider sends them: 1 to 16 ASCII digits without a
/// leading zero, nothing else.
pub fn unix_millis(name: &str, value: &[u8]) -> Result<i64, Rejection> {
    let parsed = decimal(value, 16)
        .then(|| std::str::from_utf8(value).ok()?.parse::<i64>().ok())
        .flatten();
    parsed.ok_or_else(|| malformed(format!("{name} is not milliseconds since the epoch")))
}

/// A number as providers write one: 1 to `max` ASCII digits, no leading zero.
pub fn decimal(value: &[u8], max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value.iter().all(u8::is_ascii_digit)
        && (value[0] != b'0' || value.len() == 1)
}

/// Lowercase hex, as the providers write MACs and digests.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 (padded) of exactly `N` bytes.
pub fn base64_exact<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    bytes.try_into().ok()
}

/// A visible-ASCII header value of at most `max` bytes: safe as an identity and in logs.
pub fn visible(name: &str, value: &[u8], max: usize) -> Result<(), Rejection> {
    if value.is_empty() || value.len() > max || !value.iter().all(u8::is_ascii_graphic) {
        return Err(malformed(format!(
            "{name} is not 1 to {max} visible ASCII characters"
        )));
    }
    Ok(())
}

/// Longest signature header any scheme reads, and most signatures it checks: rotation needs
/// two or three, nothing needs more.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 2048;
pub const MAX_SIGNATURES: usize = 8;

/// The key, among `keys`, whose HMAC-SHA256 over `parts` is one of `signatures`.
pub fn any_key<'k>(keys: &'k [Key], parts: &[&[u8]], signatures: &[[u8; 32]]) -> Option<&'k Key> {
    key_with_mac(keys, keys.iter().map(|key| key.mac(parts)), signatures)
}

/// The key, among `keys`, whose MAC (`macs`, in the keys' order) is one of `signatures`.
pub fn key_with_mac<'k>(
    keys: &'k [Key],
    macs: impl IntoIterator<Item = [u8; 32]>,
    signatures: &[[u8; 32]],
) -> Option<&'k Key> {
    keys.iter()
        .zip(macs)
        .find(|(_, mac)| signatures.iter().any(|s| macs_equal(mac, s)))
        .map(|(key, _)| key)
}

pub fn mismatch(what: &str) -> Rejection {
    Rejection::new(Reason::SignatureMismatch, format!("{what} did not verify"))
}

/// A route's keys by name, as every scheme reports them.
pub fn key_names(keys: &[Key]) -> Vec<&str> {
    keys.iter().map(|key| key.name.as_str()).collect()
}

/// A scheme by the names and keys it reports: no vtable carries a `Debug` of every
/// provider's internals into the module.
impl std::fmt::Debug for dyn Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.schemes()).finish()
    }
}
