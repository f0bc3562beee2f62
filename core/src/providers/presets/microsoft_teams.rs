//! Microsoft Teams (outgoing webhooks): `Authorization: HMAC <base64>`, the HMAC-SHA256
//! of the body under the security token Teams shows when the webhook is created,
//! **base64-decoded**. Teams waits at most 5 s for the answer.
//!
//! Source: MicrosoftDocs/msteams-docs add-outgoing-webhook.md. No SDK of the provider
//! verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("microsoft_teams", DESCRIPTION).keyed_base64();

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "Authorization", "prefix": "HMAC "},
    "encoding": "base64",
    "message": ["body"],
    "body": "json_object",
    "key": {"encoding": "base64"}
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "dnFGMEVuK1owdWN1UlRNLzAxbzJHdWhNSDNoS0trL04=",
    &[(
        "authorization",
        "HMAC O3SEIkzhmImSZpdBJ4jwh4uNMz/erD6+4iInJo4S7gQ=",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
