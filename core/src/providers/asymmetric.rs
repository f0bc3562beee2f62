//! The providers that sign with a private key over `timestamp ‖ body`, verified with the
//! public key from the configuration: Discord interactions (Ed25519, hex signature),
//! SendGrid's Event Webhook (ECDSA P-256 over SHA-256, base64 DER signature) and Telnyx
//! (Ed25519 over `timestamp|body`, base64 signature and key).
//!
//! | at the headers | signed message (the identity) | time | body | the fingerprint also binds |
//! | --- | --- | --- | --- | --- |
//! | signature and timestamp | timestamp ‖ body (Telnyx: timestamp ‖ `|` ‖ body) | the timestamp (±5 min by default: Telnyx's SDK's; Discord's and SendGrid's check none) | Discord, Telnyx: a JSON object; SendGrid: a JSON array | method, path, query, content type |
//!
//! Discord insists on 401 for a bad signature (it probes endpoints with one before saving
//! them), so a Discord signature that is malformed or does not verify is answered 401; its
//! `{"type":1}` PING is answered `{"type":1}` at the edge.

use base64::Engine;

use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Outgoing, Role, Signer, Signing};
use crate::providers::{
    json_with, malformed, required, unix_seconds, AtHeaders, Body, Checks, Media, Provider, Reply,
    Signed, Time, Verified,
};
use crate::public_key::{PublicKey, Written};
use crate::request::RequestHead;
use crate::timestamp::Stamp;
use crate::timestamp::FIVE_MINUTES;
use crate::verdict::{Reason, Rejection};

/// How a signature is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureText {
    /// 128 hex digits: a 64-byte Ed25519 signature.
    Hex64,
    /// Standard base64 of a DER ECDSA signature (at most 72 bytes for P-256).
    Base64Der,
    /// Standard base64 of a 64-byte Ed25519 signature.
    Base64Ed25519,
}

/// One provider's headers, encodings and quirks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavour {
    pub scheme: &'static str,
    signature: &'static str,
    timestamp: &'static str,
    /// What the provider signs between the timestamp and the body (Telnyx's `|`).
    separator: &'static [u8],
    text: SignatureText,
    /// How the configured public keys are written.
    pub written: Written,
    /// The status a provider insists on for a bad signature (malformed or not verifying).
    bad_signature_status: Option<u16>,
    /// Discord's `{"type":1}` PING.
    ping: bool,
    /// Discord posts an interaction (an object), SendGrid a batch of events (an array).
    media: Media,
}

pub const DISCORD: Flavour = Flavour {
    scheme: "discord",
    signature: "x-signature-ed25519",
    timestamp: "x-signature-timestamp",
    separator: b"",
    text: SignatureText::Hex64,
    written: Written::Ed25519Hex,
    bad_signature_status: Some(401),
    ping: true,
    media: Media::JSON_OBJECT,
};

pub const SENDGRID: Flavour = Flavour {
    scheme: "sendgrid",
    signature: "x-twilio-email-event-webhook-signature",
    timestamp: "x-twilio-email-event-webhook-timestamp",
    separator: b"",
    text: SignatureText::Base64Der,
    written: Written::P256SpkiBase64,
    bad_signature_status: None,
    ping: false,
    media: Media::JSON_ARRAY,
};

pub const TELNYX: Flavour = Flavour {
    scheme: "telnyx",
    signature: "telnyx-signature-ed25519",
    timestamp: "telnyx-timestamp",
    separator: b"|",
    text: SignatureText::Base64Ed25519,
    written: Written::Ed25519Base64,
    bad_signature_status: None,
    ping: false,
    media: Media::JSON_OBJECT,
};

#[derive(Debug)]
pub struct Asymmetric {
    pub flavour: Flavour,
    pub keys: Vec<PublicKey>,
}

impl Flavour {
    /// The signed message's parts: the timestamp, the separator where there is one, the
    /// body.
    fn parts<'a>(&self, timestamp: &'a [u8], body: &'a [u8]) -> Vec<&'a [u8]> {
        match self.separator {
            b"" => vec![timestamp, body],
            separator => vec![timestamp, separator, body],
        }
    }

    fn bad_signature(&self, refusal: Rejection) -> Rejection {
        match self.bad_signature_status {
            Some(status) => refusal.with_status(status),
            None => refusal,
        }
    }
}

