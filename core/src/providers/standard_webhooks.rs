//! Standard Webhooks (spec 1.0.0) and Svix, the same scheme under two sets of header
//! names: `webhook-signature: v1,<base64> [v1,<base64> ...]` = HMAC-SHA256 over
//! `id ‖ "." ‖ timestamp ‖ "." ‖ body`, with the key base64-decoded from `whsec_<base64>`.
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | id (`[A-Za-z0-9_-]`), timestamp, signature list | id ‖ `.` ‖ timestamp ‖ `.` ‖ body (each attempt is re-signed) | the timestamp (±5 min, the SDKs' tolerance) | a JSON object | method, path, query, content type |
//!
//! `v1` entries are checked against the route's `keys` (`whsec_` secrets) and `v1a` entries
//! (Ed25519, base64 of 64 bytes) against its `public_keys` (`whpk_`); a version the route
//! has no keys for is skipped, as the reference library skips all but `v1`. The timestamp must be plain digits: the SDKs also accept `+1614265330` or
//! `1614265330.9` (they re-format it before signing), which no producer sends.

use crate::keys::Key;
use crate::providers::entry::{Entry, Problem, Secret, Settings};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, KeyMaterial, Outgoing, Role, Signer, Signing};
use crate::providers::{
    base64_exact, key_names, key_with_mac, malformed, mismatch, required, unix_seconds, AtHeaders,
    Body, Checks, Hashed, Media, Provider, Signed, StreamedMac, Time, Verified, MAX_SIGNATURES,
    MAX_SIGNATURE_HEADER_BYTES,
};
use crate::public_key::{PublicKey, Written};
use crate::request::{Lookup, RequestHead};
use crate::timestamp::{Edges, Freshness, Stamp, FIVE_MINUTES};
use crate::verdict::{Reason, Rejection};

/// The header names and scheme name of one flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    pub scheme: &'static str,
    pub id: &'static str,
    pub timestamp: &'static str,
    pub signature: &'static str,
    /// Where one of these is absent, its Standard Webhooks name is read instead, as Svix's
    /// SDK reads them (each header on its own; present, even empty, wins).
    pub fallback: bool,
    /// Where the window ends, as the flavour's own SDK compares.
    pub edges: Edges,
}

pub const STANDARD: Names = Names {
    scheme: "standard_webhooks",
    id: "webhook-id",
    timestamp: "webhook-timestamp",
    signature: "webhook-signature",
    fallback: false,
    edges: Edges::Exact,
};

pub const SVIX: Names = Names {
    scheme: "svix",
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
    fallback: true,
    edges: Edges::Exact,
};

/// Clerk and Resend deliver through Svix: its headers under their own scheme names.
/// Clerk has no verifier of its own (Svix's is the one to use).
pub const CLERK: Names = Names {
    scheme: "clerk",
    ..SVIX
};

/// Resend's own verifier truncates its clock to whole seconds.
pub const RESEND: Names = Names {
    scheme: "resend",
    edges: Edges::FlooredClock,
    ..SVIX
};

/// The id, at most [`MAX_ID_BYTES`] of `[A-Za-z0-9_-]`: the spec asks producers to keep
/// `.` out of it (it ends at the first `.` of the signed message), and Svix sends `msg_`
/// and 27 base62 characters.
fn check_id(name: &str, id: &[u8]) -> Result<(), Rejection> {
    let id_byte = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-');
    if id.is_empty() || id.len() > MAX_ID_BYTES || !id.iter().all(id_byte) {
        return Err(malformed(format!(
            "{name} is not 1 to {MAX_ID_BYTES} characters of [A-Za-z0-9_-]"
        )));
    }
    Ok(())
}

/// Longest message id kept: Svix sends 31 characters.
pub const MAX_ID_BYTES: usize = 256;

#[derive(Debug)]
pub struct StandardWebhooks {
    pub names: Names,
    /// Each the base64-decoded bytes of a `whsec_` secret.
    pub keys: Vec<Key>,
    /// `whpk_` keys, for `v1a` signatures.
    pub public_keys: Vec<PublicKey>,
}

