//! Arbitrary header lists (the seeds' `name: value` lines) through `RequestHead`,
//! `VoiceScheme::read_pairs` / `verify` and `guard::on_headers`, under a policy with the
//! spec's keys and one with keys no input can know. Never panics; never forwards under the
//! unknown keys; under the known keys forwards only what an independent HMAC accepts;
//! rejection details stay loggable.
#![no_main]

mod common;

use callback_guard::guard::{self, Step};
use callback_guard::providers::vobiz::voice::{V3Construction, VoiceScheme};
use callback_guard::request::{Lookup, RequestHead};
use callback_guard::verdict::Reason;
use libfuzzer_sys::fuzz_target;

fn check_head(headers: &[callback_guard::request::Header], head: &RequestHead) {
    assert!(!head.path_without_query().contains(&b'?'));
    let id = head.request_id();
    assert!(id.len() <= 64);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
    for name in [
        ":path",
        "x-vobiz-signature-v3",
        "x-vobiz-signature-v3-nonce",
    ] {
        let count = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count();
        match head.lookup(name) {
            Lookup::Missing => assert_eq!(count, 0),
            Lookup::One(value) => {
                assert_eq!(count, 1);
                assert_eq!(Some(value), common::single(headers, name));
            }
            Lookup::Duplicate => assert!(count > 1),
        }
    }
}

/// `/src/` comes over plain HTTP from a trusted proxy: a verdict past the path spelling,
/// source and transport checks needs exactly one `x-forwarded-proto: https` and one `x-forwarded-for`
/// whose right-most untrusted entry is an allowed source.
fn check_source_route(
    headers: &[callback_guard::request::Header],
    head: &RequestHead,
    policy: &callback_guard::policy::Policy,
    conn: &common::Conn,
) {
    let step = guard::on_headers(policy, head, conn);
    if let Step::Reject(_, r) = &step {
        // A path servers read differently is refused before source and transport.
        if matches!(
            r.reason,
            Reason::SourceNotAllowed | Reason::TlsRequired | Reason::NoncanonicalPath
        ) {
            return;
        }
    }
    let proto = common::single(headers, "x-forwarded-proto");
    assert!(
        proto.is_some_and(|p| p.eq_ignore_ascii_case(b"https")),
        "{step:?}"
    );
    let forwarded = common::single(headers, "x-forwarded-for");
    let client = forwarded
        .and_then(|list| std::str::from_utf8(list).ok())
        .and_then(|list| {
            list.rsplit(',')
                .map(|hop| hop.trim().parse::<std::net::IpAddr>())
                .find(|hop| !matches!(hop, Ok(ip) if is_trusted(*ip)))
        });
    let allowed = match client {
        Some(Ok(std::net::IpAddr::V4(ip))) => ip.octets() == [35, 154, 59, 246],
        Some(Ok(std::net::IpAddr::V6(ip))) => match ip.to_ipv4_mapped() {
            Some(v4) => v4.octets() == [35, 154, 59, 246],
            None => ip.segments()[..2] == [0x2001, 0x0db8],
        },
        _ => false,
    };
    assert!(allowed, "source check passed for {forwarded:?}: {step:?}");
}

fn is_trusted(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.octets()[0] == 10,
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets()[0] == 10,
            None => v6.segments()[0] >> 8 == 0xfd,
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let (headers, _) = common::parse_request(data);
    let head = RequestHead::new(&headers);
    check_head(&headers, &head);
    let conn = common::Conn::for_request(&head);
    for (secrets, policy) in [common::known(), common::unknown()] {
        let known = std::ptr::eq(policy, &common::known().1);
        match guard::on_headers(policy, &head, &conn) {
            Step::Forward(accepted) => {
                assert!(known, "forwarded under keys no input can know");
                common::assert_authentic(&accepted, &headers, &[], secrets);
            }
            Step::Reject(route, rejection) => {
                common::assert_loggable(&rejection);
                assert!(policy.routes.iter().any(|r| std::ptr::eq(r, route)));
            }
            Step::NeedBody(route) => assert!(
                route.needs_body()
                    || matches!(route.provider_as::<VoiceScheme>(), Some(v) if v.v3 != V3Construction::Docs)
            ),
            Step::Unprotected => assert!(!head.path_without_query().starts_with(b"/")),
            // Only a body step may ask a fleet-wide store (none is configured here).
            #[allow(unreachable_patterns)]
            other => panic!("unexpected step after the headers: {other:?}"),
        }
        if head.path_without_query().starts_with(b"/src/") {
            check_source_route(&headers, &head, policy, &conn);
        }

        let voice = common::voice(policy, "open");
        match voice.read_pairs(&head) {
            Ok(pairs) => {
                let failure = pairs.failure();
                assert!(matches!(
                    failure.reason,
                    Reason::SignatureMismatch | Reason::MalformedHeader
                ));
                common::assert_loggable(&failure);
            }
            Err(rejection) => {
                assert!(matches!(
                    rejection.reason,
                    Reason::MissingSignature | Reason::MalformedHeader | Reason::DuplicateHeader
                ));
                common::assert_loggable(&rejection);
            }
        }
        match voice.verify(&head) {
            Ok(verified) => {
                assert!(known, "verified under keys no input can know");
                assert!(common::voice_signed(&headers, &[], secrets, false));
                assert!(!verified.sdk);
                // The nonce ends the signed message: exactly 20 digits.
                assert_eq!(verified.signed.split().last(), Some(&20));
            }
            Err(rejection) => common::assert_loggable(&rejection),
        }
    }
});
