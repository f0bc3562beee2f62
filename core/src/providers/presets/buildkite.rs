//! Buildkite: `X-Buildkite-Signature: timestamp=<unix s>,signature=<hex>`, the
//! HMAC-SHA256 of `timestamp.body` under the webhook token (the docs' Ruby and
//! go-buildkite build it so); the docs suggest a five-minute window. (A webhook set to
//! send `X-Buildkite-Token` instead is a `static_token` route.)
//!
//! Source: <https://buildkite.com/docs/apis/webhooks/pipelines>. No SDK of the provider
//! verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | `timestamp` ‖ `.` ‖ body | `timestamp`, 300 s past, 300 s ahead | JSON object | `X-Buildkite-Event` |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("buildkite", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Buildkite-Signature", "list": {"separator": ",", "entry": "key=value", "label": "signature", "trim": true}},
    "encoding": "hex",
    "message": [{"item": "timestamp"}, {"literal": "."}, "body"],
    "timestamp": {"item": "timestamp", "format": "seconds", "max_age_secs": 300, "max_future_secs": 300},
    "body": "json_object",
    "dispatch_headers": ["X-Buildkite-Event"]
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "buildkite-secret",
    &[
        ("x-buildkite-signature", "timestamp=1774432800,signature=2806538578ba62413707e7c6a4589af038c9071c6b068d19a685373272b965cc"),
    ],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
)
.at(1774432800);
