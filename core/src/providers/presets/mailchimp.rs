//! Mailchimp Transactional (Mandrill): `X-Mandrill-Signature` is the base64 HMAC-SHA1
//! of the webhook URL as registered (the route's `public_origin`, the path and query)
//! followed by every POST parameter sorted by name, name then value, under the
//! webhook's key. Mandrill checks a new URL with a `HEAD`, answered 200 at the edge.
//! (Its fallback test POST is signed with the public key `test-webhook`: never
//! configure it.)
//!
//! Source:
//! <https://mandrill.zendesk.com/hc/en-us/articles/360039232513-How-to-Authenticate-Webhook-Requests>.
//! No SDK of the provider verifies it.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | URL ‖ sorted form parameters | none | form | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;

pub const PRESET: Preset = Preset::new("mailchimp", DESCRIPTION).signing_the_url();

pub const ENTRY: Entry = entry!(PRESET, super::form_event);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Mandrill-Signature"},
    "algorithm": "sha1",
    "encoding": "base64",
    "message": ["url", "form_params"],
    "body": "form",
    "endpoint_check": {"kind": "ok"}
}"#;

/// Its documented construction, computed with Python's standard library.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "mailchimp-secret",
    &[
        (":path", "/"),
        ("x-mandrill-signature", "JrXH65KqTxdELtM102kVPXBVkcY="),
    ],
    "mandrill_events=%5B%7B%22event%22%3A%22send%22%2C%22ts%22%3A1774432800%7D%5D",
)
.from("https://example.com");
