//! Sentry (integration platform): `Sentry-Hook-Signature` is the hex HMAC-SHA256 of the
//! body under the integration's client secret (Sentry's source:
//! `SentryApp.build_signature`, over the bytes it sends). `Sentry-Hook-Timestamp` is
//! not signed, so not read.
//!
//! Source:
//! <https://docs.sentry.io/organization/integrations/integration-platform/webhooks/>.
//! No SDK of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | `Sentry-Hook-Resource` |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("sentry", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "Sentry-Hook-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "dispatch_headers": ["Sentry-Hook-Resource"]
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "sentry-secret",
    &[(
        "sentry-hook-signature",
        "d7d341ced36e19e2606b66b768ca6e245295721ba44c172550119bd90a0aba5b",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
);
