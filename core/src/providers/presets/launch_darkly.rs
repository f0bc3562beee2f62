//! LaunchDarkly: `X-LD-Signature` is the hex HMAC-SHA256 of the body under the
//! webhook's secret.
//!
//! Source: <https://docs.launchdarkly.com/home/connecting/webhooks/>. No SDK of the
//! provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("launch_darkly", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-LD-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "launch-darkly-secret",
    &[(
        "x-ld-signature",
        "0cb930586cab9ddf89dc04e13e812a7b286c219693b27e9891c351b1d18abb7b",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
