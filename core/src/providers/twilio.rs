//! Twilio: `X-Twilio-Signature: <base64>` = HMAC-SHA1 with the account's Auth Token over
//! the full URL Twilio requested (the public origin, then the path and query as sent),
//! followed, for a form POST, by every parameter's name and value (decoded; names sorted,
//! each name's values sorted and de-duplicated, nothing between them). A JSON body is
//! signed through the URL instead: Twilio adds `bodySHA256=<hex SHA-256 of the body>` to
//! the query, and the body must hash to it.
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | the signature | origin ‖ path and query ‖ the rendered form parameters; or, for JSON, origin ‖ the path with `bodySHA256` (and the body, signed through its hash) | none: nothing is timed | a form, or JSON with `bodySHA256` | method, content type, the signature settings header; for a form, the raw body (`a=b&c` and `c&a=b` sign alike) |
//!
//! The URL is tried with the origin's port and without it (with the default port when it
//! has none), the two forms Twilio's own validator tries, and no other.

use sha2::{Digest, Sha256};

use crate::keys::{macs_equal, Key};
use crate::providers::entry::{required_origin, Entry, Field};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{base64, Outgoing, Signer, Signing};
use crate::providers::{
    base64_exact, form_pairs, hex, key_names, malformed, mismatch, required, AtHeaders, Body,
    Checks, ContentType, Json, Media, Provider, Signed, Verified,
};
use crate::request::RequestHead;
use crate::verdict::{Reason, Rejection};

pub const HEADER: &str = "x-twilio-signature";

#[derive(Debug)]
pub struct Twilio {
    /// The public origin with its port (the default one when it names none), and without.
    pub origins: [String; 2],
    pub keys: Vec<Key>,
}

impl Twilio {
    /// `origin` is `scheme://host[:port]`, checked by the configuration.
    pub fn new(origin: &str, keys: Vec<Key>) -> Self {
        let (scheme, authority) = origin.split_once("://").unwrap_or(("https", origin));
        let host_end = authority.rfind(']').map_or(0, |bracket| bracket + 1);
        let (host, port) = match authority[host_end..].rfind(':') {
            Some(colon) => authority.split_at(host_end + colon),
            None => (authority, if scheme == "http" { ":80" } else { ":443" }),
        };
        Twilio {
            origins: [
                format!("{scheme}://{host}{port}"),
                format!("{scheme}://{host}"),
            ],
            keys,
        }
    }
}

/// What Twilio signed after the origin and `:path` (as sent): the rendered form
/// parameters; and whether the body is signed whole: a JSON body is, through the
/// `bodySHA256` in the path.
fn signed(head: &RequestHead, body: &[u8]) -> Result<(Vec<u8>, bool), Rejection> {
    let params = |bytes: &[u8]| form_pairs(bytes, Reason::MalformedBody, "the query or form body");
    let body_hash = params(head.query())?
        .into_iter()
        .find(|(name, _)| name == "bodySHA256")
        .map(|(_, value)| value);
    let mut message = Vec::new();
    if let Some(expected) = body_hash {
        let actual = hex(&Sha256::digest(body));
        if !actual.as_bytes().eq_ignore_ascii_case(expected.as_bytes()) {
            return Err(mismatch("bodySHA256 of the body"));
        }
        return Ok((message, true));
    }
    if head.first(":method") != Some(b"GET") {
        // Twilio signs a JSON body only through `bodySHA256`: without it, nothing signed
        // covers one (and the application would read no parameters from a form here).
        if ContentType::of(head) == ContentType::Json {
            return Err(mismatch("a JSON body without bodySHA256 in the URL"));
        }
        let mut pairs = params(body)?;
        pairs.sort();
        pairs.dedup();
        for (name, value) in pairs {
            message.extend_from_slice(name.as_bytes());
            message.extend_from_slice(value.as_bytes());
        }
    }
    Ok((message, false))
}

fn signature(head: &RequestHead) -> Result<[u8; 20], Rejection> {
    base64_exact::<20>(required(head, HEADER)?)
        .ok_or_else(|| malformed(format!("{HEADER} is not base64 of 20 bytes (HMAC-SHA1)")))
}

