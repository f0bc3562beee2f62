//! Pusher Channels: `X-Pusher-Signature` is the hex HMAC-SHA256 of the body under the
//! app secret; the body's `time_ms` is the signed time, ±5 min as Pusher's Python SDK
//! checks. `X-Pusher-Key` (which app) is bound.
//!
//! Source: <https://pusher.com/docs/channels/server_api/webhooks/>. Its SDK verifies:
//! pusher `validate_webhook`.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | `time_ms`, 300 s past, 300 s ahead | JSON object | `X-Pusher-Key` |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("pusher", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Pusher-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "dispatch_headers": ["X-Pusher-Key"],
    "timestamp": {"body_field": "time_ms", "format": "milliseconds", "max_age_secs": 300, "max_future_secs": 300}
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "pusher-secret",
    &[(
        "x-pusher-signature",
        "edb79e8093d14df8497141491340dbe466ea99003eb400377b5d074d58e88b20",
    )],
    r#"{"time_ms":1774432800000,"events":[{"name":"channel_occupied","channel":"café"}]}"#,
)
.at(1774432800);
