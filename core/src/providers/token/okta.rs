//! Okta event hooks: the secret configured as the hook's authorization header value,
//! verbatim, in `Authorization` (the header Okta's setup suggests; another name is a
//! `static_token` route with this preset's block); nothing is signed or timed. The delivery
//! is the body's `eventId`. Okta's one-time verification, a `GET` with
//! `X-Okta-Verification-Challenge`, is answered at the edge with `{"verification":
//! <value>}`, as Okta expects.
//!
//! | credential | identity | time | body | dispatch headers bound |
//! | --- | --- | --- | --- | --- |
//! | `Authorization` | the body's `eventId`, else the body | none | JSON object | none |

use super::{preset_entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::Signing;

pub const PRESET: Preset = Preset {
    name: "okta",
    description: DESCRIPTION,
};

pub const ENTRY: Entry = preset_entry!(PRESET, example);

/// The preset as a `token` block.
const DESCRIPTION: &str = r#"{
    "header": "Authorization",
    "delivery_id": [{"body_field": "eventId"}],
    "body": "json_object",
    "endpoint_check": {"kind": "header_echo", "header": "X-Okta-Verification-Challenge",
                       "json_field": "verification"}
}"#;

/// A user's session started.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    format!(
        r#"{{"eventType":"com.okta.event_hook","eventTypeVersion":"1.0","cloudEventsVersion":"0.1","source":"https://example.okta.com/api/v1/eventHooks/who1","eventId":"{}","eventTime":"{}","contentType":"application/json","data":{{"events":[{{"eventType":"user.session.start","displayMessage":"User login to Okta"}}]}}}}"#,
        signing.uuid(),
        crate::providers::sign::rfc3339(signing.now)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::token::testing::{judge, GENUINE};
    use crate::request::RequestHead;

    #[test]
    fn the_event_id_is_the_delivery() {
        let body = r#"{"eventId":"e1","data":{"events":[]}}"#;
        let first = judge(&PRESET, &[("authorization", GENUINE)], body).unwrap();
        let other = judge(
            &PRESET,
            &[("authorization", GENUINE)],
            r#"{"eventId":"e2"}"#,
        )
        .unwrap();
        assert_ne!(first.signed, other.signed);
        assert!(!first.signed.covers_body());
    }

    #[test]
    fn the_verification_challenge_is_answered_in_json() {
        let token = PRESET.compile(Vec::new()).unwrap();
        let head: Vec<crate::request::Header> = vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/okta".to_vec()),
            (
                "x-okta-verification-challenge".into(),
                b"Ew1FPJX0Gfs".to_vec(),
            ),
        ];
        let reply = token
            .endpoint_check
            .as_ref()
            .unwrap()
            .answer(
                &RequestHead::new(&head),
                None,
                crate::keys::Algorithm::Sha256,
            )
            .unwrap()
            .unwrap();
        assert_eq!(reply.body, br#"{"verification":"Ew1FPJX0Gfs"}"#.to_vec());
    }
}
