//! Bitbucket Cloud: `X-Hub-Signature: sha256=<hex>` = HMAC-SHA256 of the body with the
//! webhook's secret (Bitbucket's "Secure webhooks" documentation; no official SDK verifies
//! it). A redelivery is the same body with the same signature; `X-Attempt-Number` counts
//! the attempts and is read by nobody.
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | the signature | the body | none: nothing time-like is signed | a JSON object | method, path, query, content type, `X-Event-Key` |

use crate::providers::body_mac::{BodyMac, BodySigned};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{Outgoing, Signer, Signing};
use crate::providers::Media;

pub const SCHEME: BodyMac = BodyMac {
    header: "x-hub-signature",
    prefix: b"sha256=",
};

/// What an application dispatches on (`repo:push`, `pullrequest:created`, ...): unsigned,
/// so bound by the fingerprint.
const DISPATCH: [&str; 1] = ["x-event-key"];

pub const ENTRY: Entry = signs!(
    Entry::new("bitbucket", |settings| {
        Ok(Box::new(BodySigned {
            scheme: "bitbucket",
            mac: SCHEME,
            keys: settings.keys,
            media: Media::JSON_OBJECT,
            dispatch: &DISPATCH,
        }))
    }),
    SIGNER
);

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// What Bitbucket sends: the body's MAC, the event key an app dispatches on, the request's
/// own id and attempt number (read by nobody).
#[cfg(any(test, feature = "sign"))]
fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key("bitbucket")?;
    out.content_type(Media::JSON_OBJECT);
    out.default_header("user-agent", "Bitbucket-Webhooks/2.0");
    out.default_header("x-event-key", "repo:push");
    out.default_header("x-request-uuid", signing.id_or_uuid());
    out.default_header("x-attempt-number", "1");
    SCHEME.sign(&key, out);
    Ok(())
}

/// A `repo:push` event.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"push":{{"changes":[]}},"repository":{{"uuid":"{{{}}}","full_name":"team/repo"}}}}"#,
        signing.uuid()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::providers::entry::Settings;
    use crate::providers::{Body, Checks};
    use crate::request::{headers, RequestHead};
    use crate::verdict::Reason;

    const BODY: &str = r#"{"push":{"changes":[]},"repository":{"full_name":"team/repo"}}"#;
    /// Python's `hmac.new(b"bitbucket-webhook-secret", BODY, hashlib.sha256)`: no
    /// Bitbucket SDK computes it.
    const SIGNATURE: &str =
        "sha256=b1659ead221ec38836d6d330d3d402a0c52e7fd2475c299cd1c28cb01b32792d";

    fn check(signature: &str, body: &str) -> Result<&'static str, Reason> {
        let settings = Settings {
            keys: vec![
                test_key("old", "other"),
                test_key("k", "bitbucket-webhook-secret"),
            ],
            ..Settings::default()
        };
        let bitbucket = (ENTRY.compile)(settings).unwrap();
        let h = headers(&[("x-hub-signature", signature)]);
        let head = RequestHead::new(&h);
        bitbucket
            .at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        bitbucket
            .at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .map(|verified| verified.scheme)
            .map_err(|r| r.reason)
    }

    #[test]
    fn the_reference_vector_verifies_and_one_changed_byte_does_not() {
        assert_eq!(check(SIGNATURE, BODY), Ok("bitbucket"));
        let changed = BODY.replace("repo", "rep0");
        assert_eq!(check(SIGNATURE, &changed), Err(Reason::SignatureMismatch));
        assert_eq!(check(&SIGNATURE[7..], BODY), Err(Reason::MalformedHeader));
        assert_eq!(
            check(&SIGNATURE.replace("sha256=", "sha1="), BODY),
            Err(Reason::MalformedHeader)
        );
    }

    #[test]
    fn the_signer_reproduces_the_reference_vector_and_its_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge, signed};
        use crate::providers::sign::{KeyMaterial, Signing};
        let signing = Signing::new(KeyMaterial::Secret("bitbucket-webhook-secret"), 0);
        let out = signed(&SIGNER, &signing, "https://h/hook", Some(BODY.as_bytes()));
        assert_eq!(out.header("x-hub-signature"), Some(SIGNATURE));
        let settings = Settings {
            keys: vec![test_key("k", "bitbucket-webhook-secret")],
            ..Settings::default()
        };
        let bitbucket = (ENTRY.compile)(settings).unwrap();
        let example = signed(&SIGNER, &signing, "https://h/hook", None);
        assert_eq!(
            judge(bitbucket.as_ref(), &example),
            Ok(("bitbucket/k".into(), None))
        );
        assert_eq!(
            judge(bitbucket.as_ref(), &changed_body(&example)),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(example.header("x-event-key"), Some("repo:push"));
    }
}
