//! How servers may read a request's path: the view the filter decides protection on.
//!
//! The filter decides on the path Envoy hands it; the application acts on the path its own
//! server decodes, and servers disagree. WSGI and ASGI servers decode `%2F` into `/` before
//! routing; servlet containers drop `;parameters` from every segment (so `/x/..;/a` is
//! `/a`); IIS reads `\` and `%u002F` as slashes; Express and ASP.NET match letter case
//! insensitively, Go's `EqualFold` matches `ſ` with `s` and the Kelvin sign with `k`; some
//! stacks decode twice, merge `//`, drop trailing dots from segments, or resolve `..` after
//! decoding. A request is protected when *any* such reading could put it under a protected
//! prefix: [`PathView::could_reach`] over-approximates them all.
//!
//! Every reading is built from these operations, in some order: decode escapes (`%XX`,
//! IIS's `%uXXXX`, once or repeatedly), fold look-alikes and letter case, read `\` as `/`,
//! drop `;parameters` (before or after decoding), merge repeated slashes, trim trailing dots
//! and spaces from segments, resolve dot segments. All but the last keep a protected prefix
//! a prefix (it has none of these features, see [`Prefix::new`]), and the two orders of
//! parameter dropping are the only ones that end differently. So, over the two fullest
//! readings (everything decoded and folded; parameters dropped after or before decoding):
//!
//! * without dot segments, a server's reading starts with the prefix only if one of the two
//!   does;
//! * with dot segments, resolving them can only remove segments, so the prefix's segments
//!   must appear, in order, among a reading's segments.
//!
//! A path with none of the features (the hot path: every canonical callback) is read alike
//! by every server up to letter case and is judged without allocating.

use crate::form::hex_digit;

/// What makes a path read differently by different servers. Several can be present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Features(u16);

impl Features {
    /// `%2F` or `%5C`: a slash to servers that decode before routing, text to the rest.
    pub const ENCODED_SLASH: Features = Features(1);
    /// `\`: a slash to IIS, Windows servers and WHATWG URL parsers.
    pub const BACKSLASH: Features = Features(1 << 1);
    /// `;` (raw or `%3B`): servlet containers drop it with the rest of the segment.
    pub const PATH_PARAMETER: Features = Features(1 << 2);
    /// `.` or `..` as a segment, also encoded (`%2e`) or with parameters (`..;x`).
    pub const DOT_SEGMENT: Features = Features(1 << 3);
    /// `//`: merged by some servers, an empty segment to others.
    pub const REPEATED_SLASH: Features = Features(1 << 4);
    /// `%25`: an escape of an escape, decoded again by some stacks.
    pub const DOUBLE_ENCODING: Features = Features(1 << 5);
    /// An escape of a letter, digit or `-._~`, which normalising servers decode.
    pub const ENCODED_UNRESERVED: Features = Features(1 << 6);
    /// A control character (raw or encoded), dropped or cut at by some parsers.
    pub const CONTROL_CHARACTER: Features = Features(1 << 7);
    /// Non-ASCII that some servers read as ASCII: `ı`, `İ`, `ſ`, the Kelvin sign,
    /// fullwidth forms, overlong UTF-8.
    pub const LOOK_ALIKE: Features = Features(1 << 8);
    /// IIS's `%uXXXX` escape.
    pub const IIS_ESCAPE: Features = Features(1 << 9);
    /// `#`: the end of the path to parsers that cut fragments.
    pub const FRAGMENT: Features = Features(1 << 10);
    /// No leading `/`.
    pub const RELATIVE: Features = Features(1 << 11);
    /// A segment ending in `.` or a space, which Windows servers drop.
    pub const TRAILING_DOT: Features = Features(1 << 12);
    /// Letters in another case than the prefix's (reported for a path that reaches a prefix
    /// only case-insensitively).
    pub const LETTER_CASE: Features = Features(1 << 13);
    /// `X-Original-URL` or `X-Rewrite-URL`, which some servers route on instead of the path.
    pub const PATH_OVERRIDE: Features = Features(1 << 14);

