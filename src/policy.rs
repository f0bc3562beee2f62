//! The compiled, validated configuration: which requests are protected and how.

use crate::vobiz::voice::VoiceScheme;

#[derive(Debug)]
pub struct Policy {
    pub routes: Vec<Route>,
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
    /// `scheme://authority` exactly as registered with Vobiz: the start of every base URL.
    pub public_origin: String,
    pub transport: Transport,
    pub voice: VoiceScheme,
}

impl Policy {
    /// The first route, in configuration order, that protects this request.
    pub fn route_for(&self, path: &[u8], authority: &[u8]) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path, authority))
    }
}

impl Route {
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
