//! CircleCI: `circleci-signature: v1=<hex>[,v2=…]`, the HMAC-SHA256 of the body under
//! the webhook's secret token; only `v1` is read, as the docs advise (no downgrade).
//!
//! Source: <https://circleci.com/docs/webhooks/>. No SDK of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | `Circleci-Event-Type` |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("circleci", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, super::event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "circleci-signature", "list": {"separator": ",", "entry": "key=value", "label": "v1"}},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "dispatch_headers": ["Circleci-Event-Type"]
}"#;

/// The documentation's vector (secret `secret`, body `foo`).
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "secret",
    &[(
        "circleci-signature",
        "v1=773ba44693c7553d6ee20f61ea5d2757a9a4f4a44d2841ae4e95b52e4cd62db4",
    )],
    "foo",
);