pub const ENTRY: Entry = signs!(
    Entry::new("twilio", |settings| {
        let origin = required_origin("twilio", settings.public_origin)?;
        Ok(Box::new(Twilio::new(&origin, settings.keys)))
    })
    .reading(&[Field::PublicOrigin]),
    SIGNER
);

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// What Twilio sends: the base64 HMAC-SHA1 of the URL it calls (the public origin, the
/// path and query) and the sorted form parameters, as the verifier renders them; a JSON
/// body is signed through `bodySHA256=<hex SHA-256>`, added to the query.
#[cfg(any(test, feature = "sign"))]
pub fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key("twilio")?;
    out.content_type(ENTRY_MEDIA);
    out.default_header("i-twilio-idempotency-token", signing.id_or_uuid());
    let head = out.head();
    if ContentType::of(&RequestHead::new(&head)) == ContentType::Json
        && !out.path_and_query().contains("bodySHA256=")
    {
        let hash: [u8; 32] = Sha256::digest(&out.body).into();
        out.add_query(&format!("bodySHA256={}", hex(&hash)));
    }
    let head = out.head();
    let (params, _) = signed(&RequestHead::new(&head), &out.body).map_err(|r| r.detail)?;
    let origin = signing.origin_of(out);
    let path = out.path_and_query();
    let parts: [&[u8]; 3] = [origin.as_bytes(), path.as_bytes(), &params];
    out.signature(HEADER, "", &base64(&key.mac_sha1(&parts)));
    out.covers("message", &parts);
    Ok(())
}

/// A call-status callback, a form.
#[cfg(any(test, feature = "sign"))]
pub fn example(signing: &Signing) -> Vec<u8> {
    let sid = &hex(&signing.random)[..32];
    format!("AccountSid=AC{sid}&CallSid=CA{sid}&CallStatus=completed&From=%2B14155550123&To=%2B14155550100")
        .into_bytes()
}

/// Forms (and no body on a GET); JSON, of any shape, through `bodySHA256`.
const ENTRY_MEDIA: Media = Media {
    json: Some(Json::Either),
    form: true,
    text: false,
};

impl Provider for Twilio {
    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        signature(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let body = body.bytes;
        let signature = signature(head)?;
        let (params, body_signed) = signed(head, body)?;
        let path = head.first(":path").unwrap_or_default();
        let (key, origin) = self
            .keys
            .iter()
            .find_map(|key| {
                let origin = self.origins.iter().find(|origin| {
                    let mac = key.mac_sha1(&[origin.as_bytes(), path, &params]);
                    macs_equal(&mac, &signature)
                })?;
                Some((key, origin))
            })
            .ok_or_else(|| mismatch(HEADER))?;
        // A JSON body is signed whole through its hash: then it is part of the message.
        let last: &[u8] = if body_signed { body } else { &params };
        Ok(Verified {
            scheme: "twilio",
            key: &key.name,
            signed: Signed::over("twilio", &[origin.as_bytes(), path, last], body),
            time: None,
        })
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![("twilio", key_names(&self.keys))]
    }

    /// Forms (and no body on a GET); JSON, of any shape, through `bodySHA256`.
    fn media(&self) -> Media {
        ENTRY_MEDIA
    }

    /// Which key and hash signed (a Webhook Rule's SharedKey). Not the idempotency token:
    /// Twilio's genuine repeats carry a new one.
    fn dispatch_headers(&self) -> Vec<&str> {
        vec!["x-twilio-webhooks-signature-settings"]
    }

