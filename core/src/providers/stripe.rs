//! Stripe: `Stripe-Signature: t=<unix s>,v1=<hex>[,v1=<hex>...]` = HMAC-SHA256 over
//! `t ‖ "." ‖ body`, keyed with the whole `whsec_...` secret as UTF-8 (no base64 decoding,
//! unlike Svix).
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | `t` and the `v1` list | `t` ‖ `.` ‖ body (each attempt is re-signed with a new `t`) | `t` (5 min, the SDK's tolerance; Stripe's SDK bounds only the past, here the future is bounded too) | a JSON object | method, path, query, content type |
//!
//! `v0` (test mode, legacy) and unknown items are ignored, as the SDK does.

use crate::keys::Key;
use crate::providers::body_mac::parse_hex;
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::hex;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{Outgoing, Signer, Signing};
use crate::providers::{
    key_names, key_with_mac, malformed, mismatch, required, unix_seconds, AtHeaders, Body, Checks,
    Hashed, Media, Provider, StreamedMac, Time, Verified, MAX_SIGNATURES,
    MAX_SIGNATURE_HEADER_BYTES,
};
use crate::request::RequestHead;
use crate::timestamp::Stamp;
use crate::timestamp::FIVE_MINUTES;
use crate::verdict::{Reason, Rejection};

pub const HEADER: &str = "stripe-signature";

#[derive(Debug)]
pub struct Stripe {
    pub keys: Vec<Key>,
}

struct Header<'r> {
    timestamp: &'r [u8],
    time: i64,
    signatures: Vec<[u8; 32]>,
}

fn read<'r>(head: &RequestHead<'r>) -> Result<Header<'r>, Rejection> {
    let value = required(head, HEADER)?;
    if value.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(malformed(format!(
            "{HEADER} is longer than {MAX_SIGNATURE_HEADER_BYTES} bytes"
        )));
    }
    let (mut timestamp, mut signatures) = (None, Vec::new());
    for item in value.split(|&b| b == b',') {
        let Some(eq) = item.iter().position(|&b| b == b'=') else {
            return Err(malformed(format!("{HEADER}: an item is not key=value")));
        };
        match (&item[..eq], &item[eq + 1..]) {
            (b"t", _) if timestamp.is_some() => {
                return Err(malformed(format!("{HEADER} has more than one t")))
            }
            (b"t", t) => timestamp = Some(t),
            (b"v1", hex) => {
                let signature = parse_hex(hex)
                    .ok_or_else(|| malformed(format!("{HEADER}: a v1 is not 64 hex digits")))?;
                if signatures.len() == MAX_SIGNATURES {
                    return Err(malformed(format!(
                        "{HEADER} lists more than {MAX_SIGNATURES} signatures"
                    )));
                }
                signatures.push(signature);
            }
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return Err(malformed(format!("{HEADER} has no t")));
    };
    let time = unix_seconds("stripe-signature t", timestamp)?;
    if signatures.is_empty() {
        return Err(Rejection::new(
            Reason::MissingSignature,
            format!("{HEADER} has no v1"),
        ));
    }
    Ok(Header {
        timestamp,
        time,
        signatures,
    })
}

impl Stripe {
    /// The key whose MAC of `t.` and the body one of the `v1`s is.
    fn key<'r>(
        &self,
        head: &RequestHead<'r>,
        hashed: &Hashed,
    ) -> Result<(&Key, Header<'r>), Rejection> {
        let signed = read(head)?;
        let key = key_with_mac(&self.keys, hashed.macs.iter().copied(), &signed.signatures)
            .ok_or_else(|| mismatch(HEADER))?;
        Ok((key, signed))
    }
}

pub const ENTRY: Entry = signs!(
    Entry::new("stripe", |settings| {
        Ok(Box::new(Stripe {
            keys: settings.keys,
        }))
    }),
    SIGNER
);

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// What Stripe sends: `t=<time>,v1=<hex MAC of t.body>`, keyed with the whole `whsec_`
/// string.
#[cfg(any(test, feature = "sign"))]
pub fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key("stripe")?;
    out.content_type(Media::JSON_OBJECT);
    let t = signing.now.to_string();
    let body = out.body.clone();
    let parts: [&[u8]; 3] = [t.as_bytes(), b".", &body];
    out.signature(HEADER, &format!("t={t},v1="), &hex(&key.mac(&parts)));
    out.covers("message", &parts);
    Ok(())
}

