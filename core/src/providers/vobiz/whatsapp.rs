//! Vobiz WhatsApp webhooks (spec section 5):
//! `X-Webhook-Signature = hex(HMAC-SHA256(subscription secret, raw body))`.
//!
//! The body's `event_id` and `occurred_at` are inside the signed bytes, so once the MAC
//! verifies they are trustworthy for de-duplication and freshness.
//!
//! The header is taken strictly as 64 hex digits with no `sha256=` prefix, as the docs
//! stress; a prefixed value is malformed (it is most likely a KYC webhook sent to the wrong
//! route, which the log should say). Uppercase hex is accepted: bytes are compared, so it
//! admits nothing a lowercase value would not.

use serde::Deserialize;

use crate::keys::Key;
use crate::providers::body_mac::BodyMac;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Outgoing, Signer, Signing};
#[cfg(any(test, feature = "sign"))]
use crate::providers::Media;
use crate::request::RequestHead;
use crate::timestamp;
use crate::verdict::{Reason, Rejection};

pub const SCHEME: BodyMac = BodyMac {
    header: "x-webhook-signature",
    prefix: b"",
};

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer {
    sign,
    example: |signing| {
        envelope(
            &signing.id_or_uuid(),
            "message.inbound",
            "MA_SIMULATOR",
            &sign::rfc3339(signing.now),
            DEFAULT_PAYLOAD,
        )
        .into_bytes()
    },
};

/// An inbound text message, the envelope's default payload.
#[cfg(any(test, feature = "sign"))]
pub const DEFAULT_PAYLOAD: &str =
    r#"{"from":"919876543210","type":"text","text":{"body":"Hello from vobiz-sim"}}"#;

/// What Vobiz sends: the hex MAC of the body, and the envelope's `event_type` as
/// `X-Webhook-Event`.
#[cfg(any(test, feature = "sign"))]
pub fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key("vobiz_whatsapp")?;
    out.content_type(Media::JSON_OBJECT);
    out.default_header("user-agent", "Vobiz");
    SCHEME.sign(&key, out);
    let event: Option<serde_json::Value> = serde_json::from_slice(&out.body).ok();
    if let Some(kind) = event.as_ref().and_then(|e| e.get("event_type")?.as_str()) {
        out.default_header("x-webhook-event", kind);
    }
    Ok(())
}

/// The envelope Vobiz posts, fields in its order; `payload` is JSON, used verbatim.
#[cfg(any(test, feature = "sign"))]
pub fn envelope(
    event_id: &str,
    event_type: &str,
    account_id: &str,
    occurred_at: &str,
    payload: &str,
) -> String {
    let string = |text: &str| serde_json::Value::from(text).to_string();
    format!(
        "{{\"event_id\":{},\"event_type\":{},\"account_id\":{},\"occurred_at\":{},\"payload\":{payload}}}",
        string(event_id),
        string(event_type),
        string(account_id),
        string(occurred_at),
    )
}

/// Longest `event_id` kept. Vobiz sends a 36-character UUID; the format is not promised.
pub const MAX_EVENT_ID_BYTES: usize = 128;

/// The signed identity and time of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Visible ASCII, 1 to [`MAX_EVENT_ID_BYTES`] bytes: safe as a cache key and in logs.
    pub event_id: String,
    /// `occurred_at` in unix seconds.
    pub occurred_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'k> {
    pub key: &'k str,
    pub event: Event,
}

/// Verifies the body MAC under any of the subscription's secrets, then reads the signed
/// envelope. The JSON is parsed only after the MAC holds, so forged bodies cost one HMAC.
pub fn verify<'k>(
    keys: &'k [Key],
    head: &RequestHead,
    body: &[u8],
) -> Result<Verified<'k>, Rejection> {
    let key = SCHEME.verify(keys, head, body)?;
    Ok(Verified {
        key: &key.name,
        event: parse_event(body)?,
    })
}

