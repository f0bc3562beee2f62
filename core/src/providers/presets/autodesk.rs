//! Autodesk Platform Services: `x-adsk-signature: sha1hash=<hex>`, the HMAC-**SHA1** of
//! the body under the hook's secret token.
//!
//! Source:
//! <https://aps.autodesk.com/en/docs/webhooks/v1/tutorials/how-to-verify-payload-signature/>.
//! No SDK of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("autodesk", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "x-adsk-signature", "prefix": "sha1hash="},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "algorithm": "sha1"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "autodesk-secret",
    &[(
        "x-adsk-signature",
        "sha1hash=70a7a572c19a54decd737c0b5bb29a599cc63944",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
