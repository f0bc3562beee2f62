//! Mailgun: the signature travels in the body, `{"signature": {"timestamp", "token",
//! "signature"}, "event-data": {...}}` (legacy form posts carry the three as fields), and
//! is hex HMAC-SHA256 over `timestamp ‖ token` with the webhook signing key.
//!
//! | at the headers | signed | identity | time | left open |
//! | --- | --- | --- | --- | --- |
//! | nothing (all in the body) | timestamp, token | the token (signed, one per delivery) | the timestamp (15 min past, the SDK's; 5 min ahead) | method, path, query **and the body** |
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
use crate::providers::{
    any_key, form_pairs, key_names, mismatch, unix_seconds, visible, AtHeaders, Checks, Open,
    Provider, Verified,
};
use crate::request::RequestHead;
use crate::verdict::{Reason, Rejection};

/// Mailgun's tokens are 50 hex characters.
const MAX_TOKEN_BYTES: usize = 256;

#[derive(Debug)]
pub struct Mailgun {
    pub keys: Vec<Key>,
}

/// The signature block, from a JSON body or a form body.
struct Signed<'r> {
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

fn read(body: &[u8]) -> Result<Signed<'_>, Rejection> {
    let fields: [Option<Vec<u8>>; 3] = if body.first() == Some(&b'{') {
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
    visible("the signature token", &token, MAX_TOKEN_BYTES).map_err(in_body)?;
    let signature = parse_hex(&signature)
        .ok_or_else(|| Rejection::new(Reason::MalformedBody, "signature is not 64 hex digits"))?;
    Ok(Signed {
        timestamp: Cow::Owned(timestamp),
        token: Cow::Owned(token),
        signature,
    })
}

impl Provider for Mailgun {
    fn at_headers(&self, _: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        Ok(AtHeaders::NeedBody)
    }

    fn at_body<'p, 'r>(
        &'p self,
        _: &RequestHead<'r>,
        body: &'r [u8],
        _: &Checks,
    ) -> Result<Verified<'p, 'r>, Rejection> {
        let signed = read(body)?;
        let time = unix_seconds("the signature timestamp", &signed.timestamp).map_err(in_body)?;
        let key = any_key(
            &self.keys,
            &[&signed.timestamp, &signed.token],
            &[signed.signature],
        )
        .ok_or_else(|| mismatch("the body's signature"))?;
        Ok(Verified {
            scheme: "mailgun",
            key: &key.name,
            identity: signed.token,
            time: Some(time),
            open: Open::ALL,
        })
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![("mailgun", key_names(&self.keys))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::request::headers;

    // providers.md §4 row 17.
    const TOKEN: &str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";
    const SIGNATURE: &str = "065bb50188c88a371d4df8a371c499a8828b94bc4f7b5553b5adaf33af3b94e4";

    fn check(body: &str) -> Result<(i64, String, Open), Reason> {
        let mailgun = Mailgun {
            keys: vec![test_key("k", "key-mailgun-signing-key")],
        };
        let h = headers(&[]);
        let head = RequestHead::new(&h);
        mailgun
            .at_body(&head, body.as_bytes(), &Checks::default())
            .map(|v| {
                (
                    v.time.unwrap(),
                    String::from_utf8(v.identity.to_vec()).unwrap(),
                    v.open,
                )
            })
            .map_err(|r| r.reason)
    }

    fn json(timestamp: &str, token: &str, signature: &str) -> String {
        format!(
            r#"{{"signature":{{"timestamp":{timestamp},"token":"{token}","signature":"{signature}"}},"event-data":{{"id":"e1"}}}}"#
        )
    }

    #[test]
    fn the_reference_vector_verifies_as_json_or_form_and_the_body_stays_open() {
        let (time, identity, open) = check(&json("\"1700000000\"", TOKEN, SIGNATURE)).unwrap();
        assert_eq!((time, identity.as_str()), (1_700_000_000, TOKEN));
        assert!(
            open.body,
            "the event data is not signed: the fingerprint binds it"
        );
        // A number, as the SDK also accepts.
        assert!(check(&json("1700000000", TOKEN, SIGNATURE)).is_ok());
        let form =
            format!("timestamp=1700000000&token={TOKEN}&signature={SIGNATURE}&event=delivered");
        assert!(check(&form).is_ok());
    }

    #[test]
    fn a_changed_or_missing_part_is_refused() {
        assert_eq!(
            check(&json("\"1700000001\"", TOKEN, SIGNATURE)),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(
            check(&json("\"1700000000\"", &TOKEN[1..], SIGNATURE)),
            Err(Reason::SignatureMismatch)
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
