//! Public keys for the providers that sign with a private key instead of a shared secret:
//! Ed25519 (Discord interactions, Standard Webhooks `v1a`) and ECDSA P-256 over SHA-256
//! (SendGrid's Event Webhook). Parsed once at configuration time; nothing here is secret.

use p256::ecdsa::signature::Verifier;
use p256::pkcs8::DecodePublicKey;

use crate::form::hex;

/// A named public key, ready to verify.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub name: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// How a configured public key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Ed25519, 64 hex digits (Discord's developer portal).
    Ed25519Hex,
    /// Ed25519, `whpk_` then standard base64 of the 32 bytes (Standard Webhooks).
    Ed25519Whpk,
    /// P-256, standard base64 of the SubjectPublicKeyInfo DER (SendGrid's verification key).
    P256SpkiBase64,
    /// Ed25519, standard base64 of the 32 bytes (Telnyx's Mission Control).
    Ed25519Base64,
}

impl Written {
    /// What the key must look like, for configuration errors.
    pub fn describe(self) -> &'static str {
        match self {
            Written::Ed25519Hex => "64 hex digits of an Ed25519 public key",
            Written::Ed25519Whpk => "whpk_ followed by base64 of an Ed25519 public key",
            Written::P256SpkiBase64 => "base64 of a P-256 public key's SubjectPublicKeyInfo (DER)",
            Written::Ed25519Base64 => "base64 of an Ed25519 public key (32 bytes)",
        }
    }
}

impl PublicKey {
    /// Parses `text` as `written` says; `None` when it is not such a key. Ed25519 keys of
    /// small order are refused: any signature verifies under them.
    pub fn parse(name: impl Into<String>, text: &str, written: Written) -> Option<Self> {
        use base64::Engine;
        let base64 = |text: &str| base64::engine::general_purpose::STANDARD.decode(text).ok();
        let ed25519 = |bytes: Vec<u8>| {
            let bytes: [u8; 32] = bytes.try_into().ok()?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()?;
            (!key.is_weak()).then_some(Kind::Ed25519(key))
        };
        let kind = match written {
            Written::Ed25519Hex => {
                let bytes = hex(text.as_bytes())?;
                ed25519(bytes)?
            }
            Written::Ed25519Whpk => ed25519(base64(text.strip_prefix("whpk_")?)?)?,
            Written::Ed25519Base64 => ed25519(base64(text)?)?,
            Written::P256SpkiBase64 => {
                Kind::P256(p256::ecdsa::VerifyingKey::from_public_key_der(&base64(text)?).ok()?)
            }
        };
        Some(PublicKey {
            name: name.into(),
            kind,
        })
    }

