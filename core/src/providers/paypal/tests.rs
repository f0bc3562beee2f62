//! The vector is PayPal's own: a sandbox delivery, its signature by PayPal and the
//! certificate its URL served (valid 2015-03-18 to 2017-03-22), from PayPal's Python SDK's
//! tests (`test/unit_tests/notifications_test.py`); its CRC-32 is above 2^31, so a signed
//! sum would not verify.

use super::*;
use crate::guard::tests::{settle, Peer};
use crate::guard::{self, Step};
use crate::policy::Policy;
use crate::request::Header;
use crate::testing::MemoryStore;

const BODY: &str = include_str!("vector-body.json");
const CERTIFICATE: &str = include_str!("vector-certificate.pem");
const WEBHOOK: &str = "4JH86294D6297924G";
const ID: &str = "dfb3be50-fd74-11e4-8bf3-77339302725b";
const TIME: &str = "2015-05-18T15:45:13Z";
const SENT: i64 = 1_431_963_913;
const SIGNATURE: &str = "thy4/U002quzxFavHPwbfJGcc46E8rc5jzgyeafWm5mICTBdY/8rl7WJpn8JA0GKA+oDTPsSruqusw+XXg5RLAP7ip53Euh9Xu3UbUhQFX7UgwzE2FeYoY6lyRMiiiQLzy9BvHfIzNIVhPad4KnC339dr6y2l+mN8ALgI4GCdIh3/SoJO5wE64Bh/ueWtt8EVuvsvXfda2Le5a2TrOI9vLEzsm9GS79hAR/5oLexNz8UiZr045Mr5ObroH4w4oNfmkTaDk9Rj0G19uvISs5QzgmBpauKr7Nw++JI0pr/v5mFctQkoWJSGfBGzPRXawrvIIVHQ9Wer48GR2g9ZiApWg==";
const URL: &str =
    "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77";

fn policy(webhooks: &[&str]) -> Policy {
    let keys: Vec<_> = webhooks
        .iter()
        .enumerate()
        .map(|(i, id)| serde_json::json!({"name": format!("webhook{i}"), "value": id}))
        .collect();
    let route = serde_json::json!({"name": "paypal", "path_prefix": "/paypal/", "scheme": "paypal",
        "keys": keys,
        "certificate": {"cluster": "paypal_certificates", "hosts": ["api.sandbox.paypal.com"]}});
    let document = serde_json::json!({"routes": [route]}).to_string();
    crate::config::parse(document.as_bytes(), &|_| None).unwrap()
}

/// The vector's headers, `changed` replacing (or, empty, removing) some.
fn headers(changed: &[(&str, &str)]) -> Vec<Header> {
    let mut head: Vec<(&str, &str)> = vec![
        (":method", "POST"),
        (":path", "/paypal/hook"),
        ("content-type", "application/json"),
        ("paypal-transmission-id", ID),
        ("paypal-transmission-time", TIME),
        ("paypal-transmission-sig", SIGNATURE),
        ("paypal-cert-url", URL),
        ("paypal-auth-algo", "SHA256withRSA"),
        ("paypal-auth-version", "v2"),
    ];
    for (name, value) in changed {
        head.retain(|(n, _)| n != name);
        if !value.is_empty() {
            head.push((name, value));
        }
    }
    head.into_iter()
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect()
}

/// The verdict on `body` sent with `head` at `now`, the certificate served as `served`
/// when the filter fetches it; and whether it was fetched.
fn send(
    policy: &Policy,
    store: &MemoryStore,
    head: &[Header],
    body: &str,
    now: i64,
    served: &str,
) -> (Result<String, Reason>, bool) {
    let head = RequestHead::new(head);
    let route = match guard::on_headers(policy, &head, &Peer::tls()) {
        Step::NeedBody(route) => route,
        Step::Reject(_, rejection) => return (Err(rejection.reason), false),
        other => panic!("{other:?}"),
    };
    let now = Stamp::secs(now);
    let mut step = guard::on_body(route, &head, body.as_bytes(), now, store, 7);
    let mut fetched = false;
    if let Step::Fetch(_, fetch) = &step {
        assert_eq!(fetch.cluster, "paypal_certificates");
        assert_eq!(fetch.authority, "api.sandbox.paypal.com");
        fetched = true;
        let key = match guard::keep_fetched(fetch, Some(200), served.as_bytes(), now, store) {
            Ok(key) => key,
            Err(rejection) => return (Err(rejection.reason), fetched),
        };
        let prior = Some(Prior::Fetched(&key));
        step = guard::on_body_verified(route, &head, body.as_bytes(), prior, now, store, 7);
    }
    let verdict = match step {
        Step::Forward(accepted) => {
            let delivered = crate::replay::Outcome::Delivered;
            settle(
                policy,
                accepted.reserved.unwrap(),
                delivered,
                now.unix_secs(),
                store,
            );
            Ok(accepted.key.to_string())
        }
        Step::Reject(_, rejection) => Err(rejection.reason),
        other => panic!("{other:?}"),
    };
    (verdict, fetched)
}

