//! Telegram Bot API: the `secret_token` given to `setWebhook` (1 to 256 of `A-Z a-z 0-9 _
//! -`), verbatim, in `X-Telegram-Bot-Api-Secret-Token`; nothing is signed or timed. The
//! delivery is the update's `update_id`, which Telegram sends again, unchanged, until the
//! endpoint answers 2xx (for up to a day).
//!
//! | credential | identity | time | body | dispatch headers bound |
//! | --- | --- | --- | --- | --- |
//! | `X-Telegram-Bot-Api-Secret-Token` | the body's `update_id`, else the body | none | JSON object | none |

use super::{preset_entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::Signing;

pub const PRESET: Preset = Preset {
    name: "telegram",
    description: DESCRIPTION,
};

pub const ENTRY: Entry = preset_entry!(PRESET, example);

/// The preset as a `token` block.
const DESCRIPTION: &str = r#"{
    "header": "X-Telegram-Bot-Api-Secret-Token",
    "delivery_id": [{"body_field": "update_id"}],
    "body": "json_object"
}"#;

/// A text message, its `update_id` from the random bytes.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let [a, b, c, d, ..] = signing.random;
    let update_id = u32::from_be_bytes([a, b, c, d]) % 1_000_000_000 + 1;
    format!(
        r#"{{"update_id":{update_id},"message":{{"message_id":1,"date":{},"chat":{{"id":42,"type":"private"}},"text":"héllo"}}}}"#,
        signing.now
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::token::testing::{judge, GENUINE};
    use crate::verdict::Reason;

    fn telegram(body: &str) -> Result<super::super::testing::Judged, Reason> {
        judge(
            &PRESET,
            &[("x-telegram-bot-api-secret-token", GENUINE)],
            body,
        )
    }

    #[test]
    fn the_update_id_is_the_delivery_and_the_body_is_bound() {
        let first = telegram(r#"{"update_id":10,"message":{"text":"a"}}"#).unwrap();
        let edited = telegram(r#"{"update_id":10,"message":{"text":"b"}}"#).unwrap();
        let next = telegram(r#"{"update_id":11,"message":{"text":"a"}}"#).unwrap();
        assert_eq!(first.signed, edited.signed, "one update, whatever its body");
        assert!(
            !first.signed.covers_body(),
            "the fingerprint binds the body"
        );
        assert_ne!(first.signed, next.signed);
        let as_text = telegram(r#"{"update_id":"10"}"#).unwrap();
        assert_eq!(first.signed, as_text.signed, "the same id, as a string");
    }

    #[test]
    fn an_update_id_of_another_kind_or_a_body_that_is_no_object_is_refused() {
        for body in [
            r#"{"update_id":1.5}"#,
            r#"{"update_id":[1]}"#,
            r#"{"update_id":"a b"}"#,
            "[1]",
            "{",
        ] {
            assert_eq!(telegram(body).err(), Some(Reason::MalformedBody), "{body}");
        }
    }
}