    /// Whether `signature` signs `message` under this key: a 64-byte Ed25519 signature
    /// (verified strictly: no malleable `S`, no small-order `R`), or a DER ECDSA signature
    /// over SHA-256 (either `s`, as OpenSSL accepts). Callers build `message` once for
    /// every key and signature they try.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.kind {
            Kind::Ed25519(key) => {
                let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
                    return false;
                };
                key.verify_strict(message, &signature).is_ok()
            }
            Kind::P256(key) => {
                let Ok(signature) = p256::ecdsa::Signature::from_der(signature) else {
                    return false;
                };
                key.verify(message, &signature).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // providers.md §4 row 12: the public key of the seed 00 01 .. 1f, over ts ‖ `{"type":1}`.
    const DISCORD_KEY: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
    const DISCORD_SIG: &str = "c1098e97d711377f30225d53d94b89d43537f92e5b3afaddc590781b1f9f9d4b2eeab335d370be3b9a090bc61a85b86448bc140dcd195f1569c2bff181257607";

    // §4 row 13: SendGrid, RFC 6979 signature over ts ‖ body ‖ CR LF.
    const SENDGRID_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAERxw+dYxJBChbun5TEY7Q9SSt6wdX0lvS+Oew1236cUzdUg96yoqLkXrMN/Ud6PDJu+OthYOC5wLcJaEtCfeoWA==";
    const SENDGRID_SIG: &str = "MEYCIQCOGts0zeZ6W48ibA7UQ1I6atj85uVBR4PYCqt04HFvEQIhAO20svjNqMpUQVIgaN2OUi3l1dQJk8o8pahRNht3FpwX";
    const SENDGRID_BODY: &str = "[{\"email\":\"example@test.com\",\"event\":\"processed\",\"sg_event_id\":\"rbtnWrG1DVDGGGFHFyun0A==\",\"timestamp\":1700000000}]\r\n";

    fn unhex(text: &str) -> Vec<u8> {
        hex(text.as_bytes()).unwrap()
    }

    fn b64(text: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap()
    }

    #[test]
    fn the_discord_vector_verifies_and_nothing_near_it_does() {
        let key = PublicKey::parse("d", DISCORD_KEY, Written::Ed25519Hex).unwrap();
        let signature = unhex(DISCORD_SIG);
        assert!(key.verifies(b"1700000000{\"type\":1}", &signature));
        assert!(!key.verifies(b"1700000001{\"type\":1}", &signature));
        let mut flipped = signature.clone();
        flipped[10] ^= 1;
        assert!(!key.verifies(b"1700000000{\"type\":1}", &flipped));
        assert!(!key.verifies(b"1700000000{\"type\":1}", &signature[..63]));
    }

    #[test]
    fn a_malleated_ed25519_signature_is_refused() {
        // S + L (L the group order) is the same signature to a verifier that reduces S
        // mod L; libsodium refuses it, and so do we.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let key = PublicKey::parse("d", DISCORD_KEY, Written::Ed25519Hex).unwrap();
        let mut signature = unhex(DISCORD_SIG);
        let mut carry = 0u16;
        for (s, l) in signature[32..].iter_mut().zip(L) {
            let sum = u16::from(*s) + u16::from(l) + carry;
            *s = sum as u8;
            carry = sum >> 8;
        }
        let message = b"1700000000{\"type\":1}";
        assert!(!key.verifies(message, &signature));
    }

    #[test]
    fn small_order_and_malformed_ed25519_keys_are_refused() {
        // The identity point and a point of order 8 verify forged signatures.
        let identity = format!("01{}", "00".repeat(31));
        let order_8 = "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a";
        for text in [identity.as_str(), order_8, "00", "zz", &DISCORD_KEY[..62]] {
            assert!(
                PublicKey::parse("d", text, Written::Ed25519Hex).is_none(),
                "{text}"
            );
        }
        use base64::Engine;
        let whpk = format!(
            "whpk_{}",
            base64::engine::general_purpose::STANDARD.encode(unhex(DISCORD_KEY))
        );
        assert!(PublicKey::parse("d", &whpk, Written::Ed25519Whpk).is_some());
        assert!(PublicKey::parse("d", &whpk[5..], Written::Ed25519Whpk).is_none());
    }

    #[test]
    fn the_sendgrid_vector_verifies_with_either_s_and_not_when_changed() {
        let key = PublicKey::parse("s", SENDGRID_KEY, Written::P256SpkiBase64).unwrap();
        let signature = b64(SENDGRID_SIG);
        let message = [&b"1700000000"[..], SENDGRID_BODY.as_bytes()].concat();
        assert!(key.verifies(&message, &signature));
        let spaced = format!("{SENDGRID_BODY} ");
        assert!(!key.verifies(
            &[&b"1700000000"[..], spaced.as_bytes()].concat(),
            &signature
        ));
        // (r, n - s): OpenSSL, and so the SDK, accept the high-S twin; so do we.
        let parsed = p256::ecdsa::Signature::from_der(&signature).unwrap();
        let (r, s) = parsed.split_scalars();
        let twin = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
        assert_ne!(twin.to_der().as_bytes(), signature.as_slice());
        assert!(key.verifies(&message, twin.to_der().as_bytes()));
        // Raw r ‖ s is not DER: refused.
        assert!(!key.verifies(&message, &parsed.to_bytes()));
    }

    #[test]
    fn p256_keys_must_be_spki_der_in_base64() {
        assert!(PublicKey::parse("s", &SENDGRID_KEY[..40], Written::P256SpkiBase64).is_none());
        assert!(PublicKey::parse("s", "not base64!", Written::P256SpkiBase64).is_none());
        // An Ed25519 key is no P-256 key.
        assert!(PublicKey::parse("s", DISCORD_KEY, Written::P256SpkiBase64).is_none());
    }
}