#[test]
fn paypals_own_delivery_verifies_once_under_its_certificate() {
    assert_eq!(crc32(BODY.as_bytes()), 2_771_810_304);
    let policy = policy(&["1AAAAAAAAAAAAAAAA", WEBHOOK]);
    let store = MemoryStore::new();
    let head = headers(&[]);
    let first = send(&policy, &store, &head, BODY, SENT + 5, CERTIFICATE);
    assert_eq!(first, (Ok("webhook1".into()), true));
    // Kept for every worker: no second fetch; and the same transmission is a replay.
    let again = send(&policy, &store, &head, BODY, SENT + 6, "unreachable");
    assert_eq!(again, (Err(Reason::AlreadyDelivered), false));
    // The same transmission with another body of the same CRC-32 would verify: the
    // fingerprint binds the body, so it is a tampered replay.
    let other = BODY.replace("20.0 USD", "99.0 USD");
    let forged = forge_crc(&other, crc32(BODY.as_bytes()));
    assert_eq!(crc32(forged.as_bytes()), crc32(BODY.as_bytes()));
    let tampered = send(&policy, &store, &head, &forged, SENT + 7, CERTIFICATE);
    assert_eq!(tampered.0, Err(Reason::ReplayTampered));
}

/// `body` with a member appended whose string makes its CRC-32 `target`: what anyone can
/// do to a body PayPal signs only through its CRC. The CRC is affine over GF(2), so the
/// bit flips that move it by the difference are solved for; each of the twelve characters
/// flips only its low five bits from a backtick, staying within `` `a-z{|}~ `` and DEL,
/// which a JSON string holds as they are.
fn forge_crc(body: &str, target: u32) -> String {
    const FREE: usize = 12;
    let at = body.len() - 1 + r#","x":""#.len();
    let base = format!(
        "{},\"x\":\"{}\"}}",
        &body[..body.len() - 1],
        "`".repeat(FREE)
    );
    let flipped = |bit: usize| {
        let mut bytes = base.clone().into_bytes();
        bytes[at + bit / 5] ^= 1 << (bit % 5);
        bytes
    };
    let crc_of_base = crc32(base.as_bytes());
    // Each flip's effect, with the flips (a bit set per flip) that make it.
    let mut basis: Vec<(u32, u64)> = Vec::new();
    for bit in 0..FREE * 5 {
        let mut row = (crc32(&flipped(bit)) ^ crc_of_base, 1u64 << bit);
        for &(effect, flips) in &basis {
            if row.0 ^ effect < row.0 {
                row = (row.0 ^ effect, row.1 ^ flips);
            }
        }
        if row.0 != 0 {
            basis.push(row);
            basis.sort_by_key(|row| std::cmp::Reverse(row.0));
        }
    }
    let mut want = (crc_of_base ^ target, 0u64);
    for &(effect, flips) in &basis {
        if want.0 ^ effect < want.0 {
            want = (want.0 ^ effect, want.1 ^ flips);
        }
    }
    assert_eq!(want.0, 0, "the flips span every CRC");
    let mut bytes = base.into_bytes();
    for bit in (0..FREE * 5).filter(|bit| want.1 >> bit & 1 == 1) {
        bytes[at + bit / 5] ^= 1 << (bit % 5);
    }
    String::from_utf8(bytes).unwrap()
}

