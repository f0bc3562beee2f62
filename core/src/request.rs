//! A read-only view of a request's headers as the host hands them over: raw bytes,
//! never assumed to be UTF-8.

use std::ops::Range;

/// One header, owned (name lowercase in Envoy, value raw bytes).
pub type Header = (String, Vec<u8>);

/// A header map exactly as the host serialises it (proxy-wasm's pairs format: a count,
/// each pair's name and value lengths, then each name and value followed by a NUL), kept
/// whole with where each pair lies: read with one copy and one index, not two
/// allocations per header.
#[derive(Debug)]
pub struct HeaderMap {
    bytes: Vec<u8>,
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

impl HeaderMap {
    /// `None` if the bytes are not a well-formed map.
    pub fn parse(bytes: Vec<u8>) -> Option<HeaderMap> {
        let word = |at: usize| -> Option<usize> {
            let word = bytes.get(at..at.checked_add(4)?)?;
            Some(u32::from_le_bytes(word.try_into().ok()?) as usize)
        };
        if bytes.is_empty() {
            return Some(HeaderMap {
                bytes,
                pairs: Vec::new(),
            });
        }
        let count = word(0)?;
        let mut data = count.checked_mul(8)?.checked_add(4)?;
        if data > bytes.len() {
            return None;
        }
        let mut take = |size: usize| -> Option<Range<usize>> {
            let range = data..data.checked_add(size)?;
            // Each name and value is followed by a NUL.
            data = range.end.checked_add(1)?;
            (data <= bytes.len()).then_some(range)
        };
        let pairs = (0..count)
            .map(|n| {
                let name = take(word(4 + n * 8)?)?;
                let value = take(word(8 + n * 8)?)?;
                Some((name, value))
            })
            .collect::<Option<Vec<_>>>()?;
        (data == bytes.len()).then_some(HeaderMap { bytes, pairs })
    }
}

/// Where a request's headers come from: owned pairs, or the host's map.
#[derive(Clone, Copy)]
enum Source<'a> {
    Owned(&'a [Header]),
    Map(&'a HeaderMap),
}

/// The headers of one request, with the pseudo-headers the guard needs, and what filters
/// before this one verified about it.
#[derive(Clone, Copy)]
pub struct RequestHead<'a> {
    source: Source<'a>,
    attested: Option<&'a dyn Attested>,
}

/// What a filter before this one verified about the request and left in its dynamic
/// metadata (Envoy's `jwt_authn`: a token's payload, only once its signature verified).
/// Read only when a scheme asks, since each value costs a host call; a client cannot set
/// it, as it can any header.
pub trait Attested {
    /// `metadata.filter_metadata[namespace][key][name]` as the host serialises it: a
    /// string's bytes, a number's 8 bytes (`f64`, little-endian), a bool's one byte, a
    /// list or map as pairs; `None` if there is none (or an empty string, or a null).
    fn metadata(&self, namespace: &str, key: &str, name: &str) -> Option<Vec<u8>>;
}

/// What a header lookup found. Duplicates are reported, never silently resolved, because
/// the filter and the application could otherwise read different copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Missing,
    One(&'a [u8]),
    Duplicate,
}

impl<'a> RequestHead<'a> {
    pub fn new(headers: &'a [Header]) -> Self {
        RequestHead {
            source: Source::Owned(headers),
            attested: None,
        }
    }

    pub fn from_map(map: &'a HeaderMap) -> Self {
        RequestHead {
            source: Source::Map(map),
            attested: None,
        }
    }

    /// The same headers, with what earlier filters verified.
    pub fn attested(self, attested: &'a dyn Attested) -> Self {
        RequestHead {
            attested: Some(attested),
            ..self
        }
    }

    /// See [`Attested::metadata`]; `None` where the host was not asked.
    pub fn metadata(&self, namespace: &str, key: &str, name: &str) -> Option<Vec<u8>> {
        self.attested?.metadata(namespace, key, name)
    }

