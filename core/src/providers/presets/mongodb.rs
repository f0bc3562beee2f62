//! MongoDB Atlas (alert webhooks): `X-MMS-Signature` is the base64 HMAC-**SHA1** of the
//! body under the webhook secret. A body template can make the body other than JSON, so
//! the body is not restricted (its type is bound); `X-MMS-Event` is bound.
//!
//! Source: <https://www.mongodb.com/docs/atlas/tutorial/webhook-integration/>. No SDK
//! of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | any (its type bound) | `X-MMS-Event` |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("mongodb", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-MMS-Signature"},
    "encoding": "base64",
    "message": ["body"],
    "body": "any",
    "algorithm": "sha1",
    "dispatch_headers": ["X-MMS-Event"]
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "mongodb-secret",
    &[("x-mms-signature", "5CNXkxRqFMSpTpxsSTM4mXRCatA=")],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
