//! Contentful: `x-contentful-signature` = lowercase hex HMAC-SHA256, keyed with the
//! webhook's 64-character signing secret, over the canonical request
//! `METHOD\nPATH\nname:value;name:value…\nBODY`, exactly as `@contentful/node-apps-toolkit`
//! 3.16.1 (`signRequest`, `verifyRequest`) builds it: the headers are those
//! `x-contentful-signed-headers` lists (itself and `x-contentful-timestamp` always among
//! them), in that sorted order, values trimmed; the path is the request target with its query
//! escaped as `querystring.escape` does and the whole then as `encodeURI` does.
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | `x-contentful-signature` (64 lowercase hex), `x-contentful-timestamp` (ms), `x-contentful-signed-headers` (sorted, unique, lowercase), each listed header once | the canonical request (each retry is re-signed: its own delivery) | the timestamp, 30 s past (the toolkit's) and 30 s ahead | a JSON object | method, path, query, content type, `x-contentful-topic`, `x-contentful-webhook-name` |
//!
//! Stricter than the toolkit, so that what verifies is what the application reads: the
//! listed names in the toolkit's own form (it re-sorts and de-duplicates, so other lists
//! verify too), the timestamp without leading zeros or fractions (it re-reads them with
//! `parseInt`), a request target of visible ASCII with at most one `?` (it drops what follows
//! a second one, unsigned) and no signed value that could be read as two signed headers.

use crate::keys::Key;
use crate::providers::body_mac::parse_hex;
use crate::providers::entry::{Entry, Secret};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{Outgoing, Role, Signer, Signing};
use crate::providers::{
    key_names, key_with_mac, malformed, mismatch, required, unix_millis, AtHeaders, Body, Checks,
    Hashed, Media, Provider, StreamedMac, Time, Verified,
};
use crate::request::{Lookup, RequestHead};
use crate::timestamp::{Edges, Freshness, Stamp};
use crate::verdict::{Reason, Rejection};

pub const SCHEME: &str = "contentful";
const SIGNATURE: &str = "x-contentful-signature";
const SIGNED_HEADERS: &str = "x-contentful-signed-headers";
const TIMESTAMP: &str = "x-contentful-timestamp";

/// The methods the toolkit signs (it refuses any other, and any other case).
const METHODS: [&[u8]; 7] = [
    b"GET", b"PATCH", b"HEAD", b"POST", b"DELETE", b"OPTIONS", b"PUT",
];

/// The toolkit's default time to live (`verifyRequest`'s 30 s); it bounds no future, this
/// filter the same 30 s.
pub const WINDOW: Freshness = Freshness {
    max_age_secs: 30,
    max_future_secs: 30,
    required: true,
    edges: Edges::Exact,
};

/// Contentful's earliest timestamps (the toolkit refuses any before 2020).
const EARLIEST_MS: i64 = 1_577_836_800_000;

/// The most signed headers read.
const MAX_SIGNED: usize = 32;

/// The headers Contentful sends that applications dispatch on.
const DISPATCH: [&str; 2] = ["x-contentful-topic", "x-contentful-webhook-name"];

pub const ENTRY: Entry = signs!(
    Entry::new(SCHEME, |settings| {
        Ok(Box::new(Contentful {
            keys: settings.keys,
        }))
    })
    .secret(Secret::Written {
        check: is_secret,
        form: "a Contentful signing secret (64 of A-Z a-z 0-9 + / = _ -)",
        example: |n| format!("{n:064x}"),
    }),
    SIGNER
);

#[derive(Debug)]
pub struct Contentful {
    keys: Vec<Key>,
}

/// 64 characters of `A-Z a-z 0-9 + / = _ -`, as Contentful issues signing secrets.
fn is_secret(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
}

/// A request whose signed parts are all in the toolkit's form: the canonical request up to
/// the body, in its parts.
struct Canonical {
    signature: [u8; 32],
    time: Stamp,
    method: Vec<u8>,
    path: Vec<u8>,
    headers: Vec<u8>,
}

impl Canonical {
    /// `METHOD \n PATH \n HEADERS \n`, in the parts the identity splits it into.
    fn parts(&self) -> [&[u8]; 6] {
        [&self.method, b"\n", &self.path, b"\n", &self.headers, b"\n"]
    }
}

fn read(head: &RequestHead) -> Result<Canonical, Rejection> {
    let signature = required(head, SIGNATURE)?;
    let lowercase = signature
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    let signature = parse_hex(signature)
        .filter(|_| lowercase)
        .ok_or_else(|| malformed(format!("{SIGNATURE} is not 64 lowercase hex digits")))?;
    let time = timestamp(required(head, TIMESTAMP)?)?;
    let method = head.first(":method").unwrap_or_default();
    if !METHODS.contains(&method) {
        return Err(malformed("the method is not one Contentful signs"));
    }
    let path = canonical_path(head.first(":path").unwrap_or_default())?;
    let headers = signed_headers(head)?;
    Ok(Canonical {
        signature,
        time,
        method: method.to_vec(),
        path,
        headers,
    })
}

/// Milliseconds since the epoch, in decimal without a leading zero, from 2020 on.
fn timestamp(text: &[u8]) -> Result<Stamp, Rejection> {
    let millis = unix_millis(TIMESTAMP, text)?;
    if millis <= EARLIEST_MS {
        return Err(malformed(format!("{TIMESTAMP} is before 2020")));
    }
    Ok(Stamp::millis(millis))
}

/// The request target as the toolkit signs it: the query (up to a second `?`, refused
/// here) escaped as Node's `querystring.escape`, then the whole as `encodeURI`.
fn canonical_path(target: &[u8]) -> Result<Vec<u8>, Rejection> {
    let visible = target.iter().all(|b| (0x21..=0x7e).contains(b));
    let questions = target.iter().filter(|&&b| b == b'?').count();
    if !visible || target.first() != Some(&b'/') || questions > 1 || target.contains(&b'#') {
        return Err(malformed(
            "the request target is not one Contentful signs whole (visible ASCII, one ? at most, no #)",
        ));
    }
    let (pathname, search) = match target.iter().position(|&b| b == b'?') {
        Some(at) => (&target[..at], &target[at + 1..]),
        None => (target, &b""[..]),
    };
    let mut joined = pathname.to_vec();
    if !search.is_empty() {
        joined.push(b'?');
        joined.extend(escape(search, b"!'()*-._~"));
    }
    Ok(escape(&joined, b";,/?:@&=+$-_.!~*'()#"))
}

/// `bytes` with every byte but ASCII letters, digits and `kept` as `%XX` (uppercase).
fn escape(bytes: &[u8], kept: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || kept.contains(&b) {
            out.push(b);
        } else {
            out.extend(format!("%{b:02X}").bytes());
        }
    }
    out
}

