//! Maxio Advanced Billing (Chargify): `X-Chargify-Webhook-Signature-Hmac-Sha-256` is
//! the hex HMAC-SHA256 of the form body under the site's shared key (the legacy MD5
//! `X-Chargify-Webhook-Signature` is not read).
//!
//! Source: <https://help.chargify.com/settings/webhooks.html>. No SDK of the provider
//! verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | form | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("chargify", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::form_event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Chargify-Webhook-Signature-Hmac-Sha-256"},
    "encoding": "hex",
    "message": ["body"],
    "body": "form"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "chargify-secret",
    &[(
        "x-chargify-webhook-signature-hmac-sha-256",
        "d52c976316dbe223f5a9389b82b608c8e51b9f0955bf100b5c47cace7fe6aaa7",
    )],
    "id=123&event=test&payload%5Bchargify%5D=testing",
);
