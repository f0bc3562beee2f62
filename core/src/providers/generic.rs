//! A generic HMAC scheme, configured entirely in the route's JSON, for a provider nobody
//! wrote a preset for: where the signature travels and how it is written, the algorithm
//! and encoding, how the secret becomes key bytes, the signed message as an ordered list of
//! parts, an optional signed time with its window, the bodies the provider sends and the
//! unsigned headers an application dispatches on.
//!
//! | at the headers | signed | identity | time | bound by the fingerprint |
//! | --- | --- | --- | --- | --- |
//! | the signature header, parsed as configured | the message parts, in order | the whole signed message | the `timestamp` source, if configured (it must be signed) | method, path, query, `dispatch_headers`, content type and encoding, the split of the message, and the body unless it is signed |

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use crate::form;
use crate::keys::{slices_equal, Algorithm, Key};
use crate::providers::endpoint_check;
use crate::providers::entry::{self, Field, Problem, Secret};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Outgoing, Role, Signer, Signing};
use crate::providers::{
    decimal, form_pairs, key_names, malformed, mismatch, required, utc_seconds, AtHeaders, Body,
    Checks, Json, Media, Provider, Reply, Signed, Verified, MAX_SIGNATURES,
    MAX_SIGNATURE_HEADER_BYTES,
};
use crate::request::{Lookup, RequestHead};
use crate::timestamp::{self, Edges, Freshness, Stamp};
use crate::verdict::{Reason, Rejection};

/// How a MAC is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Either case: bytes, not text, are compared.
    Hex,
    Base64,
    Base64Unpadded,
    Base64url,
    Base64urlUnpadded,
}

impl Encoding {
    fn decode(self, text: &[u8]) -> Option<Vec<u8>> {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        match self {
            Encoding::Hex => form::hex(text),
            Encoding::Base64 => STANDARD.decode(text).ok(),
            Encoding::Base64Unpadded => STANDARD_NO_PAD.decode(text).ok(),
            Encoding::Base64url => URL_SAFE.decode(text).ok(),
            Encoding::Base64urlUnpadded => URL_SAFE_NO_PAD.decode(text).ok(),
        }
    }

    /// A MAC written this way (hex in lowercase), for a signer.
    #[cfg(any(test, feature = "sign"))]
    pub fn encode(self, mac: &[u8]) -> String {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        match self {
            Encoding::Hex => crate::providers::hex(mac),
            Encoding::Base64 => STANDARD.encode(mac),
            Encoding::Base64Unpadded => STANDARD_NO_PAD.encode(mac),
            Encoding::Base64url => URL_SAFE.encode(mac),
            Encoding::Base64urlUnpadded => URL_SAFE_NO_PAD.encode(mac),
        }
    }
}

/// How one entry of a signature list is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The signature alone.
    Bare,
    /// `label=signature` among other `key=value` items (Stripe's `t=`, Paddle's `ts=`).
    KeyValue { label: String },
    /// `label,signature` (Standard Webhooks' `v1,...`); other labels are skipped.
    LabelComma { label: String },
}

/// Where the signature travels and how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Lowercase header name.
    pub header: String,
    /// Bytes before the signature or list (`sha256=`, `v0=`).
    pub prefix: String,
    /// `None`: one signature; else the list separator, whether to trim spaces around
    /// entries, and the entry syntax.
    pub list: Option<(u8, bool, Entry)>,
    /// Refuse a list entry that is neither a signature nor an item the message signs
    /// (Paddle's SDK refuses one).
    pub strict: bool,
    /// Further headers that may carry signatures in the same format, one per key (Box's
    /// `box-signature-secondary`, DocuSign's `x-docusign-signature-2` …): lowercase.
    pub also: Vec<String>,
}

/// One part of the signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(Vec<u8>),
    Body,
    Method,
    /// The route's public origin and the path as sent, with or without the query, with
    /// the `%XX` escapes of `unescape`'s characters decoded first (HubSpot signs the URL
    /// so; the two spellings mean the same to every server).
    Url {
        query: bool,
        unescape: Vec<u8>,
    },
    /// A header's value, verbatim (lowercase name).
    Header(String),
    /// A `key=value` item of the signature header (Stripe's `t`).
    Item(String),
    /// The form body's parameters, decoded, sorted and de-duplicated, each name then its
    /// value with nothing between (Twilio's rendering). The raw encoding stays open.
    FormParams,
}

