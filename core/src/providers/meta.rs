//! Meta (WhatsApp Cloud API, Messenger, Instagram): `X-Hub-Signature-256: sha256=<hex>` =
//! HMAC-SHA256 of the body with the App Secret, GitHub's format. Meta signs the body bytes
//! as sent (non-ASCII escaped as `\uXXXX`); they are hashed as received.
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | the signature | the body (retries for up to days carry it unchanged) | none signed (`entry[].time` is in the body but not a delivery time) | a JSON object | method, path, query, content type |

use crate::keys::{slices_equal, Key};
use crate::providers::body_mac::BodySigned;
use crate::providers::entry::{Entry, Field, Problem};
use crate::providers::github::SCHEME;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{Outgoing, Signer, Signing};
use crate::providers::{
    challenge, form_pairs, query_param, AtHeaders, Body, Checks, Hashed, Media, Provider, Reply,
    StreamedMac, Verified,
};
use crate::request::RequestHead;
use crate::verdict::{Reason, Rejection};

/// A Meta route's scheme: GitHub's header and format under Meta's name, and the
/// subscription check answered at the edge when the route has a verify token.
#[derive(Debug)]
pub struct Meta {
    pub signed: BodySigned,
    /// The token typed into the app dashboard with the callback URL.
    pub verify_token: Option<Vec<u8>>,
}

pub fn scheme(keys: Vec<Key>, verify_token: Option<Vec<u8>>) -> Meta {
    Meta {
        signed: BodySigned {
            scheme: "meta",
            mac: SCHEME,
            keys,
            media: Media::JSON_OBJECT,
            dispatch: &[],
        },
        verify_token,
    }
}

impl Meta {
    /// `GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...`: the challenge,
    /// echoed as the plain body, when the token matches. It carries no signature, so the
    /// token is all that makes it Meta's. `None`: not a subscription check, or the route
    /// does not answer them (it is then judged as any request, and refused unsigned).
    fn subscription(&self, head: &RequestHead) -> Result<Option<Reply>, Rejection> {
        let Some(token) = &self.verify_token else {
            return Ok(None);
        };
        if head.first(":method") != Some(b"GET") {
            return Ok(None);
        }
        let pairs = form_pairs(head.query(), Reason::MalformedHeader, "the query")?;
        let one = |name: &str| query_param(&pairs, name);
        if one("hub.mode")? != Some("subscribe") {
            return Ok(None);
        }
        let given = one("hub.verify_token")?.ok_or_else(|| {
            Rejection::new(Reason::MissingSignature, "hub.verify_token is missing")
        })?;
        if !slices_equal(given.as_bytes(), token) {
            return Err(Rejection::new(
                Reason::SignatureMismatch,
                "hub.verify_token does not match",
            ));
        }
        let challenge = challenge(
            one("hub.challenge")?,
            Reason::MalformedHeader,
            "hub.challenge",
        )?;
        Ok(Some(Reply::text("subscribe", challenge.as_bytes())))
    }
}

pub const ENTRY: Entry = signs!(
    Entry::new("meta", |settings| {
        if settings.verify_token.is_some() && !settings.answer_handshakes {
            return Err(Problem::new(
                "verify_token",
                "answers Meta's subscription check, which answer_handshakes: false turns off",
            ));
        }
        Ok(Box::new(scheme(settings.keys, settings.verify_token)))
    })
    .reading(&[Field::VerifyToken]),
    SIGNER
);

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// What Meta sends: GitHub's header over the body, under the App Secret.
#[cfg(any(test, feature = "sign"))]
pub fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key("meta")?;
    out.content_type(Media::JSON_OBJECT);
    out.default_header("user-agent", "facebookexternalua");
    SCHEME.sign(&key, out);
    Ok(())
}

/// A WhatsApp Business message notification.
#[cfg(any(test, feature = "sign"))]
pub fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{}","time":{},"changes":[{{"field":"messages","value":{{"messages":[{{"type":"text","text":{{"body":"Hello from callback-guard"}}}}]}}}}]}}]}}"#,
        crate::providers::sign::digits(&signing.random, 15),
        signing.now
    )
    .into_bytes()
}

impl Provider for Meta {
    fn at_headers(&self, head: &RequestHead, checks: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        match self.subscription(head)? {
            Some(answer) => Ok(AtHeaders::Reply(answer)),
            None => self.signed.at_headers(head, checks),
        }
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        checks: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        self.signed.at_body(head, body, checks)
    }

