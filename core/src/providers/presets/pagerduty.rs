//! PagerDuty (webhooks v3): `X-PagerDuty-Signature: v1=<hex>[, v1=…]` (one per secret while
//! it rotates), the HMAC-SHA256 of the body under the subscription's secret; a retry is the
//! same body, so the same delivery.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | `X-Webhook-Subscription` |

#[cfg(test)]
use super::tests::{Vector, BODY_B};
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Signing};

pub const PRESET: Preset = Preset::new("pagerduty", DESCRIPTION);

/// Its signer sends the subscription the event is for beside the signature.
pub const ENTRY: Entry = entry!(PRESET, example, |out, id| {
    out.default_header("x-webhook-subscription", id);
});

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-PagerDuty-Signature",
                  "list": {"separator": ",", "trim": true, "entry": "key=value", "label": "v1"}},
    "encoding": "hex",
    "message": ["body"],
    "dispatch_headers": ["X-Webhook-Subscription"],
    "body": "json_object"
}"#;

/// Its signature header lists a wrong signature before the right one.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "pd_webhook_secret",
    &[(
        "x-pagerduty-signature",
        "v1=0000000000000000000000000000000000000000000000000000000000000000, v1=46c68f382e1cbfead7368cf8a74a450b42063342fd218919e0cf6770f09187b0",
    )],
    BODY_B,
);

/// An `incident.triggered` event.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let (short, at) = (
        sign::base62(&signing.random, 14),
        sign::rfc3339(signing.now),
    );
    format!(
        r#"{{"event":{{"id":"{short}","event_type":"incident.triggered","occurred_at":"{at}","data":{{"id":"P{short}","type":"incident"}}}}}}"#
    )
    .into_bytes()
}
