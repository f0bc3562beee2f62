//! Vobiz sub-account KYC webhooks (spec section 5.1):
//! `X-Vobiz-Signature: sha256=` + hex(HMAC-SHA256(parent account token, raw body)).
//!
//! The header name is the voice V1 header's; the `sha256=` prefix tells them apart, so it
//! is required exactly (lowercase), while the hex digits may be either case.

use crate::keys::Key;
use crate::providers::body_mac::BodyMac;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Outgoing, Signer, Signing};
#[cfg(any(test, feature = "sign"))]
use crate::providers::Media;
use crate::request::RequestHead;
use crate::verdict::Rejection;

pub const SCHEME: BodyMac = BodyMac {
    header: "x-vobiz-signature",
    prefix: b"sha256=",
};

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer {
    sign,
    example: |signing| example("kyc.completed", signing.now, &signing.id_or_uuid()).into_bytes(),
};

/// What Vobiz sends: `sha256=` and the hex MAC of the body under the parent account token.
#[cfg(any(test, feature = "sign"))]
pub fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key("vobiz_kyc")?;
    out.content_type(Media::JSON_OBJECT);
    out.default_header("user-agent", "Vobiz");
    SCHEME.sign(&key, out);
    Ok(())
}

/// A KYC event of session `session_id` at `now`.
#[cfg(any(test, feature = "sign"))]
pub fn example(event: &str, now: i64, session_id: &str) -> String {
    let string = |text: &str| serde_json::Value::from(text).to_string();
    format!(
        "{{\"event\":{},\"timestamp\":{},\"session_id\":{}}}",
        string(event),
        string(&sign::rfc3339(now)),
        string(session_id)
    )
}

/// The name of the parent-account key under which the body verified.
pub fn verify<'k>(
    parent_keys: &'k [Key],
    head: &RequestHead,
    body: &[u8],
) -> Result<&'k str, Rejection> {
    SCHEME
        .verify(parent_keys, head, body)
        .map(|key| key.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::request::headers;
    use crate::verdict::Reason;

    // Spec section 5.1, worked example.
    const BODY: &[u8] = br#"{"event":"kyc.completed"}"#;
    const SIGNATURE: &str =
        "sha256=265cd474f955da2f32c6e2af7d7ed9e4778730b0f8877fbba6379553af763cdc";

    fn check(signature: &str, body: &[u8]) -> Result<String, Reason> {
        let keys = [test_key("parent", "test_parent_token")];
        let h = headers(&[("x-vobiz-signature", signature)]);
        verify(&keys, &RequestHead::new(&h), body)
            .map(str::to_string)
            .map_err(|r| r.reason)
    }

    #[test]
    fn spec_example_verifies() {
        assert_eq!(check(SIGNATURE, BODY), Ok("parent".to_string()));
        assert_eq!(
            check(&format!("sha256={}", SIGNATURE[7..].to_uppercase()), BODY),
            Ok("parent".to_string())
        );
    }

    #[test]
    fn the_signer_reproduces_the_worked_example_and_its_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge, signed};
        use crate::providers::sign::{KeyMaterial, Signing};
        let signing = Signing::new(KeyMaterial::Secret("test_parent_token"), 1_774_432_800);
        let out = signed(&SIGNER, &signing, "https://h/k", Some(BODY));
        assert_eq!(out.header("x-vobiz-signature"), Some(SIGNATURE));
        let kyc =
            crate::providers::vobiz::kyc_scheme(vec![test_key("parent", "test_parent_token")]);
        let example = signed(&SIGNER, &signing, "https://h/k", None);
        assert_eq!(judge(&kyc, &example), Ok(("kyc/parent".into(), None)));
        assert_eq!(
            judge(&kyc, &changed_body(&example)),
            Err(Reason::SignatureMismatch)
        );
    }

    #[test]
    fn changed_body_or_other_key_fails() {
        assert_eq!(
            check(SIGNATURE, br#"{"event":"kyc.completed"} "#),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(
            check(SIGNATURE, br#"{"event":"kyc.completeD"}"#),
            Err(Reason::SignatureMismatch)
        );
        let own = [test_key("own", "test_auth_token")];
        let h = headers(&[("x-vobiz-signature", SIGNATURE)]);
        assert_eq!(
            verify(&own, &RequestHead::new(&h), BODY)
                .unwrap_err()
                .reason,
            Reason::SignatureMismatch
        );
    }

    #[test]
    fn prefix_is_required_exactly() {
        for bad in [
            &SIGNATURE[7..],
            "SHA256=265cd474f955da2f32c6e2af7d7ed9e4778730b0f8877fbba6379553af763cdc",
            "sha256:265cd474f955da2f32c6e2af7d7ed9e4778730b0f8877fbba6379553af763cdc",
            "sha256= 265cd474f955da2f32c6e2af7d7ed9e4778730b0f8877fbba6379553af763cdc",
            "sha256=",
            // A voice V1 value (base64 HMAC-SHA1) under the same header name.
            "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            assert_eq!(check(bad, BODY), Err(Reason::MalformedHeader), "{bad}");
        }
    }

    #[test]
    fn missing_header_is_missing_signature() {
        let keys = [test_key("parent", "test_parent_token")];
        let h = headers(&[("content-type", "application/json")]);
        assert_eq!(
            verify(&keys, &RequestHead::new(&h), BODY)
                .unwrap_err()
                .reason,
            Reason::MissingSignature
        );
    }
}
