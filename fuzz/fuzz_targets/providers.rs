//! Every non-Vobiz provider's parsers and verifiers (`standard_webhooks`, `svix`, `stripe`,
//! `slack`, `github`, `meta`, `shopify`, `twilio`) on arbitrary requests: the first byte
//! picks the provider, the rest is header lines, an empty line and the body (the seeds'
//! format). Never panics; a rejection is loggable; under a key no input can know nothing is
//! ever forwarded; under the known key a forwarded request carries a signature that an
//! oracle written here (the `hmac` crate) accepts.
#![no_main]

mod common;

use std::sync::OnceLock;

use base64::Engine;
use callback_guard::config;
use callback_guard::guard::{self, Step};
use callback_guard::policy::Policy;
use callback_guard::request::RequestHead;
use libfuzzer_sys::fuzz_target;

const SCHEMES: [&str; 8] = ["standard_webhooks", "svix", "stripe", "slack", "github", "meta", "shopify", "twilio"];
/// The key the seeds are signed with (`whsec_` + base64 of it for the Svix family).
const KNOWN: &str = "fuzz-provider-key";

fn policy(scheme: &str, key: &str) -> Policy {
    let secret = match scheme {
        "standard_webhooks" | "svix" => format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        ),
        _ => key.to_string(),
    };
    let origin = if scheme == "twilio" { r#","public_origin":"https://example.com""# } else { "" };
    let json = format!(
        r#"{{"routes":[{{"name":"p","path_prefix":"/","scheme":"{scheme}","keys":[{{"name":"k","value":"{secret}"}}]{origin}}}]}}"#
    );
    config::parse(json.as_bytes(), &|_| None).expect("the fuzz policies are valid")
}

fn policies() -> &'static Vec<(Policy, Policy)> {
    static POLICIES: OnceLock<Vec<(Policy, Policy)>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let unknown = common::random_secret();
        SCHEMES.iter().map(|s| (policy(s, KNOWN), policy(s, &unknown))).collect()
    })
}

fn mac(parts: &[&[u8]]) -> [u8; 32] {
    common::hmac(KNOWN.as_bytes(), parts)
}

use common::hex;

/// Whether the request, as sent, carries a valid signature under KNOWN (body schemes).
fn authentic(scheme: &str, headers: &[callback_guard::request::Header], body: &[u8]) -> bool {
    let get = |name: &str| common::single(headers, name);
    match scheme {
        "github" | "meta" => get("x-hub-signature-256").is_some_and(|v| {
            v.strip_prefix(b"sha256=").is_some_and(|h| h.eq_ignore_ascii_case(hex(&mac(&[body])).as_bytes()))
        }),
        "shopify" => {
            let expected = base64::engine::general_purpose::STANDARD.encode(mac(&[body]));
            [get("x-shopify-hmac-sha256"), get("shopify-hmac-sha256")]
                .into_iter()
                .flatten()
                .any(|v| v == expected.as_bytes())
        }
        "slack" => match (get("x-slack-request-timestamp"), get("x-slack-signature")) {
            (Some(ts), Some(sig)) => sig.strip_prefix(b"v0=").is_some_and(|h| {
                h.eq_ignore_ascii_case(hex(&mac(&[b"v0:", ts, b":", body])).as_bytes())
            }),
            _ => false,
        },
        // Signature lists and URL signing: verified by the unit and e2e tests; here the
        // unknown-key invariant and the absence of panics are what the fuzzer checks.
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let index = usize::from(which) % SCHEMES.len();
    let (known, unknown) = &policies()[index];
    let (mut headers, body) = common::parse_request(rest);
    for pseudo in [(":method", &b"POST"[..]), (":path", b"/hook?x=1"), (":authority", b"h")] {
        if !headers.iter().any(|(k, _)| k == pseudo.0) {
            headers.push((pseudo.0.to_string(), pseudo.1.to_vec()));
        }
    }
    let head = RequestHead::new(&headers);
    let conn = common::Conn::for_request(&head);
    for (policy, is_known) in [(known, true), (unknown, false)] {
        let step = match guard::on_headers(policy, &head, &conn) {
            Step::NeedBody(route) => guard::on_body(route, &head, body, common::NOW, &common::MemStore::default(), 1),
            step => step,
        };
        match step {
            Step::Forward(_) => {
                assert!(is_known, "forwarded under a key no input can know");
                assert!(authentic(SCHEMES[index], &headers, body), "forwarded without a valid signature");
            }
            Step::Reject(_, rejection) => common::assert_loggable(&rejection),
            _ => {}
        }
    }
});
