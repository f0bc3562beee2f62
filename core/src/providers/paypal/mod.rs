//! PayPal's REST webhooks: RSA PKCS#1 v1.5 with SHA-256 under the certificate
//! `PAYPAL-CERT-URL` names (fetched by the filter, see [`crate::remote_key`]), over
//! `transmission id|transmission time|webhook id|CRC-32 of the body`.
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | `PAYPAL-TRANSMISSION-ID` (a lowercase UUID), `-TIME` (`YYYY-MM-DDTHH:MM:SSZ`), `-SIG` (base64), `PAYPAL-CERT-URL` (`https://api.paypal.com/v1/notifications/certs/CERT-<8 hex>-<8 hex>-<8 hex>`), `PAYPAL-AUTH-ALGO` (`SHA256withRSA` only) | `id\|time\|webhook id\|decimal unsigned CRC-32 of the raw body` | the transmission time, 15 minutes by default (PayPal states none) | a JSON object | method, path, query, content type, `PAYPAL-CERT-URL`, `-AUTH-ALGO`, `-AUTH-VERSION` **and the body** |
//!
//! The route's keys are its webhook ids (the id PayPal gave the webhook, not a secret: it
//! is in no request, and PayPal signs it so that a delivery to another webhook does not
//! verify here). **The body is signed only through its CRC-32**, which anyone can make a
//! second body match: what the filter can promise is that the transmission is PayPal's,
//! for this webhook, fresh and delivered once, and (the fingerprint binding the body) that
//! a second body under the same transmission is `replay_tampered`; not that the body is
//! the one PayPal sent, if the genuine transmission never reached this filter first.

#[cfg(any(test, feature = "sign"))]
use base64::Engine;

use crate::keys::Key;
use crate::providers::entry::{remembering, Entry, Field, Problem, Secret, Settings};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{Covered, KeyMaterial, Outgoing, Role, Signer, Signing};
use crate::providers::{
    key_names, mismatch, required, shaped, utc_seconds, AtHeaders, Body, Checks, Media, Prior,
    Provider, Signed, Time, Verified, UUID,
};
use crate::remote_key::{self, Fetch, RsaHash, Shape, Source};
use crate::request::RequestHead;
use crate::timestamp::{Edges, Freshness, Stamp};
use crate::verdict::{Reason, Rejection};

pub const SCHEME: &str = "paypal";

/// PayPal's signing certificates: on its live API host (a sandbox route adds
/// `api.sandbox.paypal.com`), at `/v1/notifications/certs/CERT-...`, issued to its message
/// verification host (what PayPal's Java SDK requires of them): the sandbox's only on the
/// sandbox's host, so that a live route never takes a sandbox signature.
const CERTIFICATES: Shape = Shape {
    hosts: &["api.paypal.com"],
    path: is_certificate_path,
    subjects: |host| match host {
        "api.sandbox.paypal.com" => &["messageverificationcerts.sandbox.paypal.com"],
        _ => &["messageverificationcerts.paypal.com"],
    },
};

/// PayPal states no window and re-signs each attempt (a new transmission id and time):
/// Stripe's five minutes, tripled for clocks and queues.
pub const WINDOW: Freshness = Freshness {
    max_age_secs: 900,
    max_future_secs: 300,
    required: true,
    edges: Edges::Exact,
};

/// The headers PayPal sends that its signature does not cover.
const UNSIGNED: [&str; 3] = ["paypal-cert-url", "paypal-auth-algo", "paypal-auth-version"];

/// The longest webhook id accepted (PayPal's are 17 characters).
const MAX_WEBHOOK_ID: usize = 50;

pub const ENTRY: Entry = signs!(
    Entry::new(SCHEME, compile)
        .reading(&[Field::Certificate])
        .secret(Secret::Identifier),
    SIGNER
);

#[derive(Debug)]
pub struct PayPal {
    /// The webhooks accepted: each key's identifier is a webhook id.
    webhooks: Vec<Key>,
    source: Source,
}

