//! Modern Treasury: `X-Signature` is the hex HMAC-SHA256 of the body under the webhook
//! key; `X-Webhook-ID`, the same on every attempt, is bound.
//!
//! Source: <https://docs.moderntreasury.com/docs/verifying-webhooks>. Its SDK verifies:
//! modern-treasury `webhooks.validate_signature`.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | `X-Webhook-ID` |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("modern_treasury", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "dispatch_headers": ["X-Webhook-ID"]
}"#;

/// The vector of Modern Treasury's SDK's tests.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "foo",
    &[(
        "x-signature",
        "57e14f6f354543f0101fb06ea24df7731d90087b76651e3497345e22a3622940",
    )],
    r#"{"foo":"bar"}"#,
);
