//! HCP Terraform / Terraform Enterprise notifications: `X-TFE-Notification-Signature`
//! is the hex HMAC-**SHA512** of the body under the notification configuration's token.
//! Its verification request, sent when a configuration is saved, is signed the same way
//! and delivered like any notification.
//!
//! Source:
//! <https://developer.hashicorp.com/terraform/cloud-docs/api-docs/notification-configurations>.
//! No SDK of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("terraform", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-TFE-Notification-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "algorithm": "sha512"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "terraform-secret",
    &[
        ("x-tfe-notification-signature", "dbcd4a1d3a997093b58c541c6272a0664256ee6038723e5861b0f1054d2c50cd9b932861c096ac14718d5cf73db1523836adc3ce2b253915efb32def37d8c7e5"),
    ],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
