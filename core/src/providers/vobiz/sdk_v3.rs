//! V3 as the official Plivo/Vobiz Python SDK computes it (`validate_v3_signature`, spec
//! section 6.2), which, unlike the documented Vobiz V3, also signs the sorted parameters:
//!
//! `base64(HMAC-SHA256(token, URL ‖ "." ‖ nonce))`, where `URL` is the base URL followed by
//! the parameters rendered as below. Only with no query and no POST parameters does it
//! equal the documented V3.
//!
//! Byte-exact to plivo 4.63.0, including its edges: a fragment and any `;params` of the
//! last path segment are dropped (Python's `urlparse`), query values are signed decoded,
//! and in a GET a query parameter replaces a body parameter of the same name. A query that
//! decodes to non-ASCII makes the SDK raise instead of verify, so it is refused here too.

use std::collections::BTreeMap;

use crate::form;
use crate::verdict::{Reason, Rejection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// Exactly `GET` or `POST`: the SDK signs no other method.
    pub fn from_bytes(method: &[u8]) -> Option<Method> {
        match method {
            b"GET" => Some(Method::Get),
            b"POST" => Some(Method::Post),
            _ => None,
        }
    }
}

/// The signed URL (the message before `"." ‖ nonce`) for a request to `origin` (the
/// registered `scheme://authority`, used verbatim) with the request's `:path`, and, for
/// POST, the decoded form body.
pub fn signed_url(
    method: Method,
    origin: &[u8],
    path: &[u8],
    body: &[(String, String)],
) -> Result<Vec<u8>, Rejection> {
    let path = match path.iter().position(|&b| b == b'#') {
        Some(end) => &path[..end],
        None => path,
    };
    if path.first() != Some(&b'/') || !path.iter().all(u8::is_ascii_graphic) {
        return Err(malformed(
            ":path is not an absolute path of visible ASCII, which the SDK cannot sign",
        ));
    }
    let (path, query) = match path.iter().position(|&b| b == b'?') {
        Some(q) => (&path[..q], &path[q + 1..]),
        None => (path, &[][..]),
    };
    let query = form::parse(query, form::MAX_PAIRS)
        .map_err(|e| malformed(format!(":path query has more than {} parameters", e.limit)))?;
    if !query.iter().all(|(k, v)| k.is_ascii() && v.is_ascii()) {
        return Err(malformed(
            ":path query decodes to non-ASCII text, which the SDK cannot sign",
        ));
    }

    let mut url = Vec::with_capacity(origin.len() + path.len() + 16 * (query.len() + body.len()));
    url.extend_from_slice(origin);
    url.extend_from_slice(without_params(path));
    match method {
        Method::Get => {
            let mut params = grouped(body);
            // Python's `dict.update`: the query's list replaces the body's, never merges.
            params.extend(grouped(&query));
            let rendered = render_query(&params);
            if !rendered.is_empty() {
                url.push(b'?');
                url.extend_from_slice(rendered.as_bytes());
            }
        }
        Method::Post => {
            let rendered = render_query(&grouped(&query));
            if !rendered.is_empty() || !body.is_empty() {
                url.push(b'?');
                url.extend_from_slice(rendered.as_bytes());
            }
            if !rendered.is_empty() && !body.is_empty() {
                url.push(b'.');
            }
            for (key, values) in grouped(body) {
                for value in values {
                    url.extend_from_slice(key.as_bytes());
                    url.extend_from_slice(value.as_bytes());
                }
            }
        }
    }
    Ok(url)
}

/// `urlparse` moves `;params` of the last segment out of the path, and the SDK drops them.
fn without_params(path: &[u8]) -> &[u8] {
    let last_segment = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
    match path[last_segment..].iter().position(|&b| b == b';') {
        Some(semi) => &path[..last_segment + semi],
        None => path,
    }
}

/// Values by name, names and each name's values in code-point order (Python's `sorted`;
/// byte order of UTF-8 is code-point order).
fn grouped(pairs: &[(String, String)]) -> BTreeMap<&str, Vec<&str>> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (key, value) in pairs {
        map.entry(key).or_default().push(value);
    }
    for values in map.values_mut() {
        values.sort_unstable();
    }
    map
}

