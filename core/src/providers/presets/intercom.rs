//! Intercom: `X-Hub-Signature: sha1=<hex>` is the HMAC-SHA1 of the body under the app's
//! client secret; a retry is the same body, so the same delivery.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body (HMAC-SHA1) | none | JSON object | |

#[cfg(test)]
use super::tests::{Vector, BODY_B};
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::Signing;

pub const PRESET: Preset = Preset::new("intercom", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, example);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Hub-Signature", "prefix": "sha1="},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "algorithm": "sha1"
}"#;

#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "intercom_client_secret",
    &[(
        "x-hub-signature",
        "sha1=1dc926c0a6390cb4c588b131f747524b8389d373",
    )],
    BODY_B,
);

/// A `conversation.user.created` notification.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let (id, now) = (signing.uuid(), signing.now);
    format!(
        r#"{{"type":"notification_event","topic":"conversation.user.created","id":"notif_{id}","created_at":{now},"data":{{"item":{{}}}}}}"#
    )
    .into_bytes()
}
