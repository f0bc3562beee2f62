//! `application/x-www-form-urlencoded` bodies and query strings, decoded exactly as
//! Python's `urllib.parse.parse_qsl(text, keep_blank_values=True)` (3.10+) decodes them,
//! because the Plivo SDK signs what that function returns.
//!
//! The input is raw bytes from the wire: nothing here assumes UTF-8 or panics.

/// Default bound on the pairs one body or query may carry; real callbacks have about 25.
pub const MAX_PAIRS: usize = 1000;

/// The input had more than `limit` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyPairs {
    pub limit: usize,
}

/// Decoded `(name, value)` pairs in input order, repeated names kept.
///
/// Pairs are split on `&` only (Python 3.10 dropped `;`); empty pairs are skipped; a pair
/// without `=` has an empty value; only the first `=` separates name from value.
pub fn parse(input: &[u8], max_pairs: usize) -> Result<Vec<(String, String)>, TooManyPairs> {
    let mut pairs = Vec::new();
    for pair in input.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        if pairs.len() == max_pairs {
            return Err(TooManyPairs { limit: max_pairs });
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        pairs.push((decode(name), decode(value)));
    }
    Ok(pairs)
}

/// A name given more than once, where the reader needs exactly one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeated;

/// The one value of `name` among `pairs`: `None` if absent, `Repeated` if given twice (a
/// reader of the first and a reader of the last would disagree).
pub fn single<'p>(pairs: &'p [(String, String)], name: &str) -> Result<Option<&'p str>, Repeated> {
    let mut values = pairs.iter().filter(|(n, _)| n == name);
    match (values.next(), values.next()) {
        (Some((_, value)), None) => Ok(Some(value)),
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(Repeated),
    }
}

/// One name or value: `+` is a space, `%XX` a byte, anything else itself; the bytes are
/// then read as UTF-8 with U+FFFD for invalid sequences.
///
/// Python decodes the text in runs: percent-escapes within an ASCII run become bytes that
/// are decoded on their own, never joined with raw non-ASCII bytes next to them. So
/// `%C3` followed by a raw `\xA9` is two replacement characters, not `é`.
pub fn decode(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(first) = rest.first() {
        let ascii = first.is_ascii();
        let end = rest
            .iter()
            .position(|b| b.is_ascii() != ascii)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(end);
        if ascii {
            out.push_str(&String::from_utf8_lossy(&unescape(run)));
        } else {
            out.push_str(&String::from_utf8_lossy(run));
        }
        rest = tail;
    }
    out
}

/// `+` to space and `%XX` (either case) to its byte; an invalid escape stays literal.
fn unescape(run: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(run.len());
    let mut i = 0;
    while let Some(&b) = run.get(i) {
        let escaped = match b {
            b'%' => digit(run.get(i + 1)).zip(digit(run.get(i + 2))),
            _ => None,
        };
        match (b, escaped) {
            (_, Some((high, low))) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn digit(b: Option<&u8>) -> Option<u8> {
    hex_digit(*b?)
}

/// Hex digits, either case, as the bytes they spell.
pub(crate) fn hex(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks_exact(2)
        .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
        .collect()
}

/// The value of one hex digit, either case: for every decoder of `%XX` and hex signatures.
pub(crate) fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(input: &[u8]) -> Vec<(String, String)> {
        parse(input, MAX_PAIRS).unwrap()
    }

    fn one(input: &[u8]) -> String {
        let mut all = pairs(input);
        assert_eq!(all.len(), 1, "{input:?}");
        all.remove(0).1
    }

    fn owned(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // Every expectation below is what Python 3.11's
    // `parse_qsl(raw.decode('utf-8', 'replace'), keep_blank_values=True)` returns.

    #[test]
    fn splits_on_ampersand_only() {
        assert_eq!(pairs(b"a=1&b=2"), owned(&[("a", "1"), ("b", "2")]));
        assert_eq!(pairs(b"a=1;b=2"), owned(&[("a", "1;b=2")]));
    }

    #[test]
    fn keeps_blank_values_and_skips_empty_pairs() {
        assert_eq!(
            pairs(b"&&a&=&=x&b="),
            owned(&[("a", ""), ("", ""), ("", "x"), ("b", "")])
        );
        assert_eq!(pairs(b"a==b=c"), owned(&[("a", "=b=c")]));
        assert!(pairs(b"").is_empty());
        assert!(pairs(b"&&&").is_empty());
    }

    #[test]
    fn plus_is_space_but_escaped_plus_is_plus() {
        assert_eq!(pairs(b"a+b=c+d%20e"), owned(&[("a b", "c d e")]));
        assert_eq!(pairs(b"%2B=%2b+"), owned(&[("+", "+ ")]));
    }

    #[test]
    fn invalid_escapes_stay_literal() {
        assert_eq!(one(b"x=%zz%4%41%%41%"), "%zz%4A%A%");
    }

    #[test]
    fn utf8_is_decoded_with_replacement_like_python() {
        assert_eq!(one(b"k=%C3%A9"), "é");
        assert_eq!(one(b"k=%C3"), "\u{FFFD}");
        assert_eq!(one(b"k=%C3\xa9"), "\u{FFFD}\u{FFFD}");
        assert_eq!(one(b"k=\xff\xfe"), "\u{FFFD}\u{FFFD}");
        assert_eq!(one(b"k=%e2%82%ac%E2%82"), "€\u{FFFD}");
        assert_eq!(
            pairs(b"\xc3\xa9=%FF%fe"),
            owned(&[("é", "\u{FFFD}\u{FFFD}")])
        );
    }

    #[test]
    fn observed_vobiz_session_start_decodes() {
        assert_eq!(
            one(b"SessionStart=2026-06-08+06%3A07%3A34.130248"),
            "2026-06-08 06:07:34.130248"
        );
    }

    #[test]
    fn pair_count_is_bounded() {
        let body = "a=1&".repeat(3);
        assert_eq!(parse(body.as_bytes(), 3).map(|p| p.len()), Ok(3));
        let body = "a=1&".repeat(4);
        assert_eq!(parse(body.as_bytes(), 3), Err(TooManyPairs { limit: 3 }));
        // Empty pairs cost nothing and do not count.
        assert_eq!(parse(&[b'&'; 10_000], 3), Ok(Vec::new()));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut input = Vec::new();
        for i in 0..=255u8 {
            input.extend_from_slice(&[i, b'%', i, b'=', b'%', b'+', i]);
        }
        for end in 0..input.len() {
            let _ = parse(&input[..end], MAX_PAIRS);
            let _ = decode(&input[end..]);
        }
    }
}
