//! Static credentials: a shared token in a header (`static_token`: GitLab's
//! `X-Gitlab-Token`, Telegram's `X-Telegram-Bot-Api-Secret-Token`, Okta's custom header) or
//! HTTP Basic credentials (`basic_auth`: Chargebee, Postmark, Pipedrive, Workspace ONE),
//! compared with the route's keys in constant time.
//!
//! | at the headers | identity | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | the credential, verified | the key that matched, with the first `delivery_id` source present (a header, or a JSON body's top-level field), else the whole body | none | as `token.body` says | method, path, query, content type, dispatch headers **and the body** |
//!
//! **Nothing is signed.** A credential proves that the sender knows it, not what it sent:
//! whoever has seen one delivery (or the credential) can send any body, at any time, under
//! new delivery ids. What the filter promises: the credential is one of the route's keys,
//! each delivery (by its id, or by its body where the provider sends no id) is delivered
//! once, and the same id with another body, method, path or dispatch header is
//! `replay_tampered`. Use these only where the provider offers nothing better, over TLS.

pub mod gitlab;
pub mod okta;
pub mod telegram;

use base64::Engine;
use serde::Deserialize;

use crate::keys::Key;
use crate::providers::endpoint_check;
use crate::providers::entry::{remembering, Entry, Field, Problem, Secret, Settings};
use crate::providers::generic::{header_name, RawBody};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{Outgoing, Role, Signer, Signing};
use crate::providers::{
    key_names, malformed, mismatch, required, visible, AtHeaders, Body, Checks, Media, Provider,
    Signed, Verified,
};
use crate::request::{Lookup, RequestHead};
use crate::verdict::{Reason, Rejection};

/// Longest credential compared: GitLab and Okta tokens are free text, Telegram's at most 256.
pub const MAX_TOKEN_BYTES: usize = 1024;
/// Longest delivery id taken as the identity: UUIDs, numbers and ULIDs are far shorter.
pub const MAX_ID_BYTES: usize = 256;

/// What the sender presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The token itself, as the value of this header (lowercase).
    Header(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic,
}

/// Where a delivery's id is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A header (lowercase).
    Header(String),
    /// A top-level member of a JSON object body: a string or an integer.
    BodyField(String),
}

#[derive(Debug)]
pub struct Token {
    pub scheme: &'static str,
    pub credential: Credential,
    /// In order: the first present is the identity; none present, the body is.
    pub delivery_id: Vec<Source>,
    pub dispatch: Vec<String>,
    pub media: Media,
    pub keys: Vec<Key>,
    /// The unsigned check answered at the headers, when the route answers handshakes.
    pub endpoint_check: Option<endpoint_check::Check>,
}

/// A `token` block: how a `static_token` or `basic_auth` route's sender presents itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    /// The token's header (`static_token`; `basic_auth` reads `Authorization`).
    #[serde(default)]
    header: Option<String>,
    /// Where the delivery's id is, in order of preference.
    #[serde(default)]
    delivery_id: Vec<RawSource>,
    /// Unsigned headers the application dispatches on, bound by the replay fingerprint.
    #[serde(default)]
    dispatch_headers: Vec<String>,
    #[serde(default)]
    body: RawBody,
    /// The unsigned check the provider sends, answered at the headers (Okta's).
    #[serde(default)]
    endpoint_check: Option<endpoint_check::Raw>,
}

/// `"Idempotency-Key"` (a header) or `{"body_field": "update_id"}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSource {
    Header(String),
    Body { body_field: String },
}

pub const STATIC_ENTRY: Entry = signs!(
    Entry::new("static_token", |settings| compile(
        "static_token",
        Credential::Header(String::new()),
        settings
    ))
    .reading(&[Field::Token]),
    SIGNER
);

pub const BASIC_ENTRY: Entry = signs!(
    Entry::new("basic_auth", |settings| compile(
        "basic_auth",
        Credential::Basic,
        settings
    ))
    .reading(&[Field::Token])
    .secret(Secret::Credentials),
    SIGNER
);

/// A route's `static_token` or `basic_auth` scheme from its `token` block (`credential`
/// says which; a header credential takes its name from the block).
fn compile(
    scheme: &'static str,
    credential: Credential,
    settings: Settings,
) -> Result<Box<dyn Provider>, Problem> {
    let raw = settings.token.unwrap_or_default();
    let token = describe(scheme, credential, raw, settings.keys)?;
    token.settled(settings.answer_handshakes, settings.replay)
}

