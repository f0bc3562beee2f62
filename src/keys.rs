//! Signing keys: resolved once at configuration time into ready HMAC state, so a request
//! never re-derives the inner and outer pads.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

pub type HmacSha256 = Hmac<Sha256>;

/// A named key with its precomputed HMAC state (SHA-256, and SHA-1 for the providers that
/// still sign with it). The secret itself is not kept.
#[derive(Clone)]
pub struct Key {
    pub name: String,
    mac: HmacSha256,
    sha1: Hmac<Sha1>,
}

impl Key {
    /// HMAC takes keys of any length; the error exists only in the trait's signature.
    pub fn new(
        name: impl Into<String>,
        secret: &[u8],
    ) -> Result<Self, hmac::digest::InvalidLength> {
        Ok(Key {
            name: name.into(),
            mac: HmacSha256::new_from_slice(secret)?,
            sha1: Hmac::<Sha1>::new_from_slice(secret)?,
        })
    }

    /// A fresh HMAC-SHA1 over the concatenation of `parts`.
    pub fn mac_sha1(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = self.sha1.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// A fresh MAC over the concatenation of `parts`.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material, even in debug output.
        f.debug_struct("Key")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Constant-time equality of two MACs.
pub fn macs_equal<const N: usize>(a: &[u8; N], b: &[u8; N]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
pub(crate) fn test_key(name: &str, secret: &str) -> Key {
    match Key::new(name, secret.as_bytes()) {
        Ok(key) => key,
        Err(_) => unreachable!("HMAC accepts any key length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn hmac_sanity_vector_from_spec() {
        let key = test_key("k", "key");
        let mac = key.mac(&[b"The quick brown fox ", b"jumps over the lazy dog"]);
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(mac),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
        );
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let key = test_key("primary", "super-secret-token");
        let shown = format!("{key:?}");
        assert!(shown.contains("primary"));
        assert!(!shown.contains("super-secret"));
    }

    #[test]
    fn equality_is_exact() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(macs_equal(&a, &b));
        b[31] ^= 1;
        assert!(!macs_equal(&a, &b));
    }
}
