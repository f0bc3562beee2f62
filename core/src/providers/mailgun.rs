//! Mailgun: the signature travels in the body, `{"signature": {"timestamp", "token",
//! "signature"}, "event-data": {...}}` (legacy form posts carry the three as fields), and
//! is hex HMAC-SHA256 over `timestamp ‖ token` with the webhook signing key.
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | nothing (all in the body) | timestamp ‖ token (50 characters) | the timestamp (15 min past, the SDK's; 5 min ahead) | a JSON object or a form, read by its `Content-Type` | method, path, query, content type **and the body** |
//!
//! **The event data is not signed.** Whoever has seen one delivery can attach its
//! `(timestamp, token, signature)` to any body until the window closes. What the filter
//! can promise: the triple is Mailgun's, fresh, and delivered once; the replay fingerprint
//! binds the body, so the same token with another body is `replay_tampered`. What it
//! cannot: that the body is the one Mailgun sent, if the genuine delivery never reached
//! this filter first.

use std::borrow::Cow;

use serde_json::Value;

use crate::form;
use crate::keys::Key;
use crate::providers::body_mac::parse_hex;
use crate::providers::entry::{remembering, Entry};
#[cfg(any(test, feature = "sign"))]
use crate::providers::hex;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{with_member, Outgoing, Signer, Signing};
use crate::providers::{
    any_key, form_pairs, key_names, mismatch, unix_seconds, AtHeaders, Body, Checks, ContentType,
    Media, Provider, Signed, Time, Verified,
};
use crate::request::RequestHead;
use crate::timestamp::Stamp;
use crate::timestamp::{Edges, Freshness};
use crate::verdict::{Reason, Rejection};

/// Mailgun's tokens are 50 characters long (its docs), lowercase hex in every delivery:
/// fixed, so that no digit of the timestamp before it can move into it.
const TOKEN_BYTES: usize = 50;

#[derive(Debug)]
pub struct Mailgun {
    pub keys: Vec<Key>,
}

/// The signature block, from a JSON body or a form body.
struct Block<'r> {
    timestamp: Cow<'r, [u8]>,
    token: Cow<'r, [u8]>,
    signature: [u8; 32],
}

/// A field check's refusal, about the body rather than a header.
fn in_body(rejection: Rejection) -> Rejection {
    Rejection::new(Reason::MalformedBody, rejection.detail)
}

fn missing(what: &str) -> Rejection {
    Rejection::new(Reason::MissingSignature, format!("body has no {what}"))
}

/// The signature block, read as the application reads the body: by its `Content-Type`.
fn read(content_type: ContentType, body: &[u8]) -> Result<Block<'_>, Rejection> {
    let fields: [Option<Vec<u8>>; 3] = if content_type == ContentType::Json {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| Rejection::new(Reason::MalformedBody, "body is not JSON"))?;
        let block = value
            .get("signature")
            .ok_or_else(|| missing("signature block"))?;
        ["timestamp", "token", "signature"].map(|name| match block.get(name) {
            Some(Value::String(text)) => Some(text.clone().into_bytes()),
            Some(Value::Number(number)) => Some(number.to_string().into_bytes()),
            _ => None,
        })
    } else {
        let pairs = form_pairs(body, Reason::MalformedBody, "form body")?;
        let mut fields = [None, None, None];
        for (field, name) in fields.iter_mut().zip(["timestamp", "token", "signature"]) {
            let value = form::single(&pairs, name).map_err(|_| {
                Rejection::new(
                    Reason::MalformedBody,
                    format!("form field {name} appears more than once"),
                )
            })?;
            *field = value.map(|v| v.as_bytes().to_vec());
        }
        fields
    };
    let [timestamp, token, signature] = fields;
    let timestamp = timestamp.ok_or_else(|| missing("signature timestamp"))?;
    let token = token.ok_or_else(|| missing("signature token"))?;
    let signature = signature.ok_or_else(|| missing("signature"))?;
    if token.len() != TOKEN_BYTES || !token.iter().all(u8::is_ascii_alphanumeric) {
        return Err(Rejection::new(
            Reason::MalformedBody,
            format!("the signature token is not {TOKEN_BYTES} letters and digits"),
        ));
    }
    let signature = parse_hex(&signature)
        .ok_or_else(|| Rejection::new(Reason::MalformedBody, "signature is not 64 hex digits"))?;
    Ok(Block {
        timestamp: Cow::Owned(timestamp),
        token: Cow::Owned(token),
        signature,
    })
}