impl Asymmetric {
    fn read<'r>(&self, head: &RequestHead<'r>) -> Result<(Vec<u8>, &'r [u8], i64), Rejection> {
        let flavour = &self.flavour;
        let text = required(head, flavour.signature)?;
        let signature = match flavour.text {
            SignatureText::Hex64 => crate::form::hex(text).filter(|bytes| bytes.len() == 64),
            SignatureText::Base64Der => base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .filter(|bytes| (8..=72).contains(&bytes.len())),
            SignatureText::Base64Ed25519 => base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .filter(|bytes| bytes.len() == 64),
        };
        let signature = signature.ok_or_else(|| {
            flavour.bad_signature(malformed(format!(
                "{}: not {}",
                flavour.signature,
                match flavour.text {
                    SignatureText::Hex64 => "128 hex digits",
                    SignatureText::Base64Der => "base64 of a DER ECDSA signature",
                    SignatureText::Base64Ed25519 => "base64 of a 64-byte Ed25519 signature",
                }
            )))
        })?;
        let timestamp = required(head, flavour.timestamp)?;
        let time = unix_seconds(flavour.timestamp, timestamp)?;
        Ok((signature, timestamp, time))
    }
}

pub const DISCORD_ENTRY: Entry = signs!(
    Entry::new(DISCORD.scheme, |settings| {
        Ok(Box::new(Asymmetric {
            flavour: DISCORD,
            keys: settings.public_keys,
        }))
    })
    .public_keys(DISCORD.written),
    DISCORD_SIGNER
);

pub const TELNYX_ENTRY: Entry = signs!(
    Entry::new(TELNYX.scheme, |settings| {
        Ok(Box::new(Asymmetric {
            flavour: TELNYX,
            keys: settings.public_keys,
        }))
    })
    .public_keys(TELNYX.written),
    TELNYX_SIGNER
);

pub const SENDGRID_ENTRY: Entry = signs!(
    Entry::new(SENDGRID.scheme, |settings| {
        Ok(Box::new(Asymmetric {
            flavour: SENDGRID,
            keys: settings.public_keys,
        }))
    })
    .public_keys(SENDGRID.written),
    SENDGRID_SIGNER
);

#[cfg(any(test, feature = "sign"))]
pub const DISCORD_SIGNER: Signer = Signer {
    sign: |signing, out| DISCORD.sign(signing, out),
    // An application command (type 2): a PING (type 1) is answered at the edge.
    example: |signing| {
        format!(
            r#"{{"id":"{}","type":2,"application_id":"{}","data":{{"name":"simulated"}}}}"#,
            sign::digits(&signing.random, 19),
            sign::digits(&signing.random, 18)
        )
        .into_bytes()
    },
};

#[cfg(any(test, feature = "sign"))]
pub const SENDGRID_SIGNER: Signer = Signer {
    sign: |signing, out| SENDGRID.sign(signing, out),
    // A batch of events, one line ending in CR LF as SendGrid posts it.
    example: |signing| {
        format!(
            "[{{\"email\":\"example@test.com\",\"event\":\"processed\",\"sg_event_id\":\"{}\",\"timestamp\":{}}}]\r\n",
            sign::base62(&signing.random, 22),
            signing.now
        )
        .into_bytes()
    },
};

#[cfg(any(test, feature = "sign"))]
pub const TELNYX_SIGNER: Signer = Signer {
    sign: |signing, out| TELNYX.sign(signing, out),
    // A call answered, as the Call Control API posts it.
    example: |signing| {
        format!(
            r#"{{"data":{{"event_type":"call.answered","id":"{}","occurred_at":"{}","payload":{{"call_control_id":"v3:{}","from":"+15551230000"}},"record_type":"event"}},"meta":{{"attempt":1,"delivered_to":"https://example.com/telnyx"}}}}"#,
            signing.uuid(),
            sign::rfc3339(signing.now),
            sign::base62(&signing.random, 22)
        )
        .into_bytes()
    },
};

