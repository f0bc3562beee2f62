//! Clearbit: `X-Request-Signature: sha1=<hex>`, the HMAC-**SHA1** of the body under the
//! secret API key (as clearbit-ruby's `Clearbit::Webhook`).
//!
//! Source: clearbit/clearbit-ruby lib/clearbit/webhook_signature.rb. No SDK of the
//! provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("clearbit", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Request-Signature", "prefix": "sha1="},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "algorithm": "sha1"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "clearbit-secret",
    &[(
        "x-request-signature",
        "sha1=73d734397a526e0ad734b9655b87ebf8186e135e",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
