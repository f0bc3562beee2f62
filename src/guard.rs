//! The verdict on one request's headers: pass it untouched, accept it, or reject it.

use crate::policy::{Policy, Route, Transport};
use crate::request::RequestHead;
use crate::verdict::{Reason, Rejection};
use crate::vobiz::voice::Verified;

#[derive(Debug)]
pub enum Decision<'a> {
    /// No route protects this request.
    Unprotected,
    Accept {
        route: &'a Route,
        verified: Verified<'a>,
    },
    Reject {
        route: &'a Route,
        rejection: Rejection,
    },
}

/// Judges a request from its headers. `downstream_tls` is asked only when the matched
/// route needs to know, since it costs a host call.
pub fn evaluate<'a>(
    policy: &'a Policy,
    head: &RequestHead<'a>,
    downstream_tls: impl FnOnce() -> bool,
) -> Decision<'a> {
    let path = head.path_without_query();
    let authority = head.first(":authority").unwrap_or_default();
    let Some(route) = policy.route_for(path, authority) else {
        return Decision::Unprotected;
    };
    let verdict = check_transport(route.transport, head, downstream_tls)
        .and_then(|()| route.voice.verify(route.public_origin.as_bytes(), head));
    match verdict {
        Ok(verified) => Decision::Accept { route, verified },
        Err(rejection) => Decision::Reject { route, rejection },
    }
}

fn check_transport(
    transport: Transport,
    head: &RequestHead,
    downstream_tls: impl FnOnce() -> bool,
) -> Result<(), Rejection> {
    let secure = match transport {
        Transport::AllowPlainHttp => true,
        Transport::RequireTls => downstream_tls(),
        // A trusted proxy terminated TLS and said so; anything but exactly `https` is not TLS.
        Transport::TrustForwardedProto => {
            downstream_tls()
                || head
                    .first("x-forwarded-proto")
                    .is_some_and(|proto| proto.eq_ignore_ascii_case(b"https"))
        }
    };
    if secure {
        Ok(())
    } else {
        Err(Rejection::new(
            Reason::TlsRequired,
            "callback arrived over plain HTTP",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::request::headers;

    const V3: &str = "hcnUcstlkOnYpO6mUNMBs51VJnZ5p6T+dE1Ov5NShuk=";

    fn policy(extra: &str) -> Policy {
        let json = format!(
            r#"{{"routes": [{{"name": "voice", "path_prefix": "/vobiz/", "host": "example.com",
                "public_origin": "https://example.com", "keys": [{{"value": "test_auth_token"}}]{extra}}}]}}"#
        );
        config::parse(json.as_bytes(), &|_| None).unwrap()
    }

    fn signed(path: &str, extra: &[(&'static str, &'static str)]) -> Vec<crate::request::Header> {
        let mut pairs = vec![
            (":path", path),
            (":authority", "example.com"),
            ("x-vobiz-signature-v3", V3),
            ("x-vobiz-signature-v3-nonce", "09876543210987654321"),
        ];
        pairs.extend_from_slice(extra);
        headers(&pairs)
    }

    fn outcome(
        policy: &Policy,
        h: &[crate::request::Header],
        tls: bool,
    ) -> Result<(), Option<Reason>> {
        match evaluate(policy, &RequestHead::new(h), || tls) {
            Decision::Unprotected => Err(None),
            Decision::Accept { .. } => Ok(()),
            Decision::Reject { rejection, .. } => Err(Some(rejection.reason)),
        }
    }

    #[test]
    fn unmatched_paths_and_hosts_pass_untouched() {
        let p = policy("");
        assert_eq!(
            outcome(&p, &headers(&[(":path", "/health")]), false),
            Err(None)
        );
        let other_host = headers(&[(":path", "/vobiz/answer"), (":authority", "other.com")]);
        assert_eq!(outcome(&p, &other_host, false), Err(None));
    }

    #[test]
    fn a_signed_callback_over_tls_is_accepted() {
        assert_eq!(
            outcome(&policy(""), &signed("/vobiz/answer", &[]), true),
            Ok(())
        );
    }

    #[test]
    fn plain_http_is_refused_before_verification() {
        let p = policy("");
        assert_eq!(
            outcome(&p, &signed("/vobiz/answer", &[]), false),
            Err(Some(Reason::TlsRequired))
        );
        // An untrusted x-forwarded-proto changes nothing.
        let h = signed("/vobiz/answer", &[("x-forwarded-proto", "https")]);
        assert_eq!(outcome(&p, &h, false), Err(Some(Reason::TlsRequired)));
    }

    #[test]
    fn trusted_forwarded_proto_counts_only_when_exactly_https() {
        let p = policy(r#", "trust_x_forwarded_proto": true"#);
        let h = signed("/vobiz/answer", &[("x-forwarded-proto", "HTTPS")]);
        assert_eq!(outcome(&p, &h, false), Ok(()));
        for proto in ["http", "https,http", ""] {
            let h = headers(&[
                (":path", "/vobiz/answer"),
                (":authority", "example.com"),
                ("x-forwarded-proto", proto),
            ]);
            assert_eq!(
                outcome(&p, &h, false),
                Err(Some(Reason::TlsRequired)),
                "{proto}"
            );
        }
    }

    #[test]
    fn plain_http_allowed_when_the_operator_says_so() {
        let p = policy(r#", "allow_plain_http": true"#);
        assert_eq!(outcome(&p, &signed("/vobiz/answer", &[]), false), Ok(()));
        let missing = headers(&[(":path", "/vobiz/x"), (":authority", "example.com")]);
        assert_eq!(
            outcome(&p, &missing, false),
            Err(Some(Reason::MissingSignature))
        );
    }
}