/// One delivery's signed headers.
struct Headers<'r> {
    id: &'r [u8],
    timestamp: &'r [u8],
    time: i64,
    signatures: Signatures,
}

/// The entries of a signature list this route can check.
#[derive(Default)]
struct Signatures {
    v1: Vec<[u8; 32]>,
    v1a: Vec<[u8; 64]>,
}

impl StandardWebhooks {
    fn read<'r>(&self, head: &RequestHead<'r>) -> Result<Headers<'r>, Rejection> {
        let names = self.names;
        let header = |name: &'static str, standard: &'static str| match (
            head.lookup(name),
            names.fallback,
        ) {
            (Lookup::Missing, true) => Ok((standard, required(head, standard)?)),
            _ => Ok::<_, Rejection>((name, required(head, name)?)),
        };
        let (id_name, id) = header(names.id, STANDARD.id)?;
        let (timestamp_name, timestamp) = header(names.timestamp, STANDARD.timestamp)?;
        let (signature_name, list) = header(names.signature, STANDARD.signature)?;
        check_id(id_name, id)?;
        let time = unix_seconds(timestamp_name, timestamp)?;
        Ok(Headers {
            id,
            timestamp,
            time,
            signatures: self.signatures(signature_name, list)?,
        })
    }

    /// The route's window by default: the SDKs' five minutes, ending where this flavour's
    /// SDK ends it.
    pub fn freshness(&self) -> Freshness {
        Freshness {
            edges: self.names.edges,
            ..FIVE_MINUTES
        }
    }

    /// The `v1` and `v1a` signatures of a space-separated `<version>,<base64>` list, each
    /// only where the route has keys of its kind.
    fn signatures(&self, name: &str, list: &[u8]) -> Result<Signatures, Rejection> {
        if list.len() > MAX_SIGNATURE_HEADER_BYTES {
            return Err(malformed(format!(
                "{name} is longer than {MAX_SIGNATURE_HEADER_BYTES} bytes"
            )));
        }
        let mut signatures = Signatures::default();
        for entry in list.split(|&b| b == b' ').filter(|entry| !entry.is_empty()) {
            let Some(comma) = entry.iter().position(|&b| b == b',') else {
                return Err(malformed(format!(
                    "{name}: an entry is not <version>,<signature>"
                )));
            };
            let (version, signature) = (&entry[..comma], &entry[comma + 1..]);
            let bad = |what: &str| {
                malformed(format!(
                    "{name}: a {what} signature is not base64 of its length"
                ))
            };
            match version {
                b"v1" if !self.keys.is_empty() => signatures
                    .v1
                    .push(base64_exact::<32>(signature).ok_or_else(|| bad("v1"))?),
                b"v1a" if !self.public_keys.is_empty() => signatures
                    .v1a
                    .push(base64_exact::<64>(signature).ok_or_else(|| bad("v1a"))?),
                _ => continue,
            }
            if signatures.v1.len() + signatures.v1a.len() > MAX_SIGNATURES {
                return Err(malformed(format!(
                    "{name} lists more than {MAX_SIGNATURES} signatures"
                )));
            }
        }
        if signatures.v1.is_empty() && signatures.v1a.is_empty() {
            return Err(Rejection::new(
                Reason::MissingSignature,
                format!("{name} has no signature of a version the route has keys for"),
            ));
        }
        Ok(signatures)
    }
}

/// Standard Webhooks and the providers that deliver through Svix: `whsec_` secrets and
/// `whpk_` public keys.
const fn entry(
    names: &Names,
    compile: fn(Settings) -> Result<Box<dyn Provider>, Problem>,
) -> Entry {
    Entry::new(names.scheme, compile)
        .secret(Secret::Whsec)
        .public_keys(Written::Ed25519Whpk)
}

fn built(names: Names, settings: Settings) -> Result<Box<dyn Provider>, Problem> {
    Ok(Box::new(StandardWebhooks {
        names,
        keys: settings.keys,
        public_keys: settings.public_keys,
    }))
}

