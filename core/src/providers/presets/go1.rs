//! Go1: `Go1-Signature: t=<unix s>,v1=<hex>`, the HMAC-SHA256 of `t.body` under the
//! webhook's secret key; 60 s, Go1's SDK's tolerance (`@go1/webhook-verifier-js`).
//!
//! Source:
//! <https://www.go1.com/developers/partners/concepts/webhook-signature-authentification>.
//! Its SDK verifies: @go1/webhook-verifier-js `verifySignature`.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | `t` ‖ `.` ‖ body | `t`, 60 s past, 60 s ahead | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("go1", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "Go1-Signature", "list": {"separator": ",", "entry": "key=value", "label": "v1"}},
    "encoding": "hex",
    "message": [{"item": "t"}, {"literal": "."}, "body"],
    "timestamp": {"item": "t", "format": "seconds", "max_age_secs": 60, "max_future_secs": 60},
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "go1-secret",
    &[(
        "go1-signature",
        "t=1774432800,v1=69b813c159d23cd8b195bb16336d5cb4645052ecbc51f866a3b4d7c9def58f9f",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
)
.at(1774432800);
