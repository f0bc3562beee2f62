//! Trend Micro Cloud One Conformity: `X-Conformity-Signature` is the hex HMAC-SHA256 of
//! the body under the webhook security token (the docs hash `JSON.stringify` of the
//! parsed body, which is the body as sent when Conformity sends compact JSON).
//!
//! Source: <https://cloudone.trendmicro.com/docs/conformity/webhook-communication/>. No
//! SDK of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("trendmicro_conformity", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Conformity-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "trendmicro-conformity-secret",
    &[(
        "x-conformity-signature",
        "fc534d30966b9543beae5350dab314a1271df18d584a452eabe432f5e1de9d8b",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