/// The scheme `raw` describes; problems name the field under `token`.
pub fn describe(
    scheme: &'static str,
    credential: Credential,
    raw: Raw,
    keys: Vec<Key>,
) -> Result<Token, Problem> {
    let field = |name: &str| format!("{}.{name}", Field::Token.name());
    let credential = match (credential, raw.header) {
        (Credential::Basic, None) => Credential::Basic,
        (Credential::Basic, Some(_)) => {
            return Err(Problem::new(
                field("header"),
                "does not apply to basic_auth, whose credentials are in Authorization",
            ))
        }
        (Credential::Header(_), None) => {
            return Err(Problem::new(
                field("header"),
                format!("is required for scheme {scheme}"),
            ))
        }
        (Credential::Header(_), Some(name)) => Credential::Header(
            header_name(&name).map_err(|problem| Problem::new(field("header"), problem))?,
        ),
    };
    let media = raw.body.media();
    let delivery_id = raw
        .delivery_id
        .into_iter()
        .enumerate()
        .map(|(i, source)| {
            let at = field(&format!("delivery_id[{i}]"));
            match source {
                RawSource::Header(name) => header_name(&name)
                    .map(Source::Header)
                    .map_err(|problem| Problem::new(at, problem)),
                RawSource::Body { .. } if media != Media::JSON_OBJECT => Err(Problem::new(
                    at,
                    "reads a JSON body's field: token.body must be json_object",
                )),
                RawSource::Body { body_field } if body_field.is_empty() => {
                    Err(Problem::new(at, "names no field"))
                }
                RawSource::Body { body_field } => Ok(Source::BodyField(body_field)),
            }
        })
        .collect::<Result<_, _>>()?;
    let dispatch = raw
        .dispatch_headers
        .iter()
        .enumerate()
        .map(|(i, name)| {
            header_name(name)
                .map_err(|problem| Problem::new(field(&format!("dispatch_headers[{i}]")), problem))
        })
        .collect::<Result<_, _>>()?;
    let endpoint_check = match raw.endpoint_check {
        None => None,
        Some(check) => {
            let check = endpoint_check::compile(check).map_err(|(name, problem)| {
                Problem::new(field(&format!("endpoint_check.{name}")), problem)
            })?;
            if check.needs_json_body() {
                return Err(Problem::new(
                    field("endpoint_check"),
                    "a crc check answers with a MAC, and a static credential signs nothing",
                ));
            }
            Some(check)
        }
    };
    Ok(Token {
        scheme,
        credential,
        delivery_id,
        dispatch,
        media,
        keys,
        endpoint_check,
    })
}

/// A provider whose credential a `token` block describes (GitLab, Telegram): its scheme's
/// name and the block, as JSON (a constant, parsed by its tests).
#[derive(Clone, Copy)]
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
}

impl Preset {
    /// Its scheme, verifying with `keys`.
    pub fn compile(&self, keys: Vec<Key>) -> Result<Token, Problem> {
        let raw: Raw = serde_json::from_str(self.description)
            .map_err(|e| Problem::new("scheme", format!("preset {} is invalid: {e}", self.name)))?;
        describe(self.name, Credential::Header(String::new()), raw, keys)
    }

    /// The entry's `compile`.
    pub fn build(&self, settings: Settings) -> Result<Box<dyn Provider>, Problem> {
        let token = self.compile(settings.keys)?;
        token.settled(settings.answer_handshakes, settings.replay)
    }

    /// What the provider sends: the headers `headers` adds, then the credential.
    #[cfg(any(test, feature = "sign"))]
    pub fn sign(
        &self,
        signing: &Signing,
        out: &mut Outgoing,
        headers: fn(&Signing, &mut Outgoing),
    ) -> Result<(), String> {
        headers(signing, out);
        self.compile(Vec::new())
            .map_err(|e| e.problem)?
            .sign(signing, out)
    }
}

