//! A read-only view of a request's headers as the host hands them over: raw bytes,
//! never assumed to be UTF-8.

/// One header as read from the host (name lowercase in Envoy, value raw bytes).
pub type Header = (String, Vec<u8>);

/// The headers of one request, with the pseudo-headers the guard needs.
pub struct RequestHead<'a> {
    headers: &'a [Header],
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
        RequestHead { headers }
    }

    pub fn lookup(&self, name: &str) -> Lookup<'a> {
        let mut found = Lookup::Missing;
        for (key, value) in self.headers {
            if key.eq_ignore_ascii_case(name) {
                if found != Lookup::Missing {
                    return Lookup::Duplicate;
                }
                found = Lookup::One(value);
            }
        }
        found
    }

    /// The first value of `name`, for headers where duplicates carry no ambiguity.
    pub fn first(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
    }

    /// Every value of `name`, in order.
    pub fn all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        self.headers
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_slice())
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

    #[test]
    fn request_id_is_sanitised_for_logs() {
        let h = vec![("x-request-id".to_string(), b"ab-1\n\xffevil=1 c".to_vec())];
        assert_eq!(RequestHead::new(&h).request_id(), "ab-1evil1c");
    }
}