pub const STANDARD_ENTRY: Entry = signs!(
    entry(&STANDARD, |settings| built(STANDARD, settings)),
    Signer {
        sign: |signing, out| STANDARD.sign(signing, out),
        example,
    }
);
pub const SVIX_ENTRY: Entry = signs!(
    entry(&SVIX, |settings| built(SVIX, settings)),
    Signer {
        sign: |signing, out| SVIX.sign(signing, out),
        example,
    }
);
pub const CLERK_ENTRY: Entry = signs!(
    entry(&CLERK, |settings| built(CLERK, settings)),
    Signer {
        sign: |signing, out| CLERK.sign(signing, out),
        example,
    }
);
pub const RESEND_ENTRY: Entry = signs!(
    entry(&RESEND, |settings| built(RESEND, settings)),
    Signer {
        sign: |signing, out| RESEND.sign(signing, out),
        example,
    }
);

#[cfg(any(test, feature = "sign"))]
impl Names {
    /// What the producer sends under these names: the id (`msg_` and 27 base62 characters
    /// unless given), the timestamp, and the signature of `id.timestamp.body`: `v1,` the
    /// MAC under a `whsec_` secret, or `v1a,` the Ed25519 signature under a private key
    /// (as [`sign::ed25519_private`] reads it).
    pub fn sign(&self, signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
        out.content_type(Media::JSON_OBJECT);
        let id = signing.id_or(|random| format!("msg_{}", sign::base62(random, 27)));
        check_id(self.id, id.as_bytes()).map_err(|r| r.detail)?;
        let timestamp = signing.now.to_string();
        let body = out.body.clone();
        let parts: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", &body];
        let (version, signature) = match signing.key {
            KeyMaterial::Secret(secret) => {
                let bytes = secret_bytes(secret).ok_or_else(|| {
                    format!("the {} secret is not whsec_ and base64", self.scheme)
                })?;
                ("v1,", sign::key(&bytes)?.mac(&parts).to_vec())
            }
            KeyMaterial::Private(private) => {
                use ed25519_dalek::Signer as _;
                let key = sign::ed25519_private(private)?;
                ("v1a,", key.sign(&parts.concat()).to_bytes().to_vec())
            }
        };
        out.set(self.id, id.clone(), Role::Plain);
        out.set(self.timestamp, timestamp.clone(), Role::Plain);
        out.signature(self.signature, version, &sign::base64(&signature));
        out.covers("message", &parts);
        Ok(())
    }
}

/// A `user.created` event, as Svix's examples show one.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"type":"user.created","timestamp":"{}","data":{{"id":"user_{}","email":"alice@example.com"}}}}"#,
        sign::rfc3339(signing.now),
        sign::base62(&signing.random, 24)
    )
    .into_bytes()
}

