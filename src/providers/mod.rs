//! Webhook providers behind one seam: the guard asks each route's scheme the same
//! questions and does freshness, replay and forwarding the same way for all of them.
//!
//! A scheme says, in one place: what it reads at the headers ([`Provider::at_headers`]),
//! how it verifies once the body is complete ([`Provider::at_body`]), the replay identity
//! (always bytes its signature covers: an unsigned delivery-id header is not an identity an
//! attacker cannot change), the request's signed time for freshness, and which parts of the
//! request its signature leaves open ([`Open`]), which the replay fingerprint then binds.
//! Adding a provider adds a module and a [`crate::policy::Scheme`] variant; the request
//! flow does not change.

use std::borrow::Cow;

use crate::form;
use crate::keys::{macs_equal, Key};
use crate::policy::Freshness;
use crate::request::{Lookup, RequestHead};
use crate::verdict::{Reason, Rejection};

pub mod asymmetric;
pub mod body_mac;
pub mod generic;
pub mod github;
pub mod mailgun;
pub mod meta;
pub mod presets;
pub mod shopify;
pub mod slack;
pub mod standard_webhooks;
pub mod stripe;
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
        }
    }

    pub fn text(handshake: &'static str, text: &[u8]) -> Reply {
        Reply {
            handshake,
            content_type: "text/plain",
            body: text.to_vec(),
        }
    }
}

/// The parts of a request its signature leaves open. The replay fingerprint binds exactly
/// these, so a captured delivery cannot come again with any of them changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    pub method: bool,
    pub path: bool,
    pub query: bool,
    pub body: bool,
}

impl Open {
    /// A scheme whose signature covers none of them.
    pub const ALL: Open = Open {
        method: true,
        path: true,
        query: true,
        body: true,
    };

    /// A scheme whose signature covers the body and nothing else of the request.
    pub const ALL_BUT_BODY: Open = Open {
        method: true,
        path: true,
        query: true,
        body: false,
    };
}

/// A request whose signature verified, as the guard needs it for freshness and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'p, 'r> {
    /// What matched, for metrics and logs: `v3`, `whatsapp`, `stripe`, ...
    pub scheme: &'static str,
    /// The name of the key that verified.
    pub key: &'p str,
    /// Bytes the signature covers that identify the delivery: a repeat of them is a retry,
    /// a duplicate or a replay.
    pub identity: Cow<'r, [u8]>,
    /// The request's own time (unix seconds), for the route's freshness window.
    pub time: Option<i64>,
    pub open: Open,
}

/// Route settings a scheme's verdict depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// Name the exact signed strings in a mismatch's log detail (never the key).
    pub explain: bool,
    pub freshness: Option<Freshness>,
}

/// The questions the guard asks of every scheme.
pub trait Provider {
    /// Judges what the headers alone can: a missing, duplicated or malformed signature is
    /// refused here, before any body is buffered.
    fn at_headers(&self, head: &RequestHead, checks: &Checks) -> Result<AtHeaders<'_>, Rejection>;

    /// Verifies the request with its complete body.
    fn at_body<'p, 'r>(
        &'p self,
        head: &RequestHead<'r>,
        body: &'r [u8],
        checks: &Checks,
    ) -> Result<Verified<'p, 'r>, Rejection>;

    /// The same for a request whose signature verified at the headers already
    /// ([`AtHeaders::Verified`], as `scheme` under the key named `key`): what the body
    /// adds, without verifying twice. The default verifies again.
    fn at_body_verified<'p, 'r>(
        &'p self,
        head: &RequestHead<'r>,
        body: &'r [u8],
        checks: &Checks,
        _verified: (&'static str, &str),
    ) -> Result<Verified<'p, 'r>, Rejection> {
        self.at_body(head, body, checks)
    }

    /// For a scheme whose signature is an HMAC-SHA256 of bytes the headers fix (often
    /// none) followed by the raw body: its keys and those bytes, so that the filter can hash
    /// the body as it arrives. `None` for every other scheme, and where the headers do not
    /// give the bytes (the body step then judges as usual).
    fn streamed_mac(&self, _head: &RequestHead) -> Option<StreamedMac<'_>> {
        None
    }

    /// [`at_body`](Self::at_body) for a request whose body was hashed as it arrived:
    /// `macs` holds the HMAC-SHA256 of [`streamed_mac`](Self::streamed_mac)'s prefix and the
    /// body under each of its keys, in order. The default ignores them.
    fn at_body_hashed<'p, 'r>(
        &'p self,
        head: &RequestHead<'r>,
        body: &'r [u8],
        checks: &Checks,
        _macs: &[[u8; 32]],
    ) -> Result<Verified<'p, 'r>, Rejection> {
        self.at_body(head, body, checks)
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
}

/// What a body is hashed with as it arrives: each key's HMAC-SHA256 over `prefix` and then
/// the body.
pub struct StreamedMac<'p> {
    pub keys: &'p [Key],
    pub prefix: Vec<u8>,
}

impl<'p> StreamedMac<'p> {
    /// The raw body alone.
    pub fn body(keys: &'p [Key]) -> Self {
        StreamedMac {
            keys,
            prefix: Vec::new(),
        }
    }

    /// Each key's MAC of the prefix and `body`, in one pass.
    pub fn macs(&self, body: &[u8]) -> Vec<[u8; 32]> {
        self.keys
            .iter()
            .map(|key| key.mac(&[&self.prefix, body]))
            .collect()
    }
}

/// [`Provider::at_body`] of a scheme that streams its MAC: the body's MACs computed now, in
/// one pass, then judged exactly as when the filter hashed the body as it arrived.
pub fn in_one_pass<'p, 'r, P: Provider + ?Sized>(
    provider: &'p P,
    head: &RequestHead<'r>,
    body: &'r [u8],
    checks: &Checks,
) -> Result<Verified<'p, 'r>, Rejection> {
    let macs = provider
        .streamed_mac(head)
        .map(|streamed| streamed.macs(body))
        .unwrap_or_default();
    provider.at_body_hashed(head, body, checks, &macs)
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

pub fn malformed(detail: impl Into<Cow<'static, str>>) -> Rejection {
    Rejection::new(Reason::MalformedHeader, detail)
}

/// Unix seconds as the provider sends them: 1 to 12 ASCII digits, nothing else (no sign,
/// no fraction: the signed bytes are these bytes).
pub fn unix_seconds(name: &str, value: &[u8]) -> Result<i64, Rejection> {
    let digits = !value.is_empty() && value.len() <= 12 && value.iter().all(u8::is_ascii_digit);
    let parsed = digits
        .then(|| std::str::from_utf8(value).ok()?.parse::<i64>().ok())
        .flatten();
    parsed.ok_or_else(|| malformed(format!("{name} is not unix seconds")))
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
