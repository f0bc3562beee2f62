//! Coinbase Commerce: `X-CC-Webhook-Signature` is the hex HMAC-SHA256 of the body under
//! the shared secret (coinbase-commerce-node's `Webhook.verifySigHeader`). Coinbase's
//! CDP webhooks (Hook0) are another scheme.
//!
//! Source: <https://docs.cdp.coinbase.com/commerce/api-arcitecture/webhooks-security>.
//! Its SDK verifies: coinbase-commerce-node `Webhook.verifySigHeader`.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("coinbase", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-CC-Webhook-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "coinbase-secret",
    &[(
        "x-cc-webhook-signature",
        "36376d41b22773789e9330ab5801d839f97f8cb3935fffea4a69a9bfbcc156b1",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