/// Where the signed time is, and how it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Header(String),
    Item(String),
    /// A top-level field of a JSON body (the body must be signed).
    BodyField(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    Seconds,
    Milliseconds,
    Rfc3339,
    /// RFC 3339 where a missing offset means UTC (Orb's `2024-03-27T15:42:29.551`).
    Rfc3339Utc,
    /// `YYYY-MM-DDTHH:MM:SSZ` exactly (Zendesk's).
    UtcSeconds,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Time {
    pub source: Source,
    pub format: TimeFormat,
    /// Its window: the route's default freshness.
    pub window: Freshness,
}

#[derive(Debug)]
pub struct Generic {
    /// The scheme name in metrics and logs.
    pub scheme: &'static str,
    pub signature: Signature,
    pub algorithm: Algorithm,
    pub encoding: Encoding,
    pub message: Vec<Part>,
    pub time: Option<Time>,
    /// Unsigned headers the application dispatches on (lowercase).
    pub dispatch: Vec<String>,
    pub media: Media,
    /// For `Url` parts: `scheme://authority` as the provider calls it.
    pub origin: String,
    pub keys: Vec<Key>,
    /// A preset's endpoint check (Zoom's, Twitch's).
    pub handshake: Option<Handshake>,
    /// A preset's refusal statuses (Xero's 401).
    pub refusal_status: &'static [(Reason, u16)],
    /// The unsigned check answered at the headers (Dropbox's, Twitter's CRC), when the
    /// route answers handshakes.
    pub endpoint_check: Option<endpoint_check::Check>,
}

/// An endpoint check's reply to a request that verified, under the key that verified it
/// (Zoom's reply is a MAC under it); `None` where the request is no such check.
pub type Handshake = fn(&RequestHead, &[u8], Option<&Key>) -> Result<Option<Reply>, Rejection>;

pub const ENTRY: entry::Entry = signs!(
    entry::Entry::new("generic_hmac", |settings| {
        let Some(raw) = settings.generic else {
            return Err(Problem::new(
                Field::Generic.name(),
                "is required for scheme generic_hmac",
            ));
        };
        // Its metrics and replay family have been `generic` since the first release.
        let scheme = compile(raw, "generic", settings.public_origin, settings.keys);
        let mut scheme = scheme.map_err(problem)?;
        scheme.answering(settings.answer_handshakes);
        Ok(Box::new(scheme))
    })
    .reading(&[Field::Generic, Field::PublicOrigin])
    .secret(Secret::Generic),
    Signer {
        sign: |signing, out| signer(signing, out)?.sign(signing, out),
        example: |signing| {
            let media = signing
                .generic
                .and_then(|block| serde_json::from_str::<Raw>(block).ok())
                .map_or(Media::JSON_OBJECT, |raw| raw.body.media());
            example(media, signing)
        },
    }
);

/// The route's scheme as its `generic` block ([`Signing::generic`]) describes it, keyed
/// with the secret as `generic.key` decodes it.
#[cfg(any(test, feature = "sign"))]
fn signer(signing: &Signing, out: &Outgoing) -> Result<Generic, String> {
    let block = signing
        .generic
        .ok_or("generic_hmac signs as the route's generic block describes: give it")?;
    let raw: Raw = serde_json::from_str(block).map_err(|e| format!("the generic block: {e}"))?;
    let secret = signing.secret("generic_hmac")?;
    let bytes = raw
        .key
        .bytes(secret)
        .ok_or("the secret is not written as generic.key describes")?;
    let origin = raw.signs_url().then(|| signing.origin_of(out));
    compile(raw, "generic", origin, vec![sign::key(&bytes)?])
        .map_err(|(field, problem)| format!("the generic block: {field}: {problem}"))
}

/// A body of the media a scheme accepts: a JSON object where it takes one, an array of
/// one where it takes only arrays, else a form.
#[cfg(any(test, feature = "sign"))]
pub fn example(media: Media, signing: &Signing) -> Vec<u8> {
    let id = sign::base62(&signing.random, 24);
    match media.json {
        Some(Json::Array) => format!(r#"[{{"id":"evt_{id}","type":"simulated"}}]"#),
        Some(_) => format!(r#"{{"id":"evt_{id}","type":"simulated"}}"#),
        None if media.form => format!("id=evt_{id}&type=simulated"),
        None => format!(r#"{{"id":"evt_{id}","type":"simulated"}}"#),
    }
    .into_bytes()
}

#[cfg(any(test, feature = "sign"))]
impl Generic {
    /// What a provider signing as this scheme describes sends: the headers and items its
    /// message reads (the signed time as its format writes `now`, any other the delivery
    /// id), a time field in the body where the time is one, and the signature header
    /// written as described, over the parts the verifier builds from the same request.
    /// Headers already set are signed as they are.
    pub fn sign(&self, signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
        out.content_type(self.media);
        let id = signing.id_or_uuid();
        let time = self.time.as_ref().map(|time| match time.format {
            TimeFormat::Seconds => signing.now.to_string(),
            TimeFormat::Milliseconds => (i128::from(signing.now) * 1000).to_string(),
            TimeFormat::Rfc3339 | TimeFormat::Rfc3339Utc | TimeFormat::UtcSeconds => {
                sign::rfc3339(signing.now)
            }
        });
        let from_time = |source: &Source| -> Option<&String> {
            let time_source = &self.time.as_ref()?.source;
            (time_source == source).then_some(time.as_ref()?)
        };
        if let Some(Time {
            source: Source::BodyField(field),
            format,
            ..
        }) = &self.time
        {
            let text = time.clone().unwrap_or_default();
            let value = match format {
                TimeFormat::Rfc3339 | TimeFormat::Rfc3339Utc | TimeFormat::UtcSeconds => {
                    serde_json::Value::from(text).to_string()
                }
                TimeFormat::Seconds | TimeFormat::Milliseconds => text,
            };
            out.body = sign::with_member(&out.body, field, &value)?;
        }
        let mut items: Vec<(String, String)> = Vec::new();
        for part in &self.message {
            match part {
                Part::Header(name) if out.header(name).is_none() => {
                    let value = from_time(&Source::Header(name.clone())).unwrap_or(&id);
                    out.push(name, value.clone(), Role::Plain);
                }
                Part::Item(key) if !items.iter().any(|(k, _)| k == key) => {
                    let value = from_time(&Source::Item(key.clone())).unwrap_or(&id);
                    items.push((key.clone(), value.clone()));
                }
                _ => {}
            }
        }
        let key = self.keys.first().ok_or("no key to sign with")?;
        let (encoded, message) = {
            let head = out.head();
            let head = RequestHead::new(&head);
            let read = Read {
                signatures: Vec::new(),
                items: items
                    .iter()
                    .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
                    .collect(),
            };
            let parts = self
                .parts(&head, &read, &out.body)
                .map_err(|r| r.detail.to_string())?;
            let slices: Vec<&[u8]> = parts.iter().map(|part| part.as_ref()).collect();
            let mac = key.mac_with(self.algorithm, &slices);
            (self.encoding.encode(&mac), slices.concat())
        };
        let mut value = self.signature.prefix.clone();
        match &self.signature.list {
            None | Some((_, _, Entry::Bare)) => {}
            Some((separator, _, Entry::KeyValue { label })) => {
                for (k, v) in &items {
                    value.push_str(&format!("{k}={v}{}", char::from(*separator)));
                }
                value.push_str(&format!("{label}="));
            }
            Some((_, _, Entry::LabelComma { label })) => value.push_str(&format!("{label},")),
        }
        let at = value.len();
        value.push_str(&encoded);
        out.set(&self.signature.header, value, Role::Signature { at });
        out.signed.push(sign::Covered {
            what: "message",
            parent: false,
            message,
        });
        Ok(())
    }
}

/// A compile error as the route names it: `public_origin` is the route's own field, the
/// rest are the `generic` block's.
pub fn problem((field, problem): (String, String)) -> Problem {
    match field.as_str() {
        "public_origin" => Problem::new(field, problem),
        _ => Problem::new(format!("generic.{field}"), problem),
    }
}

/// The signatures and `key=value` items one request carries.
struct Read<'r> {
    signatures: Vec<Vec<u8>>,
    items: BTreeMap<&'r [u8], &'r [u8]>,
}

impl Generic {
    /// Drops the endpoint check of a route that does not answer handshakes: the check is
    /// then judged as any request, and refused unsigned.
    pub fn answering(&mut self, handshakes: bool) {
        if !handshakes {
            self.endpoint_check = None;
        }
    }

    /// Every signature the request carries, from the signature header and the others that
    /// may carry one (Box's secondary, DocuSign's `-2` …), and the list's items.
    fn read<'r>(&self, head: &RequestHead<'r>) -> Result<Read<'r>, Rejection> {
        let mut read = Read {
            signatures: Vec::new(),
            items: BTreeMap::new(),
        };
        let mut present = 0;
        for name in std::iter::once(&self.signature.header).chain(&self.signature.also) {
            let value = match head.lookup(name) {
                Lookup::Missing => continue,
                Lookup::Duplicate => {
                    return Err(Rejection::new(
                        Reason::DuplicateHeader,
                        format!("{name} appears more than once"),
                    ))
                }
                Lookup::One(value) => value,
            };
            present += 1;
            self.read_header(name, value, &mut read)?;
        }
        let name = &self.signature.header;
        if present == 0 {
            return Err(Rejection::new(
                Reason::MissingSignature,
                format!("{name} is missing"),
            ));
        }
        if read.signatures.is_empty() {
            return Err(Rejection::new(
                Reason::MissingSignature,
                format!("{name} has no signature"),
            ));
        }
        Ok(read)
    }

    /// The signatures and items of one signature header's `value`, added to `read`.
    fn read_header<'r>(
        &self,
        name: &str,
        value: &'r [u8],
        read: &mut Read<'r>,
    ) -> Result<(), Rejection> {
        if value.len() > MAX_SIGNATURE_HEADER_BYTES {
            return Err(malformed(format!(
                "{name} is longer than {MAX_SIGNATURE_HEADER_BYTES} bytes"
            )));
        }
        let value = value
            .strip_prefix(self.signature.prefix.as_bytes())
            .ok_or_else(|| {
                malformed(format!(
                    "{name} does not start with {:?}",
                    self.signature.prefix
                ))
            })?;
        let entries: Vec<&[u8]> = match &self.signature.list {
            None => vec![value],
            Some((separator, trim, _)) => value
                .split(|b| b == separator)
                .map(|entry| if *trim { entry.trim_ascii() } else { entry })
                .filter(|entry| !entry.is_empty())
                .collect(),
        };
        let entry = self
            .signature
            .list
            .as_ref()
            .map_or(&Entry::Bare, |(_, _, entry)| entry);
        for item in entries {
            let signature = match entry {
                Entry::Bare => item,
                Entry::KeyValue { label } => {
                    let Some(eq) = item.iter().position(|&b| b == b'=') else {
                        return Err(malformed(format!("{name}: an entry is not key=value")));
                    };
                    let (key, value) = (&item[..eq], &item[eq + 1..]);
                    if key != label.as_bytes() {
                        if self.signature.strict && !self.signs_item(key) {
                            return Err(malformed(format!(
                                "{name}: an entry is neither {label} nor a signed item"
                            )));
                        }
                        if read.items.insert(key, value).is_some() {
                            return Err(malformed(format!("{name}: an item appears twice")));
                        }
                        continue;
                    }
                    value
                }
                Entry::LabelComma { label } => {
                    let Some(comma) = item.iter().position(|&b| b == b',') else {
                        return Err(malformed(format!(
                            "{name}: an entry is not label,signature"
                        )));
                    };
                    if &item[..comma] != label.as_bytes() {
                        continue;
                    }
                    &item[comma + 1..]
                }
            };
            let decoded = self
                .encoding
                .decode(signature)
                .filter(|mac| mac.len() == self.algorithm.mac_len())
                .ok_or_else(|| {
                    malformed(format!(
                        "{name}: a signature is not a {}-byte MAC as configured",
                        self.algorithm.mac_len()
                    ))
                })?;
            if read.signatures.len() == MAX_SIGNATURES {
                return Err(malformed(format!(
                    "{name} lists more than {MAX_SIGNATURES} signatures"
                )));
            }
            read.signatures.push(decoded);
        }
        Ok(())
    }

    fn signs_item(&self, key: &[u8]) -> bool {
        self.message
            .iter()
            .any(|part| matches!(part, Part::Item(item) if item.as_bytes() == key))
    }

    /// The signed message's parts for this request, in order.
    fn parts<'a>(
        &'a self,
        head: &RequestHead<'a>,
        read: &Read<'a>,
        body: &'a [u8],
    ) -> Result<Vec<Cow<'a, [u8]>>, Rejection> {
        let path = head.first(":path").unwrap_or_default();
        let mut parts = Vec::with_capacity(self.message.len() + 1);
        for part in &self.message {
            match part {
                Part::Literal(bytes) => parts.push(Cow::Borrowed(bytes.as_slice())),
                Part::Body => parts.push(Cow::Borrowed(body)),
                Part::Method => {
                    parts.push(Cow::Borrowed(head.first(":method").unwrap_or_default()))
                }
                Part::Url { query, unescape } => {
                    parts.push(Cow::Borrowed(self.origin.as_bytes()));
                    let url = if *query {
                        path
                    } else {
                        head.path_without_query()
                    };
                    parts.push(match unescape.is_empty() {
                        true => Cow::Borrowed(url),
                        false => Cow::Owned(unescape_only(url, unescape)),
                    });
                }
                Part::Header(name) => parts.push(Cow::Borrowed(required(head, name)?)),
                Part::Item(key) => parts.push(Cow::Borrowed(
                    read.items.get(key.as_bytes()).copied().ok_or_else(|| {
                        malformed(format!("{} has no {key}", self.signature.header))
                    })?,
                )),
                Part::FormParams => {
                    let mut pairs = form_pairs(body, Reason::MalformedBody, "form body")?;
                    pairs.sort();
                    pairs.dedup();
                    let rendered: Vec<u8> = pairs
                        .iter()
                        .flat_map(|(name, value)| [name.as_bytes(), value.as_bytes()].concat())
                        .collect();
                    parts.push(Cow::Owned(rendered));
                }
            }
        }
        Ok(parts)
    }

    fn time(
        &self,
        head: &RequestHead,
        read: &Read,
        body: &[u8],
    ) -> Result<Option<Stamp>, Rejection> {
        let Some(time) = &self.time else {
            return Ok(None);
        };
        let (what, value): (&str, Cow<[u8]>) = match &time.source {
            Source::Header(name) => (name, Cow::Borrowed(required(head, name)?)),
            Source::Item(key) => (
                key,
                Cow::Borrowed(read.items.get(key.as_bytes()).copied().unwrap_or_default()),
            ),
            Source::BodyField(field) => (field, Cow::Owned(body_field(body, field)?)),
        };
        let parsed = match time.format {
            TimeFormat::Seconds | TimeFormat::Milliseconds => decimal(&value, 16)
                .then(|| std::str::from_utf8(&value).ok()?.parse::<i64>().ok())
                .flatten()
                .map(|n| {
                    if time.format == TimeFormat::Milliseconds {
                        Stamp::millis(n)
                    } else {
                        Stamp::secs(n)
                    }
                }),
            TimeFormat::Rfc3339 => timestamp::parse_rfc3339_stamp(&value),
            TimeFormat::Rfc3339Utc => timestamp::parse_utc_stamp(&value),
            TimeFormat::UtcSeconds => utc_seconds(&value),
        };
        parsed
            .map(Some)
            .ok_or_else(|| malformed(format!("{what} is not a time in {:?}", time.format)))
    }
}