/// `name:value;…` of the headers `x-contentful-signed-headers` lists, as the toolkit
/// renders them; the list in the toolkit's own form (lowercase names of `[a-z0-9-]`, sorted,
/// unique, itself and the timestamp among them), each header present once, its value
/// (trimmed as JavaScript trims) UTF-8 and not readable as two signed headers.
fn signed_headers(head: &RequestHead) -> Result<Vec<u8>, Rejection> {
    let list = required(head, SIGNED_HEADERS)?;
    let names: Vec<&[u8]> = list.split(|&b| b == b',').collect();
    let named = |name: &&[u8]| {
        !name.is_empty()
            && name
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    };
    let sorted = names.windows(2).all(|pair| pair[0] < pair[1]);
    let required_named = [SIGNED_HEADERS, TIMESTAMP]
        .iter()
        .all(|name| names.contains(&name.as_bytes()));
    if names.len() > MAX_SIGNED || !names.iter().all(named) || !sorted || !required_named {
        return Err(malformed(format!(
            "{SIGNED_HEADERS} is not sorted unique lowercase names including itself and {TIMESTAMP}"
        )));
    }
    let mut values = Vec::with_capacity(names.len());
    for name in &names {
        let name = std::str::from_utf8(name).unwrap_or_default();
        let value = match head.lookup(name) {
            Lookup::One(value) => value,
            Lookup::Missing => return Err(malformed(format!("{name} is signed but missing"))),
            Lookup::Duplicate => {
                return Err(Rejection::new(
                    Reason::DuplicateHeader,
                    format!("{name} appears more than once"),
                ))
            }
        };
        let value = std::str::from_utf8(value)
            .map_err(|_| malformed(format!("{name} is not UTF-8")))?
            .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        values.push((name, value));
    }
    let mut rendered = Vec::new();
    for (i, (name, value)) in values.iter().enumerate() {
        // `a:x;b:y` and `a:x` + `b:…;b:y` would sign alike: no value holds `;<later name>:`.
        if values[i + 1..]
            .iter()
            .any(|(later, _)| value.contains(&format!(";{later}:")))
        {
            return Err(malformed(format!(
                "{name} could be read as two signed headers"
            )));
        }
        if i > 0 {
            rendered.push(b';');
        }
        rendered.extend_from_slice(name.as_bytes());
        rendered.push(b':');
        rendered.extend_from_slice(value.as_bytes());
    }
    Ok(rendered)
}

