//! Linear: `Linear-Signature` is the hex HMAC-SHA256 of the body under the webhook's
//! signing secret; the signed time is the body's `webhookTimestamp`, so each attempt is its
//! own delivery.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | `webhookTimestamp` body field (ms), ±60 s (the SDK's) | JSON object | `Linear-Event` |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::Signing;

pub const PRESET: Preset = Preset::new("linear", DESCRIPTION);

/// Its signer sends the event's type and the delivery's id beside the signature.
pub const ENTRY: Entry = entry!(PRESET, example, |out, id| {
    out.default_header("linear-event", "Issue");
    out.default_header("linear-delivery", id);
});

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "Linear-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "timestamp": {"body_field": "webhookTimestamp", "format": "milliseconds",
                  "max_age_secs": 60, "max_future_secs": 60},
    "dispatch_headers": ["Linear-Event"],
    "body": "json_object"
}"#;

#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "lin_wh_test_secret",
    &[(
        "linear-signature",
        "55f36b7055b0e54d757b27a7ce6b16363c8f1f74867848956b7a5b4e63a8ffef",
    )],
    r#"{"action":"create","type":"Issue","webhookTimestamp":1700000000000,"webhookId":"wh_1"}"#,
)
.at(1_700_000_000);

/// An `Issue` created (the signer adds `webhookTimestamp`).
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let id = signing.uuid();
    format!(
        r#"{{"action":"create","type":"Issue","data":{{"id":"{id}","title":"Simulated"}},"webhookId":"{id}"}}"#
    )
    .into_bytes()
}
