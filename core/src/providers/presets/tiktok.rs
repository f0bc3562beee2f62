//! TikTok: `TikTok-Signature: t=<unix s>,s=<hex>`, the HMAC-SHA256 of `t.body` under
//! the app's client secret. TikTok does not say whether its retries (up to 72 h) are
//! signed anew; if not, a retry after the 5-minute window is refused `stale`: widen
//! `freshness.max_age` (within `replay.window`) if that matters.
//!
//! Source: <https://developers.tiktok.com/doc/webhooks-verification>. No SDK of the
//! provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | `t` ‖ `.` ‖ body | `t`, 300 s past, 300 s ahead | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("tiktok", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "TikTok-Signature", "list": {"separator": ",", "entry": "key=value", "label": "s"}},
    "encoding": "hex",
    "message": [{"item": "t"}, {"literal": "."}, "body"],
    "timestamp": {"item": "t", "format": "seconds", "max_age_secs": 300, "max_future_secs": 300},
    "body": "json_object"
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "tiktok-secret",
    &[(
        "tiktok-signature",
        "t=1774432800,s=5d68c452a3fdfff288825ca815f4e8f0faabaffddd823207d19fd2011dac80da",
    )],
    r#"{"id":"evt_1","type":"event.created","data":{"note":"café","amount":100}}"#,
)
.at(1774432800);
