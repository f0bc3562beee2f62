//! Xero: `x-xero-signature` is the base64 HMAC-SHA256 of the body under the app's webhook
//! key; a retry is the same body, so the same delivery. Its intent-to-receive check (when a
//! subscription is created or re-enabled: correctly and incorrectly signed `{"events":[],
//! ...,"entropy":...}` bodies) passes only if a bad signature is answered **401**, so this
//! preset refuses a mismatch with 401 (the route's `refusal_status` can say otherwise).
//! Xero's SDKs ship no verifier: the vector is its documented construction, computed with
//! Python's standard library.
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
use crate::verdict::Reason;

/// A signature that does not verify, or is not even base64, is "incorrectly signed".
pub const PRESET: Preset = Preset::new("xero", DESCRIPTION).refusing(&[
    (Reason::SignatureMismatch, 401),
    (Reason::MalformedHeader, 401),
]);

pub const ENTRY: Entry = entry!(PRESET, example);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "x-xero-signature"},
    "encoding": "base64",
    "message": ["body"],
    "body": "json_object"
}"#;

/// The intent-to-receive body of Xero's documentation.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "xero-webhook-key",
    &[(
        "x-xero-signature",
        "/SsCSmLCgZS78MZe10uSk9tHjGbSQJm28bFW9hhwbUI=",
    )],
    r#"{"events":[],"lastEventSequence":0,"firstEventSequence":0,"entropy":"S0m3r4Nd0mt3xt"}"#,
);

/// An invoice updated.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let id = signing.uuid();
    format!(
        r#"{{"events":[{{"resourceUrl":"https://api.xero.com/api.xro/2.0/Invoices/{id}","resourceId":"{id}","eventDateUtc":"{}","eventType":"UPDATE","eventCategory":"INVOICE","tenantId":"{id}","tenantType":"ORGANISATION"}}],"firstEventSequence":1,"lastEventSequence":1,"entropy":"{}"}}"#,
        crate::providers::sign::rfc3339(signing.now),
        crate::providers::sign::base62(&signing.random, 20)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::verdict::Rejection;

    fn route(extra: &str) -> crate::policy::Policy {
        let document = format!(
            r#"{{"routes": [{{"name": "x", "path_prefix": "/x/", "scheme": "xero", "keys": [{{"value": "k"}}]{extra}}}]}}"#
        );
        config::parse(document.as_bytes(), &|_| None).unwrap()
    }

    #[test]
    fn a_bad_signature_is_answered_401_unless_the_route_says_otherwise() {
        let mismatch = Rejection::new(Reason::SignatureMismatch, "x");
        assert_eq!(route("").routes[0].refusal(&mismatch).status(), 401);
        let own = route(r#", "refusal_status": {"signature_mismatch": 403}"#);
        assert_eq!(own.routes[0].refusal(&mismatch).status(), 403);
        let missing = Rejection::new(Reason::MissingSignature, "x");
        assert_eq!(route("").routes[0].refusal(&missing).status(), 401);
    }
}
