//! The compiled, validated configuration: which requests are protected and how.

use crate::net::Cidr;
use crate::path_view::{Features, PathView, Prefix};
use crate::providers::Provider;
use crate::replay::ReplayCache;
use crate::request::RequestHead;
use crate::store::FleetStore;
use crate::timestamp::Freshness;
use crate::verdict::{Reason, Rejection};

#[derive(Debug)]
pub struct Policy {
    pub routes: Vec<Route>,
    /// Envoy runs the filter with `allow_on_headers_stop_iteration: true`, so a request
    /// can be held at its headers while the body arrives. Without it the headers reach the
    /// upstream before a body-dependent verdict, which can then only reset the request.
    pub hold_headers: bool,
    /// Request header that tells the upstream the verdict (and is removed from every
    /// request that arrives with it), if the operator wants one.
    pub upstream_header: Option<String>,
    /// What the configuration allows but should not: logged once it loads.
    pub warnings: Vec<String>,
    /// What choosing a request's route reads, laid out apart from the routes.
    pub selection: Selection,
}

/// The routes' prefixes side by side, and whether any route is restricted to a host: the
/// one scan every request makes reads this, not every route's own (large, scattered)
/// fields, so that choosing among 300 routes stays a few cache lines.
#[derive(Debug, Default)]
pub struct Selection {
    prefixes: Vec<u8>,
    /// Where each route's prefix ends in `prefixes`, in the routes' order.
    ends: Vec<usize>,
    any_host: bool,
}

impl Selection {
    pub fn of(routes: &[Route]) -> Self {
        let mut selection = Selection {
            any_host: routes.iter().any(|r| r.host.is_some()),
            ..Selection::default()
        };
        for route in routes {
            selection
                .prefixes
                .extend_from_slice(route.path_prefix.as_str().as_bytes());
            selection.ends.push(selection.prefixes.len());
        }
        selection
    }

    /// The indices of the routes whose prefix starts `path`, in order.
    fn matching<'a>(&'a self, path: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .enumerate()
            .filter(move |(_, (start, end))| path.starts_with(&self.prefixes[*start..*end]))
            .map(|(i, _)| i)
    }
}

/// How a route decides that a callback arrived over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The downstream connection itself must be TLS.
    RequireTls,
    /// TLS was terminated by a trusted proxy in front, which says so in `x-forwarded-proto`.
    TrustForwardedProto,
    /// Plain HTTP is accepted (the operator said so explicitly).
    AllowPlainHttp,
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub path_prefix: Prefix,
    /// The host the route is restricted to, as [`host_name`] reads it: lowercase, without
    /// port or trailing dot.
    pub host: Option<String>,
    pub transport: Transport,
    /// The route's scheme, as its provider built it from the configuration (see
    /// [`crate::providers::registry`]). Chosen by configuration, never guessed from headers.
    pub provider: Box<dyn Provider>,
    /// The scheme's name in the configuration (`stripe`, `vobiz_voice`, ...).
    pub scheme: &'static str,
    /// Replay protection; `None` only when the operator switched it off.
    pub replay: Option<Replay>,
    pub freshness: Option<Freshness>,
    pub max_body_bytes: u32,
    pub mode: Mode,
    /// Proxies whose `x-forwarded-proto` / `x-forwarded-for` count. Empty with
    /// `trust_x_forwarded_proto`: every peer is trusted (the pre-existing behaviour).
    pub trusted_proxies: Vec<Cidr>,
    /// Where callbacks may come from; empty means anywhere.
    pub allowed_sources: Vec<Cidr>,
    /// Log the exact string that was signed (never the key) when a signature mismatches.
    pub debug_signed_string: bool,
    /// Answer the provider's endpoint checks at the edge (Slack's `url_verification`,
    /// Zoom's `endpoint.url_validation`, Discord's PING, ...), after they verified.
    pub answer_handshakes: bool,
    /// The headers the replay fingerprint binds (lowercase): `content-type`,
    /// `content-encoding` and the ones the provider's applications dispatch on.
    pub bound_headers: Vec<String>,
    /// The statuses the operator gave refusals of some reasons (`refusal_status`).
    pub refusal_status: Vec<(Reason, u16)>,
}

/// Whether a route's verdicts are applied or only recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    /// Verify, count and log everything, reject nothing: for watching before enforcing.
    Shadow,
}

#[derive(Debug)]
pub struct Replay {
    /// This Envoy's memory (shared data): the store itself, or the first level in front of
    /// a fleet-wide one.
    pub cache: ReplayCache,
    pub on_duplicate: OnDuplicate,
    /// The fleet-wide store shared by every replica, with `cache` as a first level in
    /// front; `None`: this Envoy's shared data alone (one process, all its workers).
    pub fleet: Option<Box<dyn FleetStore>>,
}