/// A `payment_intent.succeeded` event.
#[cfg(any(test, feature = "sign"))]
pub fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"id":"evt_{}","object":"event","type":"payment_intent.succeeded","created":{},"data":{{"object":{{"object":"payment_intent","amount":1000}}}}}}"#,
        crate::providers::sign::base62(&signing.random, 24),
        signing.now
    )
    .into_bytes()
}

impl Provider for Stripe {
    fn time(&self) -> Time {
        Time::Signed(FIVE_MINUTES)
    }

    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        read(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn streamed_mac(&self, head: &RequestHead) -> Option<StreamedMac<'_>> {
        let signed = read(head).ok()?;
        Some(StreamedMac::after(&self.keys, &[signed.timestamp, b"."]))
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let hashed = &*body.hashed(self.streamed_mac(head));
        let (key, signed) = self.key(head, hashed)?;
        Ok(Verified::streamed(
            "stripe",
            &key.name,
            hashed,
            Some(Stamp::secs(signed.time)),
        ))
    }

    fn check_hashed(&self, head: &RequestHead, hashed: &Hashed) -> Result<(), Rejection> {
        self.key(head, hashed).map(|_| ())
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![("stripe", key_names(&self.keys))]
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

    // providers.md §4 row 3, body B.
    const BODY: &str = "{\"id\":\"evt_1\",\"amount\":100,\"note\":\"caf\u{e9}\"}";
    const V1: &str = "ded3e6cc0cd2789801416f088188c9dc5d275de96f6b6edeca9bcf9372ec2eea";

    fn check(value: &str, body: &str) -> Result<i64, Reason> {
        let stripe = Stripe {
            keys: vec![test_key("k", "whsec_test_secret")],
        };
        let h = headers(&[(HEADER, value)]);
        let head = RequestHead::new(&h);
        stripe
            .at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        stripe
            .at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .map(|v| v.time.unwrap().unix_secs())
            .map_err(|r| r.reason)
    }

    #[test]
    fn the_reference_vector_verifies_among_other_items() {
        let zero = "0".repeat(64);
        for value in [
            format!("t=1700000000,v1={V1}"),
            format!("t=1700000000,v1={zero},v1={V1},v0={zero}"),
            format!("v1={V1},t=1700000000,x=y"),
        ] {
            assert_eq!(check(&value, BODY), Ok(1_700_000_000), "{value}");
        }
    }

    #[test]
    fn changes_and_malformed_headers_are_refused() {
        assert_eq!(
            check(&format!("t=1700000001,v1={V1}"), BODY),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(
            check(
                &format!("t=1700000000,v1={V1}"),
                &BODY.replace("100", "101")
            ),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(check("t=1700000000", BODY), Err(Reason::MissingSignature));
        assert_eq!(
            check(&format!("t=1700000000,v0={V1}"), BODY),
            Err(Reason::MissingSignature)
        );
        // A space after the comma makes the item " v1", which the SDK does not read either.
        assert_eq!(
            check(&format!("t=1700000000, v1={V1}"), BODY),
            Err(Reason::MissingSignature)
        );
        for bad in [
            format!("v1={V1}"),
            format!("t=+1700000000,v1={V1}"),
            format!("t=1,t=2,v1={V1}"),
            "t=1700000000,v1=zz".into(),
            format!("t=1700000000,v1={V1}x"),
        ] {
            assert_eq!(check(&bad, BODY), Err(Reason::MalformedHeader), "{bad}");
        }
    }

    #[test]
    fn the_signer_reproduces_the_vector_and_its_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge, signed};
        use crate::providers::sign::{KeyMaterial, Signing};
        let signing = Signing::new(KeyMaterial::Secret("whsec_test_secret"), 1_700_000_000);
        let out = signed(&SIGNER, &signing, "https://h/s", Some(BODY.as_bytes()));
        assert_eq!(
            out.header(HEADER),
            Some(format!("t=1700000000,v1={V1}").as_str())
        );
        let stripe = Stripe {
            keys: vec![test_key("k", "whsec_test_secret")],
        };
        let example = signed(&SIGNER, &signing, "https://h/s", None);
        assert_eq!(
            judge(&stripe, &example),
            Ok(("stripe/k".into(), Some(1_700_000_000)))
        );
        assert_eq!(
            judge(&stripe, &changed_body(&example)),
            Err(Reason::SignatureMismatch)
        );
    }
}
