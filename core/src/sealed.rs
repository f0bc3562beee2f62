//! Sealed keys: a route's secret written in the configuration as ciphertext, opened with
//! the sealing key from the VM's environment. The configuration can then be changed while
//! Envoy runs (ECDS from a watched file, an Istio `WasmPlugin`) and be shown by
//! `/config_dump` without showing a secret; the sealing key itself stays in the
//! environment, read once when the VM starts.
//!
//! A sealed value is `cgs1.` and base64url (no padding) of a 24-byte nonce followed by the
//! XChaCha20-Poly1305 ciphertext of the secret and its tag, under a fixed associated text:
//! a random nonce per sealing, so sealing one secret twice gives two unrelated values.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

pub const PREFIX: &str = "cgs1.";
/// Binds a sealed value to this use: ciphertext sealed for anything else does not open.
const PURPOSE: &[u8] = b"callback-guard sealed key v1";
pub const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;

/// The key that opens sealed values: 32 random bytes (`openssl rand -base64 32`).
pub struct SealingKey(XChaCha20Poly1305);

impl SealingKey {
    /// From its text in the environment: standard base64 of exactly 32 bytes.
    pub fn from_text(text: &str) -> Result<Self, &'static str> {
        let bytes = STANDARD
            .decode(text)
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .ok_or("is not base64 of 32 bytes (make one with `openssl rand -base64 32`)")?;
        Ok(Self(XChaCha20Poly1305::new(bytes.as_slice().into())))
    }

    /// The secret a sealed value holds, or why it cannot be had.
    pub fn open(&self, sealed: &str) -> Result<String, &'static str> {
        let bytes = unpack(sealed)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: ciphertext,
            aad: PURPOSE,
        };
        let secret = self
            .0
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| {
                "does not open with the sealing key (sealed under another key, or altered)"
            })?;
        String::from_utf8(secret).map_err(|_| "opens to bytes that are not UTF-8")
    }

    /// `secret` sealed under this key with `nonce`, which must be random and never reused
    /// (the command line draws it from the operating system).
    #[cfg(any(test, feature = "sign"))]
    pub fn seal(&self, secret: &str, nonce: [u8; NONCE_BYTES]) -> Result<String, &'static str> {
        let payload = Payload {
            msg: secret.as_bytes(),
            aad: PURPOSE,
        };
        let ciphertext = self
            .0
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| "is too long to seal")?;
        let bytes = [&nonce[..], &ciphertext].concat();
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }
}

/// A sealed value's nonce, ciphertext and tag, if it is written as one.
fn unpack(sealed: &str) -> Result<Vec<u8>, &'static str> {
    sealed
        .strip_prefix(PREFIX)
        .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
        .filter(|bytes| bytes.len() > NONCE_BYTES + TAG_BYTES)
        .ok_or("is not cgs1. followed by base64url of a sealed key (`callback-guard seal` writes them)")
}

/// Whether `sealed` is written as a sealed value (whatever key it opens with): what an
/// offline check without the sealing key can still say.
pub fn is_written_as_sealed(sealed: &str) -> bool {
    unpack(sealed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "q0Zvj1w0s9VbXr8dJm7f3GgYtH2uKc5LxN4pWzAaBeE=";

    fn key() -> SealingKey {
        SealingKey::from_text(KEY).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_to_itself_and_each_sealing_differs() {
        let one = key().seal("the token", [1; NONCE_BYTES]).unwrap();
        let two = key().seal("the token", [2; NONCE_BYTES]).unwrap();
        assert!(one.starts_with(PREFIX) && one != two && is_written_as_sealed(&one));
        assert_eq!(key().open(&one).unwrap(), "the token");
        assert_eq!(key().open(&two).unwrap(), "the token");
        assert!(!one.contains("the token"));
    }

    #[test]
    fn another_key_or_any_changed_byte_does_not_open() {
        let sealed = key().seal("the token", [7; NONCE_BYTES]).unwrap();
        let other = SealingKey::from_text(&STANDARD.encode([9u8; 32])).unwrap();
        assert!(other
            .open(&sealed)
            .unwrap_err()
            .starts_with("does not open"));
        let bytes = URL_SAFE_NO_PAD.decode(&sealed[PREFIX.len()..]).unwrap();
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 1;
            let text = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&changed));
            assert!(key().open(&text).is_err(), "byte {i}");
        }
        // Sealed for another purpose: the same key and nonce, another associated text.
        let cipher = XChaCha20Poly1305::new(STANDARD.decode(KEY).unwrap().as_slice().into());
        let payload = Payload {
            msg: b"the token".as_slice(),
            aad: b"something else",
        };
        let foreign = cipher
            .encrypt(XNonce::from_slice(&[7; NONCE_BYTES]), payload)
            .unwrap();
        let text = format!(
            "{PREFIX}{}",
            URL_SAFE_NO_PAD.encode([&[7; NONCE_BYTES][..], &foreign].concat())
        );
        assert!(key().open(&text).unwrap_err().starts_with("does not open"));
    }

    #[test]
    fn malformed_values_and_keys_are_named() {
        for text in [
            "",
            "cgs1.",
            "cgs2.AAAA",
            "cgs1.!!!!",
            &format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode([0u8; 40])),
        ] {
            assert!(
                key().open(text).unwrap_err().starts_with("is not cgs1."),
                "{text:?}"
            );
            assert!(!is_written_as_sealed(text));
        }
        for text in [
            "",
            "short",
            &STANDARD.encode([0u8; 31]),
            &STANDARD.encode([0u8; 33]),
            &URL_SAFE_NO_PAD.encode([0u8; 32]),
        ] {
            assert!(SealingKey::from_text(text).is_err(), "{text:?}");
        }
    }
}
