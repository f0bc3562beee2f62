//! Vobiz, byte-exact to `vobiz-signatures.md`: voice callbacks (V2/V3 and the main-account
//! variants), WhatsApp webhooks and KYC webhooks. What each scheme does on the seam:
//!
//! | scheme | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- | --- |
//! | voice | signature + nonce (20 digits) pairs; the docs' V3/V2 verifies here | origin ‖ path (‖ `.`) ‖ nonce; the SDK's V3: the URL with the sorted query and form parameters ‖ `.` ‖ nonce | the unsigned `timestamp` parameter, only where the route checks it | a form | method, path, query, content type, body |
//! | whatsapp | `X-Webhook-Signature` (hex) | the body | `occurred_at` | a JSON object | method, path, query, content type, `X-Webhook-Event` |
//! | kyc | `X-Vobiz-Signature: sha256=` (hex) | the body | none | a JSON object (the parent token also signs voice: no voice base string is one) | method, path, query, content type |

#[cfg(test)]
mod guard_tests;
pub mod kyc;
pub mod sdk_v3;
pub mod voice;
pub mod whatsapp;

use crate::keys::Key;
use crate::providers::body_mac::BodySigned;
use crate::providers::entry::{required_origin, Entry, Field, Problem, Settings};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Outgoing, Signer, Signing};
use crate::providers::{
    form_pairs, key_names, AtHeaders, Body, Checks, Hashed, Media, Provider, StreamedMac, Time,
    Verified,
};
use crate::request::RequestHead;
use crate::timestamp::{self, Freshness, Stamp};
use crate::verdict::{Reason, Rejection};
use voice::{Brand, Family, Message, Pairs, V3Construction, VoiceScheme};

/// Nonce-signed voice callbacks: public origin, parent keys, families, constructions.
const VOICE_FIELDS: &[Field] = &[
    Field::PublicOrigin,
    Field::ParentKeys,
    Field::Accept,
    Field::V3Construction,
    Field::FreshnessRequire,
];

pub const VOICE: Entry = signs!(
    Entry::new("vobiz_voice", |settings| {
        voice_scheme(Brand::Vobiz, "vobiz_voice", settings)
    })
    .reading(VOICE_FIELDS),
    Signer {
        sign: |signing, out| sign_voice(Brand::Vobiz, signing, out),
        example: voice_example,
    }
);

pub const PLIVO: Entry = signs!(
    Entry::new("plivo", |settings| {
        voice_scheme(Brand::Plivo, "plivo", settings)
    })
    .reading(VOICE_FIELDS),
    Signer {
        sign: |signing, out| sign_voice(Brand::Plivo, signing, out),
        example: voice_example,
    }
);

pub const WHATSAPP: Entry = signs!(
    Entry::new("vobiz_whatsapp", |settings| {
        Ok(Box::new(WhatsApp {
            keys: settings.keys,
        }))
    }),
    whatsapp::SIGNER
);

pub const KYC: Entry = signs!(
    Entry::new("vobiz_kyc", |settings| {
        Ok(Box::new(kyc_scheme(settings.keys)))
    }),
    kyc::SIGNER
);

/// A voice callback signed with the account token: Vobiz's V3 over the docs' base URL,
/// Plivo's V3 as its SDK signs it (the only one a `plivo` route accepts), the nonce the
/// given id or 20 random digits.
#[cfg(any(test, feature = "sign"))]
fn sign_voice(brand: Brand, signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let scheme = match brand {
        Brand::Vobiz => "vobiz_voice",
        Brand::Plivo => "plivo",
    };
    let key = signing.text_key(scheme)?;
    let nonce = signing.id_or(|random| sign::digits(random, voice::NONCE_DIGITS));
    let origin = signing.origin_of(out);
    voice::Sender {
        brand,
        origin: &origin,
        families: &[Family::V3],
        sdk: brand == Brand::Plivo,
        key: Some(&key),
        parent_key: None,
        nonce_v3: &nonce,
        nonce_v2: &nonce,
    }
    .sign(out)
}

#[cfg(any(test, feature = "sign"))]
fn voice_example(signing: &Signing) -> Vec<u8> {
    voice::example_form(&signing.uuid(), signing.now, 0).into_bytes()
}

fn voice_scheme(
    brand: Brand,
    scheme: &str,
    settings: Settings,
) -> Result<Box<dyn Provider>, Problem> {
    let origin = required_origin(scheme, settings.public_origin)?;
    let (keys, parent_keys) = (settings.keys, settings.parent_keys);
    if keys.is_empty() && parent_keys.is_empty() {
        return Err(Problem::new(
            "keys",
            "no keys configured: give keys (account auth token) and/or parent_keys (main account token)",
        ));
    }
    let families = accepted(settings.accept, &keys, &parent_keys, settings.replay)?;
    let v3 = match (brand, settings.v3_construction) {
        // Plivo signs V3 as its SDK does, and its SDK accepts nothing else: the docs'
        // construction would let a signature over a request without parameters verify
        // the same URL with any body, query or method.
        (Brand::Plivo, None | Some(V3Construction::Sdk)) => V3Construction::Sdk,
        (Brand::Plivo, Some(_)) => {
            return Err(Problem::new(
                "v3_construction",
                "must be sdk for scheme plivo: Plivo signs V3 only as its SDK does",
            ))
        }
        (Brand::Vobiz, construction) => construction.unwrap_or_default(),
    };
    Ok(Box::new(VoiceScheme {
        brand,
        origin,
        families,
        v3,
        keys,
        parent_keys,
    }))
}

