//! The compiled, validated configuration: which requests are protected and how.

use crate::etcd::Etcd;
use crate::keys::Key;
use crate::net::Cidr;
use crate::replay::ReplayCache;
use crate::vobiz::voice::VoiceScheme;

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
    pub path_prefix: String,
    pub host: Option<String>,
    pub transport: Transport,
    pub scheme: Scheme,
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

/// How a route's callbacks are signed. Chosen by configuration, never guessed from headers.
#[derive(Debug)]
pub enum Scheme {
    Voice(VoiceScheme),
    /// `X-Webhook-Signature`: hex HMAC of the body with the subscription secret.
    WhatsApp {
        keys: Vec<Key>,
    },
    /// `X-Vobiz-Signature: sha256=<hex>` HMAC of the body with the parent account token.
    Kyc {
        keys: Vec<Key>,
    },
}

#[derive(Debug)]
pub struct Replay {
    /// This Envoy's memory (shared data): the store itself, or the first level in front of
    /// a fleet-wide one.
    pub cache: ReplayCache,
    pub on_duplicate: OnDuplicate,
    pub store: Store,
}

/// Where a route's replay memory lives.
#[derive(Debug)]
pub enum Store {
    /// Envoy shared data: one Envoy process, all its workers.
    SharedData,
    /// etcd, shared by every replica, with `cache` as a first level in front.
    Etcd(Etcd),
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
}

/// Bounds on a callback's own timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    pub max_age_secs: u32,
    pub max_future_secs: u32,
    /// A callback without the timestamp is refused (always true where it is signed).
    pub required: bool,
}

impl Policy {
    /// The first route, in configuration order, that protects this request.
    pub fn route_for(&self, path: &[u8], authority: &[u8]) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path, authority))
    }
}

impl Route {
    /// The route's own spelling of a key name (names are unique within a route).
    pub fn key_name(&self, name: &str) -> Option<&str> {
        let keys: &[&[Key]] = match &self.scheme {
            Scheme::Voice(voice) => &[&voice.keys, &voice.parent_keys],
            Scheme::WhatsApp { keys } | Scheme::Kyc { keys } => &[keys],
        };
        keys.iter()
            .flat_map(|keys| keys.iter())
            .map(|key| key.name.as_str())
            .find(|key| *key == name)
    }

    /// Replay fingerprints and freshness need the body, whatever the scheme.
    pub fn needs_body(&self) -> bool {
        self.replay.is_some() || self.freshness.is_some()
    }

    fn matches(&self, path: &[u8], authority: &[u8]) -> bool {
        path.starts_with(self.path_prefix.as_bytes())
            && self
                .host
                .as_ref()
                .is_none_or(|host| host_matches(host, authority))
    }
}

/// A configured host without a port matches the authority with any port; one with a port
/// must match exactly. Case-insensitive, as DNS names are.
fn host_matches(host: &str, authority: &[u8]) -> bool {
    if host.as_bytes().eq_ignore_ascii_case(authority) {
        return true;
    }
    if has_port(host.as_bytes()) {
        return false;
    }
    strip_port(authority).eq_ignore_ascii_case(host.as_bytes())
}

fn has_port(authority: &[u8]) -> bool {
    strip_port(authority).len() != authority.len()
}

fn strip_port(authority: &[u8]) -> &[u8] {
    // `[v6]:port` keeps its brackets; `host:port` loses the `:port`.
    let host_end = match authority.iter().rposition(|&b| b == b']') {
        Some(bracket) => bracket + 1,
        None => 0,
    };
    match authority[host_end..].iter().rposition(|&b| b == b':') {
        Some(colon) => &authority[..host_end + colon],
        None => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_only_when_the_host_has_none() {
        assert!(host_matches("example.com", b"example.com:8443"));
        assert!(host_matches("Example.COM", b"example.com"));
        assert!(host_matches("example.com:8443", b"example.com:8443"));
        assert!(!host_matches("example.com:8443", b"example.com:443"));
        assert!(!host_matches("example.com", b"example.com.evil:443"));
        assert!(host_matches("[::1]", b"[::1]:8443"));
        assert!(!host_matches("[::1]", b"[::2]"));
    }
}
