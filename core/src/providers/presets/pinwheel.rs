//! Pinwheel: `x-pinwheel-signature: v2=<hex>`, the HMAC-SHA256 of
//! `v2:<x-timestamp>:<body>` under the API secret. Pinwheel states no window; five
//! minutes here.
//!
//! Source: <https://docs.pinwheelapi.com/docs/webhook-signature-verification>. No SDK
//! of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | `v2:` ‖ `x-timestamp` ‖ `:` ‖ body | `x-timestamp`, 300 s past, 300 s ahead | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("pinwheel", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "x-pinwheel-signature", "prefix": "v2="},
    "encoding": "hex",
    "message": [{"literal": "v2:"}, {"header": "x-timestamp"}, {"literal": ":"}, "body"],
    "timestamp": {"header": "x-timestamp", "format": "seconds", "max_age_secs": 300, "max_future_secs": 300},
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "pinwheel-secret",
    &[
        ("x-timestamp", "1774432800"),
        (
            "x-pinwheel-signature",
            "v2=b9ebc8394aab949a05667300b90309b0b022a10cf5d54195a421d10a432157c3",
        ),
    ],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
)
.at(1774432800)
.given();