    const NAMES: [(Features, &'static str); 15] = [
        (Features::ENCODED_SLASH, "encoded slash"),
        (Features::BACKSLASH, "backslash"),
        (Features::PATH_PARAMETER, "path parameter"),
        (Features::DOT_SEGMENT, "dot segment"),
        (Features::REPEATED_SLASH, "repeated slash"),
        (Features::DOUBLE_ENCODING, "double encoding"),
        (Features::ENCODED_UNRESERVED, "encoded unreserved character"),
        (Features::CONTROL_CHARACTER, "control character"),
        (Features::LOOK_ALIKE, "look-alike character"),
        (Features::IIS_ESCAPE, "%u escape"),
        (Features::FRAGMENT, "fragment"),
        (Features::RELATIVE, "relative path"),
        (Features::TRAILING_DOT, "trailing dot or space"),
        (Features::LETTER_CASE, "letter case"),
        (Features::PATH_OVERRIDE, "path override header"),
    ];

    /// Features that only widen what a path may reach: a path with these alone, under a
    /// prefix as sent, is read under that prefix by every server.
    const WIDENING: Features = Features(Features::TRAILING_DOT.0 | Features::LETTER_CASE.0);

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    fn add(&mut self, other: Features) {
        self.0 |= other.0;
    }

    /// The features that can move a path from one prefix to another, or out of one.
    pub fn ambiguous(self) -> Features {
        Features(self.0 & !Features::WIDENING.0)
    }

    /// Names for a log line: "encoded slash, dot segment".
    pub fn names(self) -> String {
        let names: Vec<&str> = Features::NAMES
            .iter()
            .filter(|(feature, _)| self.contains(*feature))
            .map(|(_, name)| *name)
            .collect();
        names.join(", ")
    }
}

impl std::ops::BitOr for Features {
    type Output = Features;
    fn bitor(self, other: Features) -> Features {
        Features(self.0 | other.0)
    }
}

/// A protected path prefix, checked canonical at configuration time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    raw: String,
    /// Lowercase, as every reading is.
    folded: Vec<u8>,
    /// The folded prefix's segments after the leading `/`; the last is matched as the start
    /// of a segment (empty for a prefix ending in `/`).
    pieces: Vec<Vec<u8>>,
}

impl Prefix {
    /// A prefix must be in the one spelling every server reads alike, so that readings
    /// keep it intact; the error says why it is not.
    pub fn new(raw: &str) -> Result<Prefix, &'static str> {
        if !raw.starts_with('/') {
            return Err("must start with '/'");
        }
        if raw
            .bytes()
            .any(|b| !b.is_ascii_graphic() || matches!(b, b'?' | b'#'))
        {
            return Err("must be a path without query, fragment, whitespace or non-ASCII");
        }
        let features = scan(raw.as_bytes());
        if !features.is_empty() || raw.contains('%') {
            return Err(
                "must be canonical: no escapes, ';', '\\', '//', dot segments or segments ending in '.' (servers read those differently)",
            );
        }
        let folded = raw.to_ascii_lowercase().into_bytes();
        let pieces = folded[1..]
            .split(|&b| b == b'/')
            .map(<[u8]>::to_vec)
            .collect();
        Ok(Prefix {
            raw: raw.to_string(),
            folded,
            pieces,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether `path` (as sent, query cut) starts with the prefix byte for byte.
    pub fn is_prefix_of(&self, path: &[u8]) -> bool {
        path.starts_with(self.raw.as_bytes())
    }

    /// Whether the prefix's segments appear in order among `reading`'s, the last as the
    /// start of a segment.
    fn is_subsequence_of(&self, reading: &[u8]) -> bool {
        let Some((last, whole)) = self.pieces.split_last() else {
            return true;
        };
        let mut wanted = whole.iter().peekable();
        for segment in reading.get(1..).unwrap_or_default().split(|&b| b == b'/') {
            match wanted.peek() {
                Some(piece) if segment == piece.as_slice() => {
                    wanted.next();
                }
                Some(_) => {}
                None if segment.starts_with(last) => return true,
                None => {}
            }
        }
        wanted.peek().is_none() && last.is_empty()
    }
}

/// One request path, as sent and as servers may read it.
#[derive(Debug)]
pub struct PathView<'a> {
    /// As sent, up to the query.
    raw: &'a [u8],
    features: Features,
    /// For a path with features: its two fullest readings (parameters dropped after, then
    /// before decoding). Canonical paths need none.
    readings: Option<[Reading; 2]>,
}

#[derive(Debug)]
struct Reading {
    /// Decoded, folded to lowercase, `/`-separated, slashes merged, segments trimmed.
    path: Vec<u8>,
    dot_segments: bool,
}

/// Escapes of escapes are decoded this many times at most; a path nested deeper is read as
/// it stands after that (no server decodes more often).
const DECODE_ROUNDS: usize = 8;

impl<'a> PathView<'a> {
    /// The view of a `:path` value (its query is not part of it).
    pub fn new(path: &'a [u8]) -> Self {
        let raw = match path.iter().position(|&b| b == b'?') {
            Some(query) => &path[..query],
            None => path,
        };
        let mut features = scan(raw);
        let plain = features.is_empty() && raw.iter().all(|&b| b != b'%' && b.is_ascii());
        let readings = if plain {
            None
        } else {
            let decoded_after = read(raw, false, &mut features);
            let decoded_before = read(raw, true, &mut Features::default());
            Some([decoded_after, decoded_before])
        };
        PathView {
            raw,
            features,
            readings,
        }
    }

