//! Zendesk: `X-Zendesk-Webhook-Signature` is the base64 HMAC-SHA256, keyed with the
//! webhook's signing secret as it is shown, of `X-Zendesk-Webhook-Signature-Timestamp`
//! (`YYYY-MM-DDTHH:MM:SSZ`) followed by the body, nothing between.
//!
//! Source: <https://developer.zendesk.com/documentation/webhooks/verifying/> ("Represented
//! simply: base64(HMACSHA256(TIMESTAMP + BODY))"; the time's format from "Anatomy of a
//! webhook request"), and every verifier in use (n8n's, Pipedream's, WebhookX's) signs that
//! order. An earlier revision of that page said body then timestamp, and its one example
//! verifies only so; a test keeps it refused. Zendesk publishes no SDK that verifies, and
//! states no window: an hour past (a retry may carry its first attempt's signature), five
//! minutes ahead. Zendesk signs the requests of an unsaved webhook with a public test secret
//! (`dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==`), which anyone can sign with: a route
//! that names it is a configuration error.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | timestamp ‖ body | the timestamp, 1 h past, 5 min ahead | JSON object | `x-zendesk-webhook-id`, `x-zendesk-account-id` |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::keys::Key;
use crate::providers::entry::{Entry, Secret};
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Signing};

/// What Zendesk signs its unsaved webhooks' test requests with, for anyone to use.
const TEST_SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";

pub const PRESET: Preset = Preset::new("zendesk", DESCRIPTION).keyed(Secret::Written {
    // Compared as HMAC keys: `t` and `t\0` are one key.
    check: |secret| match (
        Key::new("", secret.as_bytes()),
        Key::new("", TEST_SECRET.as_bytes()),
    ) {
        (Ok(secret), Ok(test)) => !secret.same_secret(&test),
        _ => false,
    },
    form:
        "a webhook's own signing secret (Zendesk's test secret is public: anyone can sign with it)",
    example: |n| format!("zendesk-signing-secret-{n}"),
});

/// Its signer names the webhook and the account, as Zendesk does.
pub const ENTRY: Entry = entry!(PRESET, example, |out, id| {
    out.default_header("x-zendesk-webhook-id", "01HZDEMOWEBHOOK0000000000");
    out.default_header("x-zendesk-account-id", "1");
    out.default_header("x-zendesk-webhook-invocation-id", id);
});

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Zendesk-Webhook-Signature"},
    "encoding": "base64",
    "message": [{"header": "X-Zendesk-Webhook-Signature-Timestamp"}, "body"],
    "timestamp": {"header": "X-Zendesk-Webhook-Signature-Timestamp", "format": "utc_seconds",
                  "max_age_secs": 3600, "max_future_secs": 300},
    "dispatch_headers": ["x-zendesk-webhook-id", "x-zendesk-account-id"],
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "e2e-zendesk-vector-secret",
    &[
        (
            "x-zendesk-webhook-signature-timestamp",
            "2026-03-25T10:00:00Z",
        ),
        (
            "x-zendesk-webhook-signature",
            "7IG70Eau+gUnktQpmOo90pY5/EvRGqq+n5xFBbPhaKw=",
        ),
    ],
    r#"{"type":"zen:event-type:ticket.created","account_id":1,"id":"01HZ","time":"2026-03-25T10:00:00Z","zendesk_event_version":"2022-11-06","subject":"zen:ticket:1","detail":{"id":"1","subject":"café"}}"#,
)
.at(1_774_432_800)
.given();

/// A ticket created, as Zendesk's event-subscription webhooks send it.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let time = sign::rfc3339(signing.now);
    let ticket = sign::digits(&signing.random, 6);
    format!(
        r#"{{"type":"zen:event-type:ticket.created","account_id":1,"id":"{}","time":"{time}","zendesk_event_version":"2022-11-06","subject":"zen:ticket:{ticket}","detail":{{"id":"{ticket}","subject":"café"}}}}"#,
        signing.uuid(),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::registry;
    use crate::verdict::Reason;

    fn route(secret: &str) -> serde_json::Value {
        serde_json::json!({"routes": [{"name": "z", "path_prefix": "/z/", "scheme": "zendesk",
            "keys": [{"name": "k", "value": secret}]}]})
    }

    #[test]
    fn the_public_test_secret_is_refused_as_a_key() {
        for secret in [TEST_SECRET.to_string(), format!("{TEST_SECRET}\0")] {
            let refused = crate::config::parse(route(&secret).to_string().as_bytes(), &|_| None)
                .unwrap_err()
                .to_string();
            assert!(
                refused.contains("routes[0].keys[0]") && refused.contains("test secret is public"),
                "{refused}"
            );
        }
        assert!(crate::config::parse(route("own").to_string().as_bytes(), &|_| None).is_ok());
    }

    #[test]
    fn the_earlier_pages_body_then_timestamp_example_does_not_verify() {
        // developer.zendesk.com's earlier revision: secret, timestamp, body, signature.
        let secret = "HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA=";
        let policy = crate::config::parse(route(secret).to_string().as_bytes(), &|_| None).unwrap();
        let h = crate::request::headers(&[
            ("content-type", "application/json"),
            (
                "x-zendesk-webhook-signature-timestamp",
                "2021-07-25T10:00:00Z",
            ),
            (
                "x-zendesk-webhook-signature",
                "tRDSF7URY8BLCDlaBcQ7FHu051Zk+aAB0NKMP53teMw=",
            ),
        ]);
        let head = crate::request::RequestHead::new(&h);
        let provider = &policy.routes[0].provider;
        let verdict = provider.at_body(
            &head,
            &crate::providers::Body::whole(br#"{"say": "hello"}"#),
            &crate::providers::Checks::default(),
        );
        assert_eq!(verdict.unwrap_err().reason, Reason::SignatureMismatch);
        assert!(registry::find("zendesk").is_some());
    }

    #[test]
    fn only_zendesks_own_time_format_is_read() {
        use base64::Engine;
        let policy = crate::config::parse(route("own").to_string().as_bytes(), &|_| None).unwrap();
        let key = crate::keys::test_key("k", "own");
        for (time, reason) in [
            ("2026-03-25T10:00:00Z", None),
            ("2026-03-25T10:00:00+00:00", Some(Reason::MalformedHeader)),
            ("2026-03-25T10:00:00.000Z", Some(Reason::MalformedHeader)),
            ("2026-03-25 10:00:00Z", Some(Reason::MalformedHeader)),
            ("1774432800", Some(Reason::MalformedHeader)),
        ] {
            // Each signed over its own time text: only the format decides.
            let mac = key.mac(&[time.as_bytes(), VECTOR.body.as_bytes()]);
            let signature = base64::engine::general_purpose::STANDARD.encode(mac);
            let h = crate::request::headers(&[
                ("x-zendesk-webhook-signature-timestamp", time),
                ("x-zendesk-webhook-signature", &signature),
            ]);
            let head = crate::request::RequestHead::new(&h);
            let verdict = policy.routes[0].provider.at_body(
                &head,
                &crate::providers::Body::whole(VECTOR.body.as_bytes()),
                &crate::providers::Checks::default(),
            );
            assert_eq!(verdict.err().map(|r| r.reason), reason, "{time}");
        }
    }
}