impl Provider for StandardWebhooks {
    fn time(&self) -> Time {
        Time::Signed(self.freshness())
    }

    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        self.read(head)?;
        Ok(AtHeaders::NeedBody)
    }

    /// With public keys, a `v1a` signature may cost an Ed25519 verification.
    fn time_before_verifying(&self, head: &RequestHead) -> Option<Stamp> {
        if self.public_keys.is_empty() {
            return None;
        }
        Some(Stamp::secs(self.read(head).ok()?.time))
    }

    /// The secrets' MAC can be computed as the body arrives; public keys verify at its end
    /// (a route with none streams nothing).
    fn streamed_mac(&self, head: &RequestHead) -> Option<StreamedMac<'_>> {
        if self.keys.is_empty() {
            return None;
        }
        let signed = self.read(head).ok()?;
        Some(StreamedMac::after(
            &self.keys,
            &[signed.id, b".", signed.timestamp, b"."],
        ))
    }

    /// Without public keys, only the secrets' MAC can verify: a body whose MAC fails is
    /// refused before it is read.
    fn check_hashed(&self, head: &RequestHead, hashed: &Hashed) -> Result<(), Rejection> {
        if !self.public_keys.is_empty() {
            return Ok(());
        }
        let signed = self.read(head)?;
        key_with_mac(
            &self.keys,
            hashed.macs.iter().copied(),
            &signed.signatures.v1,
        )
        .map(|_| ())
        .ok_or_else(|| mismatch(self.names.signature))
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let hashed = &*body.hashed(self.streamed_mac(head));
        let body = body.bytes;
        let signed = self.read(head)?;
        let family = self.names.scheme;
        let hmac = key_with_mac(
            &self.keys,
            hashed.macs.iter().copied(),
            &signed.signatures.v1,
        )
        .map(|key| (&key.name, Signed::streamed(family, hashed)));
        let ed25519 = || {
            // Only when no secret verified, and built once for every key and signature.
            let parts: [&[u8]; 5] = [signed.id, b".", signed.timestamp, b".", body];
            let message = parts.concat();
            self.public_keys
                .iter()
                .find(|key| {
                    signed
                        .signatures
                        .v1a
                        .iter()
                        .any(|signature| key.verifies(&message, signature))
                })
                .map(|key| (&key.name, Signed::over(family, &parts, body)))
        };
        let (key, signed_message) = hmac
            .or_else(ed25519)
            .ok_or_else(|| mismatch(self.names.signature))?;
        Ok(Verified {
            scheme: self.names.scheme,
            key,
            signed: signed_message,
            time: Some(Stamp::secs(signed.time)),
        })
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        let mut names = key_names(&self.keys);
        names.extend(self.public_keys.iter().map(|key| key.name.as_str()));
        vec![(self.names.scheme, names)]
    }

    fn media(&self) -> Media {
        Media::JSON_OBJECT
    }
}