    /// The path as sent, without its query.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Everything servers could read differently in this path.
    pub fn features(&self) -> Features {
        self.features
    }

    /// Whether any mainstream server could route this path under `prefix`.
    pub fn could_reach(&self, prefix: &Prefix) -> bool {
        let Some(readings) = &self.readings else {
            return self.raw.len() >= prefix.folded.len()
                && self.raw[..prefix.folded.len()].eq_ignore_ascii_case(&prefix.folded);
        };
        readings.iter().any(|reading| {
            if reading.dot_segments {
                prefix.is_subsequence_of(&reading.path)
            } else {
                reading.path.starts_with(&prefix.folded)
            }
        })
    }
}

/// The features visible without decoding. Cheap: one pass, no allocation.
fn scan(raw: &[u8]) -> Features {
    let mut features = Features::default();
    if raw.first() != Some(&b'/') {
        features.add(Features::RELATIVE);
    }
    let mut segment_start = 0;
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b'\\' => features.add(Features::BACKSLASH),
            b';' => features.add(Features::PATH_PARAMETER),
            b'#' => features.add(Features::FRAGMENT),
            0..=0x1f | 0x7f | b' ' => features.add(Features::CONTROL_CHARACTER),
            b'/' => {
                features.add(segment_features(&raw[segment_start..i], i > 0));
                segment_start = i + 1;
            }
            _ => {}
        }
    }
    features.add(segment_features(&raw[segment_start..], false));
    features
}

/// What one raw segment shows: `followed` tells a `//` (an empty segment before a slash)
/// from the end of the path.
fn segment_features(segment: &[u8], followed: bool) -> Features {
    match segment {
        [] if followed => Features::REPEATED_SLASH,
        [] => Features::default(),
        b"." | b".." => Features::DOT_SEGMENT,
        [.., b'.'] => Features::TRAILING_DOT,
        _ => Features::default(),
    }
}

/// One of the two fullest readings of a path that has features, noting what decoding and
/// folding revealed in `features`.
fn read(raw: &[u8], parameters_before_decoding: bool, features: &mut Features) -> Reading {
    let mut path = if parameters_before_decoding {
        drop_parameters(raw)
    } else {
        raw.to_vec()
    };
    for _ in 0..DECODE_ROUNDS {
        let decoded = decode(&path, features);
        let folded = fold(decoded.as_deref().unwrap_or(&path), features);
        match (decoded, folded) {
            (None, None) => break,
            (_, Some(next)) | (Some(next), None) => path = next,
        }
    }
    for b in &mut path {
        *b = match *b {
            b'\\' => b'/',
            other => other.to_ascii_lowercase(),
        };
    }
    // WHATWG URL parsers drop tabs and newlines wherever they are; dropping every control
    // character covers them and any stack that strips NULs.
    path.retain(|b| !b.is_ascii_control());
    if !parameters_before_decoding {
        path = drop_parameters(&path);
    }
    segments(&path, features)
}

