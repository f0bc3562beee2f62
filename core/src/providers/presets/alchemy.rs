//! Alchemy Notify: `X-Alchemy-Signature` is the hex HMAC-SHA256 of the body under the
//! webhook's signing key (not the auth token).
//!
//! Source: <https://docs.alchemy.com/reference/notify-api-faq>. No SDK of the provider
//! verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("alchemy", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Alchemy-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "alchemy-secret",
    &[(
        "x-alchemy-signature",
        "ae7843fc710835c3c8bd5097e0f94fa89c9888f55a50ff233ad3d59864d56371",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