/// A token preset's [`Entry`]: its scheme compiled from its description; its signer
/// (feature `sign`) adds the headers `$headers` writes and the credential, and sends
/// `$example` when the caller has no body.
macro_rules! preset_entry {
    ($preset:expr, $example:expr) => {
        preset_entry!($preset, $example, |_, _| {})
    };
    ($preset:expr, $example:expr, $headers:expr) => {
        signs!(
            $crate::providers::entry::Entry::new($preset.name, |settings| {
                $preset.build(settings)
            }),
            $crate::providers::sign::Signer {
                sign: |signing, out| $preset.sign(signing, out, $headers),
                example: $example,
            }
        )
    };
}
use preset_entry;

impl Token {
    /// The route's scheme: without its endpoint check where the route answers no
    /// handshakes; refused without replay memory, which is what keeps each delivery (and
    /// its body) to one under a credential that signs nothing.
    fn settled(mut self, handshakes: bool, replay: bool) -> Result<Box<dyn Provider>, Problem> {
        remembering(
            self.scheme,
            replay,
            "its credential signs nothing, and the replay memory is what keeps a captured one from delivering each delivery, or a body, more than once",
        )?;
        if !handshakes {
            self.endpoint_check = None;
        }
        Ok(Box::new(self))
    }

    /// The key whose secret the request presents.
    fn check(&self, head: &RequestHead) -> Result<&Key, Rejection> {
        let (presented, what) = match &self.credential {
            Credential::Header(name) => {
                let value = required(head, name)?;
                if value.is_empty() || value.len() > MAX_TOKEN_BYTES {
                    return Err(malformed(format!(
                        "{name} is not 1 to {MAX_TOKEN_BYTES} bytes"
                    )));
                }
                (value.to_vec(), name.as_str())
            }
            Credential::Basic => (basic(required(head, "authorization")?)?, "authorization"),
        };
        self.keys
            .iter()
            .find(|key| key.is_secret(&presented))
            .ok_or_else(|| mismatch(what))
    }

    /// The delivery's identity under the key that admitted it: its id from the first source
    /// present, else its body. The key is part of it, so that the holder of one route key
    /// cannot take another sender's next ids first (Telegram's count up by one), and two
    /// senders' ids never collide.
    fn identity(&self, key: &Key, head: &RequestHead, body: &[u8]) -> Result<Signed, Rejection> {
        let key = key.name.as_bytes();
        for source in &self.delivery_id {
            let (name, id) = match source {
                Source::Header(name) => match head.lookup(name) {
                    Lookup::Missing => continue,
                    Lookup::Duplicate => {
                        return Err(Rejection::new(
                            Reason::DuplicateHeader,
                            format!("{name} appears more than once"),
                        ))
                    }
                    Lookup::One(value) => {
                        visible(name, value, MAX_ID_BYTES)?;
                        (name, value.to_vec())
                    }
                },
                Source::BodyField(name) => match body_field(body, name)? {
                    Some(id) => (name, id),
                    None => continue,
                },
            };
            return Ok(Signed::over(
                self.scheme,
                &[key, name.as_bytes(), &id],
                body,
            ));
        }
        Ok(Signed::over(self.scheme, &[key, body], body))
    }
}

/// The user:password of a Basic `Authorization` value, decoded; refused unless it is
/// exactly `Basic` (any case), one space, and padded base64 of text with a colon.
fn basic(value: &[u8]) -> Result<Vec<u8>, Rejection> {
    let refused = || malformed("authorization is not Basic credentials (RFC 7617)");
    let (scheme, encoded) = value
        .iter()
        .position(|&b| b == b' ')
        .map(|at| (&value[..at], &value[at + 1..]))
        .ok_or_else(refused)?;
    if !scheme.eq_ignore_ascii_case(b"basic") || encoded.len() > MAX_TOKEN_BYTES {
        return Err(refused());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| refused())?;
    if !decoded.contains(&b':') {
        return Err(refused());
    }
    Ok(decoded)
}

/// A JSON object body's top-level `name`, as its id: a string of visible ASCII or an
/// integer, written as the body writes it; `None` when it has no such member.
fn body_field(body: &[u8], name: &str) -> Result<Option<Vec<u8>>, Rejection> {
    let bad =
        |what: &str| Rejection::new(Reason::MalformedBody, format!("body field {name} {what}"));
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
        .map_err(|_| Rejection::new(Reason::MalformedBody, "body is not a JSON object"))?;
    let id = match object.get(name) {
        None => return Ok(None),
        Some(serde_json::Value::Number(number)) if number.is_i64() || number.is_u64() => {
            number.to_string()
        }
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(_) => return Err(bad("is not a string or an integer")),
    };
    visible(name, id.as_bytes(), MAX_ID_BYTES).map_err(|e| bad(&e.detail))?;
    Ok(Some(id.into_bytes()))
}

