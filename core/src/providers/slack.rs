//! Slack: `X-Slack-Signature: v0=<hex>` = HMAC-SHA256 over
//! `"v0:" ‖ X-Slack-Request-Timestamp ‖ ":" ‖ body`, keyed with the signing secret.
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | timestamp and signature | `v0:` ‖ timestamp ‖ `:` ‖ body (each retry is re-signed: its own delivery) | the timestamp (±5 min, the SDK's tolerance) | a JSON object (Events API) or a form (commands, interactivity) | method, path, query, content type |

use crate::keys::Key;
use crate::providers::body_mac::BodyMac;
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::hex;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{Outgoing, Signer, Signing};
use crate::providers::{
    json_challenge, json_with, key_names, key_with_mac, mismatch, required, unix_seconds,
    AtHeaders, Body, Checks, Hashed, Media, Provider, Reply, StreamedMac, Time, Verified,
};
use crate::request::RequestHead;
use crate::timestamp::Stamp;
use crate::timestamp::FIVE_MINUTES;
use crate::verdict::Rejection;

pub const SIGNATURE: BodyMac = BodyMac {
    header: "x-slack-signature",
    prefix: b"v0=",
};
pub const TIMESTAMP: &str = "x-slack-request-timestamp";

#[derive(Debug)]
pub struct Slack {
    pub keys: Vec<Key>,
}

fn read<'r>(head: &RequestHead<'r>) -> Result<([u8; 32], &'r [u8], i64), Rejection> {
    let signature = SIGNATURE.signature(head)?;
    let timestamp = required(head, TIMESTAMP)?;
    Ok((signature, timestamp, unix_seconds(TIMESTAMP, timestamp)?))
}

impl Slack {
    /// The key whose MAC is the signature, and the signed time.
    fn key(&self, head: &RequestHead, hashed: &Hashed) -> Result<(&Key, i64), Rejection> {
        let (signature, _, time) = read(head)?;
        let key = key_with_mac(&self.keys, hashed.macs.iter().copied(), &[signature])
            .ok_or_else(|| mismatch(SIGNATURE.header))?;
        Ok((key, time))
    }
}

pub const ENTRY: Entry = signs!(
    Entry::new("slack", |settings| {
        Ok(Box::new(Slack {
            keys: settings.keys,
        }))
    }),
    SIGNER
);

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// What Slack sends: the timestamp, and `v0=` the hex MAC of `v0:<timestamp>:<body>`.
#[cfg(any(test, feature = "sign"))]
pub fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key("slack")?;
    out.content_type(Media::JSON_OBJECT_OR_FORM);
    let t = signing.now.to_string();
    out.set(TIMESTAMP, t.clone(), crate::providers::sign::Role::Plain);
    let body = out.body.clone();
    let parts: [&[u8]; 4] = [b"v0:", t.as_bytes(), b":", &body];
    let prefix = String::from_utf8_lossy(SIGNATURE.prefix);
    out.signature(SIGNATURE.header, &prefix, &hex(&key.mac(&parts)));
    out.covers("message", &parts);
    Ok(())
}

/// An Events API `app_mention` callback.
#[cfg(any(test, feature = "sign"))]
pub fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"token":"simulated","team_id":"T0001","type":"event_callback","event_id":"Ev{}","event_time":{},"event":{{"type":"app_mention","text":"hello"}}}}"#,
        crate::providers::sign::base62(&signing.random, 10),
        signing.now
    )
    .into_bytes()
}

impl Provider for Slack {
    fn time(&self) -> Time {
        Time::Signed(FIVE_MINUTES)
    }

    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        read(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn streamed_mac(&self, head: &RequestHead) -> Option<StreamedMac<'_>> {
        let (_, timestamp, _) = read(head).ok()?;
        Some(StreamedMac::after(&self.keys, &[b"v0:", timestamp, b":"]))
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let hashed = &*body.hashed(self.streamed_mac(head));
        let (key, time) = self.key(head, hashed)?;
        Ok(Verified::streamed(
            "slack",
            &key.name,
            hashed,
            Some(Stamp::secs(time)),
        ))
    }

    fn check_hashed(&self, head: &RequestHead, hashed: &Hashed) -> Result<(), Rejection> {
        self.key(head, hashed).map(|_| ())
    }

