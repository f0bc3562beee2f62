//! Hygraph (GraphCMS, ngrok's `graphcms`): `gcms-signature: sign=<base64>, env=<name>,
//! t=<ms>`, the base64 HMAC-SHA256, keyed with the webhook's secret key, of the JSON document
//! `{"Body":"<the body>","EnvironmentName":"<name>","TimeStamp":<ms>}`, exactly as
//! `@hygraph/utils` 1.2.1 (`verifyWebhookSignature` with `rawPayload`,
//! `generateWebhookSignature`) builds it with `JSON.stringify`: the raw body as a JSON
//! string, escaped as ECMAScript's `JSON.stringify` escapes one.
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | `gcms-signature` in the utility's own form | the JSON document (the body, the environment, the time) | `t`, 1 h past (a webhook may wait minutes in Hygraph's queue, then be retried four times), 5 min ahead: the utility checks none | a JSON object (`operation`, `data`) | method (Hygraph sends `POST`, `PUT`, `DELETE` or `GET`), path, query, content type, **and the body** (signed only escaped) |
//!
//! Stricter than the utility, so that what verifies is what the application reads: the
//! header exactly as it writes it (it splits on `", "` and strips `sign=`, `env=`, `t=`
//! wherever they appear), an environment name of `A-Z a-z 0-9 _ -` (which its document holds
//! unescaped), `t` without leading zeros (it re-reads it with `parseInt`), and a body that is
//! UTF-8 (a verifier decoding it would sign replacement characters).

use crate::keys::Key;
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{base64, Outgoing, Role, Signer, Signing};
use crate::providers::{
    any_key, base64_exact, key_names, malformed, mismatch, required, unix_millis, AtHeaders, Body,
    Checks, Media, Provider, Signed, Time, Verified,
};
use crate::request::RequestHead;
use crate::timestamp::{Edges, Freshness, Stamp};
use crate::verdict::{Reason, Rejection};

pub const SCHEME: &str = "hygraph";
const HEADER: &str = "gcms-signature";
/// Longest environment name read.
const MAX_ENVIRONMENT: usize = 64;

/// The utility checks no time: an hour past, as a queued and retried webhook needs, and
/// five minutes ahead.
pub const WINDOW: Freshness = Freshness {
    max_age_secs: 3600,
    max_future_secs: 300,
    required: true,
    edges: Edges::Exact,
};

pub const ENTRY: Entry = signs!(
    Entry::new(SCHEME, |settings| {
        Ok(Box::new(Hygraph {
            keys: settings.keys,
        }))
    }),
    SIGNER
);

#[derive(Debug)]
pub struct Hygraph {
    keys: Vec<Key>,
}

/// `gcms-signature`, read.
struct Header<'r> {
    signature: [u8; 32],
    environment: &'r [u8],
    millis: &'r [u8],
    time: Stamp,
}

/// `sign=<base64 of 32 bytes>, env=<name>, t=<ms>`, nothing else.
fn read<'r>(head: &RequestHead<'r>) -> Result<Header<'r>, Rejection> {
    let refused = || malformed(format!("{HEADER} is not sign=<base64>, env=<name>, t=<ms>"));
    let value = required(head, HEADER)?;
    let mut fields = value.split(|&b| b == b',');
    let mut field = |name: &[u8], first: bool| {
        let field = fields.next()?;
        let field = if first {
            field
        } else {
            field.strip_prefix(b" ")?
        };
        field.strip_prefix(name)
    };
    let (Some(signature), Some(environment), Some(millis), None) = (
        field(b"sign=", true),
        field(b"env=", false),
        field(b"t=", false),
        fields.next(),
    ) else {
        return Err(refused());
    };
    let signature = base64_exact::<32>(signature).ok_or_else(refused)?;
    let named = !environment.is_empty()
        && environment.len() <= MAX_ENVIRONMENT
        && environment
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !named {
        return Err(malformed(format!(
            "{HEADER}'s env is not 1 to {MAX_ENVIRONMENT} of A-Z a-z 0-9 _ -"
        )));
    }
    let time = Stamp::millis(unix_millis(HEADER, millis)?);
    Ok(Header {
        signature,
        environment,
        millis,
        time,
    })
}

