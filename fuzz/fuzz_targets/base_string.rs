//! `sdk_v3::signed_url`, the SDK's V3 base string, with arbitrary method, path and form
//! body (input: a method line, a path line, then the body). Never panics; refuses exactly
//! the paths the SDK cannot sign; the output starts with the origin and then the path as
//! the SDK keeps it; it does not depend on the order of the body's parameters; with no
//! parameters it is the documented V3 base URL.
#![no_main]

use callback_guard::form;
use callback_guard::providers::vobiz::sdk_v3::{signed_url, Method};
use callback_guard::verdict::Reason;
use libfuzzer_sys::fuzz_target;

const ORIGINS: [&[u8]; 2] = [b"https://example.com", b"http://127.0.0.1:8443"];

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[][..]),
    }
}

/// What the SDK signs of a path: up to `#`, then up to `?`, minus `;params` of the last
/// segment (Python's `urlparse`).
fn kept_path(path: &[u8]) -> &[u8] {
    let path = path.split(|&b| b == b'#').next().unwrap_or_default();
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let last = path.iter().rposition(|&b| b == b'/').unwrap_or(0);
    match path[last..].iter().position(|&b| b == b';') {
        Some(semi) => &path[..last + semi],
        None => path,
    }
}

/// Whether the SDK can sign this path: absolute, visible ASCII, a query of at most
/// `MAX_PAIRS` pairs that decodes to ASCII.
fn signable(path: &[u8]) -> bool {
    let path = path.split(|&b| b == b'#').next().unwrap_or_default();
    if path.first() != Some(&b'/') || !path.iter().all(u8::is_ascii_graphic) {
        return false;
    }
    let query = match path.iter().position(|&b| b == b'?') {
        Some(q) => &path[q + 1..],
        None => &[][..],
    };
    form::parse(query, form::MAX_PAIRS)
        .is_ok_and(|pairs| pairs.iter().all(|(k, v)| k.is_ascii() && v.is_ascii()))
}

fuzz_target!(|data: &[u8]| {
    let (method_line, rest) = split_line(data);
    let (path, body) = split_line(rest);
    let method = Method::from_bytes(method_line).unwrap_or(if method_line.len() % 2 == 0 {
        Method::Get
    } else {
        Method::Post
    });
    let params = form::parse(body, form::MAX_PAIRS).unwrap_or_default();
    for origin in ORIGINS {
        let url = match signed_url(method, origin, path, &params) {
            Ok(url) => url,
            Err(rejection) => {
                assert_eq!(rejection.reason, Reason::MalformedHeader);
                assert!(!signable(path), "refused a signable path");
                continue;
            }
        };
        assert!(signable(path), "signed an unsignable path");
        assert!(
            url.starts_with(origin),
            "url does not start with the origin"
        );
        let rest = &url[origin.len()..];
        let kept = kept_path(path);
        assert!(rest.starts_with(kept));
        assert!(matches!(rest.get(kept.len()), None | Some(b'?')));

        // Sorted parameters: their order in the body does not matter.
        let mut reversed = params.clone();
        reversed.reverse();
        assert_eq!(
            signed_url(method, origin, path, &reversed).as_ref(),
            Ok(&url)
        );

        // Without query and parameters it is the docs' base URL, `origin ‖ path`.
        if params.is_empty() && !path.contains(&b'?') && !path.contains(&b'#') {
            assert_eq!(rest, kept);
        }
        // A body parameter the query cannot carry (its names are ASCII) only adds to it.
        if params.is_empty() {
            let with_body = [("\u{e9}".to_string(), "1".to_string())];
            let more = signed_url(method, origin, path, &with_body);
            assert!(more.is_ok_and(|more| more.len() > url.len()));
        }
    }
});
