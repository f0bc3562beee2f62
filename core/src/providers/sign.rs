//! What a provider sends, as its signer makes it: each provider module has, next to its
//! verifier, a signer that writes the signature headers (Mailgun: the signature fields of
//! the body; Twilio: the signature over the URL and the sorted form parameters) the way the
//! provider does, so that the command line's sender and the verifier's tests sign with the
//! same code and cannot disagree. A scheme's signer is its [`entry::Entry::sign`].
//!
//! Nothing here runs in the filter: this module and every provider's signer are compiled
//! only with the crate's `sign` feature (the command line's) and in the tests, so the
//! filter's module is built from exactly the code it was built from without them.
//!
//! [`entry::Entry::sign`]: crate::providers::entry::Entry

use base64::Engine;

use crate::keys::Key;
use crate::providers::{hex, Media};

/// A scheme's signer: [`sign`](Self::sign) fills in what the provider adds to a request;
/// [`example`](Self::example) is the body it sends when the caller has none.
#[derive(Clone, Copy)]
pub struct Signer {
    pub sign: fn(&Signing, &mut Outgoing) -> Result<(), String>,
    pub example: fn(&Signing) -> Vec<u8>,
}

/// What a signer signs with: the key, the time, a delivery id where the scheme has one.
#[derive(Debug, Clone)]
pub struct Signing<'a> {
    pub key: KeyMaterial<'a>,
    /// The time to sign (unix seconds): now, or shifted to make a stale or future request.
    pub now: i64,
    /// The delivery id, nonce or token, written as the provider writes it; `None`: one is
    /// made from [`random`](Self::random) in the provider's format.
    pub id: Option<&'a str>,
    /// Bytes from the caller's random source, for ids and example bodies (the core has no
    /// randomness of its own, and a test signs reproducibly with fixed bytes).
    pub random: [u8; 32],
    /// `scheme://authority` as the provider calls it, for the schemes that sign the URL
    /// (a route's `public_origin`); `None`: the request URL's own.
    pub origin: Option<&'a str>,
    /// `generic_hmac`: the route's `generic` block, as JSON.
    pub generic: Option<&'a str>,
    /// `static_token`, `basic_auth`: the route's `token` block, as JSON.
    pub token: Option<&'a str>,
    /// `google_pubsub`: the audience the token is issued for (the route's `jwt.audience`);
    /// `None`: the request URL without its query, Pub/Sub's default.
    pub audience: Option<&'a str>,
}

/// The key as a route's configuration writes it.
#[derive(Clone, Copy)]
pub enum KeyMaterial<'a> {
    /// A shared secret as the route's `keys` hold it (`whsec_…` for the Standard Webhooks
    /// family; Stripe's whole `whsec_…` string; any text for the others).
    Secret(&'a str),
    /// The private key of a public-key scheme (see [`ed25519_private`] and
    /// [`p256_private`] for how each is written).
    Private(&'a str),
}

/// Key material is never printed.
impl std::fmt::Debug for KeyMaterial<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyMaterial::Secret(_) => "Secret(..)",
            KeyMaterial::Private(_) => "Private(..)",
        })
    }
}

impl<'a> Signing<'a> {
    /// A signing with `key` at `now`, no id given, no origin, fixed random bytes.
    pub fn new(key: KeyMaterial<'a>, now: i64) -> Self {
        Signing {
            key,
            now,
            id: None,
            random: [0x5a; 32],
            origin: None,
            generic: None,
            token: None,
            audience: None,
        }
    }

