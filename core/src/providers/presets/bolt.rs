//! Bolt: `X-Bolt-Hmac-Sha256` is the base64 HMAC-SHA256 of the body under the merchant
//! signing secret.
//!
//! Source: <https://help.bolt.com/developers/webhooks/hook-verification>. No SDK of the
//! provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("bolt", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Bolt-Hmac-Sha256"},
    "encoding": "base64",
    "message": ["body"],
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "bolt-secret",
    &[(
        "x-bolt-hmac-sha256",
        "O2HmR31jwKIIfELw0/5hKSSCzFBYP4t84OG1XPssMFI=",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
