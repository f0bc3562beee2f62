//! GitHub: `X-Hub-Signature-256: sha256=<hex>` = HMAC-SHA256 of the body with the webhook
//! secret. The legacy SHA-1 `X-Hub-Signature` is never read (a downgrade).
//!
//! | at the headers | signed | identity | time | left open |
//! | --- | --- | --- | --- | --- |
//! | the signature | the body | the body (a redelivery is byte-identical; `X-GitHub-Delivery` is not signed) | none: nothing time-like is signed | method, path, query |

use std::borrow::Cow;

use crate::keys::Key;
use crate::providers::body_mac::BodyMac;
use crate::providers::{key_names, AtHeaders, Checks, Open, Provider, Verified};
use crate::request::RequestHead;
use crate::verdict::Rejection;

pub const SCHEME: BodyMac = BodyMac {
    header: "x-hub-signature-256",
    prefix: b"sha256=",
};

#[derive(Debug)]
pub struct GitHub {
    pub keys: Vec<Key>,
}

impl Provider for GitHub {
    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        SCHEME.signature(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn at_body<'p, 'r>(
        &'p self,
        head: &RequestHead<'r>,
        body: &'r [u8],
        _: &Checks,
    ) -> Result<Verified<'p, 'r>, Rejection> {
        Ok(body_signed(
            "github",
            SCHEME.verify(&self.keys, head, body)?,
            body,
        ))
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![("github", key_names(&self.keys))]
    }
}

/// A scheme that signs the body alone: the body is the identity, nothing is timed.
pub fn body_signed<'p, 'r>(scheme: &'static str, key: &'p Key, body: &'r [u8]) -> Verified<'p, 'r> {
    Verified {
        scheme,
        key: &key.name,
        identity: Cow::Borrowed(body),
        time: None,
        open: Open::ALL_BUT_BODY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::request::headers;
    use crate::verdict::Reason;

    fn check(signature: &str, body: &str) -> Result<(), Reason> {
        let github = GitHub {
            keys: vec![
                test_key("old", "other"),
                test_key("k", "It's a Secret to Everybody"),
            ],
        };
        let h = headers(&[("x-hub-signature-256", signature)]);
        let head = RequestHead::new(&h);
        github
            .at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        github
            .at_body(&head, body.as_bytes(), &Checks::default())
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
}
