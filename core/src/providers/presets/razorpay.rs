//! Razorpay: `X-Razorpay-Signature` is the hex HMAC-SHA256 of the body under the webhook
//! secret; a retry is the same body, so the same delivery.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | `X-Razorpay-Event-Id` |

#[cfg(test)]
use super::tests::{Vector, BODY_B};
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Signing};

pub const PRESET: Preset = Preset::new("razorpay", DESCRIPTION);

/// Its signer sends the event's id beside the signature.
pub const ENTRY: Entry = entry!(PRESET, example, |out, id| {
    out.default_header("x-razorpay-event-id", id);
});

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Razorpay-Signature", "prefix": ""},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "dispatch_headers": ["X-Razorpay-Event-Id"]
}"#;

#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "razorpay_webhook_secret",
    &[(
        "x-razorpay-signature",
        "be67cd7d7c76048d32a679655d24c3d8380874be0dabb8646b08c1bc327502f5",
    )],
    BODY_B,
);

/// A `payment.captured` event.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let (short, now) = (sign::base62(&signing.random, 14), signing.now);
    format!(
        r#"{{"entity":"event","account_id":"acc_{short}","event":"payment.captured","contains":["payment"],"payload":{{"payment":{{"entity":{{"id":"pay_{short}","amount":1000}}}}}},"created_at":{now}}}"#
    )
    .into_bytes()
}