pub const ENTRY: Entry = signs!(
    Entry::new("mailgun", |settings| {
        remembering(
            "mailgun",
            settings.replay,
            "Mailgun's signature does not cover the body, and the replay memory is what binds a body to its signed token",
        )?;
        Ok(Box::new(Mailgun {
            keys: settings.keys,
        }))
    }),
    SIGNER
);

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// What Mailgun sends: the body with its signature block, the hex MAC of `timestamp ‖
/// token` (a JSON body's `signature` member, or a form's three fields).
#[cfg(any(test, feature = "sign"))]
pub fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key("mailgun")?;
    out.content_type(Media::JSON_OBJECT_OR_FORM);
    let timestamp = signing.now.to_string();
    let token = signing.id_or(|random| hex(random)[..TOKEN_BYTES].to_string());
    let parts: [&[u8]; 2] = [timestamp.as_bytes(), token.as_bytes()];
    let signature = hex(&key.mac(&parts));
    let head = out.head();
    if ContentType::of(&RequestHead::new(&head)) == ContentType::Json {
        let fields = format!(
            r#"{{"timestamp":"{timestamp}","token":{},"signature":"{signature}"}}"#,
            Value::from(token.as_str())
        );
        let body = with_member(&out.body, "signature", &fields)?;
        if body == out.body {
            return Err("the body has a signature member already".into());
        }
        out.body = body;
    } else {
        let pairs = form::parse(&out.body, form::MAX_PAIRS).map_err(|_| "too many fields")?;
        if pairs
            .iter()
            .any(|(name, _)| ["timestamp", "token", "signature"].contains(&name.as_str()))
        {
            return Err("the form has signature fields already".into());
        }
        let separator = if out.body.is_empty() { "" } else { "&" };
        // Tokens are letters and digits: nothing to escape.
        let fields =
            format!("{separator}timestamp={timestamp}&token={token}&signature={signature}");
        out.body.extend_from_slice(fields.as_bytes());
    }
    out.body_signature = out
        .body
        .windows(signature.len())
        .rposition(|window| window == signature.as_bytes());
    out.covers("message", &parts);
    Ok(())
}

/// A `delivered` event, without its signature block.
#[cfg(any(test, feature = "sign"))]
pub fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"event-data":{{"id":"{}","event":"delivered","timestamp":{},"recipient":"alice@example.com"}}}}"#,
        crate::providers::sign::base62(&signing.random, 22),
        signing.now
    )
    .into_bytes()
}

impl Provider for Mailgun {
    /// The SDK's 15 minutes; the future bounded as well.
    fn time(&self) -> Time {
        Time::Signed(Freshness {
            max_age_secs: 900,
            max_future_secs: 300,
            required: true,
            edges: Edges::Exact,
        })
    }

    fn at_headers(&self, _: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        Ok(AtHeaders::NeedBody)
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let body = body.bytes;
        let block = read(ContentType::of(head), body)?;
        let time = unix_seconds("the signature timestamp", &block.timestamp).map_err(in_body)?;
        let parts: [&[u8]; 2] = [&block.timestamp, &block.token];
        let key = any_key(&self.keys, &parts, &[block.signature])
            .ok_or_else(|| mismatch("the body's signature"))?;
        Ok(Verified {
            scheme: "mailgun",
            key: &key.name,
            // The event data is not signed: the fingerprint binds the body.
            signed: Signed::over("mailgun", &parts, body),
            time: Some(Stamp::secs(time)),
        })
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![("mailgun", key_names(&self.keys))]
    }