#[cfg(any(test, feature = "sign"))]
impl Flavour {
    /// What the provider sends: its signature of `timestamp ‖ body` under the private key
    /// (Discord: Ed25519, 64 hex digits of the seed; SendGrid: ECDSA P-256, as
    /// [`sign::p256_private`] reads it), and the timestamp.
    pub fn sign(&self, signing: &Signing, out: &mut Outgoing) -> Result<(), String> {
        let private = signing.private(self.scheme)?;
        out.content_type(self.media);
        let timestamp = signing.now.to_string();
        let message = self.parts(timestamp.as_bytes(), &out.body).concat();
        let ed25519 = |message: &[u8]| {
            use ed25519_dalek::Signer as _;
            Ok::<_, String>(sign::ed25519_private(private)?.sign(message).to_bytes())
        };
        let (text, at) = match self.text {
            SignatureText::Hex64 => (crate::providers::hex(&ed25519(&message)?), 0),
            SignatureText::Base64Ed25519 => (sign::base64(&ed25519(&message)?), 0),
            SignatureText::Base64Der => {
                use p256::ecdsa::signature::Signer as _;
                let key = sign::p256_private(private)?;
                let signature: p256::ecdsa::Signature = key.sign(&message);
                // Inside `r`, past the DER header: the copy stays a DER signature.
                (sign::base64(signature.to_der().as_bytes()), 12)
            }
        };
        out.set(self.signature, text, Role::Signature { at });
        out.set(self.timestamp, timestamp, Role::Plain);
        out.signed.push(sign::Covered {
            what: "message",
            parent: false,
            message,
        });
        Ok(())
    }
}