/// `text` as `JSON.stringify` writes a string, without its quotes: `"` and `\` escaped,
/// the five control characters with short escapes as those, every other one below U+0020 as
/// `\u00xx` (lowercase), everything else as it is. Sized before it is written: a forgery of
/// control characters costs one allocation, however long.
fn json_string(text: &str) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let escaped = |b: u8| match b {
        b'"' | b'\\' | b'\x08' | b'\t' | b'\n' | b'\x0c' | b'\r' => 2,
        0..=0x1f => 6,
        _ => 1,
    };
    let mut out = Vec::with_capacity(text.bytes().map(escaped).sum());
    for &b in text.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
            _ => out.push(b),
        }
    }
    out
}

/// The signed document's parts, around the escaped body.
fn document<'a>(escaped: &'a [u8], environment: &'a [u8], millis: &'a [u8]) -> [&'a [u8]; 7] {
    [
        b"{\"Body\":\"",
        escaped,
        b"\",\"EnvironmentName\":\"",
        environment,
        b"\",\"TimeStamp\":",
        millis,
        b"}",
    ]
}

impl Provider for Hygraph {
    fn time(&self) -> Time {
        Time::Signed(WINDOW)
    }

    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        read(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let header = read(head)?;
        let text = std::str::from_utf8(body.bytes)
            .map_err(|_| Rejection::new(Reason::MalformedBody, "the body is not UTF-8"))?;
        let escaped = json_string(text);
        let parts = document(&escaped, header.environment, header.millis);
        let key =
            any_key(&self.keys, &parts, &[header.signature]).ok_or_else(|| mismatch(HEADER))?;
        Ok(Verified {
            scheme: SCHEME,
            key: &key.name,
            signed: Signed::over(SCHEME, &parts, body.bytes),
            time: Some(header.time),
        })
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![(SCHEME, key_names(&self.keys))]
    }

    fn media(&self) -> Media {
        Media::JSON_OBJECT
    }
}

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// An entry published, as Hygraph sends it with its payload.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let id = crate::providers::sign::base62(&signing.random, 25).to_ascii_lowercase();
    serde_json::json!({"operation": "publish", "data": {"__typename": "Post", "id": id,
        "stage": "PUBLISHED", "title": "Café \"au lait\"\n"}})
    .to_string()
    .into_bytes()
}

