//! Public keys for the providers that sign with a private key instead of a shared secret:
//! Ed25519 (Discord interactions, Standard Webhooks `v1a`, Telnyx) and ECDSA P-256 over
//! SHA-256 (SendGrid's Event Webhook). Parsed once at configuration time; nothing here is
//! secret.
//!
//! A key is parsed by its crate (`ed25519-dalek`, `p256`), which decides what a valid key
//! is; verification then uses tables precomputed for that key, since a forgery costs its
//! sender nothing and the filter a verification. Ed25519: `[s]B - [k]A` as two fixed-base
//! multiplications (curve25519-dalek's radix-16 tables, one for `B` and one made for `-A`)
//! instead of one double-base one, and `R`'s small order checked on its encoding. P-256:
//! `u1·G + u2·Q` as a 4-bit comb over precomputed multiples of `G` and of `Q`, variable-time
//! (everything in it is public), instead of two constant-time multiplications. Both accept
//! exactly what `verify_strict` and `p256::ecdsa::VerifyingKey::verify` accept (tested
//! against them), at about 0.66 and 0.28 of their time in V8 (docs/performance.md). The
//! tables take 30 KiB per Ed25519 key and 90 KiB per P-256 key, and once 90 KiB for `G`.

use std::sync::{Arc, OnceLock};

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsBasepointTable};
use curve25519_dalek::traits::BasepointTable;
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::{Group, PrimeField};
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256, Sha512};

use crate::form::hex;

/// A named public key, ready to verify.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub name: String,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Ed25519(Arc<Ed25519>),
    P256(Arc<Comb>),
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Ed25519(_) => "Ed25519",
            Kind::P256(_) => "P256",
        })
    }
}

/// An Ed25519 key `A`: its encoding, which the challenge hashes, and `-A`'s table.
struct Ed25519 {
    encoding: [u8; 32],
    minus_a: EdwardsBasepointTable,
}

impl Ed25519 {
    fn new(key: &ed25519_dalek::VerifyingKey) -> Self {
        Ed25519 {
            encoding: key.to_bytes(),
            minus_a: EdwardsBasepointTable::create(&-key.to_edwards()),
        }
    }

    /// `verify_strict`: `S` canonical, `R` not of small order, and `R` the encoding of
    /// `[S]B - [k]A`, `k` = SHA-512(`R` ‖ `A` ‖ message). An `R` that is no point, or not
    /// in canonical form, never equals an encoding made by `compress`, so only the eight
    /// small-order encodings need naming.
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        let (r, s) = (*signature.r_bytes(), *signature.s_bytes());
        let Some(s) = Option::from(curve25519_dalek::Scalar::from_canonical_bytes(s)) else {
            return false;
        };
        if small_order_encodings().contains(&r) {
            return false;
        }
        let challenge = Sha512::new()
            .chain_update(r)
            .chain_update(self.encoding)
            .chain_update(message);
        let k = curve25519_dalek::Scalar::from_hash(challenge);
        let expected = curve25519_dalek::constants::ED25519_BASEPOINT_TABLE.mul_base(&s)
            + self.minus_a.mul_base(&k);
        expected.compress() == CompressedEdwardsY(r)
    }
}

/// The canonical encodings of the eight points of small order.
fn small_order_encodings() -> &'static [[u8; 32]; 8] {
    static ENCODINGS: OnceLock<[[u8; 32]; 8]> = OnceLock::new();
    ENCODINGS.get_or_init(|| {
        curve25519_dalek::constants::EIGHT_TORSION.map(|point| point.compress().to_bytes())
    })
}

/// `j·16^i·P` for every nibble position `i` (64) and nibble `j` (1 to 15): `[u]P` is then
/// one addition per non-zero nibble of `u`, and no doubling.
struct Comb(Vec<p256::ProjectivePoint>);

impl Comb {
    fn new(point: p256::ProjectivePoint) -> Self {
        let mut multiples = Vec::with_capacity(64 * 15);
        let mut base = point;
        for _ in 0..64 {
            let mut multiple = base;
            for _ in 1..16 {
                multiples.push(multiple);
                multiple += base;
            }
            base = multiple;
        }
        Comb(multiples)
    }

    /// `[u]P`, in time that depends on `u` (which is public).
    fn times(&self, u: &p256::Scalar) -> p256::ProjectivePoint {
        let bytes = u.to_repr();
        let mut sum = p256::ProjectivePoint::IDENTITY;
        for (position, byte) in bytes.iter().rev().enumerate() {
            for (half, nibble) in [(0, byte & 15), (1, byte >> 4)] {
                if nibble != 0 {
                    let row = (2 * position + half) * 15;
                    sum += self.0[row + usize::from(nibble) - 1];
                }
            }
        }
        sum
    }