/// What to answer when a callback that was already delivered arrives again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDuplicate {
    /// 200 from the filter: the provider stops retrying, the app is not called twice.
    #[default]
    Ok,
    /// 409: the sender is told it was a duplicate.
    Reject,
    /// Delivered again: for a provider that itself sends identical signed requests as new
    /// ones (Twilio), where a repeat is not evidence of a replay. The memory still refuses
    /// the same signed message with anything else changed (`replay_tampered`).
    Deliver,
}

/// Whether a request is protected, decided on every way a server could read its path and
/// host (see [`crate::path_view`]).
#[derive(Debug)]
pub enum Protection<'p> {
    /// No reading of the request reaches a protected route.
    None,
    /// The request is under the route's prefix as sent, in the spelling every server reads
    /// alike.
    Route(&'p Route),
    /// Some server could read the request as the route's, but it is not spelled canonically:
    /// refused, since providers call canonical URLs and a signature that does not cover the
    /// path would otherwise carry a request to wherever its spelling leads.
    Noncanonical(&'p Route, Features),
}

/// Headers that make some servers route on another path than the request line's (IIS URL
/// Rewrite, older Symfony and Zend): a protected request never carries them, and an
/// unprotected one carrying a protected path in them is refused.
const PATH_OVERRIDES: [&str; 2] = ["x-original-url", "x-rewrite-url"];

impl Policy {
    /// Incoming headers that the upstream would read as the verdict header: its name in any
    /// case, and with `_` for `-` (CGI and WSGI servers read both as `HTTP_X_...`). Only the
    /// filter may speak for the filter, so they are removed from every request.
    pub fn verdict_header_copies<'h>(&self, head: &RequestHead<'h>) -> Vec<&'h str> {
        let Some(name) = &self.upstream_header else {
            return Vec::new();
        };
        let same = |key: &[u8]| {
            key.len() == name.len()
                && key
                    .iter()
                    .zip(name.bytes())
                    .all(|(&k, n)| k.to_ascii_lowercase() == n || (k == b'_' && n == b'-'))
        };
        // A copy is ASCII, as the name it matches.
        head.pairs()
            .filter(|(key, _)| same(key))
            .filter_map(|(key, _)| std::str::from_utf8(key).ok())
            .collect()
    }

    /// The route that protects this request, if any reading of its path and host reaches
    /// one. Routes are tried in configuration order, first as sent, then as read.
    pub fn protection(&self, head: &RequestHead) -> Protection<'_> {
        let path = PathView::new(head.first(":path").unwrap_or_default());
        // Only a route restricted to a host looks at the hosts a request names.
        let hosts = if self.selection.any_host {
            head.hosts()
        } else {
            Vec::new()
        };
        let overrides: Vec<PathView> = PATH_OVERRIDES
            .iter()
            .flat_map(|name| head.all(name))
            .map(PathView::new)
            .collect();
        let exact = self
            .selection
            .matching(path.raw())
            .map(|i| &self.routes[i])
            .find(|r| r.serves(&hosts));
        if let Some(route) = exact {
            let ambiguous = path.features().ambiguous();
            return match (ambiguous.is_empty(), overrides.is_empty()) {
                (true, true) => Protection::Route(route),
                (true, false) => Protection::Noncanonical(route, Features::PATH_OVERRIDE),
                (false, _) => Protection::Noncanonical(route, ambiguous),
            };
        }
        let read = |view: &PathView| {
            self.routes
                .iter()
                .find(|r| view.could_reach(&r.path_prefix) && r.serves(&hosts))
        };
        if let Some(route) = read(&path) {
            let features = path.features();
            let features = if features.is_empty() {
                Features::LETTER_CASE
            } else {
                features
            };
            return Protection::Noncanonical(route, features);
        }
        match overrides.iter().find_map(read) {
            Some(route) => Protection::Noncanonical(route, Features::PATH_OVERRIDE),
            None => Protection::None,
        }
    }
}

impl Route {
    /// The refusal as this route answers it: under the status its `refusal_status` gives the
    /// reason, if it gives one (Xero's intent-to-receive check expects 401 for a bad
    /// signature).
    pub fn refusal(&self, rejection: &Rejection) -> Rejection {
        match self
            .refusal_status
            .iter()
            .find(|(r, _)| *r == rejection.reason)
        {
            Some(&(_, status)) => rejection.clone().with_status(status),
            None => rejection.clone(),
        }
    }

    /// The route's scheme as the type its provider built, for tests and tools that look
    /// inside a compiled policy; `None` if it is another provider's.
    pub fn provider_as<T: Provider>(&self) -> Option<&T> {
        (self.provider.as_ref() as &dyn std::any::Any).downcast_ref()
    }

