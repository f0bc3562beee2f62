//! Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex>` is the HMAC-SHA256 of
//! the message id, the timestamp (RFC 3339) and the body, unseparated, under the
//! subscription's secret. Its endpoint check, `webhook_callback_verification`, is answered
//! at the edge once it verified.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | message id ‖ timestamp ‖ body | timestamp (RFC 3339), 10 min past (Twitch's advice), 5 min ahead | JSON object | message type, subscription type and version |

#[cfg(test)]
use super::tests::{Vector, BODY_B};
use super::{entry, Preset};
use crate::keys::Key;
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::Signing;
use crate::providers::{json_challenge, json_with, Reply};
use crate::request::{Lookup, RequestHead};
use crate::verdict::{Reason, Rejection};

pub const PRESET: Preset = Preset::new("twitch", DESCRIPTION).answering(callback_verification);

/// Its signer sends the message type (a notification) and the subscription's type and
/// version (`channel.follow`, 2) beside the signature.
pub const ENTRY: Entry = entry!(PRESET, example, |out, _| {
    out.default_header("twitch-eventsub-message-type", "notification");
    out.default_header("twitch-eventsub-subscription-type", "channel.follow");
    out.default_header("twitch-eventsub-subscription-version", "2");
});

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "Twitch-Eventsub-Message-Signature", "prefix": "sha256="},
    "encoding": "hex",
    "message": [{"header": "Twitch-Eventsub-Message-Id"},
                {"header": "Twitch-Eventsub-Message-Timestamp"}, "body"],
    "timestamp": {"header": "Twitch-Eventsub-Message-Timestamp", "format": "rfc3339",
                  "max_age_secs": 600, "max_future_secs": 300},
    "dispatch_headers": ["Twitch-Eventsub-Message-Type", "Twitch-Eventsub-Subscription-Type",
                         "Twitch-Eventsub-Subscription-Version"],
    "body": "json_object"
}"#;

/// Its time has nanoseconds: the signer signs the headers given as they are.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "twitch_secret_10_to_100_chars",
    &[
        (
            "twitch-eventsub-message-id",
            "e76c6bd4-55c9-4987-8304-da1588d8988b",
        ),
        (
            "twitch-eventsub-message-timestamp",
            "2023-11-14T22:13:20.123456789Z",
        ),
        (
            "twitch-eventsub-message-signature",
            "sha256=f2a8eb3f8ade53b1412b565cfb943df4933f6dab6f694e5154b8fe08e5be84ef",
        ),
    ],
    BODY_B,
)
.at(1_700_000_000)
.given();

/// `Twitch-Eventsub-Message-Type: webhook_callback_verification`: the challenge, as plain
/// text.
fn callback_verification(
    head: &RequestHead,
    body: &[u8],
    _key: Option<&Key>,
) -> Result<Option<Reply>, Rejection> {
    // The message type is not signed: a challenge is answered only when the header and
    // the signed body agree, and a header that claims one without it is refused rather
    // than forwarded under a false type.
    match head.lookup("twitch-eventsub-message-type") {
        Lookup::One(b"webhook_callback_verification") => {}
        Lookup::Duplicate => {
            return Err(Rejection::new(
                Reason::DuplicateHeader,
                "twitch-eventsub-message-type appears more than once",
            ))
        }
        _ => return Ok(None),
    }
    let event = json_with(body, b"\"challenge\"").unwrap_or_default();
    let challenge = json_challenge(event.get("challenge"))?;
    Ok(Some(Reply::text(
        "callback_verification",
        challenge.as_bytes(),
    )))
}

/// A `channel.follow` event.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let id = signing.uuid();
    format!(
        r#"{{"subscription":{{"id":"{id}","type":"channel.follow","version":"2","status":"enabled"}},"event":{{"user_id":"1337","broadcaster_user_id":"1"}}}}"#
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::headers;

    #[test]
    fn twitch_answers_a_challenge_only_when_header_and_body_agree() {
        let verify = |kind: &[(&str, &str)], body: &[u8]| {
            let h = headers(kind);
            callback_verification(&RequestHead::new(&h), body, None)
        };
        let kind = [(
            "twitch-eventsub-message-type",
            "webhook_callback_verification",
        )];
        let body = br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{}}"#;
        let reply = verify(&kind, body).unwrap().unwrap();
        assert_eq!(
            (reply.content_type, reply.body.as_slice()),
            ("text/plain", &b"pogchamp-kappa-360noscope-vohiyo"[..])
        );
        assert_eq!(
            verify(&[("twitch-eventsub-message-type", "notification")], body).unwrap(),
            None
        );
        assert_eq!(
            verify(&kind, br#"{"subscription":{}}"#).unwrap_err().reason,
            Reason::MalformedBody
        );
        let twice = [kind[0], kind[0]];
        assert_eq!(
            verify(&twice, body).unwrap_err().reason,
            Reason::DuplicateHeader
        );
    }
}
