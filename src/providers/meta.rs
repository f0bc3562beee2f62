//! Meta (WhatsApp Cloud API, Messenger, Instagram): `X-Hub-Signature-256: sha256=<hex>` =
//! HMAC-SHA256 of the body with the App Secret, GitHub's format. Meta signs the body bytes
//! as sent (non-ASCII escaped as `\uXXXX`); they are hashed as received.
//!
//! | at the headers | signed | identity | time | left open |
//! | --- | --- | --- | --- | --- |
//! | the signature | the body | the body (retries for up to days carry it unchanged) | none signed (`entry[].time` is in the body but not a delivery time) | method, path, query |

use crate::keys::Key;
use crate::providers::body_mac::BodySigned;
use crate::providers::github::SCHEME;

/// A Meta route's scheme: GitHub's header and format under Meta's name.
pub fn scheme(keys: Vec<Key>) -> BodySigned {
    BodySigned {
        scheme: "meta",
        mac: SCHEME,
        keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::providers::{Checks, Provider};
    use crate::request::{headers, RequestHead};

    #[test]
    fn the_reference_vector_verifies() {
        // providers.md §4 row 9, body B.
        let meta = scheme(vec![test_key("app", "meta_app_secret")]);
        let body = "{\"id\":\"evt_1\",\"amount\":100,\"note\":\"caf\u{e9}\"}";
        let signature = "sha256=fb2913d025c55f38fed276b302bded22bd44582f995eddfd3b646eabaf4f8a42";
        let h = headers(&[("x-hub-signature-256", signature)]);
        let head = RequestHead::new(&h);
        let verified = meta
            .at_body(&head, body.as_bytes(), &Checks::default())
            .unwrap();
        assert_eq!((verified.scheme, verified.key), ("meta", "app"));
        assert!(meta.at_body(&head, b"{}", &Checks::default()).is_err());
    }
}
