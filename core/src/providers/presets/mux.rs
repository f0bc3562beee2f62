//! Mux: `Mux-Signature: t=<unix s>,v1=<hex>`, the HMAC-SHA256 of `t.body` under the
//! endpoint's signing secret; ±5 min (Mux's SDK: 5 min past).
//!
//! Source: <https://www.mux.com/docs/core/verify-webhook-signatures>. Its SDK verifies:
//! @mux/mux-node `webhooks.verifySignature`.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | `t` ‖ `.` ‖ body | `t`, 300 s past, 300 s ahead | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("mux", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "Mux-Signature", "list": {"separator": ",", "entry": "key=value", "label": "v1"}},
    "encoding": "hex",
    "message": [{"item": "t"}, {"literal": "."}, "body"],
    "timestamp": {"item": "t", "format": "seconds", "max_age_secs": 300, "max_future_secs": 300},
    "body": "json_object"
}"#;

/// The vector of Mux's Node SDK's tests (`@mux/mux-node`).
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "SuperSecret123",
    &[(
        "mux-signature",
        "t=1565125718,v1=854ece4c22acef7c66b57d4e504153bc512595e8e9c772ece2a68150548c19a7",
    )],
    r#"{"test":"body"}"#,
)
.at(1565125718);