/// The key bytes of a `whsec_<base64>` secret (the prefix is optional, as in the SDKs).
pub fn secret_bytes(secret: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    (!bytes.is_empty()).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::headers;

    fn scheme(names: Names, secret: &str) -> StandardWebhooks {
        let key = Key::new("k", &secret_bytes(secret).unwrap()).unwrap();
        StandardWebhooks {
            names,
            keys: vec![key],
            public_keys: vec![],
        }
    }

    fn check(
        s: &StandardWebhooks,
        h: &[(&str, &str)],
        body: &str,
    ) -> Result<(Signed, i64), Reason> {
        let h = headers(h);
        let head = RequestHead::new(&h);
        s.at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        s.at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .map(|v| (v.signed, v.time.unwrap().unix_secs()))
            .map_err(|r| r.reason)
    }

    /// The message the scheme signs for this id, timestamp and body.
    fn message(names: Names, id: &str, timestamp: &str, body: &str) -> Signed {
        let parts: [&[u8]; 5] = [
            id.as_bytes(),
            b".",
            timestamp.as_bytes(),
            b".",
            body.as_bytes(),
        ];
        Signed::over(names.scheme, &parts, body.as_bytes())
    }

    // providers.md §4 row 1: the spec's own example.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &str = r#"{"test": 2432232314}"#;

    #[test]
    fn the_spec_example_verifies_also_after_a_wrong_entry_and_other_versions() {
        let s = scheme(STANDARD, SECRET);
        for list in [
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1a,xyz v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            let h = [("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"), ("webhook-timestamp", "1614265330"), ("webhook-signature", list)];
            let signed = message(STANDARD, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", BODY);
            assert_eq!(check(&s, &h, BODY), Ok((signed, 1_614_265_330)), "{list}");
        }
    }

    #[test]
    fn svix_reads_its_own_header_names_and_falls_back_as_its_sdk() {
        // §4 row 2.
        let s = scheme(SVIX, SECRET);
        let body = "{\"id\":\"evt_1\",\"amount\":100,\"note\":\"caf\u{e9}\"}";
        let h = [
            ("svix-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
            ("svix-timestamp", "1700000000"),
            (
                "svix-signature",
                "v1,aNGBBDYsDRTyFd0BrDS5A8EqIrwVuHJAZBdfS+vFS8c=",
            ),
        ];
        assert!(check(&s, &h, body).is_ok());
        // Svix's SDK reads each `webhook-*` name where the `svix-*` one is absent, and the
        // application it verifies for reads them so too: the same message either way.
        let webhook = [
            ("webhook-id", h[0].1),
            ("webhook-timestamp", h[1].1),
            ("webhook-signature", h[2].1),
        ];
        let signed = message(SVIX, h[0].1, h[1].1, body);
        assert_eq!(
            check(&s, &webhook, body),
            Ok((signed.clone(), 1_700_000_000))
        );
        let mixed = [h[0], webhook[1], h[2]];
        assert_eq!(check(&s, &mixed, body), Ok((signed, 1_700_000_000)));
        // A present svix-* header wins, even over a good webhook-* one.
        let shadowed = [("svix-id", "msg_other"), webhook[0], h[1], h[2]];
        assert_eq!(check(&s, &shadowed, body), Err(Reason::SignatureMismatch));
        // Standard Webhooks' own SDK reads only its own names.
        let standard = scheme(STANDARD, SECRET);
        assert_eq!(check(&standard, &h, body), Err(Reason::MissingSignature));
    }

    #[test]
    fn changed_bytes_and_bad_headers_are_refused() {
        let s = scheme(STANDARD, SECRET);
        let good = [
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ];
        let with = |i: usize, value: &'static str| {
            let mut h = good;
            h[i].1 = value;
            h
        };
        assert_eq!(
            check(&s, &good, r#"{"test": 2432232315}"#),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(
            check(&s, &with(0, "msg_p5jXN8AQM9LWM0D4loKWxJeK"), BODY),
            Err(Reason::SignatureMismatch)
        );
        assert_eq!(
            check(&s, &with(1, "1614265331"), BODY),
            Err(Reason::SignatureMismatch)
        );
        for bad in ["+1614265330", "1614265330.9", "", "abc"] {
            assert_eq!(
                check(&s, &with(1, bad), BODY),
                Err(Reason::MalformedHeader),
                "{bad}"
            );
        }
        for bad in [
            "v1",
            "v1,notbase64",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
        ] {
            assert_eq!(
                check(&s, &with(2, bad), BODY),
                Err(Reason::MalformedHeader),
                "{bad}"
            );
        }
        assert_eq!(
            check(&s, &with(2, "v1a,abc"), BODY),
            Err(Reason::MissingSignature)
        );
        assert_eq!(
            check(&s, &with(0, "has space"), BODY),
            Err(Reason::MalformedHeader)
        );
        assert_eq!(check(&s, &good[1..], BODY), Err(Reason::MissingSignature));
        let other = scheme(STANDARD, "whsec_dGhlIG90aGVyIHNlY3JldCBvZiAyNCBieXRlcw==");
        assert_eq!(check(&other, &good, BODY), Err(Reason::SignatureMismatch));
    }

    #[test]
    fn the_signers_reproduce_the_spec_and_svix_vectors_and_their_output_verifies() {
        use crate::providers::registry::find;
        use crate::providers::sign::testing::{changed_body, judge, signed};
        let signer = |scheme: &str| find(scheme).unwrap().sign.unwrap();
        let mut signing = Signing::new(KeyMaterial::Secret(SECRET), 1_614_265_330);
        signing.id = Some("msg_p5jXN8AQM9LWM0D4loKWxJek");
        let out = signed(
            &signer("standard_webhooks"),
            &signing,
            "https://h/w",
            Some(BODY.as_bytes()),
        );
        assert_eq!(
            out.header("webhook-signature"),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(
            out.header("webhook-id"),
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
        );
        signing.id = Some("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W");
        signing.now = 1_700_000_000;
        let body = "{\"id\":\"evt_1\",\"amount\":100,\"note\":\"caf\u{e9}\"}";
        let out = signed(
            &signer("svix"),
            &signing,
            "https://h/w",
            Some(body.as_bytes()),
        );
        assert_eq!(
            out.header("svix-signature"),
            Some("v1,aNGBBDYsDRTyFd0BrDS5A8EqIrwVuHJAZBdfS+vFS8c=")
        );
        signing.id = None;
        for names in [STANDARD, SVIX, CLERK, RESEND] {
            let out = signed(&signer(names.scheme), &signing, "https://h/w", None);
            let verified = Ok((format!("{}/k", names.scheme), Some(1_700_000_000)));
            assert_eq!(judge(&scheme(names, SECRET), &out), verified);
            assert_eq!(
                judge(&scheme(names, SECRET), &changed_body(&out)),
                Err(Reason::SignatureMismatch)
            );
        }
        // v1a: the private key's signature verifies under its whpk_ public key.
        let seed = sign::base64(&[7; 32]);
        let whsk = format!("whsk_{seed}");
        let public = sign::ed25519_private(&whsk).unwrap().verifying_key();
        let whpk = format!("whpk_{}", sign::base64(public.as_bytes()));
        let signing = Signing::new(KeyMaterial::Private(&whsk), 1_700_000_000);
        for names in [STANDARD, SVIX, CLERK, RESEND] {
            let out = signed(&signer(names.scheme), &signing, "https://h/w", None);
            assert!(out.header(names.signature).unwrap().starts_with("v1a,"));
            let s = StandardWebhooks {
                names,
                keys: vec![],
                public_keys: vec![PublicKey::parse("ed", &whpk, Written::Ed25519Whpk).unwrap()],
            };
            let verified = Ok((format!("{}/ed", names.scheme), Some(1_700_000_000)));
            assert_eq!(judge(&s, &out), verified);
            assert_eq!(
                judge(&s, &changed_body(&out)),
                Err(Reason::SignatureMismatch)
            );
        }
    }

    #[test]
    fn secrets_decode_with_or_without_the_prefix() {
        assert_eq!(secret_bytes(SECRET), secret_bytes(&SECRET[6..]));
        assert_eq!(secret_bytes(SECRET).unwrap().len(), 24);
        assert_eq!(secret_bytes("whsec_not base64"), None);
        assert_eq!(secret_bytes("whsec_"), None);
    }

    #[test]
    fn v1a_signatures_verify_with_whpk_public_keys_alongside_v1() {
        use base64::Engine;
        use ed25519_dalek::Signer;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let signer = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let whpk = format!("whpk_{}", b64(signer.verifying_key().as_bytes()));
        let public = PublicKey::parse("ed", &whpk, crate::public_key::Written::Ed25519Whpk);
        let mut s = scheme(STANDARD, SECRET);
        s.public_keys = vec![public.unwrap()];
        let message = format!("msg_1.1614265330.{BODY}");
        let v1a = format!("v1a,{}", b64(&signer.sign(message.as_bytes()).to_bytes()));
        let h = |list: &str| {
            [
                ("webhook-id", "msg_1".to_string()),
                ("webhook-timestamp", "1614265330".to_string()),
                ("webhook-signature", list.to_string()),
            ]
        };
        let judge = |s: &StandardWebhooks, list: &str, body: &str| {
            let h = h(list);
            let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let h = headers(&h);
            let head = RequestHead::new(&h);
            s.at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
                .map(|v| v.key.to_string())
                .map_err(|r| r.reason)
        };
        assert_eq!(judge(&s, &v1a, BODY), Ok("ed".into()));
        let wrong_v1 = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        assert_eq!(
            judge(&s, &format!("{wrong_v1} {v1a}"), BODY),
            Ok("ed".into())
        );
        assert_eq!(judge(&s, &v1a, "{}"), Err(Reason::SignatureMismatch));
        assert_eq!(judge(&s, "v1a,AAAA", BODY), Err(Reason::MalformedHeader));
        // A route without public keys skips v1a, as the reference library does.
        let hmac_only = scheme(STANDARD, SECRET);
        assert_eq!(judge(&hmac_only, &v1a, BODY), Err(Reason::MissingSignature));
        // And one without secrets skips v1.
        s.keys.clear();
        assert_eq!(judge(&s, wrong_v1, BODY), Err(Reason::MissingSignature));
    }
}
