//! The raw-body schemes (Vobiz WhatsApp and KYC, GitHub, Meta, Slack's signature): one
//! header carrying hex HMAC-SHA256 behind a fixed prefix. They differ only in header,
//! prefix and key, so all use this one check; [`BodySigned`] is the whole scheme of those
//! that sign the body alone.

use crate::form::hex_digit;
use crate::keys::{macs_equal, Key};
#[cfg(any(test, feature = "sign"))]
use crate::providers::hex;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::Outgoing;
use crate::providers::{
    key_names, AtHeaders, Body, Checks, Hashed, Media, Provider, StreamedMac, Verified,
};
use crate::request::{Lookup, RequestHead};
use crate::verdict::{Reason, Rejection};

/// Where a body MAC travels and how it is spelled.
#[derive(Debug, Clone, Copy)]
pub struct BodyMac {
    /// Lowercase, as Envoy hands header names over.
    pub header: &'static str,
    /// Exact bytes before the hex digits (`sha256=` for KYC, nothing for WhatsApp).
    pub prefix: &'static [u8],
}

impl BodyMac {
    /// The decoded MAC from this scheme's header, checkable before the body arrives.
    /// Missing header: 401; duplicated or malformed: 400.
    pub fn signature(&self, head: &RequestHead) -> Result<[u8; 32], Rejection> {
        let name = self.header;
        let value = match head.lookup(name) {
            Lookup::One(value) => value,
            Lookup::Missing => {
                return Err(Rejection::new(
                    Reason::MissingSignature,
                    format!("{name} is missing"),
                ))
            }
            Lookup::Duplicate => {
                return Err(Rejection::new(
                    Reason::DuplicateHeader,
                    format!("{name} appears more than once"),
                ))
            }
        };
        value
            .strip_prefix(self.prefix)
            .and_then(parse_hex)
            .ok_or_else(|| {
                let prefix = String::from_utf8_lossy(self.prefix);
                let sep = if prefix.is_empty() { "" } else { " then " };
                Rejection::new(
                    Reason::MalformedHeader,
                    format!("{name}: not {prefix}{sep}64 hex digits"),
                )
            })
    }

    /// The key under which `body` carries a valid MAC in this scheme's header: the
    /// [`signature`](Self::signature) errors, or 403 when no key verifies.
    pub fn verify<'k>(
        &self,
        keys: &'k [Key],
        head: &RequestHead,
        body: &[u8],
    ) -> Result<&'k Key, Rejection> {
        self.verify_macs(keys, head, keys.iter().map(|key| key.mac(&[body])))
    }

    /// [`verify`](Self::verify) with each key's MAC of the body computed already, in the
    /// order of `keys` (the filter hashes a body as it arrives).
    pub fn verify_macs<'k>(
        &self,
        keys: &'k [Key],
        head: &RequestHead,
        macs: impl IntoIterator<Item = [u8; 32]>,
    ) -> Result<&'k Key, Rejection> {
        let signature = self.signature(head)?;
        keys.iter()
            .zip(macs)
            .find(|(_, mac)| macs_equal(mac, &signature))
            .map(|(key, _)| key)
            .ok_or_else(|| {
                Rejection::new(
                    Reason::SignatureMismatch,
                    format!("{} did not verify", self.header),
                )
            })
    }
}

#[cfg(any(test, feature = "sign"))]
impl BodyMac {
    /// Signs the body as the provider does: `prefix` then the hex MAC of the body under
    /// `key`, in this scheme's header.
    pub fn sign(&self, key: &Key, out: &mut Outgoing) {
        let mac = key.mac(&[&out.body]);
        let prefix = String::from_utf8_lossy(self.prefix);
        out.signature(self.header, &prefix, &hex(&mac));
        let body = out.body.clone();
        out.covers("body", &[&body]);
    }
}