fn compile(settings: Settings) -> Result<Box<dyn Provider>, Problem> {
    for (i, key) in settings.keys.iter().enumerate() {
        let id = key.identifier().unwrap_or_default();
        if id.is_empty()
            || id.len() > MAX_WEBHOOK_ID
            || !id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(Problem::new(
                format!("keys[{i}]"),
                "is not a PayPal webhook id (uppercase letters and digits, as 4JH86294D6297924G)",
            ));
        }
    }
    remembering(
        SCHEME,
        settings.replay,
        "PayPal signs the body only through its CRC-32, and the replay memory is what binds a body to its transmission",
    )?;
    let source = Source::compile(
        Field::Certificate.name(),
        settings.certificate,
        &CERTIFICATES,
    )?;
    if source.confirms {
        return Err(Problem::new(
            "certificate.confirm_subscriptions",
            "applies only to scheme sns (PayPal has no subscription to confirm)",
        ));
    }
    Ok(Box::new(PayPal {
        webhooks: settings.keys,
        source,
    }))
}

/// A transmission whose headers are all in PayPal's format.
struct Transmission<'r> {
    id: &'r [u8],
    time_text: &'r [u8],
    time: Stamp,
    signature: Vec<u8>,
    fetch: Fetch,
}

fn malformed(what: &str) -> Rejection {
    Rejection::new(Reason::MalformedHeader, what.to_string())
}

impl PayPal {
    /// Reads and checks every header: done before the body and any certificate fetch, so
    /// that a forgery costs no I/O unless it is in PayPal's exact format.
    fn read<'r>(&self, head: &'r RequestHead) -> Result<Transmission<'r>, Rejection> {
        let signature = required(head, "paypal-transmission-sig")?;
        let id = required(head, "paypal-transmission-id")?;
        let time_text = required(head, "paypal-transmission-time")?;
        let url = required(head, "paypal-cert-url")?;
        let algorithm = required(head, "paypal-auth-algo")?;
        if !shaped(id, UUID) {
            return Err(malformed("paypal-transmission-id is not a lowercase UUID"));
        }
        let time = timestamp_of(time_text)?;
        // SHA1withRSA, which PayPal's Python SDK also maps, is not what PayPal signs with.
        if algorithm != b"SHA256withRSA" {
            return Err(malformed("paypal-auth-algo is not SHA256withRSA"));
        }
        let signature = remote_key::rsa_signature(signature).ok_or_else(|| {
            malformed("paypal-transmission-sig is not base64 of an RSA signature")
        })?;
        let fetch = self
            .source
            .locate(url)
            .map_err(|rejection| malformed(&format!("paypal-cert-url: {}", rejection.detail)))?;
        Ok(Transmission {
            id,
            time_text,
            time,
            signature,
            fetch,
        })
    }
}

/// `/v1/notifications/certs/CERT-<8>-<8>-<8 lowercase hex>`, as PayPal names its
/// certificates.
fn is_certificate_path(path: &str) -> bool {
    path.strip_prefix("/v1/notifications/certs/CERT-")
        .is_some_and(|name| shaped(name.as_bytes(), b"xxxxxxxx-xxxxxxxx-xxxxxxxx"))
}

/// `YYYY-MM-DDTHH:MM:SSZ`, exactly as PayPal writes it.
fn timestamp_of(text: &[u8]) -> Result<Stamp, Rejection> {
    utc_seconds(text)
        .ok_or_else(|| malformed("paypal-transmission-time is not YYYY-MM-DDTHH:MM:SSZ"))
}

/// CRC-32 (IEEE 802.3, zlib's), as PayPal sums the body.
fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut bit = 0;
            while bit < 8 {
                c = if c & 1 == 1 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                bit += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |crc, &b| {
        TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
    })
}

/// The signed message's parts for one webhook id: `id|time|webhook id|crc`.
fn signed_parts<'a>(
    transmission: &Transmission<'a>,
    webhook: &'a str,
    crc: &'a str,
) -> [&'a [u8]; 7] {
    [
        transmission.id,
        b"|",
        transmission.time_text,
        b"|",
        webhook.as_bytes(),
        b"|",
        crc.as_bytes(),
    ]
}

impl Provider for PayPal {
    fn time(&self) -> Time {
        Time::Signed(WINDOW)
    }

