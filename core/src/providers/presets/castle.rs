//! Castle: `X-Castle-Signature` is the base64 HMAC-SHA256 of the body under the API
//! secret.
//!
//! Source: <https://docs.castle.io/docs/webhooks>. Its SDK verifies: castle
//! `castle.webhooks.verify.WebhooksVerify`.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("castle", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Castle-Signature"},
    "encoding": "base64",
    "message": ["body"],
    "body": "json_object"
}"#;

/// The vector of Castle's Python SDK's tests (its body is Python's repr, not JSON: the MAC is all it checks).
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "secret",
    &[
        ("x-castle-signature", "v61Bn6ItuClDcRqrr6++csm2Ub3Jfyos4BMR3PslhBY="),
    ],
    "{'user_traits': {}, 'policy': {}, 'data': {'location': {}, 'id': 'test', 'user_agent': {}, 'user_id': '', 'device_token': 'token', 'context': {}, 'trigger': '$login.succeeded'}, 'created_at': '2020-12-18T12:55:21.779Z', 'type': '$incident.confirmed', 'properties': {}}",
);
