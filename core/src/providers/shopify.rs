//! Shopify: `X-Shopify-Hmac-Sha256: <base64>` (the "events" delivery type sends
//! `shopify-hmac-sha256`) = HMAC-SHA256 of the body with the app's client secret.
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | the signature, under either name (both at once: refused, they could differ) | the body (retries carry it unchanged) | none signed | a JSON object | method, path, query, content type, topic, shop, API version (both delivery types' names) |
//!
//! An empty body is refused, as Shopify's own library does.

use crate::keys::Key;
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{base64, Outgoing, Signer, Signing};
use crate::providers::{
    base64_exact, key_names, key_with_mac, malformed, mismatch, required, AtHeaders, Body, Checks,
    Hashed, Media, Provider, StreamedMac, Verified,
};
use crate::request::{Lookup, RequestHead};
use crate::verdict::{Reason, Rejection};

pub const HEADER: &str = "x-shopify-hmac-sha256";
pub const EVENTS_HEADER: &str = "shopify-hmac-sha256";

/// What an app dispatches on, under both delivery types' names; a retry keeps them all.
/// Not the webhook id: two events can carry equal bodies under two ids, and the second is
/// then one body delivered twice, not tampering.
const DISPATCH: [&str; 10] = [
    "x-shopify-topic",
    "x-shopify-shop-domain",
    "x-shopify-api-version",
    "x-shopify-sub-topic",
    "x-shopify-name",
    "shopify-topic",
    "shopify-shop-domain",
    "shopify-api-version",
    "shopify-action",
    "shopify-handle",
];

#[derive(Debug)]
pub struct Shopify {
    pub keys: Vec<Key>,
}

fn signature(head: &RequestHead) -> Result<[u8; 32], Rejection> {
    let name = match (head.lookup(HEADER), head.lookup(EVENTS_HEADER)) {
        (_, Lookup::Missing) => HEADER,
        (Lookup::Missing, _) => EVENTS_HEADER,
        _ => {
            return Err(Rejection::new(
                Reason::DuplicateHeader,
                format!("both {HEADER} and {EVENTS_HEADER}"),
            ))
        }
    };
    base64_exact::<32>(required(head, name)?)
        .ok_or_else(|| malformed(format!("{name} is not base64 of 32 bytes")))
}

impl Shopify {
    /// The key whose MAC of the body is the header's; an empty body is refused first, as
    /// Shopify's library refuses it.
    fn key(&self, head: &RequestHead, hashed: &Hashed) -> Result<&Key, Rejection> {
        let signature = signature(head)?;
        if hashed.body_len == 0 {
            return Err(Rejection::new(Reason::MalformedBody, "empty body"));
        }
        key_with_mac(&self.keys, hashed.macs.iter().copied(), &[signature])
            .ok_or_else(|| mismatch(HEADER))
    }
}

pub const ENTRY: Entry = signs!(
    Entry::new("shopify", |settings| {
        Ok(Box::new(Shopify {
            keys: settings.keys,
        }))
    }),
    SIGNER
);

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// What Shopify sends: the base64 MAC of the body, with the topic and shop headers.
#[cfg(any(test, feature = "sign"))]
pub fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key("shopify")?;
    out.content_type(Media::JSON_OBJECT);
    out.default_header("x-shopify-topic", "orders/create");
    out.default_header("x-shopify-shop-domain", "callback-guard.myshopify.com");
    out.default_header("x-shopify-api-version", "2025-01");
    out.default_header("x-shopify-webhook-id", signing.id_or_uuid());
    let mac = key.mac(&[&out.body]);
    out.signature(HEADER, "", &base64(&mac));
    let body = out.body.clone();
    out.covers("body", &[&body]);
    Ok(())
}

/// An `orders/create` event.
#[cfg(any(test, feature = "sign"))]
pub fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"id":{},"admin_graphql_api_id":"gid://shopify/Order/{}","currency":"EUR","total_price":"10.00"}}"#,
        crate::providers::sign::number(&signing.random, 13),
        crate::providers::sign::number(&signing.random, 13),
    )
    .into_bytes()
}

impl Provider for Shopify {
    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        signature(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn streamed_mac(&self, _: &RequestHead) -> Option<StreamedMac<'_>> {
        Some(StreamedMac::body(&self.keys))
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let hashed = &*body.hashed(self.streamed_mac(head));
        let key = self.key(head, hashed)?;
        Ok(Verified::streamed("shopify", &key.name, hashed, None))
    }

    fn check_hashed(&self, head: &RequestHead, hashed: &Hashed) -> Result<(), Rejection> {
        self.key(head, hashed).map(|_| ())
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![("shopify", key_names(&self.keys))]
    }

    fn dispatch_headers(&self) -> Vec<&str> {
        DISPATCH.to_vec()
    }

    fn media(&self) -> Media {
        Media::JSON_OBJECT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::request::headers;

    const BODY: &str = "{\"id\":\"evt_1\",\"amount\":100,\"note\":\"caf\u{e9}\"}";
    const SIGNATURE: &str = "vyJXvnxmcYLmvLnBYoI+3OnOQBYMbSXzEjNKQ25TjlI=";

    fn check(h: &[(&str, &str)], body: &str) -> Result<(), Reason> {
        let shopify = Shopify {
            keys: vec![test_key("k", "shpss_test_secret")],
        };
        let h = headers(h);
        let head = RequestHead::new(&h);
        shopify
            .at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        shopify
            .at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .map(|_| ())
            .map_err(|r| r.reason)
    }

    #[test]
    fn the_reference_vector_verifies_under_both_header_names() {
        // providers.md §4 row 8.
        assert_eq!(check(&[(HEADER, SIGNATURE)], BODY), Ok(()));
        assert_eq!(check(&[(EVENTS_HEADER, SIGNATURE)], BODY), Ok(()));
        assert_eq!(
            check(&[(HEADER, SIGNATURE), (EVENTS_HEADER, SIGNATURE)], BODY),
            Err(Reason::DuplicateHeader)
        );
        assert_eq!(
            check(&[(HEADER, SIGNATURE)], "{}"),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(
            check(&[(HEADER, SIGNATURE)], ""),
            Err(Reason::MalformedBody)
        );
        assert_eq!(
            check(&[(HEADER, "vyJXvnxm")], BODY),
            Err(Reason::MalformedHeader)
        );
        assert_eq!(check(&[], BODY), Err(Reason::MissingSignature));
    }

    #[test]
    fn the_signer_reproduces_the_vector_and_its_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge, signed};
        use crate::providers::sign::{KeyMaterial, Signing};
        let signing = Signing::new(KeyMaterial::Secret("shpss_test_secret"), 0);
        let out = signed(&SIGNER, &signing, "https://h/s", Some(BODY.as_bytes()));
        assert_eq!(out.header(HEADER), Some(SIGNATURE));
        let shopify = Shopify {
            keys: vec![test_key("k", "shpss_test_secret")],
        };
        let example = signed(&SIGNER, &signing, "https://h/s", None);
        assert_eq!(judge(&shopify, &example), Ok(("shopify/k".into(), None)));
        assert_eq!(
            judge(&shopify, &changed_body(&example)),
            Err(Reason::SignatureMismatch)
        );
    }
}
