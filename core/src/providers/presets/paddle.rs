//! Paddle Billing: `Paddle-Signature: ts=…;h1=<hex>` (several `h1` while a secret rotates, no
//! other entries, as its SDK), the hex HMAC-SHA256 of `ts:body` under the destination's
//! secret. Each attempt is signed anew, so each is its own delivery.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | `ts` item ‖ `:` ‖ body (re-signed per attempt; no other list entries) | `ts` item, ±5 s (the SDK's) | JSON object | |

#[cfg(test)]
use super::tests::{Vector, BODY_B};
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Signing};

pub const PRESET: Preset = Preset::new("paddle", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, example);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "Paddle-Signature",
                  "list": {"separator": ";", "entry": "key=value", "label": "h1", "strict": true}},
    "encoding": "hex",
    "message": [{"item": "ts"}, {"literal": ":"}, "body"],
    "timestamp": {"item": "ts", "format": "seconds", "max_age_secs": 5, "max_future_secs": 5},
    "body": "json_object"
}"#;

/// Its signature header lists a wrong signature before the right one.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "pdl_ntfset_01gkpjp8bkm3tm53kdgkx6sms7_6h3qd3uFSi9YCD3OLYAShQI90XTI5vEI",
    &[(
        "paddle-signature",
        "ts=1700000000;h1=0000000000000000000000000000000000000000000000000000000000000000;h1=84b000dabe14d98c2d10b3459ee8c2bbe239a96fedf5227e7e7a3a5df1d1ef31",
    )],
    BODY_B,
)
.at(1_700_000_000);

/// A `transaction.completed` event.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let short = sign::base62(&signing.random, 14);
    let at = sign::rfc3339(signing.now);
    format!(
        r#"{{"event_id":"evt_{short}","event_type":"transaction.completed","occurred_at":"{at}","notification_id":"ntf_{short}","data":{{"id":"txn_{short}"}}}}"#
    )
    .into_bytes()
}
