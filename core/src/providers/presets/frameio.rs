//! Frame.io: `X-Frameio-Signature: v0=<hex>`, the HMAC-SHA256 of
//! `v0:<X-Frameio-Request-Timestamp>:<body>` under the webhook's signing secret; five
//! minutes, as its docs recommend.
//!
//! Source: <https://developer.frame.io/platform/v4/docs/guides/webhooks>. No SDK of the
//! provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | `v0:` ‖ `X-Frameio-Request-Timestamp` ‖ `:` ‖ body | `X-Frameio-Request-Timestamp`, 300 s past, 300 s ahead | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("frameio", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Frameio-Signature", "prefix": "v0="},
    "encoding": "hex",
    "message": [{"literal": "v0:"}, {"header": "X-Frameio-Request-Timestamp"}, {"literal": ":"}, "body"],
    "timestamp": {"header": "X-Frameio-Request-Timestamp", "format": "seconds", "max_age_secs": 300, "max_future_secs": 300},
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "frameio-secret",
    &[
        ("x-frameio-request-timestamp", "1774432800"),
        (
            "x-frameio-signature",
            "v0=23c06942aac47e02b38b5c8dc3d1509aee6bde953a05d70f7c8b5586e54d8061",
        ),
    ],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
)
.at(1774432800)
.given();
