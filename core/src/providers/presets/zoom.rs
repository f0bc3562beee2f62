//! Zoom: `x-zm-signature: v0=<hex>` is the HMAC-SHA256 of `v0:timestamp:body` under the
//! app's secret token, the timestamp `x-zm-request-timestamp`. Its endpoint check,
//! `endpoint.url_validation`, is answered at the edge once it verified.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | `v0:` ‖ timestamp ‖ `:` ‖ body | timestamp header, ±5 min | JSON object | |

use serde_json::Value;

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::keys::Key;
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Signing};
use crate::providers::{hex, json_challenge, json_with, Reply};
use crate::request::RequestHead;
use crate::verdict::Rejection;

pub const PRESET: Preset = Preset::new("zoom", DESCRIPTION).answering(url_validation);

pub const ENTRY: Entry = entry!(PRESET, example);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "x-zm-signature", "prefix": "v0="},
    "encoding": "hex",
    "message": [{"literal": "v0:"}, {"header": "x-zm-request-timestamp"},
                {"literal": ":"}, "body"],
    "timestamp": {"header": "x-zm-request-timestamp", "format": "seconds"},
    "body": "json_object"
}"#;

#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "zoom_secret_token",
    &[
        ("x-zm-request-timestamp", "1700000000"),
        (
            "x-zm-signature",
            "v0=c497b1c90522c8f17a26f96a1f6c4a597b481e9194c92bbab4a8fd37ef38f6ea",
        ),
    ],
    r#"{"event":"meeting.started","payload":{},"event_ts":1700000000000}"#,
)
.at(1_700_000_000);

/// `endpoint.url_validation`: `{"plainToken", "encryptedToken": hex HMAC(plainToken)}`.
fn url_validation(
    _head: &RequestHead,
    body: &[u8],
    key: Option<&Key>,
) -> Result<Option<Reply>, Rejection> {
    let Some(event) = json_with(body, b"endpoint.url_validation") else {
        return Ok(None);
    };
    if event.get("event").and_then(Value::as_str) != Some("endpoint.url_validation") {
        return Ok(None);
    }
    let plain = json_challenge(event.get("payload").and_then(|p| p.get("plainToken")))?;
    let Some(key) = key else {
        return Ok(None);
    };
    let encrypted = hex(&key.mac(&[plain.as_bytes()]));
    Ok(Some(Reply::json(
        "url_validation",
        &[("plainToken", plain), ("encryptedToken", &encrypted)],
    )))
}

/// A `meeting.started` event.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let short = sign::base62(&signing.random, 14);
    let millis = i128::from(signing.now) * 1000;
    format!(
        r#"{{"event":"meeting.started","payload":{{"account_id":"{short}","object":{{"id":"{}"}}}},"event_ts":{millis}}}"#,
        sign::digits(&signing.random, 11)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::keys::test_key;
    use crate::request::headers;
    use crate::verdict::Reason;

    #[test]
    fn zoom_url_validation_is_answered_with_the_hmac_of_its_token() {
        // §4 row 16b.
        let key = test_key("k", "zoom_secret_token");
        let h = headers(&[]);
        let head = RequestHead::new(&h);
        let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1700000000000,"event":"endpoint.url_validation"}"#;
        let reply = url_validation(&head, body, Some(&key)).unwrap().unwrap();
        let reply: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            reply,
            json!({"plainToken": "qgg8vlvZRS6UYooatFL8Aw",
            "encryptedToken": "bd48235863f4a6323ccc4963c594908b7c97f88b4a6a95278f4f093690b12726"})
        );
        let other = br#"{"event":"meeting.started","payload":{"plainToken":"x"}}"#;
        assert_eq!(url_validation(&head, other, Some(&key)).unwrap(), None);
        let empty = br#"{"event":"endpoint.url_validation","payload":{}}"#;
        assert_eq!(
            url_validation(&head, empty, Some(&key)).unwrap_err().reason,
            Reason::MalformedBody
        );
    }
}
