//! Webex: `X-Spark-Signature` is the hex HMAC-**SHA1** of the body under the webhook's
//! secret.
//!
//! Source: <https://developer.webex.com/docs/api/guides/webhooks>. No SDK of the
//! provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("webex", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Spark-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "algorithm": "sha1"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "webex-secret",
    &[(
        "x-spark-signature",
        "e00034af7b62e83ff491f79e54e42898c40dc732",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