    /// JSON events, or the legacy form posts.
    fn media(&self) -> Media {
        Media::JSON_OBJECT_OR_FORM
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::providers::sign::{Outgoing, Signing};
    use crate::request::headers;

    // providers.md §4 row 17.
    const TOKEN: &str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";
    const SIGNATURE: &str = "065bb50188c88a371d4df8a371c499a8828b94bc4f7b5553b5adaf33af3b94e4";

    /// The verified request's time, signed message (the identity) and whether the
    /// message covers the body; JSON or a form, as its first byte says.
    fn check(body: &str) -> Result<(i64, Signed, bool), Reason> {
        let mailgun = Mailgun {
            keys: vec![test_key("k", "key-mailgun-signing-key")],
        };
        let content_type = if body.starts_with('{') {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        let h = headers(&[("content-type", content_type)]);
        let head = RequestHead::new(&h);
        mailgun
            .at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .map(|v| {
                let covers_body = v.signed.covers_body();
                (v.time.unwrap().unix_secs(), v.signed, covers_body)
            })
            .map_err(|r| r.reason)
    }

    /// The message Mailgun signs, `timestamp ‖ token`.
    fn message(timestamp: &str, token: &str) -> Signed {
        Signed::over("mailgun", &[timestamp.as_bytes(), token.as_bytes()], b"")
    }

    fn json(timestamp: &str, token: &str, signature: &str) -> String {
        format!(
            r#"{{"signature":{{"timestamp":{timestamp},"token":"{token}","signature":"{signature}"}},"event-data":{{"id":"e1"}}}}"#
        )
    }

    #[test]
    fn the_reference_vector_verifies_as_json_or_form_and_the_body_stays_open() {
        let (time, identity, covers_body) =
            check(&json("\"1700000000\"", TOKEN, SIGNATURE)).unwrap();
        assert_eq!(
            (time, identity),
            (1_700_000_000, message("1700000000", TOKEN))
        );
        assert!(
            !covers_body,
            "the event data is not signed: the fingerprint binds it"
        );
        // A number, as the SDK also accepts.
        assert!(check(&json("1700000000", TOKEN, SIGNATURE)).is_ok());
        let form =
            format!("timestamp=1700000000&token={TOKEN}&signature={SIGNATURE}&event=delivered");
        assert!(check(&form).is_ok());
    }

    #[test]
    fn the_signer_reproduces_the_vector_and_its_output_verifies() {
        use crate::providers::sign::testing::{judge, signed};
        use crate::providers::sign::KeyMaterial;
        let mut signing = Signing::new(
            KeyMaterial::Secret("key-mailgun-signing-key"),
            1_700_000_000,
        );
        signing.id = Some(TOKEN);
        let out = signed(
            &SIGNER,
            &signing,
            "https://h/m",
            Some(br#"{"event-data":{"id":"e1"}}"#),
        );
        assert_eq!(
            String::from_utf8(out.body.clone()).unwrap(),
            format!(
                r#"{{"event-data":{{"id":"e1"}},"signature":{{"timestamp":"1700000000","token":"{TOKEN}","signature":"{SIGNATURE}"}}}}"#
            )
        );
        let at = out.body_signature.unwrap();
        assert_eq!(&out.body[at..at + 64], SIGNATURE.as_bytes());
        let form = signed(&SIGNER, &signing, "https://h/m", Some(b"event=delivered"));
        assert_eq!(
            form.body,
            format!("event=delivered&timestamp=1700000000&token={TOKEN}&signature={SIGNATURE}")
                .as_bytes()
        );
        let mailgun = Mailgun {
            keys: vec![test_key("k", "key-mailgun-signing-key")],
        };
        signing.id = None;
        for out in [signed(&SIGNER, &signing, "https://h/m", None), form] {
            assert_eq!(
                judge(&mailgun, &out),
                Ok(("mailgun/k".into(), Some(1_700_000_000)))
            );
            let mut tampered = out.clone();
            let at = tampered.body_signature.unwrap();
            tampered.body[at] = if tampered.body[at] == b'0' {
                b'1'
            } else {
                b'0'
            };
            assert_eq!(judge(&mailgun, &tampered), Err(Reason::SignatureMismatch));
        }
        let twice = signed(&SIGNER, &signing, "https://h/m", None);
        let mut again = Outgoing::new("POST", "https://h/m", twice.body);
        assert!(sign(&signing, &mut again).is_err());
    }

    #[test]
    fn a_changed_or_missing_part_is_refused() {
        assert_eq!(
            check(&json("\"1700000001\"", TOKEN, SIGNATURE)),
            Err(Reason::SignatureMismatch)
        );
        let changed = format!("b{}", &TOKEN[1..]);
        assert_eq!(
            check(&json("\"1700000000\"", &changed, SIGNATURE)),
            Err(Reason::SignatureMismatch)
        );
        // Mailgun's tokens are 50 characters: a digit of the timestamp cannot move into one.
        assert_eq!(
            check(&json("\"1700000000\"", &TOKEN[1..], SIGNATURE)),
            Err(Reason::MalformedBody)
        );
        assert_eq!(
            check(&json("\"1700000000\"", TOKEN, &SIGNATURE[2..])),
            Err(Reason::MalformedBody)
        );
        assert_eq!(
            check(&json("\"17e8\"", TOKEN, SIGNATURE)),
            Err(Reason::MalformedBody)
        );
        assert_eq!(
            check(&json("\"1700000000\"", "has space", SIGNATURE)),
            Err(Reason::MalformedBody)
        );
        assert_eq!(check(r#"{"event-data":{}}"#), Err(Reason::MissingSignature));
        assert_eq!(
            check(r#"{"signature":{"token":"t"}}"#),
            Err(Reason::MissingSignature)
        );
        assert_eq!(check("{not json"), Err(Reason::MalformedBody));
        let twice = format!("timestamp=1700000000&token={TOKEN}&signature={SIGNATURE}&token=x");
        assert_eq!(check(&twice), Err(Reason::MalformedBody));
    }
}