impl Provider for Token {
    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        if let Some(check) = &self.endpoint_check {
            // Echoes only: no key is used.
            if let Some(reply) = check.answer(head, None, crate::keys::Algorithm::Sha256)? {
                return Ok(AtHeaders::Reply(reply));
            }
        }
        let key = self.check(head)?;
        // A body the route restricts is checked at the body step, even without replay
        // (which checks the credential again: one MAC).
        if self.media.restricts() {
            return Ok(AtHeaders::NeedBody);
        }
        Ok(AtHeaders::Verified {
            scheme: self.scheme,
            key: &key.name,
        })
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let key = match body.verified() {
            Some((_, name)) => self.keys.iter().find(|key| key.name == name),
            None => None,
        };
        let key = match key {
            Some(key) => key,
            None => self.check(head)?,
        };
        Ok(Verified {
            scheme: self.scheme,
            key: &key.name,
            signed: self.identity(key, head, body.bytes)?,
            time: None,
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
}

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// What a `static_token` or `basic_auth` sender adds: the credential, and a delivery id
/// where the route's `token` block reads one from a header.
#[cfg(any(test, feature = "sign"))]
pub fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let raw: Raw = match signing.token {
        Some(block) => serde_json::from_str(block).map_err(|e| format!("token block: {e}"))?,
        None => Raw::default(),
    };
    let credential = match raw.header {
        Some(_) => Credential::Header(String::new()),
        None => Credential::Basic,
    };
    let token = describe("static_token", credential, raw, Vec::new()).map_err(|e| e.problem)?;
    token.sign(signing, out)
}

#[cfg(any(test, feature = "sign"))]
impl Token {
    /// Adds the credential, the `Content-Type` of its media and, where a header carries the
    /// delivery id, one made from the random bytes.
    pub fn sign(&self, signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
        let secret = signing.secret(self.scheme)?;
        out.content_type(self.media);
        match &self.credential {
            Credential::Header(name) => out.set(name, secret, Role::Signature { at: 0 }),
            Credential::Basic => out.set(
                "authorization",
                format!(
                    "Basic {}",
                    crate::providers::sign::base64(secret.as_bytes())
                ),
                Role::Signature { at: 6 },
            ),
        }
        if let Some(Source::Header(name)) = self.delivery_id.first() {
            out.default_header(name, signing.id_or_uuid());
        }
        Ok(())
    }
}

/// A JSON event with an id of the random bytes.
#[cfg(any(test, feature = "sign"))]
pub fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"id":"{}","event":"delivered","note":"café"}}"#,
        signing.uuid()
    )
    .into_bytes()
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::keys::test_key;
    use crate::request::Header;

    /// The route's one key, `primary`.
    pub const GENUINE: &str = "glpat-3x4mpl3_t0k3n";

    pub struct Judged {
        pub key: String,
        pub signed: Signed,
    }

    /// What the preset decides of a POST with `headers` and `body`.
    pub fn judge(preset: &Preset, headers: &[(&str, &str)], body: &str) -> Result<Judged, Reason> {
        let token = preset.compile(vec![test_key("primary", GENUINE)]).unwrap();
        judge_with(&token, headers, body)
    }

    pub fn judge_with(
        token: &Token,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Judged, Reason> {
        let mut head: Vec<Header> = vec![
            (":method".into(), b"POST".to_vec()),
            (":path".into(), b"/hook".to_vec()),
            ("content-type".into(), b"application/json".to_vec()),
        ];
        head.extend(
            headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec())),
        );
        let head = RequestHead::new(&head);
        let checks = Checks::default();
        // Judged at the headers; verified there where the route takes any body.
        let prior = match token.at_headers(&head, &checks).map_err(|e| e.reason)? {
            AtHeaders::Verified { scheme, key } => {
                Some(crate::providers::Prior::Verified(scheme, key))
            }
            AtHeaders::NeedBody => None,
            AtHeaders::Reply(_) => panic!("no endpoint check here"),
        };
        let body = Body {
            bytes: body.as_bytes(),
            prior,
        };
        let verified = token.at_body(&head, &body, &checks).map_err(|e| e.reason)?;
        Ok(Judged {
            key: verified.key.to_string(),
            signed: verified.signed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::judge_with;
    use super::*;
    use crate::keys::test_key;

    fn basic_auth(block: &str) -> Result<Token, Problem> {
        let raw = serde_json::from_str(block).unwrap();
        describe(
            "basic_auth",
            Credential::Basic,
            raw,
            vec![
                test_key("old", "hooks:old-password"),
                test_key("new", "hooks:new-pass"),
            ],
        )
    }

    fn credentials(text: &str) -> String {
        format!("Basic {}", crate::providers::sign::base64(text.as_bytes()))
    }

    #[test]
    fn basic_credentials_verify_under_any_of_the_keys() {
        let token = basic_auth("{}").unwrap();
        for (name, secret) in [("old", "hooks:old-password"), ("new", "hooks:new-pass")] {
            let judged = judge_with(&token, &[("authorization", &credentials(secret))], "{}");
            assert_eq!(judged.unwrap().key, name);
        }
        let lower = format!("basic {}", &credentials("hooks:new-pass")[6..]);
        assert!(judge_with(&token, &[("authorization", &lower)], "{}").is_ok());
    }

    #[test]
    fn anything_but_exact_basic_credentials_is_refused() {
        let token = basic_auth("{}").unwrap();
        let unpadded = credentials("hooks:new-pass")
            .trim_end_matches('=')
            .to_string();
        assert!(credentials("hooks:new-pass").ends_with('='));
        for (value, reason) in [
            (credentials("hooks:wrong"), Reason::SignatureMismatch),
            (credentials("hooks:new-pas"), Reason::SignatureMismatch),
            (credentials("hooksnew-password"), Reason::MalformedHeader),
            (
                format!("Bearer {}", &credentials("hooks:new-pass")[6..]),
                Reason::MalformedHeader,
            ),
            (
                format!("Basic  {}", &credentials("hooks:new-pass")[6..]),
                Reason::MalformedHeader,
            ),
            ("Basic".to_string(), Reason::MalformedHeader),
            ("Basic !!!!".to_string(), Reason::MalformedHeader),
            (unpadded, Reason::MalformedHeader),
        ] {
            let judged = judge_with(&token, &[("authorization", &value)], "{}");
            assert_eq!(judged.err(), Some(reason), "{value}");
        }
        assert_eq!(
            judge_with(&token, &[], "{}").err(),
            Some(Reason::MissingSignature)
        );
    }

    #[test]
    fn a_token_block_names_what_is_wrong_with_it() {
        let header = |block: &str| {
            let raw = serde_json::from_str(block).unwrap();
            describe(
                "static_token",
                Credential::Header(String::new()),
                raw,
                Vec::new(),
            )
            .map(|_| ())
            .unwrap_err()
        };
        assert_eq!(
            header("{}"),
            Problem::new("token.header", "is required for scheme static_token")
        );
        assert_eq!(header(r#"{"header": "x y"}"#).field, "token.header");
        assert_eq!(
            header(r#"{"header": "x", "delivery_id": [{"body_field": "id"}]}"#),
            Problem::new(
                "token.delivery_id[0]",
                "reads a JSON body's field: token.body must be json_object"
            )
        );
        assert_eq!(
            header(r#"{"header": "x", "dispatch_headers": ["a:b"]}"#).field,
            "token.dispatch_headers[0]"
        );
        assert_eq!(
            basic_auth(r#"{"header": "x"}"#)
                .map(|_| ())
                .unwrap_err()
                .field,
            "token.header"
        );
    }

    #[test]
    fn a_token_longer_than_any_provider_sends_is_refused_unread() {
        let raw = serde_json::from_str(r#"{"header": "X-Token"}"#).unwrap();
        let token = describe(
            "static_token",
            Credential::Header(String::new()),
            raw,
            vec![test_key("k", "t")],
        )
        .unwrap();
        let long = "t".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            judge_with(&token, &[("x-token", &long)], "{}").err(),
            Some(Reason::MalformedHeader)
        );
        assert_eq!(
            judge_with(&token, &[("x-token", "t")], "{}").unwrap().key,
            "k"
        );
    }
}