/// `path` with the `%XX` escapes of the bytes in `chars` decoded, and nothing else.
fn unescape_only(path: &[u8], chars: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let escaped = match path.get(i..i + 3) {
            Some([b'%', high, low]) => form::hex_digit(*high)
                .zip(form::hex_digit(*low))
                .map(|(high, low)| high << 4 | low)
                .filter(|byte| chars.contains(byte)),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(path[i]);
                i += 1;
            }
        }
    }
    out
}

/// A top-level JSON field as bytes (a string's content, or a number's digits).
fn body_field(body: &[u8], field: &str) -> Result<Vec<u8>, Rejection> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| Rejection::new(Reason::MalformedBody, "body is not JSON"))?;
    match value.get(field) {
        Some(serde_json::Value::String(text)) => Ok(text.clone().into_bytes()),
        Some(serde_json::Value::Number(number)) => Ok(number.to_string().into_bytes()),
        _ => Err(Rejection::new(
            Reason::MalformedBody,
            format!("body has no field {field}"),
        )),
    }
}

impl Provider for Generic {
    fn time(&self) -> crate::providers::Time {
        match &self.time {
            Some(time) => crate::providers::Time::Signed(time.window),
            None => crate::providers::Time::None,
        }
    }

    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        if let Some(check) = &self.endpoint_check {
            if let Some(reply) = check.answer(head, self.keys.first(), self.algorithm)? {
                return Ok(AtHeaders::Reply(reply));
            }
        }
        self.read(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let body = body.bytes;
        let read = self.read(head)?;
        let parts = self.parts(head, &read, body)?;
        let slices: Vec<&[u8]> = parts.iter().map(|part| part.as_ref()).collect();
        let key = self
            .keys
            .iter()
            .find(|key| {
                let expected = key.mac_with(self.algorithm, &slices);
                read.signatures
                    .iter()
                    .any(|signature| slices_equal(&expected, signature))
            })
            .ok_or_else(|| mismatch(&self.signature.header))?;
        let time = self.time(head, &read, body)?;
        Ok(Verified {
            scheme: self.scheme,
            key: &key.name,
            signed: Signed::over(self.scheme, &slices, body),
            time,
        })
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![(self.scheme, key_names(&self.keys))]
    }

