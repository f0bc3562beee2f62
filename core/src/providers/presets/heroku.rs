//! Heroku (app webhooks): `Heroku-Webhook-Hmac-SHA256` is the base64 HMAC-SHA256 of the
//! body under the subscription's secret (Heroku's webhooks demo app).
//!
//! Source: <https://devcenter.heroku.com/articles/app-webhooks>. No SDK of the provider
//! verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("heroku", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "Heroku-Webhook-Hmac-SHA256"},
    "encoding": "base64",
    "message": ["body"],
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "heroku-secret",
    &[(
        "heroku-webhook-hmac-sha256",
        "Ti4e3cVyd9LIRYz+nr2YJ3J7t44R9GXa0PZz5feW7UA=",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