impl Provider for Asymmetric {
    fn time(&self) -> Time {
        Time::Signed(FIVE_MINUTES)
    }

    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        self.read(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn time_before_verifying(&self, head: &RequestHead) -> Option<Stamp> {
        let (_, _, time) = self.read(head).ok()?;
        Some(Stamp::secs(time))
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let body = body.bytes;
        let (signature, timestamp, time) = self.read(head)?;
        let parts = self.flavour.parts(timestamp, body);
        let message = parts.concat();
        let key = self
            .keys
            .iter()
            .find(|key| key.verifies(&message, &signature))
            .ok_or_else(|| {
                self.flavour.bad_signature(Rejection::new(
                    Reason::SignatureMismatch,
                    format!("{} did not verify", self.flavour.signature),
                ))
            })?;
        Ok(Verified {
            scheme: self.flavour.scheme,
            key: &key.name,
            signed: Signed::over(self.flavour.scheme, &parts, body),
            time: Some(Stamp::secs(time)),
        })
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        let names = self.keys.iter().map(|key| key.name.as_str()).collect();
        vec![(self.flavour.scheme, names)]
    }

    fn media(&self) -> Media {
        self.flavour.media
    }

    fn handshake(&self, _: &RequestHead, body: &[u8], _: &str) -> Result<Option<Reply>, Rejection> {
        let ping = self.flavour.ping
            && json_with(body, b"\"type\"")
                .is_some_and(|object| object.get("type") == Some(&serde_json::Value::from(1)));
        Ok(ping.then(|| Reply {
            handshake: "ping",
            content_type: "application/json",
            body: br#"{"type":1}"#.to_vec(),
            confirm: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::headers;

    const DISCORD_KEY: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
    const DISCORD_SIG: &str = "c1098e97d711377f30225d53d94b89d43537f92e5b3afaddc590781b1f9f9d4b2eeab335d370be3b9a090bc61a85b86448bc140dcd195f1569c2bff181257607";

    fn discord() -> Asymmetric {
        Asymmetric {
            flavour: DISCORD,
            keys: vec![PublicKey::parse("app", DISCORD_KEY, Written::Ed25519Hex).unwrap()],
        }
    }

    fn judge(
        scheme: &Asymmetric,
        h: &[(&str, &str)],
        body: &str,
    ) -> Result<(&'static str, i64), (Reason, u16)> {
        let h = headers(h);
        let head = RequestHead::new(&h);
        let refusal = |r: Rejection| (r.reason, r.status());
        scheme
            .at_headers(&head, &Checks::default())
            .map_err(refusal)?;
        scheme
            .at_body(&head, &Body::whole(body.as_bytes()), &Checks::default())
            .map(|v| (v.scheme, v.time.unwrap().unix_secs()))
            .map_err(refusal)
    }

    #[test]
    fn discord_verifies_its_vector_and_answers_401_to_a_bad_signature() {
        // providers.md §4 row 12.
        let d = discord();
        let good = [
            ("x-signature-ed25519", DISCORD_SIG),
            ("x-signature-timestamp", "1700000000"),
        ];
        assert_eq!(
            judge(&d, &good, r#"{"type":1}"#),
            Ok(("discord", 1_700_000_000))
        );
        assert_eq!(
            judge(&d, &good, r#"{"type":2}"#),
            Err((Reason::SignatureMismatch, 401))
        );
        let upper = DISCORD_SIG.to_uppercase();
        let h = [good[0], ("x-signature-timestamp", "1700000001")];
        assert_eq!(
            judge(&d, &h, r#"{"type":1}"#),
            Err((Reason::SignatureMismatch, 401))
        );
        let h = [("x-signature-ed25519", upper.as_str()), good[1]];
        assert!(
            judge(&d, &h, r#"{"type":1}"#).is_ok(),
            "hex is bytes, either case"
        );
        for bad in [&DISCORD_SIG[2..], "zz", ""] {
            let h = [("x-signature-ed25519", bad), good[1]];
            assert_eq!(
                judge(&d, &h, "{}"),
                Err((Reason::MalformedHeader, 401)),
                "{bad}"
            );
        }
        assert_eq!(
            judge(&d, &good[..1], "{}"),
            Err((Reason::MissingSignature, 401))
        );
        let h = [good[0], ("x-signature-timestamp", "17e8")];
        assert_eq!(judge(&d, &h, "{}"), Err((Reason::MalformedHeader, 400)));
    }

    #[test]
    fn the_signers_reproduce_the_vectors_and_their_output_verifies() {
        use crate::providers::sign::testing::{changed_body, judge, signed};
        use crate::providers::sign::KeyMaterial;
        let seed: Vec<u8> = (0..32).collect();
        let seed = crate::providers::hex(&seed);
        let signing = Signing::new(KeyMaterial::Private(&seed), 1_700_000_000);
        let out = signed(
            &DISCORD_SIGNER,
            &signing,
            "https://h/d",
            Some(br#"{"type":1}"#),
        );
        assert_eq!(out.header("x-signature-ed25519"), Some(DISCORD_SIG));
        assert_eq!(out.header("x-signature-timestamp"), Some("1700000000"));
        let example = signed(&DISCORD_SIGNER, &signing, "https://h/d", None);
        assert_eq!(
            judge(&discord(), &example),
            Ok(("discord/app".into(), Some(1_700_000_000)))
        );
        assert_eq!(
            judge(&discord(), &changed_body(&example)),
            Err(Reason::SignatureMismatch)
        );

        let s = Asymmetric {
            flavour: SENDGRID,
            keys: vec![PublicKey::parse("sg", SENDGRID_KEY, Written::P256SpkiBase64).unwrap()],
        };
        let scalar = "1234567890abcdef".repeat(4);
        let signing = Signing::new(KeyMaterial::Private(&scalar), 1_700_000_000);
        let out = signed(
            &SENDGRID_SIGNER,
            &signing,
            "https://h/s",
            Some(SENDGRID_BODY.as_bytes()),
        );
        // RFC 6979: the vector, byte for byte.
        assert_eq!(
            out.header("x-twilio-email-event-webhook-signature"),
            Some(SENDGRID_SIG)
        );
        let example = signed(&SENDGRID_SIGNER, &signing, "https://h/s", None);
        assert_eq!(
            judge(&s, &example),
            Ok(("sendgrid/sg".into(), Some(1_700_000_000)))
        );
        assert_eq!(
            judge(&s, &changed_body(&example)),
            Err(Reason::SignatureMismatch)
        );
        // A shared secret signs neither.
        let secret = Signing::new(KeyMaterial::Secret("s"), 0);
        let mut out = Outgoing::new("POST", "https://h/d", b"{}".to_vec());
        assert!((DISCORD_SIGNER.sign)(&secret, &mut out).is_err());
    }

    #[test]
    fn only_a_type_1_body_is_a_ping() {
        let d = discord();
        let h = headers(&[]);
        let head = RequestHead::new(&h);
        let answer = d
            .handshake(&head, br#"{"type":1}"#, "app")
            .unwrap()
            .unwrap();
        assert_eq!(answer.body, br#"{"type":1}"#);
        for body in [
            &br#"{"type":2,"data":{"type":1}}"#[..],
            br#"{"type":"1"}"#,
            b"[1]",
            b"type",
        ] {
            assert_eq!(d.handshake(&head, body, "app").unwrap(), None);
        }
    }

    const SENDGRID_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAERxw+dYxJBChbun5TEY7Q9SSt6wdX0lvS+Oew1236cUzdUg96yoqLkXrMN/Ud6PDJu+OthYOC5wLcJaEtCfeoWA==";
    const SENDGRID_SIG: &str = "MEYCIQCOGts0zeZ6W48ibA7UQ1I6atj85uVBR4PYCqt04HFvEQIhAO20svjNqMpUQVIgaN2OUi3l1dQJk8o8pahRNht3FpwX";
    const SENDGRID_BODY: &str = "[{\"email\":\"example@test.com\",\"event\":\"processed\",\"sg_event_id\":\"rbtnWrG1DVDGGGFHFyun0A==\",\"timestamp\":1700000000}]\r\n";

    #[test]
    fn sendgrid_verifies_its_vector() {
        // §4 row 13.
        let key = SENDGRID_KEY;
        let s = Asymmetric {
            flavour: SENDGRID,
            keys: vec![PublicKey::parse("sg", key, Written::P256SpkiBase64).unwrap()],
        };
        let body = "[{\"email\":\"example@test.com\",\"event\":\"processed\",\"sg_event_id\":\"rbtnWrG1DVDGGGFHFyun0A==\",\"timestamp\":1700000000}]\r\n";
        let h = [
            ("x-twilio-email-event-webhook-signature", "MEYCIQCOGts0zeZ6W48ibA7UQ1I6atj85uVBR4PYCqt04HFvEQIhAO20svjNqMpUQVIgaN2OUi3l1dQJk8o8pahRNht3FpwX"),
            ("x-twilio-email-event-webhook-timestamp", "1700000000"),
        ];
        assert_eq!(judge(&s, &h, body), Ok(("sendgrid", 1_700_000_000)));
        assert_eq!(
            judge(&s, &h, &format!("{body} ")),
            Err((Reason::SignatureMismatch, 403))
        );
        let h = [(h[0].0, "AAAAAAAAAAAAAAAAAAAAAA=="), h[1]];
        assert_eq!(judge(&s, &h, body), Err((Reason::SignatureMismatch, 403)));
        let h = [(h[0].0, "%%%"), h[1]];
        assert_eq!(judge(&s, &h, body), Err((Reason::MalformedHeader, 400)));
    }

    /// Signed with PyNaCl under the seed 0x00…0x1f and accepted by Telnyx's own
    /// `verify_webhook_signature` (telnyx 4.189.0) at that time.
    #[test]
    fn telnyx_verifies_its_vector_over_timestamp_bar_body() {
        let t = Asymmetric {
            flavour: TELNYX,
            keys: vec![PublicKey::parse(
                "portal",
                "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
                Written::Ed25519Base64,
            )
            .unwrap()],
        };
        let body = r#"{"data":{"event_type":"call.answered","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0"}}"#;
        let h = [
            ("telnyx-signature-ed25519", "uJLxFdxwdoybdsuAjdaRk/Aquvlq7DxaidMi0cvjekSwN4tHnuSLJnbRi88tjW7rTJ4rb625dbogalZ/yenvCA=="),
            ("telnyx-timestamp", "1700000000"),
        ];
        assert_eq!(judge(&t, &h, body), Ok(("telnyx", 1_700_000_000)));
        // The bar is signed: a timestamp that swallows it is another message.
        let moved = [h[0], ("telnyx-timestamp", "1700000000|")];
        assert_eq!(
            judge(&t, &moved, body).unwrap_err().0,
            Reason::MalformedHeader
        );
        assert_eq!(
            judge(&t, &h, &body.replace("answered", "hangup")),
            Err((Reason::SignatureMismatch, 403))
        );
        let short = [("telnyx-signature-ed25519", "AAAA"), h[1]];
        assert_eq!(judge(&t, &short, body), Err((Reason::MalformedHeader, 400)));
    }
}