impl Contentful {
    fn key(&self, canonical: &Canonical, hashed: &Hashed) -> Result<&Key, Rejection> {
        key_with_mac(
            &self.keys,
            hashed.macs.iter().copied(),
            &[canonical.signature],
        )
        .ok_or_else(|| mismatch(SIGNATURE))
    }
}

impl Provider for Contentful {
    fn time(&self) -> Time {
        Time::Signed(WINDOW)
    }

    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        read(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn streamed_mac(&self, head: &RequestHead) -> Option<StreamedMac<'_>> {
        let canonical = read(head).ok()?;
        Some(StreamedMac::after(&self.keys, &canonical.parts()))
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let canonical = read(head)?;
        // The prefix from the request just read, not read again.
        let streamed = StreamedMac::after(&self.keys, &canonical.parts());
        let hashed = &*body.hashed(Some(streamed));
        let key = self.key(&canonical, hashed)?;
        Ok(Verified::streamed(
            SCHEME,
            &key.name,
            hashed,
            Some(canonical.time),
        ))
    }

    fn check_hashed(&self, head: &RequestHead, hashed: &Hashed) -> Result<(), Rejection> {
        self.key(&read(head)?, hashed).map(|_| ())
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![(SCHEME, key_names(&self.keys))]
    }

    fn media(&self) -> Media {
        Media::JSON_OBJECT
    }

    fn dispatch_headers(&self) -> Vec<&str> {
        DISPATCH.to_vec()
    }
}

#[cfg(any(test, feature = "sign"))]
pub const SIGNER: Signer = Signer { sign, example };

/// An entry published, as Contentful sends it.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let id = crate::providers::sign::base62(&signing.random, 22);
    serde_json::json!({"sys": {"type": "Entry", "id": id, "revision": 1,
        "space": {"sys": {"type": "Link", "linkType": "Space", "id": "demo"}}},
        "fields": {"title": {"en-US": "café"}}})
    .to_string()
    .into_bytes()
}

