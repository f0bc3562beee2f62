//! HubSpot (signature v3): `X-HubSpot-Signature-v3` is the base64 HMAC-SHA256 of the
//! method, the URL as HubSpot signs it (the route's `public_origin`, the path and query with
//! the escapes its docs list decoded), the body and `X-HubSpot-Request-Timestamp`, under the
//! app's client secret.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | method ‖ URL (HubSpot's escapes decoded) ‖ body ‖ timestamp | timestamp header (ms), 5 min, at the SDK's edge (floored, strict) | JSON array | |

#[cfg(test)]
use super::tests::{Vector, BODY_B};
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Signing};

pub const PRESET: Preset = Preset::new("hubspot", DESCRIPTION).signing_the_url();

pub const ENTRY: Entry = entry!(PRESET, example);

/// The preset as a `generic` block; HubSpot's docs list the escapes `url_unescaping` decodes
/// as decoded in the URI it signs.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-HubSpot-Signature-v3"},
    "encoding": "base64",
    "message": ["method", {"url_unescaping": ":/?@!$'()*,;"}, "body",
                {"header": "X-HubSpot-Request-Timestamp"}],
    "timestamp": {"header": "X-HubSpot-Request-Timestamp", "format": "milliseconds",
                  "edges": "floored_time_strict_age"},
    "body": "json_array"
}"#;

#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "hubspot_client_secret",
    &[
        (":method", "POST"),
        (":path", "/webhooks/hubspot?x=1"),
        ("x-hubspot-request-timestamp", "1700000000000"),
        (
            "x-hubspot-signature-v3",
            "gWAooEDd1oGb+YYdxpVVJXp+eWeMqs6cCvoKjLYkfuQ=",
        ),
    ],
    BODY_B,
)
.from("https://example.com")
.at(1_700_000_000);

/// A batch of one `contact.creation` event (HubSpot posts an array of them).
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let millis = i128::from(signing.now) * 1000;
    format!(
        r#"[{{"eventId":{},"subscriptionType":"contact.creation","portalId":62515,"occurredAt":{millis},"objectId":123}}]"#,
        sign::number(&signing.random, 10)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::super::tests::judge;
    use super::*;
    use crate::keys::test_key;
    use crate::verdict::Reason;

    #[test]
    fn hubspot_signs_its_listed_escapes_decoded() {
        // HubSpot signs `...?a=b:c` when it calls `...?a=b%3Ac`; `%26` stays as sent.
        let secret = "hubspot_client_secret";
        let sign = |uri: &str| {
            use base64::Engine;
            let mac =
                test_key("k", secret).mac(&[b"POST", uri.as_bytes(), b"{}", b"1700000000000"]);
            base64::engine::general_purpose::STANDARD.encode(mac)
        };
        let check = |path: &str, signature: &str| {
            let h = [
                (":method", "POST"),
                (":path", path),
                ("x-hubspot-request-timestamp", "1700000000000"),
                ("x-hubspot-signature-v3", signature),
            ];
            judge(&PRESET, secret, Some("https://example.com"), &h, "{}")
        };
        let decoded = sign("https://example.com/h?a=b:c&d=%26");
        assert!(check("/h?a=b%3Ac&d=%26", &decoded).is_ok());
        assert!(check("/h?a=b:c&d=%26", &decoded).is_ok());
        assert_eq!(
            check("/h?a=b:c&d=&", &decoded),
            Err(Reason::SignatureMismatch)
        );
    }
}