/// WhatsApp webhooks: the subscription secrets.
#[derive(Debug)]
pub struct WhatsApp {
    pub keys: Vec<Key>,
}

/// KYC webhooks: `X-Vobiz-Signature: sha256=<hex>` of the body with a parent account token.
pub fn kyc_scheme(keys: Vec<Key>) -> BodySigned {
    BodySigned {
        scheme: "kyc",
        mac: kyc::SCHEME,
        keys,
        // A JSON event, never anything else: the parent token also signs voice callbacks,
        // and no voice base string is a JSON object.
        media: Media::JSON_OBJECT,
        dispatch: &[],
    }
}

/// Explicit families must each have keys; the default is every family that has keys.
fn accepted(
    accept: Option<Vec<Family>>,
    keys: &[Key],
    parent_keys: &[Key],
    replay: bool,
) -> Result<Vec<Family>, Problem> {
    let field = "accept";
    let has_keys = |family: Family| {
        if family.uses_parent_key() {
            !parent_keys.is_empty()
        } else {
            !keys.is_empty()
        }
    };
    let Some(families) = accept else {
        // With replay protection, only the V3 nonce is remembered (see below).
        let default = Family::ALL.into_iter().filter(|&f| has_keys(f));
        return Ok(default.filter(|f| !replay || f.is_v3()).collect());
    };
    if families.is_empty() {
        return Err(Problem::new(
            field,
            "must list at least one of v3, v2, ma_v3, ma_v2",
        ));
    }
    for (i, &family) in families.iter().enumerate() {
        if families[..i].contains(&family) {
            return Err(Problem::new(
                field,
                format!("{} is listed twice", family.name()),
            ));
        }
        if replay && family.is_v3() != families[0].is_v3() {
            // Vobiz signs V2 and V3 with different nonces: a captured callback replayed with
            // only its V2 headers would carry a nonce the cache never saw.
            return Err(Problem::new(
                field,
                "with replay protection, accept either V3 families (v3, ma_v3) or V2 families (v2, ma_v2), not both: they use different nonces",
            ));
        }
        if !has_keys(family) {
            let needed = if family.uses_parent_key() {
                "parent_keys"
            } else {
                "keys"
            };
            return Err(Problem::new(
                field,
                format!("{} needs {needed}, and none are configured", family.name()),
            ));
        }
    }
    Ok(families)
}

impl Provider for VoiceScheme {
    fn time(&self) -> Time {
        Time::Unsigned
    }

    fn at_headers(&self, head: &RequestHead, checks: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        let pairs = self.read_pairs(head)?;
        let sdk_possible = self.v3 != V3Construction::Docs && pairs.has_v3();
        let path = head.path_without_query();
        match self.check(&pairs, Message::Docs { path }) {
            // The body step would try the docs' message first too: nothing to wait for.
            Some(verified) => Ok(AtHeaders::Verified {
                scheme: verified.scheme(),
                key: verified.key,
            }),
            None if !sdk_possible => Err(self.mismatch(&pairs, path, None, checks)),
            None => Ok(AtHeaders::NeedBody),
        }
    }

    /// The docs' V3/V2 verified at the headers: its message is rebuilt, not verified again.
    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        checks: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let verified = body.verified().and_then(|(scheme, key)| {
            let (family, signed) = self.verified_message(head, scheme)?;
            let key = self.keys_for(family).iter().find(|k| k.name == key)?;
            Some(voice::Verified {
                family,
                sdk: false,
                key: &key.name,
                signed,
            })
        });
        let verified = match verified {
            Some(verified) => verified,
            // Nothing verified at the headers, or not what they reported: judge from scratch.
            None => self.verify_with_body(head, body.bytes, checks)?,
        };
        completed(verified, head, body.bytes, checks)
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        VoiceScheme::schemes(self)
            .into_iter()
            .map(|(scheme, keys)| (scheme, key_names(keys)))
            .collect()
    }

    /// Vobiz and Plivo send their parameters as a form (a GET has none in its body).
    fn media(&self) -> Media {
        Media::FORM
    }
}

