//! GitHub: `X-Hub-Signature-256: sha256=<hex>` = HMAC-SHA256 of the body with the webhook
//! secret. The legacy SHA-1 `X-Hub-Signature` is never read (a downgrade).
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | the signature | the body (a redelivery is byte-identical) | none: nothing time-like is signed | a JSON object, or a form (`payload=`) | method, path, query, content type, `X-GitHub-Event`, `X-GitHub-Delivery` |

use crate::keys::Key;
use crate::providers::body_mac::{BodyMac, BodySigned};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{Outgoing, Signer, Signing};
use crate::providers::Media;

pub const SCHEME: BodyMac = BodyMac {
    header: "x-hub-signature-256",
    prefix: b"sha256=",
};

/// A GitHub route's scheme.
pub const ENTRY: Entry = signs!(
    Entry::new("github", |settings| Ok(Box::new(scheme(settings.keys)))),
    SIGNER
);

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// What GitHub sends: the body's MAC, with the event and delivery headers an app
/// dispatches on.
#[cfg(any(test, feature = "sign"))]
pub fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key("github")?;
    out.content_type(Media::JSON_OBJECT_OR_FORM);
    out.default_header("user-agent", "GitHub-Hookshot/callback-guard");
    out.default_header("x-github-event", "issues");
    out.default_header("x-github-delivery", signing.id_or_uuid());
    SCHEME.sign(&key, out);
    Ok(())
}

/// An `issues` event.
#[cfg(any(test, feature = "sign"))]
pub fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"action":"opened","issue":{{"node_id":"{}","title":"Simulated"}},"repository":{{"full_name":"octo-org/hello"}}}}"#,
        signing.uuid()
    )
    .into_bytes()
}

pub fn scheme(keys: Vec<Key>) -> BodySigned {
    BodySigned {
        scheme: "github",
        mac: SCHEME,
        keys,
        // A webhook's content type is `json`, or `form` (`payload=<json>`).
        media: Media::JSON_OBJECT_OR_FORM,
        dispatch: &DISPATCH,
    }
}

/// What an app dispatches on (and de-duplicates by); a redelivery keeps both. Not the hook
/// headers: a repository's and an organisation's hook on one URL deliver the same body
/// under the same delivery id, and the second is one event delivered twice, not tampering.
const DISPATCH: [&str; 2] = ["x-github-event", "x-github-delivery"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::providers::{Body, Checks, Provider};
    use crate::request::{headers, RequestHead};
    use crate::verdict::Reason;

    fn check(signature: &str, body: &str) -> Result<(), Reason> {
        let github = scheme(vec![
            test_key("old", "other"),
            test_key("k", "It's a Secret to Everybody"),
        ]);
        let h = headers(&[("x-hub-signature-256", signature)]);
        let head = RequestHead::new(&h);
        github
            .at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        github
            .at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .map(|_| ())
            .map_err(|r| r.reason)
    }

    #[test]
    fn githubs_documented_example_verifies_under_the_second_key() {
        // providers.md §4 row 4a.
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(check(signature, "Hello, World!"), Ok(()));
        assert_eq!(
            check(signature, "Hello, World?"),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(
            check(&signature[7..], "Hello, World!"),
            Err(Reason::MalformedHeader)
        );
        assert_eq!(
            check("sha1=0123", "Hello, World!"),
            Err(Reason::MalformedHeader)
        );
    }

    #[test]
    fn the_signer_reproduces_the_documented_example_and_its_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge, signed};
        use crate::providers::sign::{KeyMaterial, Signing};
        let signing = Signing::new(KeyMaterial::Secret("It's a Secret to Everybody"), 0);
        let out = signed(&SIGNER, &signing, "https://h/hook", Some(b"Hello, World!"));
        assert_eq!(
            out.header("x-hub-signature-256"),
            Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
        );
        let github = scheme(vec![test_key("k", "It's a Secret to Everybody")]);
        let example = signed(&SIGNER, &signing, "https://h/hook", None);
        assert_eq!(judge(&github, &example), Ok(("github/k".into(), None)));
        assert_eq!(
            judge(&github, &changed_body(&example)),
            Err(Reason::SignatureMismatch)
        );
        assert!(example.header("x-github-delivery").is_some());
    }
}