    /// The shared secret, or why a private key is no use here.
    pub fn secret(&self, scheme: &str) -> Result<&'a str, String> {
        match self.key {
            KeyMaterial::Secret(secret) => Ok(secret),
            KeyMaterial::Private(_) => Err(format!(
                "{scheme} signs with a shared secret, not a private key"
            )),
        }
    }

    /// The secret's text as key bytes (the schemes whose key is the text itself).
    pub fn text_key(&self, scheme: &str) -> Result<Key, String> {
        key(self.secret(scheme)?.as_bytes())
    }

    /// The private key's text, or why a shared secret is no use here.
    pub fn private(&self, scheme: &str) -> Result<&'a str, String> {
        match self.key {
            KeyMaterial::Private(text) => Ok(text),
            KeyMaterial::Secret(_) => Err(format!(
                "{scheme} signs with the provider's private key, not a shared secret"
            )),
        }
    }

    /// The given id, or `make` of the random bytes.
    pub fn id_or(&self, make: impl FnOnce(&[u8; 32]) -> String) -> String {
        match self.id {
            Some(id) => id.to_string(),
            None => make(&self.random),
        }
    }

    /// A version 4 UUID of the random bytes, lowercase.
    pub fn uuid(&self) -> String {
        uuid(&self.random)
    }

    /// The given id, or a UUID.
    pub fn id_or_uuid(&self) -> String {
        self.id_or(uuid)
    }

    /// The origin the provider signs: the given one, or the request URL's.
    pub fn origin_of(&self, out: &Outgoing) -> String {
        match self.origin {
            Some(origin) => origin.to_string(),
            None => out.origin().to_string(),
        }
    }
}

/// A key for HMAC (which takes keys of any length).
pub fn key(bytes: &[u8]) -> Result<Key, String> {
    Key::new("signer", bytes).map_err(|_| "unusable key".to_string())
}

/// One request as it will be sent, which a signer completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub method: String,
    /// `scheme://authority/path?query`, the path and query exactly as the client sends
    /// them (a signer that signs the URL reads them as the verifier will see them).
    pub url: String,
    /// In sending order; names lowercase.
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
    /// What each signature covers, in the order signed.
    pub signed: Vec<Covered>,
    /// Where the body carries a signature (Mailgun): the offset of its first character.
    pub body_signature: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
    pub role: Role,
}

/// What a header is to the scheme, so that a tampered copy can alter the right one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Plain,
    /// Carries an encoded signature (hex or base64) starting at byte `at` of the value.
    Signature {
        at: usize,
    },
    /// A voice nonce.
    Nonce,
}

/// One signed message: which signature (`v3`, `body`, `message`), whether the parent
/// account's key signed it (Vobiz), and its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered {
    pub what: &'static str,
    pub parent: bool,
    pub message: Vec<u8>,
}

impl Outgoing {
    pub fn new(method: &str, url: &str, body: Vec<u8>) -> Self {
        Outgoing {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body,
            signed: Vec::new(),
            body_signature: None,
        }
    }

    /// `scheme://authority`.
    pub fn origin(&self) -> &str {
        let start = self.url.find("://").map_or(0, |i| i + 3);
        let end = self.url[start..]
            .find(['/', '?', '#'])
            .map_or(self.url.len(), |i| start + i);
        &self.url[..end]
    }

    /// The path and query, as on the request line (`/` when the URL has no path).
    pub fn path_and_query(&self) -> String {
        let rest = &self.url[self.origin().len()..];
        let rest = rest.split('#').next().unwrap_or_default();
        match rest.chars().next() {
            Some('/') => rest.to_string(),
            _ => format!("/{rest}"),
        }
    }

    /// Appends `name=value` (already encoded) to the query.
    pub fn add_query(&mut self, params: &str) {
        let path = self.path_and_query();
        let joined = match path.split_once('?') {
            Some((_, "")) => format!("{path}{params}"),
            Some(_) => format!("{path}&{params}"),
            None => format!("{path}?{params}"),
        };
        self.url = format!("{}{joined}", self.origin());
    }

    /// The value of header `name` (lowercase), if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Adds a plain header unless one of that name is set.
    pub fn default_header(&mut self, name: &str, value: impl Into<String>) {
        if self.header(name).is_none() {
            self.push(name, value, Role::Plain);
        }
    }

