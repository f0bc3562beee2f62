//! Calendly: `Calendly-Webhook-Signature: t=<unix s>,v1=<hex>`, the HMAC-SHA256 of
//! `t.body` under the subscription's signing key; three minutes past, one ahead.
//!
//! Source:
//! <https://developer.calendly.com/api-docs/overview/webhooks/webhook-signatures>. No
//! SDK of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | `t` ‖ `.` ‖ body | `t`, 180 s past, 60 s ahead | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("calendly", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "Calendly-Webhook-Signature", "list": {"separator": ",", "entry": "key=value", "label": "v1"}},
    "encoding": "hex",
    "message": [{"item": "t"}, {"literal": "."}, "body"],
    "timestamp": {"item": "t", "format": "seconds", "max_age_secs": 180, "max_future_secs": 60},
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "calendly-secret",
    &[(
        "calendly-webhook-signature",
        "t=1774432800,v1=24d5a4f73caafc6799ecb57fdd95eb9864f4c783015bae1cb5b0a539f95c746d",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
)
.at(1774432800);