/// What `signRequest` sends: every header given signed, with the timestamp and the list.
#[cfg(any(test, feature = "sign"))]
fn sign(signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
    let key = signing.text_key(SCHEME)?;
    out.set(
        "content-type",
        "application/vnd.contentful.management.v1+json",
        Role::Plain,
    );
    out.default_header("x-contentful-topic", "ContentManagement.Entry.publish");
    out.set(TIMESTAMP, (signing.now * 1000).to_string(), Role::Plain);
    let mut names: Vec<String> = out
        .headers
        .iter()
        .map(|header| header.name.to_ascii_lowercase())
        .chain([SIGNED_HEADERS.to_string()])
        .collect();
    names.sort();
    names.dedup();
    out.set(SIGNED_HEADERS, names.join(","), Role::Plain);
    let header = |name: &str| {
        out.headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value.trim().to_string())
            .unwrap_or_default()
    };
    let rendered: Vec<String> = names
        .iter()
        .map(|name| format!("{name}:{}", header(name)))
        .collect();
    let path = canonical_path(out.path_and_query().as_bytes()).map_err(|e| e.detail.to_string())?;
    let (method, rendered, body) = (out.method.clone(), rendered.join(";"), out.body.clone());
    let parts: [&[u8]; 7] = [
        method.as_bytes(),
        b"\n",
        &path,
        b"\n",
        rendered.as_bytes(),
        b"\n",
        &body,
    ];
    let signature = crate::providers::hex(&key.mac(&parts));
    out.set(SIGNATURE, signature, Role::Signature { at: 0 });
    out.covers("canonical request", &parts);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::request::Header;

    /// Signed by `@contentful/node-apps-toolkit` 3.16.1's `signRequest` at this time.
    const MILLIS: &str = "1774432800000";
    const BODY: &str = r#"{"sys":{"id":"abc"}}"#;
    const VECTORS: [(&str, &str); 2] = [
        (
            "e2e-contentful-secretxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "1c0b9658082b37351ea701e2711638b5d0bf951418b3a42b6d1c070609589eb3",
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "31123a7909bde7b17d72c48bf1a801869f24d74ef7e8825f9e64b478407d6291",
        ),
    ];
    const LIST: &str =
        "content-type,x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic";

    fn headers(signature: &str, changed: &[(&str, &str)]) -> Vec<Header> {
        let mut head: Vec<(&str, &str)> = vec![
            (":method", "POST"),
            (":path", "/contentful/hook?x=1"),
            (
                "content-type",
                "application/vnd.contentful.management.v1+json",
            ),
            ("x-contentful-topic", "ContentManagement.Entry.publish"),
            (SIGNED_HEADERS, LIST),
            (TIMESTAMP, MILLIS),
            (SIGNATURE, signature),
        ];
        for (name, value) in changed {
            head.retain(|(n, _)| n != name);
            if !value.is_empty() {
                head.push((name, value));
            }
        }
        head.iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn judge(secret: &str, head: &[Header], body: &str) -> Result<i64, Reason> {
        let contentful = Contentful {
            keys: vec![test_key("k", secret)],
        };
        let head = RequestHead::new(head);
        contentful
            .at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        contentful
            .at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .map(|v| v.time.unwrap().unix_secs())
            .map_err(|r| r.reason)
    }

    #[test]
    fn the_toolkits_signatures_verify_and_a_changed_byte_does_not() {
        for (secret, signature) in VECTORS {
            assert_eq!(
                judge(secret, &headers(signature, &[]), BODY),
                Ok(1_774_432_800)
            );
            let changed = [
                (":path", "/contentful/hook?x=2"),
                (":path", "/contentful/hook?x%3D1"),
                (":method", "PUT"),
                ("x-contentful-topic", "ContentManagement.Entry.delete"),
                (TIMESTAMP, "1774432800001"),
            ];
            for change in changed {
                let verdict = judge(secret, &headers(signature, &[change]), BODY);
                assert_eq!(verdict, Err(Reason::SignatureMismatch), "{change:?}");
            }
            let body = BODY.replace("abc", "abd");
            assert_eq!(
                judge(secret, &headers(signature, &[]), &body),
                Err(Reason::SignatureMismatch)
            );
        }
    }

    #[test]
    fn the_path_is_escaped_as_the_toolkit_escapes_it() {
        for (target, canonical) in [
            ("/contentful/hook?x=1", "/contentful/hook?x%253D1"),
            ("/x?", "/x"),
            ("/p%20q", "/p%2520q"),
            ("/a/b;c,d@e", "/a/b;c,d@e"),
            ("/x?a=b&c=d~e", "/x?a%253Db%2526c%253Dd~e"),
            ("/x[1]", "/x%5B1%5D"),
        ] {
            let path = canonical_path(target.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(path).unwrap(), canonical, "{target}");
        }
        for target in ["x", "/x?a=1?b=2", "/x#f", "/x y", "/ü"] {
            assert!(canonical_path(target.as_bytes()).is_err(), "{target}");
        }
    }

    #[test]
    fn only_the_toolkits_own_forms_are_read() {
        let (secret, signature) = VECTORS[0];
        for (change, reason) in [
            (
                (SIGNATURE, &signature.to_uppercase()[..]),
                Reason::MalformedHeader,
            ),
            ((SIGNATURE, &signature[1..]), Reason::MalformedHeader),
            ((TIMESTAMP, "01774432800000"), Reason::MalformedHeader),
            ((TIMESTAMP, "1774432800000.9"), Reason::MalformedHeader),
            ((TIMESTAMP, "1577836800000"), Reason::MalformedHeader),
            (
                (
                    SIGNED_HEADERS,
                    "x-contentful-timestamp,x-contentful-signed-headers",
                ),
                Reason::MalformedHeader,
            ),
            ((SIGNED_HEADERS, "content-type"), Reason::MalformedHeader),
            (
                (
                    SIGNED_HEADERS,
                    "Content-Type,x-contentful-signed-headers,x-contentful-timestamp",
                ),
                Reason::MalformedHeader,
            ),
            (
                (
                    SIGNED_HEADERS,
                    "content-type, x-contentful-signed-headers,x-contentful-timestamp",
                ),
                Reason::MalformedHeader,
            ),
            (
                (
                    SIGNED_HEADERS,
                    "a,x-contentful-signed-headers,x-contentful-timestamp",
                ),
                Reason::MalformedHeader,
            ),
            ((":method", "post"), Reason::MalformedHeader),
            (
                (":path", "/contentful/hook?x=1?y=2"),
                Reason::MalformedHeader,
            ),
            ((SIGNATURE, ""), Reason::MissingSignature),
        ] {
            let verdict = judge(secret, &headers(signature, &[change]), BODY);
            assert_eq!(verdict, Err(reason), "{change:?}");
        }
        let mut twice = headers(signature, &[]);
        twice.push((
            "x-contentful-topic".into(),
            b"ContentManagement.Entry.delete".to_vec(),
        ));
        assert_eq!(judge(secret, &twice, BODY), Err(Reason::DuplicateHeader));
        // Trimmed as JavaScript trims: padding (a byte-order mark too) is not signed.
        let padded = headers(
            signature,
            &[(
                "x-contentful-topic",
                "\u{feff} ContentManagement.Entry.publish ",
            )],
        );
        assert_eq!(judge(secret, &padded, BODY), Ok(1_774_432_800));
    }

    #[test]
    fn no_signed_value_can_be_read_as_two_signed_headers() {
        // `content-type` ending in `;x-contentful-signed-headers:…` would move bytes between
        // two signed headers under one signature.
        let (secret, signature) = VECTORS[0];
        let smuggled = "application/json;x-contentful-topic:ContentManagement.Entry.delete";
        let head = headers(signature, &[("content-type", smuggled)]);
        assert_eq!(judge(secret, &head, BODY), Err(Reason::MalformedHeader));
        let charset = "application/json; charset=utf-8";
        let head = headers(signature, &[("content-type", charset)]);
        assert_eq!(judge(secret, &head, BODY), Err(Reason::SignatureMismatch));
    }

    #[test]
    fn a_route_takes_only_contentful_secrets() {
        let route = |secret: &str| {
            let document = serde_json::json!({"routes": [{"name": "c", "path_prefix": "/c/",
                "scheme": SCHEME, "keys": [{"value": secret}]}]});
            crate::config::parse(document.to_string().as_bytes(), &|_| None).map(|_| ())
        };
        assert!(route(VECTORS[0].0).is_ok());
        for secret in ["short", &"a".repeat(65), &format!("{}!", "a".repeat(63))] {
            let message = route(secret).unwrap_err().to_string();
            assert!(
                message.starts_with(
                    "routes[0].keys[0]: key from value is not a Contentful signing secret"
                ),
                "{message}"
            );
        }
    }

    #[test]
    fn the_signer_reproduces_the_vector_and_its_output_verifies() {
        use crate::providers::sign::testing::{changed_body, signed};
        use crate::providers::sign::{KeyMaterial, Signing};
        let (secret, signature) = VECTORS[0];
        let mut signing = Signing::new(KeyMaterial::Secret(secret), 1_774_432_800);
        signing.random = [7; 32];
        let out = signed(
            &SIGNER,
            &signing,
            "https://h.example/contentful/hook?x=1",
            Some(BODY.as_bytes()),
        );
        let head = out.head();
        let value = |name: &str| head.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(value(SIGNATURE).unwrap(), signature.as_bytes());
        assert_eq!(value(SIGNED_HEADERS).unwrap(), LIST.as_bytes());
        assert_eq!(judge(secret, &head, BODY), Ok(1_774_432_800));
        let changed = changed_body(&out);
        let changed_body = std::str::from_utf8(&changed.body).unwrap();
        assert_eq!(
            judge(secret, &head, changed_body),
            Err(Reason::SignatureMismatch)
        );
    }
}
