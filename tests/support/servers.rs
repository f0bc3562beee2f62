//! How mainstream application servers route a request path, written independently of
//! `callback_guard::path_view` as an oracle for it: each model turns the path as sent into
//! the path its server matches routes on, and says whether that match ignores letter case.
//! Shared by `tests/properties.rs` and the `path_view` fuzz target (included by `#[path]`).
#![allow(dead_code)]

/// One server's reading of a path.
pub struct Routed {
    pub server: &'static str,
    pub path: Vec<u8>,
    pub ignores_case: bool,
}

impl Routed {
    /// Whether this server would route the path under `prefix`.
    pub fn under(&self, prefix: &str) -> bool {
        let prefix = prefix.as_bytes();
        self.path.len() >= prefix.len()
            && if self.ignores_case {
                self.path[..prefix.len()].eq_ignore_ascii_case(prefix)
            } else {
                &self.path[..prefix.len()] == prefix
            }
    }
}

/// What every modelled server routes `path` (query already cut) to.
pub fn readings(path: &[u8]) -> Vec<Routed> {
    let routed = |server, path, ignores_case| Routed {
        server,
        path,
        ignores_case,
    };
    vec![
        // Express, Rails, Go's ServeMux: the path as sent (Express ignores case).
        routed("express", path.to_vec(), true),
        // gunicorn/uvicorn + Flask, Django, Starlette: PATH_INFO decoded once, %2F included.
        routed("wsgi", unescape(path, true), false),
        // Tomcat, Jetty, Spring: `;parameters` dropped per raw segment, decoded (with
        // ALLOW_ENCODED_SLASH), dot segments resolved, slashes merged.
        routed(
            "servlet",
            merge_slashes(&resolve_dots(&unescape(&strip_parameters(path), true))),
            false,
        ),
        // nginx location matching: decoded, slashes merged, dot segments resolved.
        routed(
            "nginx",
            resolve_dots(&merge_slashes(&unescape(path, true))),
            false,
        ),
        // Kestrel / ASP.NET Core: decoded except %2F, dot segments resolved, case ignored.
        routed("kestrel", resolve_dots(&unescape(path, false)), true),
        // IIS: %uXXXX too, `\` is `/`, dot segments resolved, trailing dots dropped, case
        // ignored, Unicode upper-casing (ı -> I, ſ -> S, K -> K).
        routed(
            "iis",
            trim_trailing_dots(&resolve_dots(&backslashes(&fold_unicode(&unescape_iis(
                path,
            ))))),
            true,
        ),
        // A stack that decodes twice (a proxy and a framework each decoding).
        routed(
            "double-decode",
            resolve_dots(&unescape(&unescape(path, true), true)),
            true,
        ),
        // WHATWG URL parser (Node's `new URL`, Deno): tabs and newlines dropped, `\` is
        // `/`, `.`/`%2e` segments resolved, nothing else decoded.
        routed("whatwg", whatwg(path), false),
        // Go's `strings.EqualFold` on the decoded path: ſ is s, the Kelvin sign is k.
        routed("go-equalfold", fold_unicode(&unescape(path, true)), true),
    ]
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// One pass of `%XX` decoding; `%2F` stays encoded unless `slashes`.
fn unescape(path: &[u8], slashes: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' && i + 2 < path.len() {
            if let (Some(h), Some(l)) = (hex(path[i + 1]), hex(path[i + 2])) {
                let byte = h * 16 + l;
                if slashes || byte != b'/' {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(path[i]);
        i += 1;
    }
    out
}

/// `%XX` and IIS's `%uXXXX`, one pass.
fn unescape_iis(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' && matches!(path.get(i + 1), Some(b'u' | b'U')) && i + 5 < path.len() {
            let digits: Option<Vec<u8>> = path[i + 2..i + 6].iter().map(|&b| hex(b)).collect();
            if let Some(d) = digits {
                let code = d.iter().fold(0u32, |acc, &x| acc * 16 + u32::from(x));
                let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                let mut buffer = [0; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buffer).as_bytes());
                i += 6;
                continue;
            }
        }
        if path[i] == b'%' && i + 2 < path.len() {
            if let (Some(h), Some(l)) = (hex(path[i + 1]), hex(path[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(path[i]);
        i += 1;
    }
    out
}

fn strip_parameters(path: &[u8]) -> Vec<u8> {
    path.split(|&b| b == b'/')
        .map(|segment| match segment.iter().position(|&b| b == b';') {
            Some(semicolon) => &segment[..semicolon],
            None => segment,
        })
        .collect::<Vec<_>>()
        .join(&b'/')
}

fn merge_slashes(path: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for &b in path {
        if b == b'/' && out.last() == Some(&b'/') {
            continue;
        }
        out.push(b);
    }
    out
}

fn backslashes(path: &[u8]) -> Vec<u8> {
    path.iter()
        .map(|&b| if b == b'\\' { b'/' } else { b })
        .collect()
}

/// RFC 3986 section 5.2.4 over segments (a `..` at the root stays at the root).
fn resolve_dots(path: &[u8]) -> Vec<u8> {
    let mut out: Vec<&[u8]> = Vec::new();
    let segments: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            b"." if i == last => out.push(b""),
            b"." => {}
            b".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push(b"");
                }
            }
            other => out.push(other),
        }
    }
    out.join(&b'/')
}

fn trim_trailing_dots(path: &[u8]) -> Vec<u8> {
    path.split(|&b| b == b'/')
        .map(|segment| {
            if segment.iter().all(|&b| b == b'.') {
                return segment;
            }
            let end = segment
                .iter()
                .rposition(|&b| b != b'.' && b != b' ')
                .map_or(0, |p| p + 1);
            &segment[..end]
        })
        .collect::<Vec<_>>()
        .join(&b'/')
}

/// The Unicode letters that simple case mapping turns into ASCII letters.
fn fold_unicode(path: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(path);
    let folded: String = text
        .chars()
        .map(|c| match c {
            '\u{131}' | '\u{130}' => 'i',
            '\u{17f}' => 's',
            '\u{212a}' => 'k',
            other => other,
        })
        .collect();
    if folded == text {
        path.to_vec()
    } else {
        folded.into_bytes()
    }
}

fn whatwg(path: &[u8]) -> Vec<u8> {
    let cleaned: Vec<u8> = path
        .iter()
        .copied()
        .filter(|&b| !matches!(b, b'\t' | b'\n' | b'\r'))
        .map(|b| if b == b'\\' { b'/' } else { b })
        .collect();
    let dotted: Vec<Vec<u8>> = cleaned
        .split(|&b| b == b'/')
        .map(|segment| {
            let lower = segment.to_ascii_lowercase();
            match lower.as_slice() {
                b"%2e" => b".".to_vec(),
                b"%2e%2e" | b".%2e" | b"%2e." => b"..".to_vec(),
                _ => segment.to_vec(),
            }
        })
        .collect();
    resolve_dots(&dotted.join(&b'/'))
}
