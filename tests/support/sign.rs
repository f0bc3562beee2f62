//! Signing as the providers sign, with the `hmac`, `ed25519-dalek` and `p256` crates
//! directly: never through the crate under test.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub fn mac(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        unreachable!("HMAC takes keys of any length")
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub fn mac_sha1(secret: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        unreachable!("HMAC takes keys of any length")
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Ed25519 key whose seed is the SHA-256 of `key`.
pub fn ed25519(key: &[u8]) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&Sha256::digest(key).into())
}

/// The P-256 key whose scalar is the SHA-256 of `key`.
pub fn p256_key(key: &[u8]) -> p256::ecdsa::SigningKey {
    // A SHA-256 digest is a valid scalar but for a 2^-128 chance.
    let Ok(signing) = p256::ecdsa::SigningKey::from_slice(&Sha256::digest(key)) else {
        unreachable!("a digest below the group order: all but a 2^-128 chance")
    };
    signing
}

/// The SubjectPublicKeyInfo of `key`'s P-256 public key, in base64, as SendGrid shows it.
pub fn p256_spki(key: &[u8]) -> String {
    // The fixed algorithm header, then the uncompressed point.
    let point = p256_key(key).verifying_key().to_encoded_point(false);
    let prefix = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    base64(&[&prefix[..], point.as_bytes()].concat())
}