    /// The same digits pressed twice in one `<Gather>`, a `<Redirect>` loop: Twilio sends
    /// identical signed requests as new ones.
    fn repeats(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::providers::sign::Signing;
    use crate::request::headers;

    fn check(
        origin: &str,
        method: &str,
        path: &str,
        signature: &str,
        body: &str,
    ) -> Result<bool, Reason> {
        let twilio = Twilio::new(origin, vec![test_key("token", "12345")]);
        let content_type = if body.starts_with('{') {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let h = headers(&[
            (":method", method),
            (":path", path),
            (HEADER, signature),
            ("content-type", content_type),
        ]);
        let head = RequestHead::new(&h);
        twilio
            .at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        // Whether the signed message covers the body whole (else the fingerprint binds it).
        twilio
            .at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .map(|v| v.signed.covers_body())
            .map_err(|r| r.reason)
    }

    // providers.md §4 row 6a: Twilio's documented example.
    const FORM: &str = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";

    #[test]
    fn twilios_documented_form_example_verifies_with_and_without_the_default_port() {
        let signature = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
        for origin in ["https://mycompany.com", "https://mycompany.com:443"] {
            let covers_body =
                check(origin, "POST", "/myapp.php?foo=1&bar=2", signature, FORM).unwrap();
            assert!(!covers_body, "the form's raw encoding is not signed");
        }
        // Parameter order and encoding do not matter; values do.
        let reordered = "To=%2B18005551212&From=%2B12349013030&Digits=1234&Caller=+12349013030&CallSid=CA1234567890ABCDE";
        assert!(check(
            "https://mycompany.com",
            "POST",
            "/myapp.php?foo=1&bar=2",
            signature,
            reordered
        )
        .is_err());
        let shuffled = "To=%2B18005551212&From=%2B12349013030&Digits=1234&Caller=%2B12349013030&CallSid=CA1234567890ABCDE";
        assert!(check(
            "https://mycompany.com",
            "POST",
            "/myapp.php?foo=1&bar=2",
            signature,
            shuffled
        )
        .is_ok());
        assert_eq!(
            check(
                "https://mycompany.com",
                "POST",
                "/myapp.php?foo=1&bar=3",
                signature,
                FORM
            ),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(
            check(
                "https://mycompany.com",
                "POST",
                "/myapp.php?foo=1&bar=2",
                signature,
                &FORM.replace("1234&", "1235&")
            ),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(
            check(
                "https://other.com",
                "POST",
                "/myapp.php?foo=1&bar=2",
                signature,
                FORM
            ),
            Err(Reason::SignatureMismatch)
        );
    }

    #[test]
    fn a_json_body_is_signed_through_its_hash_in_the_url() {
        // providers.md §4 row 6b.
        let path = "/myapp.php?bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let body = r#"{"property": "value", "boolean": true}"#;
        let covers_body = check(
            "https://mycompany.com",
            "POST",
            path,
            "y77kIzt2vzLz71DgmJGsen2scGs=",
            body,
        )
        .unwrap();
        assert!(covers_body, "signed whole through its hash");
        assert_eq!(
            check(
                "https://mycompany.com",
                "POST",
                path,
                "y77kIzt2vzLz71DgmJGsen2scGs=",
                r#"{"property": "value", "boolean": false}"#
            ),
            Err(Reason::SignatureMismatch)
        );
    }

    #[test]
    fn the_signer_reproduces_both_documented_examples_and_its_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge, signed};
        use crate::providers::sign::KeyMaterial;
        let mut signing = Signing::new(KeyMaterial::Secret("12345"), 0);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let form = signed(&SIGNER, &signing, url, Some(FORM.as_bytes()));
        assert_eq!(form.header(HEADER), Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
        // Row 6b: the hash goes into the query, the URL is signed.
        let body = r#"{"property": "value", "boolean": true}"#;
        let json = signed(
            &SIGNER,
            &signing,
            "https://mycompany.com/myapp.php",
            Some(body.as_bytes()),
        );
        assert_eq!(
            json.url,
            "https://mycompany.com/myapp.php?bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
        );
        assert_eq!(json.header(HEADER), Some("y77kIzt2vzLz71DgmJGsen2scGs="));
        // Sent to another address than the one Twilio calls: signed for the public one.
        signing.origin = Some("https://mycompany.com");
        let twilio = Twilio::new("https://mycompany.com", vec![test_key("token", "12345")]);
        for body in [None, Some(body.as_bytes())] {
            let out = signed(&SIGNER, &signing, "https://127.0.0.1:9/voice?x=1", body);
            assert_eq!(judge(&twilio, &out), Ok(("twilio/token".into(), None)));
            assert_eq!(
                judge(&twilio, &changed_body(&out)),
                Err(Reason::SignatureMismatch)
            );
        }
    }

    #[test]
    fn a_non_default_port_is_tried_as_is_and_without() {
        let twilio = Twilio::new("https://127.0.0.1:8443", vec![]);
        assert_eq!(
            twilio.origins,
            [
                "https://127.0.0.1:8443".to_string(),
                "https://127.0.0.1".to_string()
            ]
        );
        let twilio = Twilio::new("http://[::1]", vec![]);
        assert_eq!(
            twilio.origins,
            ["http://[::1]:80".to_string(), "http://[::1]".to_string()]
        );
    }

    #[test]
    fn malformed_signatures_are_400_and_missing_401() {
        assert_eq!(
            check("https://a.com", "POST", "/", "not base64!", ""),
            Err(Reason::MalformedHeader)
        );
        assert_eq!(
            check("https://a.com", "POST", "/", "AAAA", ""),
            Err(Reason::MalformedHeader)
        );
    }
}
