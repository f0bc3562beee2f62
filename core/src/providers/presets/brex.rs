//! Brex: Svix's construction under Brex's names: `Webhook-Signature: v1,<base64> …`,
//! the HMAC-SHA256 of `Webhook-Id.Webhook-Timestamp.body` under each secret of `GET
//! /v1/webhooks/secrets`, **base64-decoded** (two while one rotates); ±5 min.
//!
//! Source: <https://developer.brex.com/docs/webhooks>. No SDK of the provider verifies
//! it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | `Webhook-Id` ‖ `.` ‖ `Webhook-Timestamp` ‖ `.` ‖ body | `Webhook-Timestamp`, 300 s past, 300 s ahead | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("brex", DESCRIPTION).keyed_base64();

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "Webhook-Signature", "list": {"separator": " ", "entry": "label,value", "label": "v1"}},
    "encoding": "base64",
    "key": {"encoding": "base64"},
    "message": [{"header": "Webhook-Id"}, {"literal": "."}, {"header": "Webhook-Timestamp"}, {"literal": "."}, "body"],
    "timestamp": {"header": "Webhook-Timestamp", "format": "seconds", "max_age_secs": 300, "max_future_secs": 300},
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "YnJleC13ZWJob29rLXNlY3JldC1rZXk=",
    &[
        ("webhook-id", "msg_2mWmX8rQDhK1"),
        ("webhook-timestamp", "1774432800"),
        (
            "webhook-signature",
            "v1,lU0IqdyDCPkTMDjrKOFYpZPpEPQTeH5P5AY7uP+4Www=",
        ),
    ],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
)
.at(1774432800)
.given();
