//! `form::parse` / `form::decode` on arbitrary bytes. Never panics; the pair bound is exact;
//! the result equals a reference decoder written the way Python's `parse_qsl` works (decode
//! the text, then unquote ASCII runs); text without `%` and `+` decodes to itself; and any
//! parsed pairs, re-encoded, parse back to themselves.
#![no_main]

use callback_guard::form;
use libfuzzer_sys::fuzz_target;

/// Percent-encodes everything but the unreserved characters; space as `+`.
fn encode(text: &str, out: &mut Vec<u8>) {
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
    }
}

fn encode_pairs(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        encode(name, &mut out);
        out.push(b'=');
        encode(value, &mut out);
    }
    out
}

/// Python's `unquote(text.replace('+', ' '))`: escapes decoded to bytes within each run of
/// ASCII characters, each run's bytes read as UTF-8 with replacement.
fn reference_unquote(text: &str) -> String {
    let text = text.replace('+', " ");
    let mut out = String::new();
    let mut run: Vec<u8> = Vec::new();
    let flush = |run: &mut Vec<u8>, out: &mut String| {
        let bytes = std::mem::take(run);
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let escape = (bytes[i] == b'%')
                .then(|| bytes.get(i + 1..i + 3))
                .flatten()
                .and_then(|h| std::str::from_utf8(h).ok())
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match escape {
                Some(byte) => {
                    decoded.push(byte);
                    i += 3;
                }
                None => {
                    decoded.push(bytes[i]);
                    i += 1;
                }
            }
        }
        out.push_str(&String::from_utf8_lossy(&decoded));
    };
    for c in text.chars() {
        if c.is_ascii() {
            run.push(c as u8);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// `parse_qsl(raw.decode('utf-8', 'replace'), keep_blank_values=True)`.
fn reference_parse(raw: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(raw)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (reference_unquote(name), reference_unquote(value)),
            None => (reference_unquote(pair), String::new()),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let pieces = data.split(|&b| b == b'&').filter(|p| !p.is_empty()).count();
    match form::parse(data, 3) {
        Ok(pairs) => assert!(pieces <= 3 && pairs.len() == pieces),
        Err(e) => assert!(pieces > 3 && e.limit == 3),
    }
    let pairs = match form::parse(data, pieces) {
        Ok(pairs) => pairs,
        Err(e) => panic!("{pieces} pairs refused with limit {pieces}: {e:?}"),
    };
    assert_eq!(pairs, reference_parse(data));

    // Whatever was parsed survives encode -> parse unchanged.
    let encoded = encode_pairs(&pairs);
    assert!(encoded.is_ascii());
    assert_eq!(form::parse(&encoded, pieces).ok(), Some(pairs));

    // Text with nothing to unescape is its own decoding.
    if let Ok(text) = std::str::from_utf8(data) {
        if !text.contains(['%', '+']) {
            assert_eq!(form::decode(data), text);
        }
    }
    let decoded = form::decode(data);
    assert!(decoded.len() <= data.len() * 3);
});