    fn dispatch_headers(&self) -> Vec<&str> {
        self.dispatch.iter().map(String::as_str).collect()
    }

    fn media(&self) -> Media {
        self.media
    }

    fn refusal_status(&self) -> &[(Reason, u16)] {
        self.refusal_status
    }

    fn answers_with_macs(&self) -> bool {
        self.endpoint_check
            .as_ref()
            .is_some_and(endpoint_check::Check::needs_json_body)
    }

    fn handshake(
        &self,
        head: &RequestHead,
        body: &[u8],
        key: &str,
    ) -> Result<Option<Reply>, Rejection> {
        match self.handshake {
            Some(handshake) => handshake(head, body, self.keys.iter().find(|k| k.name == key)),
            None => Ok(None),
        }
    }
}

/// The `generic` block of a route, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    signature: RawSignature,
    #[serde(default = "sha256")]
    algorithm: Algorithm,
    encoding: Encoding,
    message: Vec<RawPart>,
    #[serde(default)]
    timestamp: Option<RawTime>,
    /// No longer used (the identity is always the whole signed message), still checked so
    /// that an existing configuration keeps loading: see [`Raw::names_an_id`].
    #[serde(default)]
    id: Option<RawId>,
    /// How each configured secret becomes key bytes.
    #[serde(default)]
    pub key: KeyDecoding,
    /// Unsigned headers the application dispatches on, bound by the replay fingerprint.
    #[serde(default)]
    dispatch_headers: Vec<String>,
    /// What the provider's bodies are.
    #[serde(default)]
    body: RawBody,
    /// The unsigned check the provider sends, answered at the headers.
    #[serde(default)]
    endpoint_check: Option<endpoint_check::Raw>,
}

impl Raw {
    /// Whether the block has the `id` field, which the identity no longer reads.
    pub fn names_an_id(&self) -> bool {
        self.id.is_some()
    }

    /// Whether the message signs the URL (and so needs the public origin).
    #[cfg(any(test, feature = "sign"))]
    pub fn signs_url(&self) -> bool {
        self.message.iter().any(|part| match part {
            RawPart::Word(word) => word == "url" || word == "url_without_query",
            RawPart::Object(object) => object.contains_key("url_unescaping"),
        })
    }
}

/// `generic.body`: what `Content-Type` and bytes a body must have.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawBody {
    #[default]
    Any,
    JsonObject,
    JsonArray,
    Json,
    Form,
    JsonObjectOrForm,
}

impl RawBody {
    pub fn media(self) -> Media {
        match self {
            RawBody::Any => Media::ANY,
            RawBody::JsonObject => Media::JSON_OBJECT,
            RawBody::JsonArray => Media::JSON_ARRAY,
            RawBody::Json => Media {
                json: Some(Json::Either),
                form: false,
                text: false,
            },
            RawBody::Form => Media::FORM,
            RawBody::JsonObjectOrForm => Media::JSON_OBJECT_OR_FORM,
        }
    }
}

/// `{"prefix": "whsec_", "encoding": "base64"}`: strip the prefix (required when given),
/// then decode; the default is the secret's UTF-8 bytes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyDecoding {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    encoding: KeyEncoding,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum KeyEncoding {
    #[default]
    Utf8,
    Base64,
    Hex,
}

impl KeyDecoding {
    /// The key bytes of `secret`, or `None` when it is not written as configured.
    pub fn bytes(&self, secret: &str) -> Option<Vec<u8>> {
        let text = match &self.prefix {
            Some(prefix) => secret.strip_prefix(prefix.as_str())?,
            None => secret,
        };
        let bytes = match self.encoding {
            KeyEncoding::Utf8 => text.as_bytes().to_vec(),
            KeyEncoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()?,
            KeyEncoding::Hex => Encoding::Hex.decode(text.as_bytes())?,
        };
        (!bytes.is_empty()).then_some(bytes)
    }
}

fn sha256() -> Algorithm {
    Algorithm::Sha256
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignature {
    header: String,
    /// Further headers carrying signatures in the same format.
    #[serde(default)]
    also: Vec<String>,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    list: Option<RawList>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    separator: String,
    #[serde(default)]
    trim: bool,
    /// Refuse entries that are neither the signature's label nor a signed item.
    #[serde(default)]
    strict: bool,
    /// `bare`, `key=value` or `label,value`.
    entry: String,
    #[serde(default)]
    label: Option<String>,
}

/// A message part: `"body"`, `"method"`, `"url"`, `"url_without_query"`, or an object
/// `{"literal": ...}`, `{"header": ...}`, `{"item": ...}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPart {
    Word(String),
    Object(BTreeMap<String, String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    item: Option<String>,
    #[serde(default)]
    body_field: Option<String>,
    format: TimeFormat,
    #[serde(default)]
    max_age_secs: Option<u32>,
    #[serde(default)]
    max_future_secs: Option<u32>,
    /// Where the window ends, as the provider's SDK compares (default: exact).
    #[serde(default)]
    edges: Edges,
}

/// `{"header": "webhook-id"}` or `{"body": true}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawId {
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    body: bool,
}

/// A header name as Envoy hands it over (lowercase), or why it cannot be one.
pub fn header_name(name: &str) -> Result<String, &'static str> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err("is not a header name");
    }
    Ok(name.to_ascii_lowercase())
}