    fn at_headers(&self, head: &RequestHead, _checks: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        self.read(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn remote_key(
        &self,
        head: &RequestHead,
        _body: &[u8],
    ) -> Result<Option<(Fetch, Stamp)>, Rejection> {
        let transmission = self.read(head)?;
        Ok(Some((transmission.fetch, transmission.time)))
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _checks: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let transmission = self.read(head)?;
        let Some(Prior::Fetched(key)) = body.prior else {
            return Err(Rejection::new(
                Reason::KeyUnavailable,
                "the signing certificate was not fetched",
            ));
        };
        let crc = crc32(body.bytes).to_string();
        for webhook in &self.webhooks {
            let id = webhook.identifier().unwrap_or_default();
            let parts = signed_parts(&transmission, id, &crc);
            let message = parts.concat();
            if remote_key::rsa_verifies(key, RsaHash::Sha256, &message, &transmission.signature) {
                return Ok(Verified {
                    scheme: SCHEME,
                    key: &webhook.name,
                    signed: Signed::over(SCHEME, &parts, body.bytes),
                    time: Some(transmission.time),
                });
            }
        }
        Err(mismatch("paypal-transmission-sig"))
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![(SCHEME, key_names(&self.webhooks))]
    }

    fn media(&self) -> Media {
        Media::JSON_OBJECT
    }

    fn dispatch_headers(&self) -> Vec<&str> {
        UNSIGNED.to_vec()
    }
}

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// The demo's signing certificate and its private key: the simulator signs as PayPal with
/// it, and the demo's certificate server serves it (nothing of PayPal's).
#[cfg(any(test, feature = "sign"))]
pub const DEMO_CERTIFICATE: &str = include_str!("demo-certificate.pem");
#[cfg(any(test, feature = "sign"))]
const DEMO_KEY: &str = include_str!("demo-key.pem");
/// The path the demo's certificate is served at, on PayPal's API host.
#[cfg(any(test, feature = "sign"))]
pub const DEMO_CERTIFICATE_PATH: &str = "/v1/notifications/certs/CERT-00000000-00000000-0000de30";

/// A PayPal event (a completed capture), unsigned.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let digits = crate::providers::sign::digits(&signing.random, 17);
    let (date, time) = crate::providers::sign::civil(signing.now);
    serde_json::json!({"id": format!("WH-{digits}"), "event_version": "1.0",
        "create_time": format!("{date}T{time}.000Z"), "resource_type": "capture",
        "event_type": "PAYMENT.CAPTURE.COMPLETED", "summary": "Payment completed for $ 20.0 USD",
        "resource": {"id": "4EU7004268015634R", "status": "COMPLETED", "note": "café",
            "amount": {"currency_code": "USD", "value": "20.00"}}})
    .to_string()
    .into_bytes()
}

/// What PayPal sends: the body with the transmission headers, signed with the demo's key,
/// whose certificate the URL names on PayPal's live host.
#[cfg(any(test, feature = "sign"))]
fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let KeyMaterial::Secret(webhook) = signing.key else {
        return Err("paypal: the key is the webhook id, not a private key".into());
    };
    let id = signing.id_or_uuid();
    let (date, time) = crate::providers::sign::civil(signing.now);
    let stamp = format!("{date}T{time}Z");
    let crc = crc32(&out.body).to_string();
    let signed = [id.as_str(), &stamp, webhook, &crc].join("|").into_bytes();
    let signature = crate::providers::sign::rsa_sign(DEMO_KEY, RsaHash::Sha256, &signed)?;
    out.set("content-type", "application/json", Role::Plain);
    out.set("paypal-transmission-id", id, Role::Plain);
    out.set("paypal-transmission-time", stamp, Role::Plain);
    out.set(
        "paypal-transmission-sig",
        base64::engine::general_purpose::STANDARD.encode(signature),
        Role::Signature { at: 0 },
    );
    out.set(
        "paypal-cert-url",
        format!("https://api.paypal.com{DEMO_CERTIFICATE_PATH}"),
        Role::Plain,
    );
    out.set("paypal-auth-algo", "SHA256withRSA", Role::Plain);
    out.set("paypal-auth-version", "v2", Role::Plain);
    out.signed.push(Covered {
        what: "transmission",
        parent: false,
        message: signed,
    });
    Ok(())
}

#[cfg(test)]
mod tests;