    /// Every header as (name, value), in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let (owned, map): (&[Header], Option<&HeaderMap>) = match self.source {
            Source::Owned(headers) => (headers, None),
            Source::Map(map) => (&[], Some(map)),
        };
        let from_map = map.into_iter().flat_map(|map| {
            map.pairs
                .iter()
                .map(|(name, value)| (&map.bytes[name.clone()], &map.bytes[value.clone()]))
        });
        owned
            .iter()
            .map(|(name, value)| (name.as_bytes(), value.as_slice()))
            .chain(from_map)
    }

    pub fn lookup(&self, name: &str) -> Lookup<'a> {
        let mut found = Lookup::Missing;
        for value in self.all(name) {
            if found != Lookup::Missing {
                return Lookup::Duplicate;
            }
            found = Lookup::One(value);
        }
        found
    }

    /// The first value of `name`, for headers where duplicates carry no ambiguity.
    pub fn first(&self, name: &str) -> Option<&'a [u8]> {
        self.all(name).next()
    }

    /// Every value of `name`, in order.
    pub fn all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        self.pairs()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value)
    }

    /// Every host the request names, for any server to route on: `:authority`, `Host`,
    /// each entry of `X-Forwarded-Host` and each `host=` of `Forwarded`.
    pub fn hosts(&self) -> Vec<&'a [u8]> {
        let mut hosts: Vec<&[u8]> = self.all(":authority").chain(self.all("host")).collect();
        for value in self.all("x-forwarded-host") {
            hosts.extend(value.split(|&b| b == b','));
        }
        for value in self.all("forwarded") {
            let pairs = value.split(|&b| b == b',' || b == b';');
            hosts.extend(pairs.filter_map(|pair| {
                let pair = pair.trim_ascii();
                let (name, host) = pair.split_at_checked(5)?;
                name.eq_ignore_ascii_case(b"host=")
                    .then(|| host.strip_prefix(b"\"").unwrap_or(host))
                    .map(|host| host.strip_suffix(b"\"").unwrap_or(host))
            }));
        }
        hosts.retain(|host| !host.trim_ascii().is_empty());
        hosts
    }

    /// The request path without its query string: the bytes Vobiz signs after the origin.
    pub fn path_without_query(&self) -> &'a [u8] {
        let path = self.first(":path").unwrap_or_default();
        match path.iter().position(|&b| b == b'?') {
            Some(end) => &path[..end],
            None => path,
        }
    }

    /// The query string of `:path` (after the first `?`), empty without one.
    pub fn query(&self) -> &'a [u8] {
        let path = self.first(":path").unwrap_or_default();
        match path.iter().position(|&b| b == b'?') {
            Some(start) => &path[start + 1..],
            None => &[],
        }
    }

    /// `x-request-id` reduced to characters that are safe in a log line.
    pub fn request_id(&self) -> String {
        self.first("x-request-id")
            .unwrap_or_default()
            .iter()
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            .take(64)
            .map(|&b| b as char)
            .collect()
    }
}

#[cfg(test)]
pub(crate) fn headers(pairs: &[(&str, &str)]) -> Vec<Header> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_reports_missing_single_and_duplicate() {
        let h = headers(&[("a", "1"), ("b", "2"), ("B", "3")]);
        let head = RequestHead::new(&h);
        assert_eq!(head.lookup("a"), Lookup::One(b"1"));
        assert_eq!(head.lookup("c"), Lookup::Missing);
        assert_eq!(head.lookup("b"), Lookup::Duplicate);
    }

    #[test]
    fn path_stops_at_the_first_question_mark() {
        let h = headers(&[(":path", "/vobiz/answer?CallId=42&x=y?z")]);
        assert_eq!(RequestHead::new(&h).path_without_query(), b"/vobiz/answer");
        assert_eq!(RequestHead::new(&h).query(), b"CallId=42&x=y?z");
        let h = headers(&[(":path", "/vobiz/answer/")]);
        assert_eq!(RequestHead::new(&h).path_without_query(), b"/vobiz/answer/");
        assert_eq!(RequestHead::new(&h).query(), b"");
    }

    #[test]
    fn hosts_come_from_every_header_a_server_may_route_on() {
        let h = headers(&[
            (":authority", "a.example"),
            ("host", "b.example"),
            ("x-forwarded-host", "c.example, d.example"),
            (
                "forwarded",
                "for=1.2.3.4;Host=\"e.example\";proto=https, host=f.example",
            ),
            ("x-forwarded-host", ""),
        ]);
        let hosts = RequestHead::new(&h).hosts();
        let expected: Vec<&[u8]> = vec![
            b"a.example",
            b"b.example",
            b"c.example",
            b" d.example",
            b"e.example",
            b"f.example",
        ];
        assert_eq!(hosts, expected);
    }

    /// The host's serialisation of `pairs`.
    fn serialised(pairs: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (name, value) in pairs {
            out.extend((name.len() as u32).to_le_bytes());
            out.extend((value.len() as u32).to_le_bytes());
        }
        for (name, value) in pairs {
            out.extend(name.as_bytes());
            out.push(0);
            out.extend(*value);
            out.push(0);
        }
        out
    }

    #[test]
    fn the_hosts_map_reads_as_owned_headers_do() {
        let pairs: [(&str, &[u8]); 4] = [
            (":path", b"/vobiz/answer?x=1"),
            ("b", b"2"),
            ("B", b"\xff\x00raw"),
            ("empty", b""),
        ];
        let map = HeaderMap::parse(serialised(&pairs)).unwrap();
        let owned: Vec<Header> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect();
        let (from_map, from_owned) = (RequestHead::from_map(&map), RequestHead::new(&owned));
        assert!(from_map.pairs().eq(from_owned.pairs()));
        assert_eq!(from_map.lookup("b"), Lookup::Duplicate);
        assert_eq!(from_map.first("EMPTY"), Some(&b""[..]));
        assert_eq!(from_map.query(), b"x=1");
        assert_eq!(HeaderMap::parse(Vec::new()).unwrap().pairs.len(), 0);
    }

    #[test]
    fn a_malformed_map_is_refused_never_read_past_its_end() {
        let good = serialised(&[("a", b"1"), ("bb", b"22")]);
        for cut in 1..good.len() {
            assert!(
                HeaderMap::parse(good[..cut].to_vec()).is_none(),
                "cut at {cut}"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(HeaderMap::parse(longer).is_none());
        let mut huge = good;
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(HeaderMap::parse(huge).is_none());
    }

    #[test]
    fn request_id_is_sanitised_for_logs() {
        let h = vec![("x-request-id".to_string(), b"ab-1\n\xffevil=1 c".to_vec())];
        assert_eq!(RequestHead::new(&h).request_id(), "ab-1evil1c");
    }
}
