//! Worldline (Connect / Direct): `X-GCS-Signature` is the base64 HMAC-SHA256 of the body
//! under the webhooks secret key whose id `X-GCS-KeyId` names (configure each secret as
//! `keys`; every key is tried, the unsigned id is not trusted). A retry is the same body.
//! Its endpoint check, a `GET` with `X-GCS-Webhooks-Endpoint-Verification`, is answered at
//! the edge with that header's value as `text/plain`. The vector is its documented
//! construction, computed with Python's standard library.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::Signing;

pub const PRESET: Preset = Preset::new("worldline", DESCRIPTION);

/// Its signer names the key, as Worldline does.
pub const ENTRY: Entry = entry!(PRESET, example, |out, _| {
    out.default_header("x-gcs-keyid", "key-1");
});

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-GCS-Signature"},
    "encoding": "base64",
    "message": ["body"],
    "body": "json_object",
    "endpoint_check": {"kind": "header_echo", "header": "X-GCS-Webhooks-Endpoint-Verification"}
}"#;

#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "worldline-secret-key",
    &[(
        "x-gcs-signature",
        "1xJMS1bVksTE5PHJ8G+CkG2msfbXfQjyP325j/zok24=",
    )],
    r#"{"apiVersion":"v1","id":"8ee793f6-4553-4749-85dc-f2ef095c5ab0","created":"2026-03-25T10:00:00.000+0000","merchantId":"1","type":"payment.paid"}"#,
);

/// A payment paid.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"v1","id":"{}","created":"{}","merchantId":"1","type":"payment.paid","payment":{{"status":"CAPTURED"}}}}"#,
        signing.uuid(),
        crate::providers::sign::rfc3339(signing.now)
    )
    .into_bytes()
}
