//! Box (webhooks v2): `box-signature-primary` and `box-signature-secondary` carry the
//! base64 HMAC-SHA256 of the body followed by `box-delivery-timestamp` (RFC 3339), one
//! under each of the app's two signature keys (configure both as `keys`, rotate one at a
//! time); the timestamp is the signed time, 10 minutes past (box-node-sdk's window).
//! Box's Python SDK (`boxsdk`, `Webhook.validate_message`) is the oracle. Unlike it, the
//! filter tries each key on both headers and does not read `box-signature-version` and
//! `-algorithm` (the only values are `1` and `HmacSHA256`).
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body ‖ `box-delivery-timestamp` | `box-delivery-timestamp`, 10 min past, 5 min ahead | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Signing};

pub const PRESET: Preset = Preset::new("box", DESCRIPTION);

/// Its signer sends the signature's version and algorithm, as Box does.
pub const ENTRY: Entry = entry!(PRESET, example, |out, id| {
    out.default_header("box-signature-version", "1");
    out.default_header("box-signature-algorithm", "HmacSHA256");
    out.default_header("box-delivery-id", id);
});

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "box-signature-primary", "also": ["box-signature-secondary"]},
    "encoding": "base64",
    "message": ["body", {"header": "box-delivery-timestamp"}],
    "timestamp": {"header": "box-delivery-timestamp", "format": "rfc3339",
                  "max_age_secs": 600, "max_future_secs": 300},
    "body": "json_object"
}"#;

#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "box-primary-key",
    &[
        ("box-delivery-timestamp", "2026-03-25T10:00:00-07:00"),
        (
            "box-signature-primary",
            "rkqcLP+r1Zen4BjTu01d8KnDu3tDd2YmLDxO5uzOps8=",
        ),
    ],
    r#"{"type":"webhook_event","id":"eb0c4e06-751f-4dbd-8d5e-0b3a4c5f2f9a","trigger":"FILE.UPLOADED","source":{"id":"1","type":"file"}}"#,
)
.at(1_774_458_000)
.given();

/// A file uploaded.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"type":"webhook_event","id":"{}","created_at":"{}","trigger":"FILE.UPLOADED","source":{{"id":"{}","type":"file","name":"café.txt"}}}}"#,
        signing.uuid(),
        sign::rfc3339(signing.now),
        sign::digits(&signing.random, 12)
    )
    .into_bytes()
}
