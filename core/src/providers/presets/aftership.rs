//! AfterShip Tracking: `aftership-hmac-sha256` is the base64 HMAC-SHA256 of the body
//! under the webhook secret; a retry (up to 14, over about 68 h) is the same event.
//!
//! Source: <https://www.aftership.com/docs/tracking/webhook/webhook-signature>. No SDK
//! of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("aftership", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "aftership-hmac-sha256"},
    "encoding": "base64",
    "message": ["body"],
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "aftership-secret",
    &[(
        "aftership-hmac-sha256",
        "IWMRviOHxaYI4ZI6EbaXE1e3gcgn6kQEpXMBWIHkyJc=",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
