//! Dropbox: `X-Dropbox-Signature` is the hex HMAC-SHA256 of the body under the app secret;
//! a retry is the same body, so the same delivery. Its endpoint check, `GET
//! ?challenge=<value>` when the webhook URI is set and then again, is answered at the edge
//! with the value as `text/plain` (and `nosniff`), as Dropbox asks. Dropbox's SDKs ship
//! no verifier: the vector is its documented construction over its documented body,
//! computed with Python's standard library.
//!
//! | signed message (the identity) | time (default window) | body | dispatch headers bound |
//! | --- | --- | --- | --- |
//! | body | none | JSON object | none |

#[cfg(test)]
use super::tests::Vector;
use super::{entry, Preset};
use crate::providers::entry::Entry;
#[cfg(any(test, feature = "sign"))]
use crate::providers::sign::{self, Signing};

pub const PRESET: Preset = Preset::new("dropbox", DESCRIPTION);

pub const ENTRY: Entry = entry!(PRESET, example);

/// The preset as a `generic` block.
const DESCRIPTION: &str = r#"{
    "signature": {"header": "X-Dropbox-Signature"},
    "encoding": "hex",
    "message": ["body"],
    "body": "json_object",
    "endpoint_check": {"kind": "query_echo", "param": "challenge"}
}"#;

/// The notification body of Dropbox's webhook documentation.
#[cfg(test)]
pub(super) const VECTOR: Vector = Vector::new(
    &PRESET,
    "dropbox-app-secret",
    &[(
        "x-dropbox-signature",
        "2bc2b96598b80c2f2083a056de14d73ef9555deb6d554f2332327d06a70734fc",
    )],
    r#"{"list_folder": {"accounts": ["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"]}, "delta": {"users": [12345678]}}"#,
);

/// A change in one account's files.
#[cfg(any(test, feature = "sign"))]
fn example(signing: &Signing) -> Vec<u8> {
    let account = sign::base62(&signing.random, 32);
    format!(r#"{{"list_folder":{{"accounts":["dbid:{account}"]}},"delta":{{"users":[12345678]}}}}"#)
        .into_bytes()
}
