//! Jira (admin webhooks with a secret): `X-Hub-Signature: sha256=<hex>` (WebSub's form,
//! not GitHub's `-256` header), the HMAC-SHA256 of the body under the webhook's secret.
//! Only admin webhooks are signed so: app (Connect, OAuth) webhooks carry a JWT
//! instead.
//!
//! Source: <https://developer.atlassian.com/cloud/jira/platform/webhooks/>. No SDK of
//! the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("jira", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Hub-Signature", "prefix": "sha256="},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "jira-secret",
    &[(
        "x-hub-signature",
        "sha256=b0f4ac018aa58656b8d81134bb15fd7c93be0c97b00a05eadf2b59502366290a",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