    /// The Events API sends JSON; slash commands and interactivity, forms.
    fn media(&self) -> Media {
        Media::JSON_OBJECT_OR_FORM
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![("slack", key_names(&self.keys))]
    }

    /// The Events API's `url_verification`: answered `{"challenge": ...}`.
    fn handshake(&self, _: &RequestHead, body: &[u8], _: &str) -> Result<Option<Reply>, Rejection> {
        let Some(event) = json_with(body, b"url_verification") else {
            return Ok(None);
        };
        if event.get("type").and_then(|t| t.as_str()) != Some("url_verification") {
            return Ok(None);
        }
        let challenge = json_challenge(event.get("challenge"))?;
        Ok(Some(Reply::json(
            "url_verification",
            &[("challenge", challenge)],
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::request::headers;
    use crate::verdict::Reason;

    // providers.md §4 row 5.
    const BODY: &str =
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&command=%2Fweather&text=94070";
    const SIGNATURE_V0: &str =
        "v0=01516a9329df02efd863e62778cc244c0773a963b27de41c63c293c855594fb0";

    fn check(signature: &str, timestamp: &str, body: &str) -> Result<i64, Reason> {
        let slack = Slack {
            keys: vec![test_key("k", "8f742231b10e8888abcd99yyyzzz85a5")],
        };
        let h = headers(&[("x-slack-signature", signature), (TIMESTAMP, timestamp)]);
        let head = RequestHead::new(&h);
        slack
            .at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        slack
            .at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .map(|v| v.time.unwrap().unix_secs())
            .map_err(|r| r.reason)
    }

    #[test]
    fn the_reference_vector_verifies_and_changes_do_not() {
        assert_eq!(check(SIGNATURE_V0, "1700000000", BODY), Ok(1_700_000_000));
        assert_eq!(
            check(SIGNATURE_V0, "1700000001", BODY),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(
            check(SIGNATURE_V0, "1700000000", &BODY.replace("94070", "94071")),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(
            check(&SIGNATURE_V0[3..], "1700000000", BODY),
            Err(Reason::MalformedHeader)
        );
        assert_eq!(
            check(SIGNATURE_V0, "17e8", BODY),
            Err(Reason::MalformedHeader)
        );
    }

    #[test]
    fn the_signer_reproduces_the_vector_and_its_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge, signed};
        use crate::providers::sign::{KeyMaterial, Signing};
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let signing = Signing::new(KeyMaterial::Secret(secret), 1_700_000_000);
        let out = signed(&SIGNER, &signing, "https://h/s", Some(BODY.as_bytes()));
        assert_eq!(out.header("x-slack-signature"), Some(SIGNATURE_V0));
        assert_eq!(out.header(TIMESTAMP), Some("1700000000"));
        assert_eq!(
            out.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let slack = Slack {
            keys: vec![test_key("k", secret)],
        };
        let example = signed(&SIGNER, &signing, "https://h/s", None);
        assert_eq!(example.header("content-type"), Some("application/json"));
        assert_eq!(
            judge(&slack, &example),
            Ok(("slack/k".into(), Some(1_700_000_000)))
        );
        assert_eq!(
            judge(&slack, &changed_body(&example)),
            Err(Reason::SignatureMismatch)
        );
    }

    #[test]
    fn url_verification_is_answered_with_its_challenge() {
        let slack = Slack { keys: vec![] };
        let h = headers(&[]);
        let head = RequestHead::new(&h);
        let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let reply = slack.handshake(&head, body, "k").unwrap().unwrap();
        assert_eq!(reply.content_type, "application/json");
        let echoed: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            echoed,
            serde_json::json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
        );
        // Events that merely mention it, and form bodies, are deliveries.
        for body in [
            &br#"{"type":"event_callback","event":{"text":"url_verification"}}"#[..],
            BODY.as_bytes(),
            b"url_verification",
        ] {
            assert_eq!(slack.handshake(&head, body, "k").unwrap(), None);
        }
        for body in [
            &br#"{"type":"url_verification"}"#[..],
            br#"{"type":"url_verification","challenge":7}"#,
            br#"{"type":"url_verification","challenge":"<a b>"}"#,
        ] {
            let refusal = slack.handshake(&head, body, "k").unwrap_err();
            assert_eq!(refusal.reason, Reason::MalformedBody);
        }
    }
}