/// Compiles a `generic` block; errors are `(field under generic, problem)`.
pub fn compile(
    raw: Raw,
    scheme: &'static str,
    origin: Option<String>,
    keys: Vec<Key>,
) -> Result<Generic, (String, String)> {
    let fail = |field: &str, problem: &str| Err((field.to_string(), problem.to_string()));
    let header = header_name(&raw.signature.header)
        .map_err(|p| ("signature.header".to_string(), p.to_string()))?;
    let mut strict = false;
    let list = match raw.signature.list {
        None => None,
        Some(list) => {
            let [separator] = list.separator.as_bytes() else {
                return fail(
                    "signature.list.separator",
                    "must be one character (\" \", \",\" or \";\")",
                );
            };
            let entry = match (list.entry.as_str(), list.label) {
                ("bare", None) => Entry::Bare,
                ("bare", Some(_)) => {
                    return fail(
                        "signature.list.label",
                        "applies only to entry key=value or label,value",
                    )
                }
                ("key=value", Some(label)) => Entry::KeyValue { label },
                ("label,value", Some(label)) => Entry::LabelComma { label },
                ("key=value" | "label,value", None) => {
                    return fail(
                        "signature.list.label",
                        "is required: which label carries the signature (v1, h1, ...)",
                    )
                }
                _ => {
                    return fail(
                        "signature.list.entry",
                        "must be bare, key=value or label,value",
                    )
                }
            };
            if list.strict && !matches!(entry, Entry::KeyValue { .. }) {
                return fail(
                    "signature.list.strict",
                    "applies only to entry key=value (items beside the signatures)",
                );
            }
            strict = list.strict;
            Some((*separator, list.trim, entry))
        }
    };
    let mut message = Vec::new();
    for (i, part) in raw.message.into_iter().enumerate() {
        let field = format!("message[{i}]");
        message.push(match part {
            RawPart::Word(word) => match word.as_str() {
                "body" => Part::Body,
                "method" => Part::Method,
                "url" => Part::Url { query: true, unescape: Vec::new() },
                "url_without_query" => Part::Url { query: false, unescape: Vec::new() },
                "form_params" => Part::FormParams,
                _ => return fail(&field, "must be body, form_params, method, url, url_without_query or an object {literal|header|item: ...}"),
            },
            RawPart::Object(object) => match object.iter().next() {
                Some((kind, value)) if object.len() == 1 => match kind.as_str() {
                    "literal" => Part::Literal(value.clone().into_bytes()),
                    "header" => Part::Header(header_name(value).map_err(|p| (format!("{field}.header"), p.to_string()))?),
                    "item" => Part::Item(value.clone()),
                    "url_unescaping" => {
                        // These would change how the application splits the query.
                        let structural = |b: u8| b"%&=+#".contains(&b) || !b.is_ascii_graphic();
                        if value.is_empty() || value.bytes().any(structural) {
                            return fail(&format!("{field}.url_unescaping"), "must list visible ASCII characters other than % & = + #");
                        }
                        Part::Url { query: true, unescape: value.clone().into_bytes() }
                    }
                    _ => return fail(&field, "must be {\"literal\": ...}, {\"header\": ...}, {\"item\": ...} or {\"url_unescaping\": ...}"),
                },
                _ => return fail(&field, "must be an object with exactly one of literal, header, item, url_unescaping"),
            },
        });
    }
    if message.is_empty() {
        return fail("message", "must list at least one part");
    }
    let signs = |part: &Part| message.contains(part);
    if let Some(Part::Item(item)) = message.iter().find(|p| matches!(p, Part::Item(_))) {
        if !matches!(&list, Some((_, _, Entry::KeyValue { .. }))) {
            return fail(
                "message",
                &format!("item {item:?} needs a signature list of key=value entries to come from"),
            );
        }
    }
    let uses_url = message.iter().any(|p| matches!(p, Part::Url { .. }));
    let origin = match (uses_url, origin) {
        (true, Some(origin)) => origin,
        (true, None) => {
            return Err((
                "public_origin".into(),
                "is required: the message signs the URL".into(),
            ))
        }
        (false, Some(_)) => {
            return Err((
                "public_origin".into(),
                "applies only when generic.message has url or url_without_query".into(),
            ))
        }
        (false, None) => String::new(),
    };
    let time = match raw.timestamp {
        None => None,
        Some(time) => {
            let source = match (time.header, time.item, time.body_field) {
                (Some(header), None, None) => {
                    let header = header_name(&header)
                        .map_err(|p| ("timestamp.header".to_string(), p.to_string()))?;
                    if !signs(&Part::Header(header.clone())) {
                        return fail("timestamp.header", "is not part of the signed message: an unsigned time proves nothing; add {\"header\": ...} to generic.message");
                    }
                    Source::Header(header)
                }
                (None, Some(item), None) => {
                    if !signs(&Part::Item(item.clone())) {
                        return fail("timestamp.item", "is not part of the signed message: an unsigned time proves nothing; add {\"item\": ...} to generic.message");
                    }
                    Source::Item(item)
                }
                (None, None, Some(field)) => {
                    if !signs(&Part::Body) {
                        return fail(
                            "timestamp.body_field",
                            "needs \"body\" in the signed message: an unsigned time proves nothing",
                        );
                    }
                    Source::BodyField(field)
                }
                _ => return fail("timestamp", "give exactly one of header, item, body_field"),
            };
            let window = Freshness {
                max_age_secs: time.max_age_secs.unwrap_or(300),
                max_future_secs: time.max_future_secs.unwrap_or(300),
                required: true,
                edges: time.edges,
            };
            if window.max_age_secs == 0 {
                return fail("timestamp.max_age_secs", "must be at least 1");
            }
            Some(Time {
                source,
                format: time.format,
                window,
            })
        }
    };
    match raw.id {
        None => {}
        Some(RawId {
            header: Some(header),
            body: false,
        }) => {
            let header =
                header_name(&header).map_err(|p| ("id.header".to_string(), p.to_string()))?;
            if !signs(&Part::Header(header.clone())) {
                return fail("id.header", "is not part of the signed message: a delivery id nobody signed can be changed by whoever replays a captured request; add {\"header\": ...} to generic.message, or leave id out (the whole signed message is the identity)");
            }
        }
        Some(RawId {
            header: None,
            body: true,
        }) if !signs(&Part::Body) => {
            return fail(
                "id.body",
                "needs \"body\" in the signed message: an unsigned body is no identity",
            );
        }
        Some(RawId {
            header: None,
            body: true,
        }) => {}
        Some(_) => return fail("id", "give exactly one of header or body: true"),
    }
    let dispatch = raw
        .dispatch_headers
        .iter()
        .enumerate()
        .map(|(i, name)| {
            header_name(name).map_err(|p| (format!("dispatch_headers[{i}]"), p.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if raw.signature.also.len() >= MAX_SIGNATURES {
        return fail(
            "signature.also",
            &format!("lists more than {} headers", MAX_SIGNATURES - 1),
        );
    }
    let also = raw
        .signature
        .also
        .iter()
        .enumerate()
        .map(|(i, name)| match header_name(name) {
            Ok(name) if name == header => Err((
                format!("signature.also[{i}]"),
                "is the signature header itself".to_string(),
            )),
            Ok(name) => Ok(name),
            Err(p) => Err((format!("signature.also[{i}]"), p.to_string())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let media = raw.body.media();
    let endpoint_check = match raw.endpoint_check {
        None => None,
        Some(check) => {
            let check = endpoint_check::compile(check)
                .map_err(|(field, problem)| (format!("endpoint_check.{field}"), problem))?;
            if check.needs_json_body()
                && (message != [Part::Body] || media.json.is_none() || media.form)
            {
                return fail("endpoint_check", "answers with a MAC of a value the caller chooses: it needs message [\"body\"] and a JSON body, which no answer can be");
            }
            Some(check)
        }
    };
    Ok(Generic {
        scheme,
        signature: Signature {
            header,
            prefix: raw.signature.prefix,
            list,
            strict,
            also,
        },
        algorithm: raw.algorithm,
        encoding: raw.encoding,
        message,
        time,
        dispatch,
        media,
        origin,
        keys,
        handshake: None,
        refusal_status: &[],
        endpoint_check,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::guard::tests::Peer;
    use crate::guard::{self, Step};
    use crate::keys::test_key;
    use crate::policy::Policy;
    use crate::request::{Header, RequestHead};
    use crate::testing::MemoryStore;
    use crate::verdict::Reason;

    /// 2026-03-25T10:00:00Z.
    const NOW: i64 = 1_774_432_800;
    const ORIGIN: &str = "https://hooks.example";

    fn policy(route: Value) -> Policy {
        let mut route = route;
        route["name"] = json!("p");
        route["path_prefix"] = json!("/");
        crate::config::parse(json!({ "routes": [route] }).to_string().as_bytes(), &|_| {
            None
        })
        .unwrap()
    }

    fn generic(spec: Value, secret: &str, extra: Value) -> Policy {
        let mut route = json!({"scheme": "generic_hmac", "generic": spec, "keys": [{"name": "k", "value": secret}]});
        for (k, v) in extra.as_object().unwrap() {
            route[k] = v.clone();
        }
        policy(route)
    }

    /// A verdict as the filter reaches it, reduced to what must agree: the replay id and
    /// fingerprint of a forwarded request, or the reason of a refusal.
    #[allow(clippy::too_many_arguments)]
    fn verdict(
        policy: &Policy,
        headers: &[(String, Vec<u8>)],
        path: &str,
        body: &[u8],
        form: bool,
        now: i64,
        store: &MemoryStore,
    ) -> Result<([u8; 16], [u8; 16]), Reason> {
        // The body's type as its provider sends it: JSON, or Twilio's form.
        let content_type: &[u8] = if form {
            b"application/x-www-form-urlencoded"
        } else {
            b"application/json"
        };
        let mut h: Vec<Header> = vec![
            (":method".into(), b"POST".to_vec()),
            (":path".into(), path.into()),
            (":authority".into(), b"h".to_vec()),
            ("content-type".into(), content_type.to_vec()),
        ];
        h.extend(headers.iter().cloned());
        let head = RequestHead::new(&h);
        let step = match guard::on_headers(policy, &head, &Peer::tls()) {
            Step::NeedBody(route) => guard::on_body(
                route,
                &head,
                body,
                crate::timestamp::Stamp::secs(now),
                store,
                7,
            ),
            step => step,
        };
        match step {
            // Delivered again, unreserved: a repeat of a delivered request.
            Step::Forward(accepted) if accepted.repeat => Ok(([0xff; 16], [0xff; 16])),
            Step::Forward(accepted) => {
                let reserved = accepted.reserved.unwrap();
                let replay = accepted.route.replay.as_ref().unwrap();
                replay
                    .cache
                    .settle(
                        store,
                        &reserved.id,
                        &reserved.fingerprint,
                        crate::replay::Outcome::Delivered,
                        now as u32,
                    )
                    .unwrap();
                Ok((reserved.id, reserved.fingerprint))
            }
            Step::Reject(_, rejection) => Err(rejection.reason),
            other => panic!("{other:?}"),
        }
    }

    type Headers = Vec<(String, Vec<u8>)>;
    type Sign = fn(&str, &[u8], &str, i64) -> Headers;
    /// What a case sends: headers, path, body, and when.
    type Case<'a> = (&'a str, Headers, &'a str, &'a [u8], i64);

    fn mac(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        test_key("s", std::str::from_utf8(secret).unwrap()).mac(parts)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn h(pairs: &[(&str, String)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone().into_bytes()))
            .collect()
    }

    /// `(preset scheme, generic spec, secret, signer)`: every HMAC preset of the providers,
    /// written as a generic configuration.
    fn presets() -> Vec<(&'static str, Value, &'static str, Sign)> {
        let svix_like = |names: [&'static str; 3]| {
            json!({"signature": {"header": names[2], "list": {"separator": " ", "entry": "label,value", "label": "v1"}},
                   "encoding": "base64", "key": {"prefix": "whsec_", "encoding": "base64"},
                   "message": [{"header": names[0]}, {"literal": "."}, {"header": names[1]}, {"literal": "."}, "body"],
                   "timestamp": {"header": names[1], "format": "seconds"}, "id": {"header": names[0]}})
        };
        fn sw(
            names: [&str; 3],
            secret: &str,
            body: &[u8],
            id: &str,
            t: i64,
        ) -> Vec<(String, Vec<u8>)> {
            use base64::Engine;
            let key = base64::engine::general_purpose::STANDARD
                .decode(&secret[6..])
                .unwrap();
            let key = crate::keys::Key::new("s", &key).unwrap();
            let t = t.to_string();
            let signature = format!(
                "v1a,abc v1,{}",
                b64(&key.mac(&[id.as_bytes(), b".", t.as_bytes(), b".", body]))
            );
            h(&[(names[0], id.into()), (names[1], t), (names[2], signature)])
        }
        vec![
            (
                "standard_webhooks",
                svix_like(["webhook-id", "webhook-timestamp", "webhook-signature"]),
                "whsec_c2VjcmV0LWJ5dGVzLWZvci10aGUtdGVzdA==",
                |s, b, id, t| {
                    sw(
                        ["webhook-id", "webhook-timestamp", "webhook-signature"],
                        s,
                        b,
                        id,
                        t,
                    )
                },
            ),
            (
                "svix",
                svix_like(["svix-id", "svix-timestamp", "svix-signature"]),
                "whsec_c2VjcmV0LWJ5dGVzLWZvci10aGUtdGVzdA==",
                |s, b, id, t| sw(["svix-id", "svix-timestamp", "svix-signature"], s, b, id, t),
            ),
            (
                "stripe",
                json!({"signature": {"header": "stripe-signature", "list": {"separator": ",", "entry": "key=value", "label": "v1"}},
                              "encoding": "hex", "message": [{"item": "t"}, {"literal": "."}, "body"],
                              "timestamp": {"item": "t", "format": "seconds"}, "id": {"body": true}}),
                "whsec_stripe",
                |s, b, _, t| {
                    let t = t.to_string();
                    h(&[(
                        "stripe-signature",
                        format!(
                            "t={t},v1={}",
                            hex(&mac(s.as_bytes(), &[t.as_bytes(), b".", b]))
                        ),
                    )])
                },
            ),
            (
                "slack",
                json!({"signature": {"header": "x-slack-signature", "prefix": "v0="}, "encoding": "hex",
                             "message": [{"literal": "v0:"}, {"header": "x-slack-request-timestamp"}, {"literal": ":"}, "body"],
                             "timestamp": {"header": "x-slack-request-timestamp", "format": "seconds"}, "id": {"body": true}}),
                "slack-secret",
                |s, b, _, t| {
                    let t = t.to_string();
                    h(&[
                        ("x-slack-request-timestamp", t.clone()),
                        (
                            "x-slack-signature",
                            format!(
                                "v0={}",
                                hex(&mac(s.as_bytes(), &[b"v0:", t.as_bytes(), b":", b]))
                            ),
                        ),
                    ])
                },
            ),
            (
                "github",
                json!({"signature": {"header": "x-hub-signature-256", "prefix": "sha256="}, "encoding": "hex", "message": ["body"], "id": {"body": true}}),
                "gh",
                |s, b, _, _| {
                    h(&[(
                        "x-hub-signature-256",
                        format!("sha256={}", hex(&mac(s.as_bytes(), &[b]))),
                    )])
                },
            ),
            (
                "meta",
                json!({"signature": {"header": "x-hub-signature-256", "prefix": "sha256="}, "encoding": "hex", "message": ["body"], "id": {"body": true}}),
                "meta",
                |s, b, _, _| {
                    h(&[(
                        "x-hub-signature-256",
                        format!("sha256={}", hex(&mac(s.as_bytes(), &[b]))),
                    )])
                },
            ),
            (
                "shopify",
                json!({"signature": {"header": "x-shopify-hmac-sha256"}, "encoding": "base64", "message": ["body"], "id": {"body": true}}),
                "shop",
                |s, b, _, _| h(&[("x-shopify-hmac-sha256", b64(&mac(s.as_bytes(), &[b])))]),
            ),
            (
                "twilio",
                json!({"signature": {"header": "x-twilio-signature"}, "algorithm": "sha1", "encoding": "base64", "message": ["url", "form_params"]}),
                "tw",
                |s, b, _, _| {
                    let mut pairs = crate::form::parse(b, 100).unwrap();
                    pairs.sort();
                    pairs.dedup();
                    let params: String = pairs.iter().map(|(n, v)| format!("{n}{v}")).collect();
                    let message = format!("{ORIGIN}/hook?x=1{params}");
                    h(&[(
                        "x-twilio-signature",
                        b64(&test_key("s", s).mac_sha1(&[message.as_bytes()])),
                    )])
                },
            ),
        ]
    }

    #[test]
    fn every_hmac_preset_is_a_generic_configuration_with_the_same_verdicts() {
        for (scheme, spec, secret, sign) in presets() {
            // Twilio repeats itself: its preset delivers identical repeats by default, as
            // a generic route says it does.
            let extra = if scheme == "twilio" {
                json!({"public_origin": ORIGIN, "replay": {"on_duplicate": "deliver"}})
            } else {
                json!({})
            };
            let preset = policy({
                let mut route = json!({"scheme": scheme, "keys": [{"name": "k", "value": secret}]});
                for (k, v) in extra.as_object().unwrap() {
                    route[k] = v.clone();
                }
                route
            });
            let generic = generic(spec, secret, extra);
            let (preset_store, generic_store) = (MemoryStore::new(), MemoryStore::new());
            let body: &[u8] = if scheme == "twilio" {
                b"CallSid=CA1&From=%2B1&To=%2B2"
            } else {
                "{\"id\":\"evt_1\",\"note\":\"caf\u{e9}\"}".as_bytes()
            };
            let other: &[u8] = if scheme == "twilio" {
                b"CallSid=CA2&From=%2B1&To=%2B2"
            } else {
                br#"{"id":"evt_2"}"#
            };
            let genuine = sign(secret, body, "msg_1", NOW);
            let mut changed_signature = genuine.clone();
            let last = changed_signature.len() - 1;
            let value = &mut changed_signature[last].1;
            let at = value.len() - 3;
            value[at] = if value[at] == b'a' { b'b' } else { b'a' };
            let cases: Vec<Case> = vec![
                ("genuine", genuine.clone(), "/hook?x=1", body, NOW),
                ("repeat", genuine.clone(), "/hook?x=1", body, NOW + 1),
                (
                    "retry re-signed later",
                    sign(secret, body, "msg_1", NOW + 2),
                    "/hook?x=1",
                    body,
                    NOW + 2,
                ),
                (
                    "another delivery",
                    sign(secret, other, "msg_2", NOW),
                    "/hook?x=1",
                    other,
                    NOW,
                ),
                ("changed body", genuine.clone(), "/hook?x=1", b"{}", NOW),
                (
                    "changed signature",
                    changed_signature,
                    "/hook?x=1",
                    body,
                    NOW,
                ),
                (
                    "wrong key",
                    sign(
                        if secret.starts_with("whsec_c2") {
                            "whsec_b3RoZXItc2VjcmV0LWJ5dGVzLWZvci1pdA=="
                        } else {
                            "wrong"
                        },
                        body,
                        "msg_1",
                        NOW,
                    ),
                    "/hook?x=1",
                    body,
                    NOW,
                ),
                ("moved", genuine.clone(), "/elsewhere?x=1", body, NOW),
                (
                    "stale",
                    sign(secret, other, "msg_3", NOW - 400),
                    "/hook?x=1",
                    other,
                    NOW,
                ),
                (
                    "future",
                    sign(secret, other, "msg_4", NOW + 400),
                    "/hook?x=1",
                    other,
                    NOW,
                ),
                ("unsigned", vec![], "/hook?x=1", body, NOW),
            ];
            for (what, headers, path, body, now) in cases {
                let form = scheme == "twilio";
                let expected = verdict(&preset, &headers, path, body, form, now, &preset_store);
                let got = verdict(&generic, &headers, path, body, form, now, &generic_store);
                assert_eq!(got.map(|_| ()), expected.map(|_| ()), "{scheme}: {what}");
                // Forwarded: the same fingerprint (the identity bytes may differ where the
                // preset leaves constant bytes out, Twilio's origin; the repeat, retry and
                // other-delivery cases show they identify the same deliveries).
                if let (Ok(a), Ok(b)) = (&got, &expected) {
                    assert_eq!(a.1, b.1, "{scheme}: {what}");
                }
            }
        }
    }

    /// The engine's signer, given each preset's description as a generic block, signs what
    /// the preset's own verifier accepts; and the demo route's block (GitHub's scheme)
    /// reproduces GitHub's documented example.
    #[test]
    fn the_signer_signs_as_the_block_describes() {
        use crate::providers::sign::testing::signed;
        use crate::providers::sign::{KeyMaterial, Signing};
        let signer = crate::providers::registry::find("generic_hmac")
            .unwrap()
            .sign
            .unwrap();
        let demo = json!({"signature": {"header": "X-Hub-Signature-256", "prefix": "sha256="}, "algorithm": "sha256",
                          "encoding": "hex", "message": ["body"], "id": {"body": true}})
        .to_string();
        let mut signing = Signing::new(KeyMaterial::Secret("It's a Secret to Everybody"), NOW);
        signing.generic = Some(&demo);
        let out = signed(&signer, &signing, "https://h/g", Some(b"Hello, World!"));
        assert_eq!(
            out.header("x-hub-signature-256"),
            Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
        );
        for (scheme, spec, secret, _) in presets() {
            let block = spec.to_string();
            let mut signing = Signing::new(KeyMaterial::Secret(secret), NOW);
            signing.generic = Some(&block);
            signing.origin = Some(ORIGIN);
            let form = scheme == "twilio";
            let body: &[u8] = if form {
                b"CallSid=CA1&From=%2B1&To=%2B2"
            } else {
                br#"{"id":"evt_1"}"#
            };
            let out = signed(
                &signer,
                &signing,
                "https://127.0.0.1:9/hook?x=1",
                Some(body),
            );
            let extra = if form {
                json!({"public_origin": ORIGIN})
            } else {
                json!({})
            };
            let mut route = json!({"scheme": scheme, "keys": [{"name": "k", "value": secret}]});
            for (k, v) in extra.as_object().unwrap() {
                route[k] = v.clone();
            }
            let preset = policy(route);
            let headers: Headers = out
                .headers
                .iter()
                .filter(|h| h.name != "content-type")
                .map(|h| (h.name.clone(), h.value.clone().into_bytes()))
                .collect();
            let store = MemoryStore::new();
            let verdict = verdict(&preset, &headers, "/hook?x=1", body, form, NOW, &store);
            assert!(verdict.is_ok(), "{scheme}: {verdict:?} {headers:?}");
        }
    }

    fn error(spec: Value, extra: Value) -> String {
        let mut route = json!({"name": "p", "path_prefix": "/", "scheme": "generic_hmac", "generic": spec, "keys": [{"value": "k"}]});
        for (k, v) in extra.as_object().unwrap() {
            route[k] = v.clone();
        }
        crate::config::parse(json!({ "routes": [route] }).to_string().as_bytes(), &|_| {
            None
        })
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn a_generic_configuration_error_names_the_field_and_why() {
        let base =
            || json!({"signature": {"header": "X-Sig"}, "encoding": "hex", "message": ["body"]});
        let with = |path: &[&str], value: Value| {
            let mut spec = base();
            let mut at = &mut spec;
            for key in &path[..path.len() - 1] {
                at = &mut at[*key];
            }
            at[path[path.len() - 1]] = value;
            spec
        };
        let cases = [
            (
                with(&["id"], json!({"header": "X-Delivery"})),
                "routes[0].generic.id.header: is not part of the signed message",
            ),
            (
                with(
                    &["timestamp"],
                    json!({"header": "X-Time", "format": "seconds"}),
                ),
                "routes[0].generic.timestamp.header: is not part of the signed message",
            ),
            (
                with(&["message"], json!(["body", "nonsense"])),
                "routes[0].generic.message[1]: must be body, form_params",
            ),
            (
                with(&["message"], json!([])),
                "routes[0].generic.message: must list at least one part",
            ),
            (
                with(&["message"], json!(["url"])),
                "routes[0].public_origin: is required: the message signs the URL",
            ),
            (
                with(&["encoding"], json!("base32")),
                "routes[0].generic.encoding: unknown variant `base32`",
            ),
            (
                with(&["algorithm"], json!("md5")),
                "routes[0].generic.algorithm: unknown variant `md5`",
            ),
            (
                with(&["signature"], json!({"header": "X Sig"})),
                "routes[0].generic.signature.header: is not a header name",
            ),
            (
                with(
                    &["signature"],
                    json!({"header": "x", "list": {"separator": ", ", "entry": "bare"}}),
                ),
                "routes[0].generic.signature.list.separator: must be one character",
            ),
            (
                with(
                    &["signature"],
                    json!({"header": "x", "list": {"separator": ",", "entry": "key=value"}}),
                ),
                "routes[0].generic.signature.list.label: is required",
            ),
            (
                with(&["message"], json!([{"item": "t"}, "body"])),
                "routes[0].generic.message: item \"t\" needs a signature list",
            ),
            (
                with(
                    &["timestamp"],
                    json!({"body_field": "ts", "format": "milliseconds", "header": "x"}),
                ),
                "routes[0].generic.timestamp: give exactly one of header, item, body_field",
            ),
            (
                with(&["id"], json!({"header": "x-sig", "body": true})),
                "routes[0].generic.id: give exactly one of header or body",
            ),
        ];
        for (spec, expected) in cases {
            let message = error(spec, json!({}));
            assert!(
                message.starts_with(expected),
                "{message}\n  wanted {expected}"
            );
        }
        assert!(error(base(), json!({"generic": null}))
            .starts_with("routes[0].generic: is required for scheme generic_hmac"));
        let keyed = with(&["signature"], json!({"header": "x"}));
        let mut keyed = keyed;
        keyed["key"] = json!({"prefix": "whsec_", "encoding": "base64"});
        assert!(error(keyed, json!({})).starts_with(
            "routes[0].keys[0]: key from value is not written as generic.key describes"
        ));
    }

    #[test]
    fn a_signed_body_field_can_carry_the_time() {
        // Linear's webhookTimestamp, in milliseconds, inside the signed body.
        let policy = generic(
            json!({"signature": {"header": "linear-signature"}, "encoding": "hex", "message": ["body"],
                                    "timestamp": {"body_field": "webhookTimestamp", "format": "milliseconds", "max_age_secs": 60, "max_future_secs": 60}}),
            "lin",
            json!({}),
        );
        let store = MemoryStore::new();
        let body = format!(r#"{{"action":"create","webhookTimestamp":{}}}"#, NOW * 1000);
        let signed = h(&[("linear-signature", hex(&mac(b"lin", &[body.as_bytes()])))]);
        assert!(verdict(
            &policy,
            &signed,
            "/",
            body.as_bytes(),
            false,
            NOW + 30,
            &store
        )
        .is_ok());
        let old = format!(
            r#"{{"action":"create","webhookTimestamp":{}}}"#,
            (NOW - 120) * 1000
        );
        let signed_old = h(&[("linear-signature", hex(&mac(b"lin", &[old.as_bytes()])))]);
        assert_eq!(
            verdict(
                &policy,
                &signed_old,
                "/",
                old.as_bytes(),
                false,
                NOW,
                &store
            ),
            Err(Reason::Stale)
        );
        let _ = test_key;
    }

    use base64::Engine;
}
