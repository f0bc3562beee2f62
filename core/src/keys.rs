//! Signing keys: resolved once at configuration time into ready HMAC state, so a request
//! never re-derives the inner and outer pads.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

pub type HmacSha256 = Hmac<Sha256>;

/// What a key's MAC of its own secret is tagged with (see [`Key::is_secret`]).
const OWN: &[u8] = b"callback-guard/secret:";
/// The message two keys are compared by (see [`Key::same_secret`]).
const PROBE: &[u8] = b"callback-guard/same-secret";

/// A named key with its precomputed HMAC state (SHA-256, and SHA-1 for the providers that
/// still sign with it). The secret itself is not kept.
#[derive(Clone)]
pub struct Key {
    pub name: String,
    /// The key's MAC of its own secret, tagged: what a presented secret is compared by.
    own: [u8; 32],
    mac: HmacSha256,
    sha1: Hmac<Sha1>,
    sha512: Hmac<Sha512>,
    /// For a key that is a name the provider signs rather than a secret (PayPal's webhook
    /// id): its text. `None` for every secret, which is never kept.
    identifier: Option<String>,
}

/// The hash an HMAC is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// Bytes of one MAC.
    pub fn mac_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

impl Key {
    /// HMAC takes keys of any length; the error exists only in the trait's signature.
    pub fn new(
        name: impl Into<String>,
        secret: &[u8],
    ) -> Result<Self, hmac::digest::InvalidLength> {
        let mac = HmacSha256::new_from_slice(secret)?;
        let mut own = mac.clone();
        own.update(OWN);
        own.update(secret);
        Ok(Key {
            name: name.into(),
            own: own.finalize().into_bytes().into(),
            mac,
            sha1: Hmac::<Sha1>::new_from_slice(secret)?,
            sha512: Hmac::<Sha512>::new_from_slice(secret)?,
            identifier: None,
        })
    }

    /// The key kept with its text, which is not a secret ([`Self::identifier`]).
    pub fn identifying(self, text: &str) -> Key {
        Key {
            identifier: Some(text.to_string()),
            ..self
        }
    }

    /// The text of a key that is a name rather than a secret (PayPal's webhook id).
    pub fn identifier(&self) -> Option<&str> {
        self.identifier.as_deref()
    }

    /// A fresh HMAC over the concatenation of `parts` with `algorithm`.
    pub fn mac_with(&self, algorithm: Algorithm, parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + Clone>(state: &M, parts: &[&[u8]]) -> Vec<u8> {
            let mut mac = state.clone();
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match algorithm {
            Algorithm::Sha1 => run(&self.sha1, parts),
            Algorithm::Sha256 => run(&self.mac, parts),
            Algorithm::Sha512 => run(&self.sha512, parts),
        }
    }

    /// A fresh HMAC-SHA1 over the concatenation of `parts`.
    pub fn mac_sha1(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = self.sha1.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// A fresh HMAC-SHA256 state under this key, to be fed as bytes arrive.
    pub fn sha256(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// Whether the two sign alike (their MACs of one fixed message agree), for a
    /// configuration check: the same secret, or secrets HMAC takes as one key (`t` and
    /// `t\0`, a long secret and its SHA-256). The secret itself is not kept.
    pub fn same_secret(&self, other: &Key) -> bool {
        macs_equal(&self.mac(&[PROBE]), &other.mac(&[PROBE]))
    }

    /// Whether `presented` is this key's secret, as a static token or password is checked:
    /// this key's MAC of it against its MAC of its own secret, compared in constant time.
    /// The presented bytes are the message, never a key: HMAC pads a short key with zeros
    /// and hashes a long one, so `t` and `t\0`, or a long secret and its SHA-256, would be
    /// one key.
    pub fn is_secret(&self, presented: &[u8]) -> bool {
        macs_equal(&self.mac(&[OWN, presented]), &self.own)
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

/// Constant-time equality of two MACs of any length (different lengths are unequal).
pub fn slices_equal(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
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
    fn a_presented_secret_is_the_key_exactly() {
        let key = test_key("k", "glpat-token");
        assert!(key.is_secret(b"glpat-token"));
        for other in [
            &b"glpat-toke"[..],
            b"glpat-tokenx",
            b"Glpat-token",
            b"",
            b"glpat-token\0",
        ] {
            assert!(!key.is_secret(other), "{other:?}");
        }
        // HMAC would take a long key's SHA-256 for it: a presented digest is not the secret.
        let long = "k".repeat(100);
        let digest: [u8; 32] = <Sha256 as sha2::Digest>::digest(long.as_bytes()).into();
        assert!(test_key("k", &long).is_secret(long.as_bytes()));
        assert!(!test_key("k", &long).is_secret(&digest));
        // Keys that sign alike are one secret to the configuration check.
        assert!(test_key("a", "t").same_secret(&test_key("b", "t\0")));
        assert!(test_key("a", "t").same_secret(&test_key("b", "t")));
        assert!(!test_key("a", "t").same_secret(&test_key("b", "u")));
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