    /// Sets header `name` (replacing any of that name).
    pub fn set(&mut self, name: &str, value: impl Into<String>, role: Role) {
        self.headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
        self.push(name, value, role);
    }

    pub fn push(&mut self, name: &str, value: impl Into<String>, role: Role) {
        self.headers.push(Header {
            name: name.to_ascii_lowercase(),
            value: value.into(),
            role,
        });
    }

    /// Sets a signature header: `prefix` then the encoded signature.
    pub fn signature(&mut self, name: &str, prefix: &str, encoded: &str) {
        self.set(
            name,
            format!("{prefix}{encoded}"),
            Role::Signature { at: prefix.len() },
        );
    }

    /// Records what a signature covers.
    pub fn covers(&mut self, what: &'static str, parts: &[&[u8]]) {
        self.signed.push(Covered {
            what,
            parent: false,
            message: parts.concat(),
        });
    }

    /// The `Content-Type` the provider sends for this body, unless one is set: a form
    /// where the media admit one and the body is not JSON, else JSON.
    pub fn content_type(&mut self, media: Media) {
        let json = matches!(self.body.trim_ascii_start().first(), Some(b'{' | b'['));
        let form = media.form && (!json || media.json.is_none());
        let value = if form {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        self.default_header("content-type", value);
    }

    /// The request head as the filter sees it: pseudo-headers, then every header.
    pub fn head(&self) -> Vec<crate::request::Header> {
        let origin = self.origin();
        let (scheme, authority) = origin.split_once("://").unwrap_or(("https", origin));
        let mut head: Vec<crate::request::Header> = vec![
            (":method".into(), self.method.clone().into_bytes()),
            (":path".into(), self.path_and_query().into_bytes()),
            (":authority".into(), authority.as_bytes().to_vec()),
            (":scheme".into(), scheme.as_bytes().to_vec()),
        ];
        head.extend(
            self.headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.clone().into_bytes())),
        );
        head
    }
}

/// A JSON object body with `"name":value` added as its last member (`value` is JSON
/// text), unless it has a top-level member of that name already.
pub fn with_member(body: &[u8], name: &str, value: &str) -> Result<Vec<u8>, String> {
    let parsed: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
    let Some(object) = parsed.as_object() else {
        return Err("the body is not a JSON object".into());
    };
    if object.contains_key(name) {
        return Ok(body.to_vec());
    }
    let end = body
        .iter()
        .rposition(|&b| b == b'}')
        .ok_or("the body is not a JSON object")?;
    let member = format!("{}:{value}", serde_json::Value::from(name));
    let comma = if object.is_empty() { "" } else { "," };
    Ok([
        &body[..end],
        comma.as_bytes(),
        member.as_bytes(),
        &body[end..],
    ]
    .concat())
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A version 4 UUID of the first 16 bytes, lowercase.
pub fn uuid(random: &[u8; 32]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&random[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// An RSA PKCS#1 v1.5 signature over `message` with the PKCS#8 PEM private key `pem`, as
/// SNS and PayPal sign with their certificates' keys.
pub fn rsa_sign(
    pem: &str,
    hash: crate::remote_key::RsaHash,
    message: &[u8],
) -> Result<Vec<u8>, String> {
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer as _};
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|line| !line.starts_with("-----"))
                .collect::<String>(),
        )
        .map_err(|e| e.to_string())?;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| e.to_string())?;
    Ok(match hash {
        crate::remote_key::RsaHash::Sha1 => {
            SigningKey::<sha1::Sha1>::new(key).sign(message).to_vec()
        }
        crate::remote_key::RsaHash::Sha256 => {
            SigningKey::<sha2::Sha256>::new(key).sign(message).to_vec()
        }
    })
}

/// `n` (at most 64) decimal digits of the random bytes.
pub fn digits(random: &[u8; 32], n: usize) -> String {
    random
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0f])
        .take(n)
        .map(|nibble| char::from(b'0' + nibble % 10))
        .collect()
}

