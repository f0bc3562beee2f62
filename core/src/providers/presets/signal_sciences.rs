//! Fastly Next-Gen WAF (Signal Sciences): `X-SigSci-Signature` is the hex HMAC-SHA256
//! of the body under the integration's signing key.
//!
//! Source: <https://docs.fastly.com/signalsciences/integrations/generic-webhooks>. No
//! SDK of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("signal_sciences", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-SigSci-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "signal-sciences-secret",
    &[(
        "x-sigsci-signature",
        "9db51b426532aee548f6abb39e6005620f316082e2beecd409be0cde3dc04099",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