/// `k=v` pairs joined by `&`, neither part re-encoded.
fn render_query(params: &BTreeMap<&str, Vec<&str>>) -> String {
    let mut out = String::new();
    for (key, values) in params {
        for value in values {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
    }
    out
}

fn malformed(detail: impl Into<std::borrow::Cow<'static, str>>) -> Rejection {
    Rejection::new(Reason::MalformedHeader, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{test_key, Key};
    use base64::Engine;

    const ORIGIN: &[u8] = b"https://example.com";
    const NONCE: &[u8] = b"05429567804466091622";

    fn key() -> Key {
        test_key("own", "test_auth_token")
    }

    /// What `VoiceScheme::check` MACs for `Message::Sdk`.
    fn mac_input<'a>(url: &'a [u8], nonce: &'a [u8]) -> [&'a [u8]; 3] {
        [url, b".", nonce]
    }

    fn body(form: &str) -> Vec<(String, String)> {
        form::parse(form.as_bytes(), form::MAX_PAIRS).unwrap()
    }

    fn url(method: Method, path: &str, form: &str) -> String {
        let url = signed_url(method, ORIGIN, path.as_bytes(), &body(form)).unwrap();
        String::from_utf8(url).unwrap()
    }

    fn signature(url: &str) -> String {
        let mac = key().mac(&mac_input(url.as_bytes(), NONCE));
        base64::engine::general_purpose::STANDARD.encode(mac)
    }

    /// Asserts the message and the signature.
    fn assert_vector(url: &str, message: &str, sig: &str) {
        let nonce = std::str::from_utf8(NONCE).unwrap();
        assert_eq!(format!("{url}.{nonce}"), message);
        assert_eq!(signature(url), sig, "{message}");
        assert_ne!(
            test_key("other", "x").mac(&mac_input(url.as_bytes(), NONCE)),
            key().mac(&mac_input(url.as_bytes(), NONCE))
        );
    }

    // Spec section 6.2, the four COMPUTED and SDK-verified rows.

    #[test]
    fn spec_post_with_params() {
        assert_vector(
            &url(
                Method::Post,
                "/answer",
                "To=14155550100&From=14155550123&CallUUID=abc",
            ),
            "https://example.com/answer?CallUUIDabcFrom14155550123To14155550100.05429567804466091622",
            "x6sWqj1bWCTFPaPgeo9CQQ6Wb1uhdE93JZ8NwCC/2Ic=",
        );
    }

    #[test]
    fn spec_post_with_query_and_params() {
        assert_vector(
            &url(
                Method::Post,
                "/answer?x=1",
                "To=14155550100&From=14155550123",
            ),
            "https://example.com/answer?x=1.From14155550123To14155550100.05429567804466091622",
            "pW2UyDAinxVNoa1RJzYT5kEVbaA5D/ya6LXL7zbcs/0=",
        );
    }

    #[test]
    fn spec_get_merges_body_and_query() {
        assert_vector(
            &url(Method::Get, "/answer?x=1", "b=2"),
            "https://example.com/answer?b=2&x=1.05429567804466091622",
            "je3zowRjK6+SLfEBmX0mWtQCwR9Pq5vFg0b8wJdAZu0=",
        );
    }

    #[test]
    fn spec_post_without_params() {
        assert_vector(
            &url(Method::Post, "/answer", ""),
            "https://example.com/answer.05429567804466091622",
            "yXSTe95YFaLmki98KQ5GoA7MRlneNDrkLpQaVNPF0ko=",
        );
    }

    /// Spec 6.2: only the no-params case coincides with the documented Vobiz V3 input
    /// `origin ‖ path ‖ "." ‖ nonce`.
    #[test]
    fn no_params_post_equals_documented_v3() {
        let v3 = key().mac(&[ORIGIN, b"/answer", b".", NONCE]);
        let url = signed_url(Method::Post, ORIGIN, b"/answer", &[]).unwrap();
        assert_eq!(key().mac(&mac_input(&url, NONCE)), v3);
        let url = signed_url(Method::Post, ORIGIN, b"/answer", &body("a=1")).unwrap();
        assert_ne!(key().mac(&mac_input(&url, NONCE)), v3);
    }

    // Further edges, each signature checked with plivo 4.63.0's `validate_v3_signature`.

    #[test]
    fn sdk_get_query_replaces_body_and_keeps_values_decoded() {
        assert_vector(
            &url(Method::Get, "/answer?x=1&x=0&y&=z&&a=%41%zz+b", "x=9"),
            "https://example.com/answer?=z&a=A%zz b&x=0&x=1&y=.05429567804466091622",
            "en1qHcYXLrpit7pjc5AibX59xnJqhSfeSjwouLJoBK0=",
        );
    }

    #[test]
    fn sdk_repeated_names_sign_each_sorted_value() {
        assert_vector(
            &url(Method::Post, "/answer", "k=b&j=1&k=a"),
            "https://example.com/answer?j1kakb.05429567804466091622",
            "GSkdEsx3VXCAx0o46CNhhIg0kiHMmEgP/+zYu/+2AWA=",
        );
        assert_vector(
            &url(Method::Get, "/answer", "k=b&j=1&k=a"),
            "https://example.com/answer?j=1&k=a&k=b.05429567804466091622",
            "K7AL1EN8AWPVfhr3MeRQ9XrZQk0IPDNbdeoPJRGV/ng=",
        );
    }

    #[test]
    fn sdk_post_separators() {
        assert_vector(
            &url(Method::Post, "/answer?x=1", ""),
            "https://example.com/answer?x=1.05429567804466091622",
            "O+4toLFUiSo61HEOLC22Cmv6NxgJIpHAoxenGtpPPAI=",
        );
        assert_vector(
            &url(Method::Post, "/answer?", "a=1"),
            "https://example.com/answer?a1.05429567804466091622",
            "pAmJJwH+CYaLzR2lOAP6NIP36eiXL/nFx+t6KxXEOow=",
        );
        assert_vector(
            &url(Method::Post, "/answer?x=1", "a="),
            "https://example.com/answer?x=1.a.05429567804466091622",
            "C3/igk7Wl/1hEf0Ycp1qb5ueYdCu/Uw09MD70sdsEaM=",
        );
    }

    #[test]
    fn sdk_drops_last_segment_params_and_fragment() {
        assert_vector(
            &url(Method::Get, "/a;p/answer;q=1?x=1", ""),
            "https://example.com/a;p/answer?x=1.05429567804466091622",
            "PS4NCqqmkZAI00jwA74wk6ZYasVjZQwJypLvakPq5vU=",
        );
        assert_eq!(
            url(Method::Get, "/answer#frag?x=1", ""),
            "https://example.com/answer"
        );
    }

    #[test]
    fn sdk_signs_non_ascii_post_params_as_utf8() {
        assert_vector(
            &url(Method::Post, "/answer", "%C3%A9=x&z=1"),
            "https://example.com/answer?z1éx.05429567804466091622",
            "X3WBMLJOmf8BN6fEfbuR9g8itIruIh2PuY/gObF4xVU=",
        );
    }

    #[test]
    fn unsignable_paths_are_malformed() {
        let many = format!("/answer?{}", "a=1&".repeat(form::MAX_PAIRS + 1));
        for path in [
            &b"/answer?x=%C3%A9"[..],
            b"/answer?%C3=3",
            b"/ans\xc3\xa9r",
            b"/ans wer",
            b"answer",
            b"",
            many.as_bytes(),
        ] {
            let err = signed_url(Method::Get, ORIGIN, path, &[]).unwrap_err();
            assert_eq!(err.reason, Reason::MalformedHeader, "{path:?}");
        }
    }

    #[test]
    fn methods_are_exact() {
        assert_eq!(Method::from_bytes(b"GET"), Some(Method::Get));
        assert_eq!(Method::from_bytes(b"POST"), Some(Method::Post));
        for other in [&b"get"[..], b"Post", b"PUT", b"", b"POST "] {
            assert_eq!(Method::from_bytes(other), None);
        }
    }
}