/// A JSON number of `n` (at most 64) digits from the random bytes: no leading zero.
pub fn number(random: &[u8; 32], n: usize) -> String {
    format!("1{}", digits(random, n.saturating_sub(1)))
}

/// `n` (at most 32) characters of `[0-9A-Za-z]` from the random bytes.
pub fn base62(random: &[u8; 32], n: usize) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    random
        .iter()
        .take(n)
        .map(|&b| char::from(ALPHABET[usize::from(b) % 62]))
        .collect()
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: i64) -> String {
    let (date, time) = civil(secs);
    format!("{date}T{time}Z")
}

/// `(YYYY-MM-DD, HH:MM:SS)` in UTC.
pub fn civil(secs: i64) -> (String, String) {
    let days = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        ),
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`, the inverse of the filter's `days_from_civil`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An Ed25519 private key as written: 64 hex digits of the 32-byte seed (Discord's
/// example keys), or `whsk_` then base64 of the seed, or of the seed and its public key
/// (Standard Webhooks).
pub fn ed25519_private(text: &str) -> Result<ed25519_dalek::SigningKey, String> {
    let text = text.trim();
    let bytes = match text.strip_prefix("whsk_") {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok(),
        None => crate::form::hex(text.as_bytes()),
    };
    let invalid = || {
        "the private key is not 64 hex digits of an Ed25519 seed, nor whsk_ and its base64"
            .to_string()
    };
    let bytes = bytes.ok_or_else(invalid)?;
    let seed: [u8; 32] = bytes
        .get(..32)
        .ok_or_else(invalid)?
        .try_into()
        .map_err(|_| invalid())?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    match bytes.len() {
        32 => Ok(key),
        64 if bytes[32..] == key.verifying_key().to_bytes() => Ok(key),
        64 => Err("the private key's public half is not its seed's".into()),
        _ => Err(invalid()),
    }
}

/// A P-256 private key as written: 64 hex digits of the scalar, or a PKCS#8 key (PEM, or
/// its DER in base64).
pub fn p256_private(text: &str) -> Result<p256::ecdsa::SigningKey, String> {
    use p256::pkcs8::DecodePrivateKey;
    let text = text.trim();
    if let Some(scalar) = crate::form::hex(text.as_bytes()).filter(|b| b.len() == 32) {
        return p256::ecdsa::SigningKey::from_slice(&scalar)
            .map_err(|_| "the private key is not a P-256 scalar".to_string());
    }
    let base64: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .flat_map(|line| line.trim().chars())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .map_err(|_| {
            "the private key is not 64 hex digits of a P-256 scalar, nor a PKCS#8 key".to_string()
        })?;
    p256::SecretKey::from_pkcs8_der(&der)
        .map(p256::ecdsa::SigningKey::from)
        .map_err(|_| "the private key is not a P-256 PKCS#8 key".to_string())
}

#[cfg(test)]
pub(crate) mod testing {
    //! Judging a signer's output with the scheme's own verifier.

    use super::*;
    use crate::providers::{AtHeaders, Body, Checks, Provider};
    use crate::request::RequestHead;
    use crate::verdict::Reason;

    /// What the verifier said of a signed request: the scheme and key name that verified,
    /// and the signed time.
    pub fn judge(provider: &dyn Provider, out: &Outgoing) -> Result<(String, Option<i64>), Reason> {
        let head = out.head();
        let head = RequestHead::new(&head);
        let checks = Checks::default();
        let prior = match provider.at_headers(&head, &checks).map_err(|r| r.reason)? {
            AtHeaders::Verified { scheme, key } => {
                Some(crate::providers::Prior::Verified(scheme, key))
            }
            AtHeaders::NeedBody => None,
            AtHeaders::Reply(_) => return Err(Reason::MalformedBody),
        };
        let body = Body {
            bytes: &out.body,
            prior,
        };
        provider
            .at_body(&head, &body, &checks)
            .map(|v| {
                (
                    format!("{}/{}", v.scheme, v.key),
                    v.time.map(|t| t.unix_secs()),
                )
            })
            .map_err(|r| r.reason)
    }

    /// `out` signed by `signer` with `signing`, its body the example unless given.
    pub fn signed(signer: &Signer, signing: &Signing, url: &str, body: Option<&[u8]>) -> Outgoing {
        let body = body.map_or_else(|| (signer.example)(signing), <[u8]>::to_vec);
        let mut out = Outgoing::new("POST", url, body);
        (signer.sign)(signing, &mut out).unwrap();
        out
    }

    /// A copy of `out` with one byte of its body changed.
    pub fn changed_body(out: &Outgoing) -> Outgoing {
        let mut changed = out.clone();
        let at = changed
            .body
            .iter()
            .rposition(u8::is_ascii_alphanumeric)
            .unwrap();
        changed.body[at] = if changed.body[at] == b'a' { b'b' } else { b'a' };
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_as_the_request_line_carries_them() {
        let mut out = Outgoing::new("POST", "https://h.example:8443/a/b?x=1", Vec::new());
        assert_eq!(out.origin(), "https://h.example:8443");
        assert_eq!(out.path_and_query(), "/a/b?x=1");
        out.add_query("y=2");
        assert_eq!(out.url, "https://h.example:8443/a/b?x=1&y=2");
        let mut bare = Outgoing::new("POST", "http://h", Vec::new());
        assert_eq!(
            (bare.origin(), bare.path_and_query().as_str()),
            ("http://h", "/")
        );
        bare.add_query("y=2");
        assert_eq!(bare.url, "http://h/?y=2");
    }

    #[test]
    fn a_member_is_added_once_at_the_end() {
        assert_eq!(with_member(b"{}", "t", "1").unwrap(), b"{\"t\":1}");
        assert_eq!(
            with_member(b"{\"a\":2}\n", "t", "1").unwrap(),
            b"{\"a\":2,\"t\":1}\n"
        );
        assert_eq!(with_member(b"{\"t\":2}", "t", "1").unwrap(), b"{\"t\":2}");
        assert!(with_member(b"[1]", "t", "1").is_err());
    }

    #[test]
    fn ids_are_made_in_each_format() {
        let random = [0xab; 32];
        assert_eq!(uuid(&random).len(), 36);
        assert_eq!(uuid(&random).as_bytes()[14], b'4');
        let twenty = digits(&random, 20);
        assert!(twenty.len() == 20 && twenty.bytes().all(|b| b.is_ascii_digit()));
        let id = base62(&random, 27);
        assert!(id.len() == 27 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(rfc3339(1_774_432_800), "2026-03-25T10:00:00Z");
    }

    #[test]
    fn private_keys_are_read_in_each_writing() {
        let seed: Vec<u8> = (0..32).collect();
        let key = ed25519_private(&hex(&seed)).unwrap();
        let public = key.verifying_key().to_bytes();
        assert_eq!(
            hex(&public),
            "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
        );
        let whsk = format!("whsk_{}", base64(&seed));
        assert_eq!(ed25519_private(&whsk).unwrap().to_bytes(), key.to_bytes());
        let both = format!("whsk_{}", base64(&[&seed[..], &public].concat()));
        assert!(ed25519_private(&both).is_ok());
        let wrong = format!("whsk_{}", base64(&[&seed[..], &[0; 32]].concat()));
        assert!(ed25519_private(&wrong).is_err());
        assert!(ed25519_private("zz").is_err());
        let scalar = "1234567890abcdef".repeat(4);
        assert!(p256_private(&scalar).is_ok());
        assert!(p256_private("00").is_err());
        assert!(p256_private(&"0".repeat(64)).is_err());
    }
}
