//! Orb: `X-Orb-Signature: v1=<hex>[ v1=…]`, the HMAC-SHA256 of
//! `v1:<X-Orb-Timestamp>:<body>` under the webhook secret; Orb writes its timestamp
//! without an offset (`2024-03-27T15:42:29.551`), meaning UTC (`rfc3339_utc`); ±5 min,
//! as Orb's SDK.
//!
//! Source: orbcorp/orb-python src/orb/resources/webhooks.py. Its SDK verifies:
//! orb-billing `webhooks.verify_signature`.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | `v1:` ‖ `X-Orb-Timestamp` ‖ `:` ‖ body | `X-Orb-Timestamp`, 300 s past, 300 s ahead | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("orb", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Orb-Signature", "list": {"separator": " ", "entry": "key=value", "label": "v1"}},
    "encoding": "hex",
    "message": [{"literal": "v1:"}, {"header": "X-Orb-Timestamp"}, {"literal": ":"}, "body"],
    "timestamp": {"header": "X-Orb-Timestamp", "format": "rfc3339_utc", "max_age_secs": 300, "max_future_secs": 300},
    "body": "json_object"
}"#;

/// The vector of Orb's Python SDK's tests.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "c-UGKYdnhHh436B_sMouYAPUvXyWpzOdunZBV5dFSD8",
    &[
        ("x-orb-timestamp", "2024-03-27T15:42:29.551"),
        ("x-orb-signature", "v1=9d25de966891ab0bc18754faf8d83d0980b44ae330fcc130b41a6cf3daf1f391"),
    ],
    r#"{"id": "o4mmewpfNNTnjfZc", "created_at": "2024-03-27T15:42:29+00:00", "type": "resource_event.test", "properties": {"message": "A test webhook from Orb. Happy testing!"}}"#,
)
.at(1711554149)
.given();