/// A scheme that signs the body alone with one hex MAC header (Vobiz KYC, GitHub, Meta): the
/// body is the signed message (a redelivery or retry is byte-identical), nothing is timed,
/// and method, path, query and the headers in `dispatch` are bound by the fingerprint.
#[derive(Debug)]
pub struct BodySigned {
    pub scheme: &'static str,
    pub mac: BodyMac,
    pub keys: Vec<Key>,
    pub media: Media,
    pub dispatch: &'static [&'static str],
}

impl Provider for BodySigned {
    fn at_headers(&self, head: &RequestHead, _: &Checks) -> Result<AtHeaders<'_>, Rejection> {
        self.mac.signature(head)?;
        Ok(AtHeaders::NeedBody)
    }

    fn streamed_mac(&self, _: &RequestHead) -> Option<StreamedMac<'_>> {
        Some(StreamedMac::body(&self.keys))
    }

    fn check_hashed(&self, head: &RequestHead, hashed: &Hashed) -> Result<(), Rejection> {
        self.mac
            .verify_macs(&self.keys, head, hashed.macs.iter().copied())
            .map(|_| ())
    }

    fn at_body<'p>(
        &'p self,
        head: &RequestHead,
        body: &Body,
        _: &Checks,
    ) -> Result<Verified<'p>, Rejection> {
        let hashed = &*body.hashed(self.streamed_mac(head));
        let key = self
            .mac
            .verify_macs(&self.keys, head, hashed.macs.iter().copied())?;
        Ok(Verified::streamed(self.scheme, &key.name, hashed, None))
    }

    fn schemes(&self) -> Vec<(&'static str, Vec<&str>)> {
        vec![(self.scheme, key_names(&self.keys))]
    }

    fn dispatch_headers(&self) -> Vec<&str> {
        self.dispatch.to_vec()
    }

    fn media(&self) -> Media {
        self.media
    }
}

/// Exactly 64 hex digits, either case, as the 32 bytes they spell. Case is accepted
/// because bytes, not text, are compared: it admits no other MAC.
pub fn parse_hex(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *byte = hex_digit(*high)? << 4 | hex_digit(*low)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_readable_before_the_body() {
        use crate::request::headers;
        let scheme = BodyMac {
            header: "x-sig",
            prefix: b"sha256=",
        };
        let hex = "ab".repeat(32);
        let h = headers(&[("x-sig", &format!("sha256={hex}"))]);
        assert_eq!(scheme.signature(&RequestHead::new(&h)), Ok([0xab; 32]));
        for (pairs, reason) in [
            (vec![], Reason::MissingSignature),
            (vec![("x-sig", hex.as_str())], Reason::MalformedHeader),
            (
                vec![("x-sig", "sha256=00"), ("X-Sig", "sha256=00")],
                Reason::DuplicateHeader,
            ),
        ] {
            let h = headers(&pairs);
            let err = scheme.signature(&RequestHead::new(&h)).unwrap_err();
            assert_eq!(err.reason, reason);
        }
    }

    #[test]
    fn hex_round_trips_in_either_case() {
        let hex = "00ff10aB".repeat(8);
        let bytes = parse_hex(hex.as_bytes()).unwrap();
        assert_eq!(&bytes[..4], &[0x00, 0xff, 0x10, 0xab]);
        assert_eq!(parse_hex(hex.to_uppercase().as_bytes()), Some(bytes));
    }

    #[test]
    fn hex_rejects_wrong_length_and_non_hex() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_hex(&hex.as_bytes()[..63]), None);
        assert_eq!(parse_hex(format!("{hex}0").as_bytes()), None);
        assert_eq!(parse_hex(b""), None);
        for bad in ["g", " ", "+", "\u{e9}"] {
            let text = format!("{}{bad}", &hex[..64 - bad.len()]);
            assert_eq!(parse_hex(text.as_bytes()), None, "{bad:?}");
        }
        let mut raw = hex.into_bytes();
        raw[10] = 0xff;
        assert_eq!(parse_hex(&raw), None);
    }
}