/// A verified voice request with what its body adds: the unsigned timestamp where the
/// route checks freshness. The body is never signed (the SDK's V3 signs the decoded
/// parameters: `a=b` and `a&b` sign alike), so the fingerprint binds its raw bytes.
fn completed<'p>(
    verified: voice::Verified<'p>,
    head: &RequestHead,
    body: &[u8],
    checks: &Checks,
) -> Result<Verified<'p>, Rejection> {
    let time = match checks.freshness {
        Some(freshness) => voice_timestamp(head, body, freshness.required)?,
        None => None,
    };
    Ok(Verified {
        scheme: verified.scheme(),
        key: verified.key,
        signed: verified.signed,
        time: time.map(Stamp::secs),
    })
}

impl VoiceScheme {
    /// The docs' V3/V2 where allowed, else the SDK's V3 over the request's parameters.
    fn verify_with_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &[u8],
        checks: &Checks,
    ) -> Result<voice::Verified<'p>, Rejection> {
        let pairs = self.read_pairs(head)?;
        let path = head.path_without_query();
        if let Some(verified) = self.check(&pairs, Message::Docs { path }) {
            return Ok(verified);
        }
        let mut sdk_url = None;
        if self.v3 != V3Construction::Docs && pairs.has_v3() {
            let method = head.first(":method").and_then(sdk_v3::Method::from_bytes);
            if let Some(method) = method {
                let params = match method {
                    sdk_v3::Method::Post => form_pairs(body, Reason::MalformedBody, "form body")?,
                    sdk_v3::Method::Get => Vec::new(),
                };
                let path = head.first(":path").unwrap_or_default();
                let url = sdk_v3::signed_url(method, self.origin.as_bytes(), path, &params)?;
                if let Some(verified) = self.check(&pairs, Message::Sdk { url: &url }) {
                    return Ok(verified);
                }
                sdk_url = Some(url);
            }
        }
        Err(self.mismatch(&pairs, path, sdk_url.as_deref(), checks))
    }

    /// The failure of a voice request; with `explain`, a mismatch names the exact strings
    /// that were checked, so a proxy that changed scheme, host or path shows at once.
    fn mismatch(
        &self,
        pairs: &Pairs,
        path: &[u8],
        sdk_url: Option<&[u8]>,
        checks: &Checks,
    ) -> Rejection {
        let rejection = pairs.failure();
        if !checks.explain || rejection.reason != Reason::SignatureMismatch {
            return rejection;
        }
        let mut detail = format!(
            "{}; signed {}",
            rejection.detail,
            pairs.docs_messages(&self.origin, path)
        );
        if let Some(url) = sdk_url {
            detail.push_str(&format!(" sdk_url=\"{}\"", url.escape_ascii()));
        }
        Rejection::new(rejection.reason, detail)
    }
}

/// The voice `timestamp` parameter (body for POST, query for GET). Unsigned, so only a
/// sanity check: an absent one passes unless the route requires it.
fn voice_timestamp(
    head: &RequestHead,
    body: &[u8],
    required: bool,
) -> Result<Option<i64>, Rejection> {
    let source = if head.first(":method") == Some(b"GET") {
        head.query()
    } else {
        body
    };
    let params = form_pairs(source, Reason::MalformedBody, "form body")?;
    match params.iter().find(|(name, _)| name == "timestamp") {
        Some((_, value)) => timestamp::parse_assume_utc(value.as_bytes())
            .map(Some)
            .ok_or_else(|| {
                Rejection::new(
                    Reason::MalformedBody,
                    "timestamp is not an ISO 8601 date-time",
                )
            }),
        None if required => Err(Rejection::new(
            Reason::MissingTimestamp,
            "no timestamp parameter",
        )),
        None => Ok(None),
    }
}

impl Provider for WhatsApp {
    /// `occurred_at` is signed: an hour old at most, five minutes ahead.
    fn time(&self) -> Time {
        Time::Signed(Freshness {
            max_age_secs: 3600,
            max_future_secs: 300,
            required: true,
            edges: timestamp::Edges::Exact,
        })
    }

    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        whatsapp::SCHEME.signature(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn streamed_mac(&self, _: &RequestHead) -> Option<StreamedMac<'_>> {
        Some(StreamedMac::body(&self.keys))
    }

    fn check_hashed(&self, head: &RequestHead, hashed: &Hashed) -> Result<(), Rejection> {
        whatsapp::SCHEME
            .verify_macs(&self.keys, head, hashed.macs.iter().copied())
            .map(|_| ())
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let hashed = &*body.hashed(self.streamed_mac(head));
        let body = body.bytes;
        let verified = whatsapp::verify_hashed(&self.keys, head, body, &hashed.macs)?;
        Ok(Verified::streamed(
            "whatsapp",
            verified.key,
            hashed,
            Some(Stamp::secs(verified.event.occurred_at)),
        ))
    }

    fn dispatch_headers(&self) -> Vec<&str> {
        vec!["x-webhook-event"]
    }

    fn media(&self) -> Media {
        Media::JSON_OBJECT
    }

    /// The envelope is read from the whole body, a UTF-8 JSON object.
    fn parses_body(&self) -> bool {
        true
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![("whatsapp", key_names(&self.keys))]
    }
}
