//! GitLab: the webhook's secret token, verbatim, in `X-Gitlab-Token`; nothing is signed
//! or timed. The delivery's id is `Idempotency-Key` (GitLab 17.4 on, the same on every
//! resend of one delivery), else the body. Never `X-Gitlab-Webhook-UUID`, which is new on
//! each request, nor `X-Gitlab-Event-UUID`, which GitLab copies from whatever API request
//! triggered the event (its recursion detection): any user could give many deliveries
//! one id, and each after the first would be refused as tampering.
//!
//! | credential | identity | time | body | dispatch headers bound |
//! | --- | --- | --- | --- | --- |
//! | `X-Gitlab-Token` | `Idempotency-Key`, else the body | none | JSON object | `X-Gitlab-Event` |
//!
//! GitLab does not retry a failed delivery by itself; a 4xx answer counts towards
//! disabling the hook for good, a 5xx only for a while. GitLab 19's signing token is the
//! Standard Webhooks scheme (`standard_webhooks`), which signs the body: prefer it.

use super::{preset_entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::Signing;

pub const PRESET: Preset = Preset {
    name: "gitlab",
    description: DESCRIPTION,
};

/// Its signer sends the event's kind and UUID beside the token and the `Idempotency-Key`.
pub const ENTRY: Entry = preset_entry!(PRESET, example, |signing, out| {
    out.default_header("x-gitlab-event", "Push Hook");
    out.default_header("x-gitlab-event-uuid", signing.uuid());
});

/// The preset as a `token` block.
const DESCRIPTION: &str = r#"{
    "header": "X-Gitlab-Token",
    "delivery_id": ["Idempotency-Key"],
    "dispatch_headers": ["X-Gitlab-Event"],
    "body": "json_object"
}"#;

/// A push event.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"object_kind":"push","event_name":"push","checkout_sha":"{}","user_name":"Zoë","project":{{"path_with_namespace":"group/app"}}}}"#,
        crate::providers::hex(&signing.random[..20])
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::token::testing::{judge, GENUINE};
    use crate::verdict::Reason;

    const ID: &str = "5f1b6a1c-2d3e-4f50-8a9b-0c1d2e3f4a5b";
    const BODY: &str = r#"{"object_kind":"push","event_name":"push"}"#;

    fn gitlab(headers: &[(&str, &str)]) -> Result<super::super::testing::Judged, Reason> {
        judge(&PRESET, headers, BODY)
    }

    #[test]
    fn the_token_verifies_and_the_idempotency_key_is_the_delivery() {
        let first = gitlab(&[
            ("x-gitlab-token", GENUINE),
            ("idempotency-key", ID),
            ("x-gitlab-event-uuid", "e1"),
        ])
        .unwrap();
        let resent = gitlab(&[
            ("x-gitlab-token", GENUINE),
            ("idempotency-key", ID),
            ("x-gitlab-event-uuid", "e2"),
        ])
        .unwrap();
        assert_eq!(first.signed, resent.signed, "a resend is the same delivery");
        let older = gitlab(&[("x-gitlab-token", GENUINE), ("x-gitlab-event-uuid", ID)]).unwrap();
        assert_ne!(first.signed, older.signed, "the id's source is part of it");
        assert!(
            !first.signed.covers_body(),
            "the fingerprint binds the body"
        );
        let bare = gitlab(&[("x-gitlab-token", GENUINE)]).unwrap();
        assert!(
            bare.signed.covers_body(),
            "without an id the body is the delivery"
        );
    }

    #[test]
    fn a_wrong_missing_or_doubled_token_is_refused() {
        for (headers, reason) in [
            (
                &[("x-gitlab-token", "wrong")][..],
                Reason::SignatureMismatch,
            ),
            (
                &[("x-gitlab-token", &GENUINE[1..])][..],
                Reason::SignatureMismatch,
            ),
            (&[][..], Reason::MissingSignature),
            (
                &[("x-gitlab-token", GENUINE), ("x-gitlab-token", GENUINE)][..],
                Reason::DuplicateHeader,
            ),
            (
                &[("x-gitlab-token", GENUINE), ("idempotency-key", "a b")][..],
                Reason::MalformedHeader,
            ),
        ] {
            assert_eq!(gitlab(headers).err(), Some(reason), "{headers:?}");
        }
    }
}
