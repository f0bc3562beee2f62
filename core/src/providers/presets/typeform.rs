//! Typeform: `Typeform-Signature: sha256=<base64>` is the HMAC-SHA256 of the body under
//! the webhook's secret; a retry is the same body, so the same delivery.
//!
//! Source: <https://www.typeform.com/developers/webhooks/secure-your-webhooks/>. No SDK
//! of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("typeform", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "Typeform-Signature", "prefix": "sha256="},
    "encoding": "base64",
    "message": ["body"],
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "typeform-secret",
    &[(
        "typeform-signature",
        "sha256=b4XxkFLciRxauI7/bYcY/GyJ298KxxhqovwxlxdSSJ8=",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