/// `path` with every `;` up to the next `/` removed, as servlet containers do.
fn drop_parameters(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut in_parameter = false;
    for &b in path {
        match b {
            b';' => in_parameter = true,
            b'/' => {
                in_parameter = false;
                out.push(b);
            }
            _ if !in_parameter => out.push(b),
            _ => {}
        }
    }
    out
}

/// Merges slashes and trims trailing dots and spaces from each segment (pure-dot segments
/// stay: they are dot segments). A slash after the last segment is kept.
fn segments(path: &[u8], features: &mut Features) -> Reading {
    let mut out = Vec::with_capacity(path.len() + 1);
    let mut dot_segments = false;
    let mut slash_after = false;
    for (i, segment) in path.split(|&b| b == b'/').enumerate() {
        slash_after |= i > 0;
        let trimmed = if segment.iter().all(|&b| b == b'.') {
            segment
        } else {
            let end = segment
                .iter()
                .rposition(|&b| !matches!(b, b'.' | b' '))
                .map_or(0, |last| last + 1);
            if end != segment.len() {
                features.add(Features::TRAILING_DOT);
            }
            &segment[..end]
        };
        if trimmed.is_empty() {
            continue;
        }
        if matches!(trimmed, b"." | b"..") {
            dot_segments = true;
            features.add(Features::DOT_SEGMENT);
        }
        out.push(b'/');
        out.extend_from_slice(trimmed);
        slash_after = false;
    }
    if slash_after || out.is_empty() {
        out.push(b'/');
    }
    Reading {
        path: out,
        dot_segments,
    }
}

/// One round of decoding `%XX` and `%uXXXX`; `None` when there was nothing to decode.
fn decode(path: &[u8], features: &mut Features) -> Option<Vec<u8>> {
    if !path.contains(&b'%') {
        return None;
    }
    let mut out = Vec::with_capacity(path.len());
    let mut changed = false;
    let mut i = 0;
    while i < path.len() {
        let rest = &path[i..];
        if let [b'%', b'u' | b'U', a, b, c, d, ..] = *rest {
            if let (Some(a), Some(b), Some(c), Some(d)) =
                (hex_digit(a), hex_digit(b), hex_digit(c), hex_digit(d))
            {
                let code =
                    u32::from(a) << 12 | u32::from(b) << 8 | u32::from(c) << 4 | u32::from(d);
                let ch = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                features.add(Features::IIS_ESCAPE);
                if ch.is_ascii() {
                    note_decoded(ch as u8, features);
                }
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                changed = true;
                i += 6;
                continue;
            }
        }
        if let [b'%', a, b, ..] = *rest {
            if let (Some(a), Some(b)) = (hex_digit(a), hex_digit(b)) {
                let byte = a << 4 | b;
                note_decoded(byte, features);
                out.push(byte);
                changed = true;
                i += 3;
                continue;
            }
        }
        out.push(path[i]);
        i += 1;
    }
    changed.then_some(out)
}

fn note_decoded(byte: u8, features: &mut Features) {
    features.add(match byte {
        b'/' | b'\\' => Features::ENCODED_SLASH,
        b';' => Features::PATH_PARAMETER,
        b'%' => Features::DOUBLE_ENCODING,
        0..=0x1f | 0x7f => Features::CONTROL_CHARACTER,
        b'#' => Features::FRAGMENT,
        b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
            Features::ENCODED_UNRESERVED
        }
        _ => return,
    });
}