    fn streamed_mac(&self, head: &RequestHead) -> Option<StreamedMac<'_>> {
        self.signed.streamed_mac(head)
    }

    fn check_hashed(&self, head: &RequestHead, hashed: &Hashed) -> Result<(), Rejection> {
        self.signed.check_hashed(head, hashed)
    }

    fn media(&self) -> Media {
        self.signed.media
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        self.signed.schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::providers::{AtHeaders, Checks, Provider};
    use crate::request::{headers, RequestHead};
    use crate::verdict::Reason;

    #[test]
    fn the_reference_vector_verifies() {
        // providers.md §4 row 9, body B.
        let meta = scheme(vec![test_key("app", "meta_app_secret")], None);
        let body = "{\"id\":\"evt_1\",\"amount\":100,\"note\":\"caf\u{e9}\"}";
        let signature = "sha256=fb2913d025c55f38fed276b302bded22bd44582f995eddfd3b646eabaf4f8a42";
        let h = headers(&[("x-hub-signature-256", signature)]);
        let head = RequestHead::new(&h);
        let verified = meta
            .at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .unwrap();
        assert_eq!((verified.scheme, verified.key), ("meta", "app"));
        assert!(meta
            .at_body(&head, &Body::whole(b"{}"), &Checks::default())
            .is_err());
    }

    #[test]
    fn the_signer_reproduces_the_vector_and_its_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge, signed};
        use crate::providers::sign::{KeyMaterial, Signing};
        let signing = Signing::new(KeyMaterial::Secret("meta_app_secret"), 1_700_000_000);
        let body = "{\"id\":\"evt_1\",\"amount\":100,\"note\":\"caf\u{e9}\"}";
        let out = signed(&SIGNER, &signing, "https://h/meta/", Some(body.as_bytes()));
        assert_eq!(
            out.header("x-hub-signature-256"),
            Some("sha256=fb2913d025c55f38fed276b302bded22bd44582f995eddfd3b646eabaf4f8a42")
        );
        let meta = scheme(vec![test_key("app", "meta_app_secret")], None);
        let example = signed(&SIGNER, &signing, "https://h/meta/", None);
        assert_eq!(judge(&meta, &example), Ok(("meta/app".into(), None)));
        assert_eq!(
            judge(&meta, &changed_body(&example)),
            Err(Reason::SignatureMismatch)
        );
    }

    fn check(meta: &Meta, method: &str, path: &str) -> Result<Option<String>, Reason> {
        let h = headers(&[(":method", method), (":path", path)]);
        match meta.at_headers(&RequestHead::new(&h), &Checks::default()) {
            Ok(AtHeaders::Reply(answer)) => {
                assert_eq!(answer.content_type, "text/plain");
                Ok(Some(String::from_utf8(answer.body).unwrap()))
            }
            Ok(_) => Ok(None),
            Err(rejection) => Err(rejection.reason),
        }
    }

    #[test]
    fn the_subscription_check_is_answered_only_with_the_right_token() {
        let meta = scheme(vec![test_key("app", "s")], Some(b"tok en".to_vec()));
        let ok = "/meta/?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=tok+en";
        assert_eq!(check(&meta, "GET", ok), Ok(Some("1158201444".into())));
        let encoded = "/meta/?hub.verify_token=tok%20en&hub.mode=subscribe&hub.challenge=abc";
        assert_eq!(check(&meta, "GET", encoded), Ok(Some("abc".into())));
        for (path, reason) in [
            ("/meta/?hub.mode=subscribe&hub.challenge=1&hub.verify_token=tok", Reason::SignatureMismatch),
            ("/meta/?hub.mode=subscribe&hub.challenge=1", Reason::MissingSignature),
            ("/meta/?hub.mode=subscribe&hub.challenge=1&hub.verify_token=tok+en&hub.verify_token=x", Reason::DuplicateHeader),
            ("/meta/?hub.mode=subscribe&hub.verify_token=tok+en", Reason::MalformedHeader),
            ("/meta/?hub.mode=subscribe&hub.verify_token=tok+en&hub.challenge=%3Cb%3E%20x", Reason::MalformedHeader),
        ] {
            assert_eq!(check(&meta, "GET", path), Err(reason), "{path}");
        }
        // Not a subscription check: judged as any delivery, so refused unsigned.
        for (method, path) in [
            ("POST", ok),
            ("GET", "/meta/?hub.mode=unsubscribe"),
            ("GET", "/meta/"),
        ] {
            assert_eq!(
                check(&meta, method, path),
                Err(Reason::MissingSignature),
                "{method} {path}"
            );
        }
        // Without a verify token the check is not answered at all.
        let silent = scheme(vec![test_key("app", "s")], None);
        assert_eq!(check(&silent, "GET", ok), Err(Reason::MissingSignature));
    }
}
