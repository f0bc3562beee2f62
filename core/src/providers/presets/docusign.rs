//! DocuSign Connect (HMAC security): `X-DocuSign-Signature-1`, `-2`, … carry the base64
//! HMAC-SHA256 of the body, one per HMAC key of the account (configure each as `keys`;
//! the filter reads up to eight headers). A retry is the same body, so the same delivery.
//! DocuSign's SDKs ship no verifier: the vector is its documented construction, computed
//! with Python's standard library. Connect sends JSON (the default) or, in legacy
//! configurations, XML: the body is not restricted, and its type is bound.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | any (JSON or XML) | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::Signing;

pub const PRESET: Preset = Preset::new("docusign", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, example);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-DocuSign-Signature-1",
                  "also": ["X-DocuSign-Signature-2", "X-DocuSign-Signature-3",
                           "X-DocuSign-Signature-4", "X-DocuSign-Signature-5",
                           "X-DocuSign-Signature-6", "X-DocuSign-Signature-7",
                           "X-DocuSign-Signature-8"]},
    "encoding": "base64",
    "message": ["body"]
}"#;

#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "docusign-hmac-key",
    &[(
        "x-docusign-signature-1",
        "et3NrsrjH5GNNiVT2Kfo/kXVf5IqjJRkek/kpGUN1k4=",
    )],
    r#"{"event":"envelope-completed","apiVersion":"v2.1","uri":"/restapi/v2.1/accounts/1/envelopes/2","retryCount":0,"generatedDateTime":"2026-03-25T10:00:00.0000000Z","data":{"envelopeId":"2"}}"#,
);

/// An envelope completed.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let id = signing.uuid();
    format!(
        r#"{{"event":"envelope-completed","apiVersion":"v2.1","uri":"/restapi/v2.1/accounts/1/envelopes/{id}","retryCount":0,"generatedDateTime":"{}","data":{{"envelopeId":"{id}","note":"café"}}}}"#,
        crate::providers::sign::rfc3339(signing.now)
    )
    .into_bytes()
}