/// Replaces the non-ASCII sequences some servers read as ASCII; `None` when there were none.
fn fold(path: &[u8], features: &mut Features) -> Option<Vec<u8>> {
    if path.is_ascii() {
        return None;
    }
    let mut out = Vec::with_capacity(path.len());
    let mut changed = false;
    let mut i = 0;
    while i < path.len() {
        let (ascii, len) = match path[i..] {
            // Overlong encodings of ASCII, which lenient decoders accept.
            [lead @ (0xc0 | 0xc1), cont, ..] if cont & 0xc0 == 0x80 => {
                (((lead & 0x1f) << 6) | (cont & 0x3f), 2)
            }
            [0xe0, second @ 0x80..=0x81, cont, ..] if cont & 0xc0 == 0x80 => {
                (((second & 0x3f) << 6) | (cont & 0x3f), 3)
            }
            // ı (dotless i) and İ, ſ (long s), K (Kelvin sign): equal to ASCII letters
            // under Unicode case folding.
            [0xc4, 0xb0 | 0xb1, ..] => (b'i', 2),
            [0xc5, 0xbf, ..] => (b's', 2),
            [0xe2, 0x84, 0xaa, ..] => (b'k', 3),
            // Fullwidth forms U+FF01..U+FF5E, which compatibility normalisation maps to ASCII.
            [0xef, 0xbc, low @ 0x81..=0xbf, ..] => (low - 0x81 + 0x21, 3),
            [0xef, 0xbd, low @ 0x80..=0x9e, ..] => (low - 0x80 + 0x60, 3),
            _ => {
                out.push(path[i]);
                i += 1;
                continue;
            }
        };
        features.add(Features::LOOK_ALIKE);
        out.push(ascii);
        changed = true;
        i += len;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(raw: &str) -> Prefix {
        Prefix::new(raw).unwrap()
    }

    fn reaches(path: &str, raw_prefix: &str) -> bool {
        PathView::new(path.as_bytes()).could_reach(&prefix(raw_prefix))
    }

    fn features(path: &str) -> Features {
        PathView::new(path.as_bytes()).features()
    }

    #[test]
    fn canonical_paths_have_no_features_and_need_no_reading() {
        for path in [
            "/vobiz/hangup",
            "/",
            "/a.b/c-d_e~f",
            "/vobiz/answer?x=%2F&y=..",
            "/VOBIZ/x",
        ] {
            let view = PathView::new(path.as_bytes());
            assert!(view.features().is_empty(), "{path}: {:?}", view.features());
            assert!(view.readings.is_none(), "{path}");
        }
        assert_eq!(PathView::new(b"/vobiz/answer?x=1").raw(), b"/vobiz/answer");
    }

    #[test]
    fn every_spelling_of_the_issue_reaches_the_prefix() {
        let cases: &[(&str, Features)] = &[
            ("/vobiz%2Fhangup", Features::ENCODED_SLASH),
            ("/vobiz%2fhangup", Features::ENCODED_SLASH),
            ("/vobiz%5Changup", Features::ENCODED_SLASH),
            ("/vobiz\\hangup", Features::BACKSLASH),
            ("/vobiz;x/hangup", Features::PATH_PARAMETER),
            ("/vobiz%3Bx/hangup", Features::PATH_PARAMETER),
            (
                "/x/..;/vobiz/hangup",
                Features::PATH_PARAMETER | Features::DOT_SEGMENT,
            ),
            ("/x/../vobiz/hangup", Features::DOT_SEGMENT),
            (
                "/x/%2e%2e/vobiz/hangup",
                Features::DOT_SEGMENT | Features::ENCODED_UNRESERVED,
            ),
            ("/./vobiz/hangup", Features::DOT_SEGMENT),
            ("//vobiz/hangup", Features::REPEATED_SLASH),
            (
                "/vobiz%252Fhangup",
                Features::DOUBLE_ENCODING | Features::ENCODED_SLASH,
            ),
            ("/vob%69z/hangup", Features::ENCODED_UNRESERVED),
            (
                "/vobiz%u002fhangup",
                Features::IIS_ESCAPE | Features::ENCODED_SLASH,
            ),
            ("/vob\u{131}z/hangup", Features::LOOK_ALIKE),
            ("/vob%C4%B1z/hangup", Features::LOOK_ALIKE),
            ("/vobiz%C0%AFhangup", Features::LOOK_ALIKE),
            ("/vobiz\u{ff0f}hangup", Features::LOOK_ALIKE),
            ("/vobiz./hangup", Features::TRAILING_DOT),
            ("/vobiz%20/hangup", Features::TRAILING_DOT),
            ("/vob%09iz/hangup", Features::CONTROL_CHARACTER),
            ("/vobiz%00/hangup", Features::CONTROL_CHARACTER),
            ("vobiz/hangup", Features::RELATIVE),
        ];
        for (path, expected) in cases {
            assert!(reaches(path, "/vobiz/"), "{path} must reach /vobiz/");
            assert!(
                features(path).contains(*expected),
                "{path}: {} lacks {}",
                features(path).names(),
                expected.names()
            );
        }
        assert!(reaches("/VOBIZ/hangup", "/vobiz/"));
        assert!(reaches("/Vobiz/Hangup", "/vobiz/"));
    }

    #[test]
    fn a_tomcat_reading_that_drops_a_decoded_slash_with_its_parameter_is_covered() {
        // Parameters dropped before decoding: `/api/hooks/x`; after: `/api/y/hooks/x`.
        assert!(reaches("/api;x%2Fy/hooks/x", "/api/hooks/"));
        // Decoded before dropping: `/api/hooks/x`; dropped first: `/api;/hooks/x` stays.
        assert!(reaches("/api%3B/hooks/x", "/api/hooks/"));
    }

    #[test]
    fn dot_segments_that_a_server_resolves_after_partial_decoding_are_covered() {
        // Decoded once, `a%2Fb` is one segment popped by `..`; fully decoded it is two.
        assert!(reaches("/a%252Fb/../vobiz/x", "/vobiz/"));
        // Kestrel: decodes all but %2F, then resolves.
        assert!(reaches("/a%2Fb/%2e%2e/vobiz/x", "/vobiz/"));
        assert!(reaches("/a/b/../../api/x/../hooks/y", "/api/hooks/"));
    }

    #[test]
    fn unrelated_paths_stay_unprotected_even_when_odd() {
        for path in [
            "/other/hangup",
            "/vobizz/hangup",
            "/static/a%2Fb/logo.png",
            "/x/../other",
            "/v/obiz/hangup",
            "/vobiz",
            "/%76obi",
        ] {
            assert!(!reaches(path, "/vobiz/"), "{path}");
        }
        // A prefix without a trailing slash reaches any segment that starts with it.
        assert!(reaches("/vobizzz", "/vobiz"));
    }

    #[test]
    fn dot_segments_may_only_remove_segments_so_order_still_counts() {
        assert!(!reaches("/hooks/../api/x", "/api/hooks/"));
        assert!(reaches("/api/../hooks/../api/hooks/x", "/api/hooks/"));
    }

    #[test]
    fn widening_features_are_not_ambiguous() {
        let found = features("/vobiz/hangup.");
        assert!(found.contains(Features::TRAILING_DOT));
        assert!(found.ambiguous().is_empty());
        assert!(!features("/vobiz/%2e%2e/x").ambiguous().is_empty());
    }

    #[test]
    fn legitimate_escapes_and_utf8_are_no_features() {
        assert!(features("/vobiz/my%20call").is_empty());
        assert!(features("/vobiz/caf%C3%A9").is_empty());
        assert!(features("/vobiz/café").is_empty());
    }

    #[test]
    fn decoding_is_bounded() {
        let mut path = String::from("/x/%2F");
        for _ in 0..20 {
            path = path.replace('%', "%25");
        }
        let view = PathView::new(path.as_bytes());
        assert!(view.features().contains(Features::DOUBLE_ENCODING));
    }

    #[test]
    fn prefixes_must_be_canonical() {
        for bad in [
            "vobiz/", "/a%2Fb/", "/a;b/", "/a\\b", "//a/", "/a/./b", "/a/../", "/a./", "/a b",
            "/a?b", "/é/",
        ] {
            assert!(Prefix::new(bad).is_err(), "{bad}");
        }
        for good in ["/", "/vobiz/", "/Vobiz/x", "/v1.2/hooks", "/a-b_c~d"] {
            assert!(Prefix::new(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn names_list_every_feature() {
        let both = Features::ENCODED_SLASH | Features::DOT_SEGMENT;
        assert_eq!(both.names(), "encoded slash, dot segment");
    }
}
