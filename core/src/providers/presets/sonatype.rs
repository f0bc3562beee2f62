//! Sonatype Nexus Repository: `X-Nexus-Webhook-Signature` is the hex HMAC-**SHA1** of
//! the body under the capability's secret key; `X-Nexus-Webhook-ID` (the event type) is
//! bound. Nexus does not retry.
//!
//! Source:
//! <https://help.sonatype.com/repomanager3/integrations/webhooks/working-with-hmac-payloads>.
//! No SDK of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | `X-Nexus-Webhook-ID` |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("sonatype", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Nexus-Webhook-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "algorithm": "sha1",
    "dispatch_headers": ["X-Nexus-Webhook-ID"]
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "sonatype-secret",
    &[(
        "x-nexus-webhook-signature",
        "df1629873ad43d77c82a4ba746449e724ad77fc3",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
