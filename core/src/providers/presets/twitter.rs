//! Twitter / X (Account Activity API): `x-twitter-webhooks-signature: sha256=<base64>` is
//! the HMAC-SHA256 of the body under the app's consumer secret. Its challenge-response
//! check (CRC), `GET ?crc_token=<token>` when the webhook is registered and about hourly
//! after, is answered at the edge with `{"response_token": "sha256=<base64 HMAC-SHA256
//! of the token>"}` under the route's first key. Because that answer is a MAC over bytes
//! the caller chose, only a token (letters, digits, `-_=+/.`) is answered, never anything
//! a JSON body could be ([`endpoint_check`](crate::providers::endpoint_check)). X's SDKs
//! ship no verifier: the vectors are its documented construction, computed with Python's
//! standard library.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Signing};

pub const PRESET: Preset = Preset::new("twitter", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, example);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "x-twitter-webhooks-signature", "prefix": "sha256="},
    "encoding": "base64",
    "message": ["body"],
    "body": "json_object",
    "endpoint_check": {"kind": "crc", "param": "crc_token", "field": "response_token",
                       "prefix": "sha256="}
}"#;

#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "twitter-consumer-secret",
    &[(
        "x-twitter-webhooks-signature",
        "sha256=3LvHpunn+zck39S0I/JrfWxHl2aqS87wg7h0IuNT/jI=",
    )],
    r#"{"for_user_id":"2244994945","tweet_create_events":[{"id_str":"1"}]}"#,
);

/// A post created.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let id = sign::digits(&signing.random, 19);
    format!(r#"{{"for_user_id":"2244994945","tweet_create_events":[{{"id_str":"{id}","text":"héllo"}}]}}"#)
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::test_key;
    use crate::request::RequestHead;

    /// The CRC answer for the token `Y3JjLXRva2Vu`, computed with Python's standard
    /// library as X's documentation describes.
    #[test]
    fn the_crc_is_answered_with_the_documented_response_token() {
        let scheme = PRESET
            .compile(None, vec![test_key("k", "twitter-consumer-secret")])
            .unwrap();
        let head: Vec<crate::request::Header> = vec![
            (":method".into(), b"GET".to_vec()),
            (
                ":path".into(),
                b"/x?crc_token=Y3JjLXRva2Vu&nonce=1".to_vec(),
            ),
        ];
        let check = scheme.endpoint_check.as_ref().unwrap();
        let reply = check
            .answer(
                &RequestHead::new(&head),
                scheme.keys.first(),
                scheme.algorithm,
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            reply.body,
            br#"{"response_token":"sha256=SkS/Z3H6PzJuduiCinRm6DfLPHP1LYocqklIVl6u97Y="}"#.to_vec()
        );
    }
}