/// [`verify`] with each key's MAC of the body computed as it arrived.
pub fn verify_hashed<'k>(
    keys: &'k [Key],
    head: &RequestHead,
    body: &[u8],
    macs: &[[u8; 32]],
) -> Result<Verified<'k>, Rejection> {
    let key = SCHEME.verify_macs(keys, head, macs.iter().copied())?;
    Ok(Verified {
        key: &key.name,
        event: parse_event(body)?,
    })
}

/// Only the fields the guard needs; everything else (payload included) is skipped.
#[derive(Deserialize)]
struct Envelope {
    event_id: String,
    occurred_at: String,
}

/// `event_id` and `occurred_at` from a JSON object body. Details name the problem, never
/// body content (messages carry personal data).
pub fn parse_event(body: &[u8]) -> Result<Event, Rejection> {
    // A derived struct also deserialises from a JSON array; the envelope is an object.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(malformed("body is not a JSON object"));
    }
    // JSON text is UTF-8 (RFC 8259), but serde_json skips an ignored field's string without
    // checking it: check the whole body, so no field can carry bytes the application's
    // parser would refuse.
    let text = std::str::from_utf8(body).map_err(|_| malformed("body is not UTF-8"))?;
    let envelope: Envelope = serde_json::from_str(text).map_err(|e| {
        malformed(format!(
            "body is not an envelope with string event_id and occurred_at \
             (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let id = envelope.event_id;
    if id.is_empty() || id.len() > MAX_EVENT_ID_BYTES || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed(format!(
            "event_id is not 1 to {MAX_EVENT_ID_BYTES} visible ASCII characters"
        )));
    }
    let occurred_at = timestamp::parse_rfc3339(envelope.occurred_at.as_bytes())
        .ok_or_else(|| malformed("occurred_at is not an RFC 3339 date-time"))?;
    Ok(Event {
        event_id: id,
        occurred_at,
    })
}

fn malformed(detail: impl Into<std::borrow::Cow<'static, str>>) -> Rejection {
    Rejection::new(Reason::MalformedBody, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::providers::sign::Signing;
    use crate::request::headers;

    // Spec section 5, worked example.
    const SECRET: &str = "your-shared-secret";
    const BODY: &str = r#"{"event_id":"f4c1a0d2-3b6e-4a9c-8e2f-0a1b2c3d4e5f","event_type":"message.inbound","account_id":"MA_XXXXXXXX","occurred_at":"2026-03-25T10:00:00Z","payload":{}}"#;
    const SIGNATURE: &str = "6c82a2dbcf397903ffaea500dffa3b4875fe6388361c8ea1c590354868bc48b1";

    fn keys() -> Vec<Key> {
        vec![test_key("subscription", SECRET)]
    }

    fn check(signature: &str, body: &[u8]) -> Result<(String, Event), Rejection> {
        let h = headers(&[
            ("x-webhook-signature", signature),
            ("x-webhook-event", "message.inbound"),
        ]);
        verify(&keys(), &RequestHead::new(&h), body).map(|v| (v.key.to_string(), v.event))
    }

    fn reason(signature: &str, body: &[u8]) -> Reason {
        check(signature, body).unwrap_err().reason
    }

    #[test]
    fn spec_example_verifies_and_yields_the_signed_event() {
        assert_eq!(BODY.len(), 159);
        assert_eq!(
            check(SIGNATURE, BODY.as_bytes()),
            Ok((
                "subscription".to_string(),
                Event {
                    event_id: "f4c1a0d2-3b6e-4a9c-8e2f-0a1b2c3d4e5f".into(),
                    occurred_at: 1_774_432_800,
                }
            ))
        );
    }

    #[test]
    fn the_signer_reproduces_the_worked_example_and_its_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge, signed};
        use crate::providers::sign::KeyMaterial;
        use crate::providers::vobiz::WhatsApp;
        let body = envelope(
            "f4c1a0d2-3b6e-4a9c-8e2f-0a1b2c3d4e5f",
            "message.inbound",
            "MA_XXXXXXXX",
            "2026-03-25T10:00:00Z",
            "{}",
        );
        assert_eq!(body, BODY);
        let signing = Signing::new(KeyMaterial::Secret(SECRET), 1_774_432_800);
        let out = signed(&SIGNER, &signing, "https://h/w", Some(body.as_bytes()));
        assert_eq!(out.header("x-webhook-signature"), Some(SIGNATURE));
        assert_eq!(out.header("x-webhook-event"), Some("message.inbound"));
        let whatsapp = WhatsApp { keys: keys() };
        let example = signed(&SIGNER, &signing, "https://h/w", None);
        assert_eq!(
            judge(&whatsapp, &example),
            Ok(("whatsapp/subscription".into(), Some(1_774_432_800)))
        );
        assert_eq!(
            judge(&whatsapp, &changed_body(&example)),
            Err(Reason::SignatureMismatch)
        );
    }

    #[test]
    fn any_changed_byte_fails() {
        for body in [
            format!("{BODY} "),
            format!("{BODY}\n"),
            BODY.replace("10:00:00Z", "10:00:01Z"),
            BODY.replace("f4c1", "f4c2"),
        ] {
            assert_eq!(
                reason(SIGNATURE, body.as_bytes()),
                Reason::SignatureMismatch
            );
        }
    }

    #[test]
    fn uppercase_hex_is_the_same_mac() {
        assert!(check(&SIGNATURE.to_uppercase(), BODY.as_bytes()).is_ok());
    }

    #[test]
    fn prefixed_truncated_or_non_hex_headers_are_malformed() {
        let prefixed = format!("sha256={SIGNATURE}");
        let non_hex = format!("{}g", &SIGNATURE[..63]);
        for bad in [prefixed.as_str(), &SIGNATURE[..62], non_hex.as_str(), ""] {
            assert_eq!(
                reason(bad, BODY.as_bytes()),
                Reason::MalformedHeader,
                "{bad}"
            );
        }
    }

    #[test]
    fn wrong_secret_fails_and_rotation_accepts_either() {
        let old = [test_key("old", "previous-secret")];
        let h = headers(&[("x-webhook-signature", SIGNATURE)]);
        let head = RequestHead::new(&h);
        assert_eq!(
            verify(&old, &head, BODY.as_bytes()).unwrap_err().reason,
            Reason::SignatureMismatch
        );
        let both = [old[0].clone(), test_key("new", SECRET)];
        assert_eq!(verify(&both, &head, BODY.as_bytes()).unwrap().key, "new");
    }

    #[test]
    fn missing_and_duplicate_headers() {
        let h = headers(&[("x-webhook-event", "message.inbound")]);
        assert_eq!(
            verify(&keys(), &RequestHead::new(&h), BODY.as_bytes())
                .unwrap_err()
                .reason,
            Reason::MissingSignature
        );
        let h = headers(&[
            ("x-webhook-signature", SIGNATURE),
            ("X-Webhook-Signature", SIGNATURE),
        ]);
        assert_eq!(
            verify(&keys(), &RequestHead::new(&h), BODY.as_bytes())
                .unwrap_err()
                .reason,
            Reason::DuplicateHeader
        );
    }

    #[test]
    fn envelope_fields_are_required_and_checked() {
        let long_id = format!(
            r#"{{"event_id":"{}","occurred_at":"2026-03-25T10:00:00Z"}}"#,
            "a".repeat(129)
        );
        for body in [
            "",
            "[]",
            r#"["f4c1","2026-03-25T10:00:00Z"]"#,
            "null",
            r#""text""#,
            r#"{"occurred_at":"2026-03-25T10:00:00Z"}"#,
            r#"{"event_id":"e1"}"#,
            r#"{"event_id":7,"occurred_at":"2026-03-25T10:00:00Z"}"#,
            r#"{"event_id":null,"occurred_at":"2026-03-25T10:00:00Z"}"#,
            r#"{"event_id":"","occurred_at":"2026-03-25T10:00:00Z"}"#,
            r#"{"event_id":"has space","occurred_at":"2026-03-25T10:00:00Z"}"#,
            r#"{"event_id":"e1","occurred_at":"yesterday"}"#,
            r#"{"event_id":"e1","occurred_at":"2026-03-25T10:00:00"}"#,
            r#"{"event_id":"e1","occurred_at":1774432800}"#,
            r#"{"event_id":"e1","event_id":"e2","occurred_at":"2026-03-25T10:00:00Z"}"#,
            r#"{"event_id":"e1","occurred_at":"2026-03-25T10:00:00Z"} trailing"#,
            r#"{"event_id":"e1","occurred_at":"2026-03-25T10:00:00Z""#,
            long_id.as_str(),
        ] {
            assert_eq!(
                parse_event(body.as_bytes()).unwrap_err().reason,
                Reason::MalformedBody,
                "{body}"
            );
        }
        assert_eq!(
            parse_event(b"\xff\xfe{}").unwrap_err().reason,
            Reason::MalformedBody
        );
    }

    /// Found by `fuzz/run.sh` (target `whatsapp_body`): invalid UTF-8 inside a field the
    /// envelope skips (`account_id`, `payload`) was accepted as JSON.
    #[test]
    fn invalid_utf8_anywhere_in_the_body_is_malformed() {
        let valid = r#"{"event_id":"e1","account_id":"MA_X","occurred_at":"2026-03-25T10:00:00Z","payload":{"text":"x"}}"#;
        assert!(parse_event(valid.as_bytes()).is_ok());
        for (from, to) in [
            ("MA_X", &b"MA\xea\xea"[..]),
            ("\"x\"", b"\"\xff\""),
            ("e1", b"e\xc3"),
        ] {
            let body = valid.as_bytes().to_vec();
            let at = valid.find(from).unwrap();
            let body = [&body[..at], to, &body[at + from.len()..]].concat();
            assert_eq!(
                parse_event(&body).unwrap_err().reason,
                Reason::MalformedBody,
                "{}",
                body.escape_ascii()
            );
        }
    }

    #[test]
    fn envelope_tolerates_whitespace_escapes_and_extra_fields() {
        let body = " \n{\"payload\":{\"a\":[1,{\"b\":null}]},\"event_id\":\"e\\u0031\",\
                    \"occurred_at\":\"2026-03-25T15:30:00+05:30\",\"new_field\":true}\n";
        assert_eq!(
            parse_event(body.as_bytes()),
            Ok(Event {
                event_id: "e1".into(),
                occurred_at: 1_774_432_800,
            })
        );
    }

    /// serde_json skips ignored values without recursing, so depth cannot overflow the
    /// stack; the payload is not read at all.
    #[test]
    fn deeply_nested_payload_is_skipped_without_overflowing() {
        let body = format!(
            r#"{{"event_id":"e1","occurred_at":"2026-03-25T10:00:00Z","payload":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(
            parse_event(body.as_bytes()).map(|e| e.event_id),
            Ok("e1".to_string())
        );
        let unbalanced = body.replacen("]", "", 1);
        assert_eq!(
            parse_event(unbalanced.as_bytes()).unwrap_err().reason,
            Reason::MalformedBody
        );
    }

    #[test]
    fn details_do_not_echo_body_content() {
        let body = r#"{"event_id":"e1","occurred_at":"secret-ish text"}"#;
        let err = parse_event(body.as_bytes()).unwrap_err();
        assert!(!err.detail.contains("secret-ish"));
        let body = r#"{"event_id":{"private":"message text"},"occurred_at":"x"}"#;
        let err = parse_event(body.as_bytes()).unwrap_err();
        assert!(!err.detail.contains("message text"));
    }
}