#[test]
fn every_header_is_required_once_in_paypals_format_before_any_fetch() {
    let policy = policy(&[WEBHOOK]);
    let now = SENT + 5;
    let cases: &[(&[(&str, &str)], Reason)] = &[
        (&[("paypal-transmission-sig", "")], Reason::MissingSignature),
        (&[("paypal-transmission-id", "")], Reason::MissingSignature),
        (&[("paypal-cert-url", "")], Reason::MissingSignature),
        (&[("paypal-auth-algo", "")], Reason::MissingSignature),
        (
            &[("paypal-transmission-id", "DFB3BE50-FD74-11E4-8BF3-77339302725B")],
            Reason::MalformedHeader,
        ),
        (
            &[("paypal-transmission-id", "dfb3be50-fd74-11e4-8bf3-77339302725b|x")],
            Reason::MalformedHeader,
        ),
        (
            &[("paypal-transmission-time", "2015-05-18T15:45:13.000Z")],
            Reason::MalformedHeader,
        ),
        (
            &[("paypal-transmission-time", "2015-05-18 15:45:13Z")],
            Reason::MalformedHeader,
        ),
        (&[("paypal-auth-algo", "SHA1withRSA")], Reason::MalformedHeader),
        (&[("paypal-transmission-sig", "bm90IGEgc2lnbmF0dXJl")], Reason::MalformedHeader),
        (
            &[("paypal-cert-url", "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77")],
            Reason::MalformedHeader,
        ),
        (
            &[("paypal-cert-url", "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77?x")],
            Reason::MalformedHeader,
        ),
        (
            &[("paypal-cert-url", "https://api.sandbox.paypal.com/v1/notifications/certs/../certs/CERT-360caa42-fca2a594-a5cafa77")],
            Reason::MalformedHeader,
        ),
        (
            &[("paypal-cert-url", "https://api.sandbox.paypal.com/v1/oauth2/token")],
            Reason::MalformedHeader,
        ),
        (
            &[("paypal-cert-url", "http://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77")],
            Reason::MalformedHeader,
        ),
    ];
    for (changed, reason) in cases {
        let store = MemoryStore::new();
        let (verdict, fetched) = send(&policy, &store, &headers(changed), BODY, now, CERTIFICATE);
        assert_eq!(verdict, Err(*reason), "{changed:?}");
        assert!(!fetched, "{changed:?}");
    }
    for (name, value) in [
        ("paypal-transmission-sig", SIGNATURE),
        ("paypal-transmission-id", ID),
        ("paypal-transmission-time", TIME),
        ("paypal-cert-url", URL),
        ("paypal-auth-algo", "SHA256withRSA"),
    ] {
        let mut twice = headers(&[]);
        twice.push((name.into(), value.into()));
        let (verdict, fetched) = send(&policy, &MemoryStore::new(), &twice, BODY, now, CERTIFICATE);
        assert_eq!(
            (verdict, fetched),
            (Err(Reason::DuplicateHeader), false),
            "{name}"
        );
    }
    // Stale or from the future: refused before the fetch too.
    for (at, reason) in [(SENT + 901, Reason::Stale), (SENT - 301, Reason::Future)] {
        let (verdict, fetched) = send(
            &policy,
            &MemoryStore::new(),
            &headers(&[]),
            BODY,
            at,
            CERTIFICATE,
        );
        assert_eq!((verdict, fetched), (Err(reason), false));
    }
}

#[test]
fn another_webhook_body_time_or_certificate_does_not_verify() {
    let now = SENT + 5;
    let mismatch = Err(Reason::SignatureMismatch);
    let other_webhook = policy(&["4JH86294D6297924H"]);
    let store = MemoryStore::new();
    assert_eq!(
        send(
            &other_webhook,
            &store,
            &headers(&[]),
            BODY,
            now,
            CERTIFICATE
        )
        .0,
        mismatch
    );
    let policy = policy(&[WEBHOOK]);
    let changed = BODY.replace("20.0 USD", "21.0 USD");
    assert_eq!(
        send(
            &policy,
            &MemoryStore::new(),
            &headers(&[]),
            &changed,
            now,
            CERTIFICATE
        )
        .0,
        mismatch
    );
    let later = headers(&[("paypal-transmission-time", "2015-05-18T15:45:14Z")]);
    assert_eq!(
        send(&policy, &MemoryStore::new(), &later, BODY, now, CERTIFICATE).0,
        mismatch
    );
    // A certificate of another name is not PayPal's.
    let sns = crate::providers::sns::DEMO_CERTIFICATE;
    let (verdict, fetched) = send(&policy, &MemoryStore::new(), &headers(&[]), BODY, now, sns);
    assert_eq!((verdict, fetched), (Err(Reason::KeyUnavailable), true));
    // The body must be the JSON object PayPal sends.
    let text = headers(&[("content-type", "text/plain")]);
    assert_eq!(
        send(&policy, &MemoryStore::new(), &text, BODY, now, CERTIFICATE).0,
        Err(Reason::UnsupportedMediaType)
    );
}

#[test]
fn a_bad_route_names_its_field() {
    let compile = |route: serde_json::Value| {
        let document = serde_json::json!({"routes": [route]}).to_string();
        crate::config::parse(document.as_bytes(), &|_| None)
            .unwrap_err()
            .to_string()
    };
    let route = |keys: serde_json::Value, certificate: Option<serde_json::Value>| {
        let mut route = serde_json::json!({"name": "paypal", "path_prefix": "/paypal/",
            "scheme": "paypal", "keys": keys});
        if let Some(certificate) = certificate {
            route["certificate"] = certificate;
        }
        route
    };
    let cluster = Some(serde_json::json!({"cluster": "c"}));
    let lowercase = compile(route(
        serde_json::json!([{"value": "4jh86294d6297924g"}]),
        cluster.clone(),
    ));
    assert!(lowercase.contains("routes[0].keys[0]"), "{lowercase}");
    let piped = compile(route(serde_json::json!([{"value": "4JH|8"}]), cluster));
    assert!(piped.contains("is not a PayPal webhook id"), "{piped}");
    let missing = compile(route(serde_json::json!([{"value": WEBHOOK}]), None));
    assert!(missing.contains("routes[0].certificate"), "{missing}");
}

