//! Square: `X-Square-Hmacsha256-Signature` is the base64 HMAC-SHA256 of the notification
//! URL (the route's `public_origin`, then the path and query as sent) and the body, under
//! the subscription's signature key.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | notification URL ‖ body | none | JSON object | `square-environment` |

#[cfg(test)]
use super::tests::{Vector, BODY_B};
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Signing};

pub const PRESET: Preset = Preset::new("square", DESCRIPTION).signing_the_url();

/// Its signer sends the environment the event comes from beside the signature.
pub const ENTRY: Entry = entry!(PRESET, example, |out, _| {
    out.default_header("square-environment", "Sandbox");
});

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Square-Hmacsha256-Signature"},
    "encoding": "base64",
    "message": ["url", "body"],
    "dispatch_headers": ["square-environment"],
    "body": "json_object"
}"#;

#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "square_signature_key",
    &[
        (":path", "/webhooks/square"),
        (
            "x-square-hmacsha256-signature",
            "vSybr0KyA670B1h+aKvQ0c+YMUhEdr/fjHmQtweWbe0=",
        ),
    ],
    BODY_B,
)
.from("https://example.com");

/// A `payment.created` event.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let (id, short) = (signing.uuid(), sign::base62(&signing.random, 14));
    let at = sign::rfc3339(signing.now);
    format!(
        r#"{{"merchant_id":"M{short}","type":"payment.created","event_id":"{id}","created_at":"{at}","data":{{"type":"payment","id":"{short}"}}}}"#
    )
    .into_bytes()
}
