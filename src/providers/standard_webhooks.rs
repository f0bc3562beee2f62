//! Standard Webhooks (spec 1.0.0) and Svix, the same scheme under two sets of header
//! names: `webhook-signature: v1,<base64> [v1,<base64> ...]` = HMAC-SHA256 over
//! `id ‖ "." ‖ timestamp ‖ "." ‖ body`, with the key base64-decoded from `whsec_<base64>`.
//!
//! | at the headers | signed | identity | time | left open |
//! | --- | --- | --- | --- | --- |
//! | id, timestamp, signature list | id, timestamp, body | the id (the same on every retry) | the timestamp (±5 min, the SDKs' tolerance) | method, path, query |
//!
//! `v1` entries are checked against the route's `keys` (`whsec_` secrets) and `v1a` entries
//! (Ed25519, base64 of 64 bytes) against its `public_keys` (`whpk_`); a version the route
//! has no keys for is skipped, as the reference library skips all but `v1`. The timestamp must be plain digits: the SDKs also accept `+1614265330` or
//! `1614265330.9` (they re-format it before signing), which no producer sends.

use std::borrow::Cow;

use crate::keys::Key;
use crate::providers::{
    base64_exact, in_one_pass, key_names, key_with_mac, malformed, mismatch, required,
    unix_seconds, visible, AtHeaders, Checks, Open, Provider, StreamedMac, Verified,
    MAX_SIGNATURES, MAX_SIGNATURE_HEADER_BYTES,
};
use crate::public_key::PublicKey;
use crate::request::RequestHead;
use crate::verdict::{Reason, Rejection};

/// The header names and scheme name of one flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    pub scheme: &'static str,
    pub id: &'static str,
    pub timestamp: &'static str,
    pub signature: &'static str,
}

pub const STANDARD: Names = Names {
    scheme: "standard_webhooks",
    id: "webhook-id",
    timestamp: "webhook-timestamp",
    signature: "webhook-signature",
};

pub const SVIX: Names = Names {
    scheme: "svix",
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};

/// Clerk and Resend deliver through Svix: its headers under their own scheme names.
pub const CLERK: Names = Names {
    scheme: "clerk",
    ..SVIX
};

pub const RESEND: Names = Names {
    scheme: "resend",
    ..SVIX
};

/// Longest message id kept: Svix sends 31 characters; the spec promises no format.
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
struct Signed<'r> {
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
    fn read<'r>(&self, head: &RequestHead<'r>) -> Result<Signed<'r>, Rejection> {
        let names = self.names;
        let id = required(head, names.id)?;
        let timestamp = required(head, names.timestamp)?;
        let list = required(head, names.signature)?;
        visible(names.id, id, MAX_ID_BYTES)?;
        let time = unix_seconds(names.timestamp, timestamp)?;
        Ok(Signed {
            id,
            timestamp,
            time,
            signatures: self.signatures(names.signature, list)?,
        })
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

impl Provider for StandardWebhooks {
    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        self.read(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn at_body<'p, 'r>(
        &'p self,
        head: &RequestHead<'r>,
        body: &'r [u8],
        checks: &Checks,
    ) -> Result<Verified<'p, 'r>, Rejection> {
        in_one_pass(self, head, body, checks)
    }

    /// The secrets' MAC can be computed as the body arrives; public keys verify at its end
    /// (a route with none streams nothing).
    fn streamed_mac(&self, head: &RequestHead) -> Option<StreamedMac<'_>> {
        if self.keys.is_empty() {
            return None;
        }
        let signed = self.read(head).ok()?;
        Some(StreamedMac {
            keys: &self.keys,
            prefix: [signed.id, b".", signed.timestamp, b"."].concat(),
        })
    }

    fn at_body_hashed<'p, 'r>(
        &'p self,
        head: &RequestHead<'r>,
        body: &'r [u8],
        _: &Checks,
        macs: &[[u8; 32]],
    ) -> Result<Verified<'p, 'r>, Rejection> {
        let signed = self.read(head)?;
        let hmac = key_with_mac(&self.keys, macs.iter().copied(), &signed.signatures.v1);
        let ed25519 = || {
            // Only when no secret verified, and built once for every key and signature.
            let message = [signed.id, b".", signed.timestamp, b".", body].concat();
            self.public_keys
                .iter()
                .find(|key| {
                    signed
                        .signatures
                        .v1a
                        .iter()
                        .any(|signature| key.verifies(&message, signature))
                })
                .map(|key| &key.name)
        };
        let key = hmac
            .map(|key| &key.name)
            .or_else(ed25519)
            .ok_or_else(|| mismatch(self.names.signature))?;
        Ok(Verified {
            scheme: self.names.scheme,
            key,
            identity: Cow::Borrowed(signed.id),
            time: Some(signed.time),
            open: Open::ALL_BUT_BODY,
        })
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        let mut names = key_names(&self.keys);
        names.extend(self.public_keys.iter().map(|key| key.name.as_str()));
        vec![(self.names.scheme, names)]
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
    ) -> Result<(String, i64), Reason> {
        let h = headers(h);
        let head = RequestHead::new(&h);
        s.at_headers(&head, &Checks::default())
            .map_err(|r| r.reason)?;
        s.at_body(&head, body.as_bytes(), &Checks::default())
            .map(|v| {
                (
                    String::from_utf8(v.identity.to_vec()).unwrap(),
                    v.time.unwrap(),
                )
            })
            .map_err(|r| r.reason)
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
            assert_eq!(check(&s, &h, BODY), Ok(("msg_p5jXN8AQM9LWM0D4loKWxJek".into(), 1_614_265_330)), "{list}");
        }
    }

    #[test]
    fn svix_reads_its_own_header_names() {
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
        let webhook = [
            ("webhook-id", h[0].1),
            ("webhook-timestamp", h[1].1),
            ("webhook-signature", h[2].1),
        ];
        assert_eq!(check(&s, &webhook, body), Err(Reason::MissingSignature));
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
            s.at_body(&head, body.as_bytes(), &Checks::default())
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