#[test]
fn the_live_host_is_the_default_and_the_certificate_path_is_paypals() {
    assert!(is_certificate_path(
        "/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"
    ));
    for path in [
        "/v1/notifications/certs/CERT-360CAA42-fca2a594-a5cafa77",
        "/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa7",
        "/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa777",
        "/v1/notifications/certs/CERT-360caa42_fca2a594-a5cafa77",
        "/v1/notifications/certs/cert-360caa42-fca2a594-a5cafa77",
        "/v2/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
    ] {
        assert!(!is_certificate_path(path), "{path}");
    }
    let document = serde_json::json!({"routes": [{"name": "paypal", "path_prefix": "/paypal/",
        "scheme": "paypal", "keys": [{"value": WEBHOOK}], "certificate": {"cluster": "c"}}]})
    .to_string();
    let policy = crate::config::parse(document.as_bytes(), &|_| None).unwrap();
    let sandbox = headers(&[]);
    let (verdict, fetched) = send(
        &policy,
        &MemoryStore::new(),
        &sandbox,
        BODY,
        SENT + 5,
        CERTIFICATE,
    );
    assert_eq!((verdict, fetched), (Err(Reason::MalformedHeader), false));
}

/// A delivery the module's signer signs (the demo's key) for `webhook`, at `now`.
fn demo_signed(webhook: &str, now: i64) -> (Vec<Header>, Vec<u8>) {
    let signing = crate::providers::sign::Signing::new(KeyMaterial::Secret(webhook), now);
    let mut out = Outgoing::new("POST", "https://h/paypal/hook", example(&signing));
    sign(&signing, &mut out).unwrap();
    let mut head: Vec<Header> = vec![
        (":method".into(), b"POST".to_vec()),
        (":path".into(), b"/paypal/hook".to_vec()),
    ];
    head.extend(
        out.headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone().into_bytes())),
    );
    (head, out.body)
}

#[test]
fn a_live_route_takes_only_a_live_certificate_with_the_right_key() {
    const SANDBOX_NAMED: &str = include_str!("sandbox-name-certificate.pem");
    let document = serde_json::json!({"routes": [{"name": "paypal", "path_prefix": "/paypal/",
        "scheme": "paypal", "keys": [{"value": WEBHOOK}],
        "certificate": {"cluster": "paypal_certificates"}}]})
    .to_string();
    let live = crate::config::parse(document.as_bytes(), &|_| None).unwrap();
    let (now, store) = (Stamp::secs(2_000_000_000), MemoryStore::new());
    let route = &live.routes[0];
    let (head, body) = demo_signed(WEBHOOK, now.unix_secs());
    let request = RequestHead::new(&head);
    let Step::Fetch(_, fetch) = guard::on_body(route, &request, &body, now, &store, 7) else {
        panic!("no fetch");
    };
    assert_eq!(fetch.authority, "api.paypal.com");
    assert_eq!(fetch.path, DEMO_CERTIFICATE_PATH);
    // The demo's key, issued to the sandbox's verification host: not on the live host.
    let refused = guard::keep_fetched(&fetch, Some(200), SANDBOX_NAMED.as_bytes(), now, &store);
    assert_eq!(refused.unwrap_err().reason, Reason::KeyUnavailable);
    let key =
        guard::keep_fetched(&fetch, Some(200), DEMO_CERTIFICATE.as_bytes(), now, &store).unwrap();
    let prior = Some(Prior::Fetched(&key));
    let step = guard::on_body_verified(route, &request, &body, prior, now, &store, 7);
    assert!(matches!(step, Step::Forward(_)), "{step:?}");
    // A transmission for another webhook, signed by the same key, does not verify here.
    let (other, other_body) = demo_signed("4JH86294D6297924H", now.unix_secs());
    let request = RequestHead::new(&other);
    let step = guard::on_body_verified(route, &request, &other_body, prior, now, &store, 7);
    assert!(
        matches!(step, Step::Reject(_, ref r) if r.reason == Reason::SignatureMismatch),
        "{step:?}"
    );
}

#[test]
fn the_replay_memory_cannot_be_switched_off() {
    let document = serde_json::json!({"routes": [{"name": "paypal", "path_prefix": "/paypal/",
        "scheme": "paypal", "keys": [{"value": WEBHOOK}], "replay": {"enabled": false},
        "certificate": {"cluster": "c"}}]})
    .to_string();
    let error = crate::config::parse(document.as_bytes(), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("routes[0].replay.enabled: must stay true"),
        "{error}"
    );
}