    /// The route's own spelling of a key name (names are unique within a route).
    pub fn key_name(&self, name: &str) -> Option<&str> {
        self.provider
            .schemes()
            .into_iter()
            .flat_map(|(_, keys)| keys)
            .find(|key| *key == name)
    }

    /// Replay fingerprints and freshness need the body, whatever the scheme.
    pub fn needs_body(&self) -> bool {
        self.replay.is_some() || self.freshness.is_some()
    }

    /// Whether a request naming these hosts could be for this route's host. Any of them
    /// counts (applications behind proxies route on `X-Forwarded-Host` too), a host servers
    /// read differently counts as this one ([`host_name`]), and a request naming none may
    /// land on whatever host an application serves by default.
    fn serves(&self, hosts: &[&[u8]]) -> bool {
        match &self.host {
            None => true,
            Some(host) => {
                hosts.is_empty()
                    || hosts.iter().any(|authority| match host_name(authority) {
                        Some(name) => name.eq_ignore_ascii_case(host.as_bytes()),
                        None => true,
                    })
            }
        }
    }
}

/// A host as every mainstream server compares it, when they all read it alike: a name of
/// `[A-Za-z0-9._-]` (or a bracketed IPv6 literal), then at most `:port`, without trailing
/// dots (compare it case-insensitively; the port plays no part, applications route on the
/// name). `None` for anything else, which servers read differently: Express takes
/// `a.example:443@b` as `a.example`, a URL parser as `b`; `%`, `\`, a second `:` or
/// non-ASCII have their own readings. Such a host counts as every host-restricted route's.
pub fn host_name(authority: &[u8]) -> Option<&[u8]> {
    let authority = authority.trim_ascii();
    let (name, rest) = match authority.first() {
        Some(b'[') => {
            let close = authority.iter().position(|&b| b == b']')?;
            let inside = &authority[1..close];
            let literal = |b: &u8| b.is_ascii_hexdigit() || matches!(b, b':' | b'.');
            if inside.is_empty() || !inside.iter().all(literal) {
                return None;
            }
            authority.split_at(close + 1)
        }
        _ => {
            let end = authority
                .iter()
                .position(|&b| b == b':')
                .unwrap_or(authority.len());
            let name = &authority[..end];
            let label = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_');
            if !name.iter().all(label) {
                return None;
            }
            authority.split_at(end)
        }
    };
    let port_ok = match rest {
        [] => true,
        [b':', digits @ ..] => {
            !digits.is_empty() && digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    };
    let end = name
        .iter()
        .rposition(|&b| b != b'.')
        .map_or(0, |last| last + 1);
    (port_ok && end > 0).then_some(&name[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As [`Route::serves`] compares one host with the route's.
    fn serves(host: &str, authority: &[u8]) -> bool {
        match host_name(authority) {
            Some(name) => name.eq_ignore_ascii_case(host_name(host.as_bytes()).unwrap()),
            None => true,
        }
    }

    #[test]
    fn every_spelling_of_the_verdict_header_is_a_copy() {
        let json = r#"{"upstream_header": "x-callback-guard", "routes": [{"name": "r",
            "path_prefix": "/w/", "scheme": "vobiz_whatsapp", "keys": [{"value": "s"}]}]}"#;
        let policy = crate::config::parse(json.as_bytes(), &|_| None).unwrap();
        let h = crate::request::headers(&[
            ("x-callback-guard", "a"),
            ("x_callback_guard", "b"),
            ("X_Callback-Guard", "c"),
            ("x-callback-guards", "d"),
            ("x-callback", "e"),
        ]);
        assert_eq!(
            policy.verdict_header_copies(&RequestHead::new(&h)),
            ["x-callback-guard", "x_callback_guard", "X_Callback-Guard"]
        );
    }

    #[test]
    fn hosts_compare_without_case_port_trailing_dot_or_userinfo() {
        assert!(serves("example.com", b"example.com:8443"));
        assert!(serves("Example.COM", b"example.com"));
        assert!(serves("example.com", b"example.com."));
        assert!(serves("example.com", b"EXAMPLE.com.:443"));
        assert!(serves("example.com", b"user:pw@example.com"));
        assert!(serves("example.com", b" example.com "));
        // A port is no boundary: applications behind route on the name alone.
        assert!(serves("example.com:8443", b"example.com:443"));
        assert!(!serves("example.com", b"example.com.evil:443"));
        assert!(!serves("example.com", b"evil-example.com"));
        assert!(serves("[::1]", b"[::1]:8443"));
        assert!(!serves("[::1]", b"[::2]"));
    }
}