    fn generator() -> &'static Comb {
        static GENERATOR: OnceLock<Comb> = OnceLock::new();
        GENERATOR.get_or_init(|| Comb::new(p256::ProjectivePoint::GENERATOR))
    }

    /// ECDSA verification as `ecdsa`'s `verify_prehashed` does it: `r` = x(`u1·G` +
    /// `u2·Q`) mod n, `u1` = z/s, `u2` = r/s, z the SHA-256 of the message; either `s`.
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = p256::ecdsa::Signature::from_der(signature) else {
            return false;
        };
        let z = <p256::Scalar as Reduce<p256::U256>>::reduce_bytes(&Sha256::digest(message));
        let (r, s) = signature.split_scalars();
        let s_inverse = *s.invert_vartime();
        let point = Comb::generator().times(&(z * s_inverse)) + self.times(&(*r * s_inverse));
        if bool::from(point.is_identity()) {
            return false;
        }
        *r == <p256::Scalar as Reduce<p256::U256>>::reduce_bytes(&point.to_affine().x())
    }
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
            (!key.is_weak()).then(|| Kind::Ed25519(Arc::new(Ed25519::new(&key))))
        };
        let kind = match written {
            Written::Ed25519Hex => {
                let bytes = hex(text.as_bytes())?;
                ed25519(bytes)?
            }
            Written::Ed25519Whpk => ed25519(base64(text.strip_prefix("whpk_")?)?)?,
            Written::Ed25519Base64 => ed25519(base64(text)?)?,
            Written::P256SpkiBase64 => {
                let key = p256::ecdsa::VerifyingKey::from_public_key_der(&base64(text)?).ok()?;
                Kind::P256(Arc::new(Comb::new(key.as_affine().into())))
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
            Kind::Ed25519(key) => key.verifies(message, signature),
            Kind::P256(key) => key.verifies(message, signature),
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

    /// The order of Ed25519's group.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[test]
    fn a_malleated_ed25519_signature_is_refused() {
        // S + L (L the group order) is the same signature to a verifier that reduces S
        // mod L; libsodium refuses it, and so do we.
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

    /// Deterministic bytes for the differential tests: SHA-256 of a label and a counter.
    fn bytes(label: &str, n: usize) -> [u8; 32] {
        Sha256::new()
            .chain_update(label)
            .chain_update(n.to_le_bytes())
            .finalize()
            .into()
    }

    /// What the crate's own verifier says: the reference the tables must agree with.
    fn dalek_accepts(key: &ed25519_dalek::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
        ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|signature| key.verify_strict(message, &signature).is_ok())
    }

    #[test]
    fn ed25519_tables_agree_with_verify_strict_on_genuine_altered_and_crafted_signatures() {
        use ed25519_dalek::Signer;
        let mut accepted = 0;
        for n in 0..48 {
            let signing = ed25519_dalek::SigningKey::from_bytes(&bytes("ed25519 key", n));
            let reference = signing.verifying_key();
            let key = PublicKey::parse(
                "k",
                &crate::providers::hex(reference.as_bytes()),
                Written::Ed25519Hex,
            )
            .unwrap();
            let message = bytes("message", n);
            let genuine = signing.sign(&message).to_bytes();
            let mut candidates = vec![genuine.to_vec(), genuine[..63].to_vec()];
            for flip in [0, 17, 31, 32, 50, 63] {
                let mut changed = genuine;
                changed[flip] ^= 1 << (n % 8);
                candidates.push(changed.to_vec());
            }
            // Each small-order R, with the genuine S and with S of a signature over R.
            for torsion in small_order_encodings() {
                let mut crafted = genuine;
                crafted[..32].copy_from_slice(torsion);
                candidates.push(crafted.to_vec());
            }
            // R not in canonical form (y + p), and S not reduced (S + L).
            let mut high_s = genuine;
            let mut carry = 0u16;
            for (s, l) in high_s[32..].iter_mut().zip(L) {
                let sum = u16::from(*s) + u16::from(l) + carry;
                *s = sum as u8;
                carry = sum >> 8;
            }
            candidates.push(high_s.to_vec());
            let mut noncanonical = genuine;
            noncanonical[..32].copy_from_slice(&[0xff; 32]);
            noncanonical[31] = 0x7f;
            candidates.push(noncanonical.to_vec());
            for candidate in candidates {
                let ours = key.verifies(&message, &candidate);
                assert_eq!(
                    ours,
                    dalek_accepts(&reference, &message, &candidate),
                    "key {n}"
                );
                accepted += usize::from(ours);
                let other = bytes("other", n);
                assert_eq!(
                    key.verifies(&other, &candidate),
                    dalek_accepts(&reference, &other, &candidate)
                );
            }
        }
        assert_eq!(accepted, 48, "each genuine signature, and nothing else");
    }

    #[test]
    fn p256_comb_agrees_with_the_crate_on_genuine_altered_and_twin_signatures() {
        use p256::ecdsa::signature::{Signer, Verifier};
        let mut accepted = 0;
        for n in 0..24 {
            let signing =
                p256::ecdsa::SigningKey::from_bytes(&bytes("p256 key", n).into()).unwrap();
            let reference = signing.verifying_key();
            // (SubjectPublicKeyInfo parsing is the SendGrid vector's test.)
            let key = PublicKey {
                name: "k".into(),
                kind: Kind::P256(Arc::new(Comb::new(reference.as_affine().into()))),
            };
            let message = bytes("message", n);
            let genuine: p256::ecdsa::Signature = signing.sign(&message);
            let (r, s) = genuine.split_scalars();
            let twin = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
            let swapped = p256::ecdsa::Signature::from_scalars(s, r).unwrap();
            let mut candidates = vec![
                genuine.to_der().as_bytes().to_vec(),
                twin.to_der().as_bytes().to_vec(),
                swapped.to_der().as_bytes().to_vec(),
            ];
            for flip in [4, 10, 30, 40, 60] {
                let mut changed = genuine.to_der().as_bytes().to_vec();
                if let Some(byte) = changed.get_mut(flip) {
                    *byte ^= 1 << (n % 8);
                }
                candidates.push(changed);
            }
            for candidate in candidates {
                let ours = key.verifies(&message, &candidate);
                let theirs = p256::ecdsa::Signature::from_der(&candidate)
                    .is_ok_and(|signature| reference.verify(&message, &signature).is_ok());
                assert_eq!(ours, theirs, "key {n}");
                accepted += usize::from(ours);
                assert!(!key.verifies(&bytes("other", n), &candidate));
            }
        }
        assert_eq!(
            accepted, 48,
            "each genuine signature and its high-S twin, and nothing else"
        );
    }
}