/// What `generateWebhookSignature` sends for the raw body, in the `master` environment.
#[cfg(any(test, feature = "sign"))]
fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key(SCHEME)?;
    out.content_type(Media::JSON_OBJECT);
    let text = std::str::from_utf8(&out.body).map_err(|_| "the body is not UTF-8".to_string())?;
    let escaped = json_string(text);
    let millis = (signing.now * 1000).to_string();
    let parts = document(&escaped, b"master", millis.as_bytes());
    let value = format!("sign={}, env=master, t={millis}", base64(&key.mac(&parts)));
    out.set(HEADER, value, Role::Signature { at: 5 });
    out.covers("document", &parts);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::request::headers;

    /// The utility's README secret; each signature made by `@hygraph/utils` 1.2.1's
    /// `generateWebhookSignature({rawPayload, environmentName: "master", secret})` with its
    /// clock at 1774432800123 ms.
    const SECRET: &str = "rCNwyiloY3oJYYkxgpBXaleIiUv5MYlx";
    const MILLIS: &str = "1774432800123";
    const VECTORS: [(&str, &str); 3] = [
        (
            r#"{"operation":"publish","data":{"__typename":"Post","id":"ckp1","stage":"PUBLISHED"}}"#,
            "xoytZ7CFV/2VriOMuTvmHHDT6Ep1D2CpqsFvGqNO7Tw=",
        ),
        (
            "{\"operation\":\"update\",\"data\":{\"__typename\":\"Post\",\"id\":\"ckp2\",\"stage\":\"DRAFT\",\"title\":\"caf\u{e9} \\\"quoted\\\" back\\\\slash\ttab\u{2028}sep\u{7f}<b>&\"}}",
            "bkh71dkoK9AL7MsE4dbrYZioTEFwkHjElHEW8qS+wBM=",
        ),
        (
            "{\"a\":\"\n\r\u{8}\u{c}\u{1}\u{1f}\"}",
            "EcaZvlida2h6oujEBmaxcI17ZSqyiXhBGHMNJijzAlE=",
        ),
    ];

    fn judge(header: &str, body: &[u8]) -> Result<i64, Reason> {
        let hygraph = Hygraph {
            keys: vec![test_key("k", SECRET)],
        };
        let h = headers(&[(HEADER, header)]);
        let head = RequestHead::new(&h);
        hygraph
            .at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        hygraph
            .at_body(&head, &Body::whole(body), &Checks::default())
            .map(|v| v.time.unwrap().unix_secs())
            .map_err(|r| r.reason)
    }

    fn header(signature: &str) -> String {
        format!("sign={signature}, env=master, t={MILLIS}")
    }

    #[test]
    fn the_utilitys_signatures_verify_and_a_changed_byte_does_not() {
        for (body, signature) in VECTORS {
            assert_eq!(
                judge(&header(signature), body.as_bytes()),
                Ok(1_774_432_800)
            );
            let mut changed = body.as_bytes().to_vec();
            changed[2] ^= 1;
            assert_eq!(
                judge(&header(signature), &changed),
                Err(Reason::SignatureMismatch)
            );
        }
        let (body, signature) = VECTORS[0];
        for changed in [
            format!("sign={signature}, env=staging, t={MILLIS}"),
            format!("sign={signature}, env=master, t=1774432800124"),
        ] {
            assert_eq!(
                judge(&changed, body.as_bytes()),
                Err(Reason::SignatureMismatch),
                "{changed}"
            );
        }
    }

    #[test]
    fn the_body_is_escaped_as_json_stringify_escapes_a_string() {
        assert_eq!(
            json_string("\"\\\u{8}\t\n\u{c}\r\u{0}\u{1f} \u{7f}\u{2028}é/<"),
            "\\\"\\\\\\b\\t\\n\\f\\r\\u0000\\u001f \u{7f}\u{2028}é/<".as_bytes()
        );
    }

    #[test]
    fn only_the_utilitys_own_header_is_read() {
        let (body, signature) = VECTORS[0];
        for refused in [
            String::new(),
            format!("sign={signature},env=master,t={MILLIS}"),
            format!("sign={signature}, env=master, t={MILLIS}, x=1"),
            format!("env=master, sign={signature}, t={MILLIS}"),
            format!(" sign={signature}, env=master, t={MILLIS}"),
            format!("sign={signature}, env=master, t=0{MILLIS}"),
            format!("sign={signature}, env=master, t={MILLIS}.0"),
            format!("sign={signature}, env=, t={MILLIS}"),
            format!("sign={signature}, env=a\"b, t={MILLIS}"),
            format!("sign={signature}, env=mäster, t={MILLIS}"),
            format!("sign={}, env=master, t={MILLIS}", &signature[..43]),
            format!(
                "sign={}, env=master, t={MILLIS}",
                signature.replace('=', "")
            ),
            format!("sign=sign={signature}, env=master, t={MILLIS}"),
        ] {
            assert_eq!(
                judge(&refused, body.as_bytes()),
                Err(Reason::MalformedHeader),
                "{refused}"
            );
        }
        assert_eq!(
            judge(&header(signature), b"{\"a\":\"\xff\"}"),
            Err(Reason::MalformedBody)
        );
    }

    #[test]
    fn the_signer_reproduces_the_vector_and_its_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge, signed};
        use crate::providers::sign::{KeyMaterial, Signing};
        let signing = Signing::new(KeyMaterial::Secret(SECRET), 1_774_432_800);
        let (body, _) = VECTORS[0];
        let out = signed(
            &SIGNER,
            &signing,
            "https://h/hygraph",
            Some(body.as_bytes()),
        );
        // The utility at whole seconds: the same document with t=1774432800000.
        assert_eq!(
            out.header(HEADER),
            Some("sign=8yq9bWH1atV0PGaxlBU9eEOiBnypd/FTYZYgc51eu1A=, env=master, t=1774432800000")
        );
        let hygraph = Hygraph {
            keys: vec![test_key("k", SECRET)],
        };
        let example = signed(&SIGNER, &signing, "https://h/hygraph", None);
        assert_eq!(example.header("content-type"), Some("application/json"));
        assert_eq!(
            judge(&hygraph, &example),
            Ok(("hygraph/k".into(), Some(1_774_432_800)))
        );
        assert_eq!(
            judge(&hygraph, &changed_body(&example)),
            Err(Reason::SignatureMismatch)
        );
    }
}
