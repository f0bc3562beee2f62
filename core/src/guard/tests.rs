//! The verdict's tests: routing, transport, replay, sizes, the fleet-wide store, and what
//! the application reads. The Vobiz schemes through the guard are tested beside them, in
//! `providers/vobiz/guard_tests.rs`, with the helpers here.

use base64::Engine;
use serde_json::{json, Value};

pub(crate) use super::*;
use crate::keys::test_key;
use crate::replay::Outcome;
use crate::replay::SLOT_ENTRIES;
use crate::request::{headers, Header};
use crate::store::StoreError;
use crate::store::Stored;
use crate::testing::MemoryStore;

/// 2026-03-25T10:00:00Z: the WhatsApp example's `occurred_at`, and "now" by default.
pub(crate) const NOW: i64 = 1_774_432_800;
pub(crate) const CAS: u32 = 0x5eed_1234;

pub(crate) const ORIGIN: &str = "https://example.com";
// Spec section 2.7, rows 2 and 4: `https://example.com/vobiz/answer` with this nonce.
pub(crate) const NONCE: &str = "09876543210987654321";
pub(crate) const V3: &str = "hcnUcstlkOnYpO6mUNMBs51VJnZ5p6T+dE1Ov5NShuk=";
pub(crate) const MA_V3: &str = "0mwQB92O6388f6zutntqJI/DfTZzMrfd8sWxo+OKs6o=";
/// Well-formed (base64 of 32 bytes) but signed by nobody.
pub(crate) const FORGED: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
pub(crate) const FORM: &str = "CallUUID=abc&Event=StartApp";

// Spec section 6.2: POST https://example.com/answer, token test_auth_token.
pub(crate) const SDK_NONCE: &str = "05429567804466091622";
pub(crate) const SDK_FORM: &str = "To=14155550100&From=14155550123&CallUUID=abc";
pub(crate) const SDK_V3: &str = "x6sWqj1bWCTFPaPgeo9CQQ6Wb1uhdE93JZ8NwCC/2Ic=";
/// The no-params row: equal to the docs' V3 for `/answer`, so docs-only.
pub(crate) const DOCS_ONLY_V3: &str = "yXSTe95YFaLmki98KQ5GoA7MRlneNDrkLpQaVNPF0ko=";

// Spec section 5: WhatsApp worked example.
pub(crate) const WA_SECRET: &str = "your-shared-secret";
pub(crate) const WA_BODY: &str = r#"{"event_id":"f4c1a0d2-3b6e-4a9c-8e2f-0a1b2c3d4e5f","event_type":"message.inbound","account_id":"MA_XXXXXXXX","occurred_at":"2026-03-25T10:00:00Z","payload":{}}"#;
pub(crate) const WA_SIGNATURE: &str =
    "6c82a2dbcf397903ffaea500dffa3b4875fe6388361c8ea1c590354868bc48b1";

// Spec section 5.1: KYC worked example.
pub(crate) const KYC_BODY: &str = r#"{"event":"kyc.completed"}"#;
pub(crate) const KYC_SIGNATURE: &str =
    "sha256=265cd474f955da2f32c6e2af7d7ed9e4778730b0f8877fbba6379553af763cdc";

// ---- policies ----

/// `base` with each field of `extra` set (or removed, when null).
pub(crate) fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

pub(crate) fn policy(route: Value) -> Policy {
    let json = json!({ "routes": [route] }).to_string();
    crate::config::parse(json.as_bytes(), &|_| None).unwrap()
}

/// The voice route of the spec vectors: replay on, v3_construction `either`.
pub(crate) fn voice(extra: Value) -> Policy {
    let base = json!({
        "name": "voice",
        "path_prefix": "/vobiz/",
        "host": "example.com",
        "public_origin": ORIGIN,
        "keys": [{"name": "own", "value": "test_auth_token"}],
        "parent_keys": [{"name": "parent", "value": "test_parent_token"}],
    });
    policy(with(base, extra))
}

/// A voice route for the SDK vectors, which sign `/answer`.
pub(crate) fn sdk_voice(v3_construction: &str) -> Policy {
    voice(json!({"path_prefix": "/answer", "v3_construction": v3_construction}))
}

pub(crate) fn no_replay() -> Value {
    json!({"enabled": false})
}

pub(crate) fn whatsapp() -> Policy {
    policy(json!({
        "name": "wa",
        "path_prefix": "/wa/",
        "scheme": "vobiz_whatsapp",
        "keys": [{"name": "subscription", "value": WA_SECRET}],
    }))
}

pub(crate) fn kyc() -> Policy {
    policy(json!({
        "name": "kyc",
        "path_prefix": "/kyc/",
        "scheme": "vobiz_kyc",
        "keys": [{"name": "parent", "value": "test_parent_token"}],
    }))
}

// ---- requests ----

#[derive(Clone)]
pub(crate) struct Request {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn new(method: &str, path: &str) -> Self {
        Request {
            headers: vec![
                (":method".into(), method.into()),
                (":path".into(), path.into()),
                (":authority".into(), "example.com".into()),
            ],
            body: Vec::new(),
        }
    }

    pub(crate) fn post(path: &str) -> Self {
        Request::new("POST", path)
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the value of a header already present (`:path`, `:authority`, ...).
    pub(crate) fn set(mut self, name: &str, value: &str) -> Self {
        let Some(header) = self.headers.iter_mut().find(|(k, _)| k == name) else {
            panic!("no {name} header to replace");
        };
        header.1 = value.into();
        self
    }

    pub(crate) fn body(mut self, body: &str) -> Self {
        self.body = body.as_bytes().to_vec();
        self
    }

    pub(crate) fn v3(self, signature: &str, nonce: &str) -> Self {
        self.header("x-vobiz-signature-v3", signature)
            .header("x-vobiz-signature-v3-nonce", nonce)
    }

    pub(crate) fn ma_v3(self, signature: &str, nonce: &str) -> Self {
        self.header("x-vobiz-signature-ma-v3", signature)
            .header("x-vobiz-signature-v3-nonce", nonce)
    }

    pub(crate) fn head(&self) -> Vec<Header> {
        let pairs: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        headers(&pairs)
    }
}

pub(crate) const FORM_TYPE: &str = "application/x-www-form-urlencoded";
pub(crate) const JSON_TYPE: &str = "application/json";

/// A form POST, as Vobiz and Plivo send their callbacks.
pub(crate) fn form_post(path: &str) -> Request {
    Request::post(path).header("content-type", FORM_TYPE)
}

/// The spec's row 2: a genuine V3 callback to `/vobiz/answer` with a form body.
pub(crate) fn answer() -> Request {
    form_post("/vobiz/answer").v3(V3, NONCE).body(FORM)
}

/// The spec's section 6.2 POST with params, signed the SDK's way.
pub(crate) fn sdk_answer() -> Request {
    form_post("/answer").v3(SDK_V3, SDK_NONCE).body(SDK_FORM)
}

pub(crate) fn wa_request(signature: &str, body: &str) -> Request {
    Request::post("/wa/events")
        .header("content-type", JSON_TYPE)
        .header("x-webhook-signature", signature)
        .body(body)
}

pub(crate) fn kyc_request(signature: &str, body: &str) -> Request {
    Request::post("/kyc/events")
        .header("content-type", JSON_TYPE)
        .header("x-vobiz-signature", signature)
        .body(body)
}

/// Base64 V3 in the docs' construction: `origin ‖ path ‖ "." ‖ nonce`.
pub(crate) fn docs_v3(path: &str, nonce: &str) -> String {
    let mac = test_key("own", "test_auth_token").mac(&[
        ORIGIN.as_bytes(),
        path.as_bytes(),
        b".",
        nonce.as_bytes(),
    ]);
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// Lowercase hex HMAC of `body`, as WhatsApp and KYC send it.
pub(crate) fn body_mac(secret: &str, body: &str) -> String {
    let mac = test_key("k", secret).mac(&[body.as_bytes()]);
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

// ---- driving the two steps ----

/// The headers step over a TLS connection.
/// A downstream connection as the host would describe it.
pub(crate) struct Peer {
    tls: bool,
    address: Option<IpAddr>,
}

impl Peer {
    pub(crate) fn tls() -> Self {
        Peer {
            tls: true,
            address: Some([35, 154, 59, 246].into()),
        }
    }

    pub(crate) fn plain() -> Self {
        Peer {
            tls: false,
            ..Peer::tls()
        }
    }

    pub(crate) fn at(tls: bool, address: &str) -> Self {
        Peer {
            tls,
            address: address.parse().ok(),
        }
    }
}

impl Downstream for Peer {
    fn tls(&self) -> bool {
        self.tls
    }

    fn peer(&self) -> Option<IpAddr> {
        self.address
    }
}

/// A downstream the route must not need to ask about.
pub(crate) struct Unreachable;

impl Downstream for Unreachable {
    fn tls(&self) -> bool {
        panic!("asked about TLS although the route does not need it")
    }

    fn peer(&self) -> Option<IpAddr> {
        panic!("asked for the peer although the route does not need it")
    }
}

pub(crate) fn at_headers<'p>(policy: &'p Policy, request: &Request) -> Step<'p> {
    on_headers(policy, &RequestHead::new(&request.head()), &Peer::tls())
}

/// The headers step over plain HTTP.
pub(crate) fn at_headers_plain<'p>(policy: &'p Policy, request: &Request) -> Step<'p> {
    on_headers(policy, &RequestHead::new(&request.head()), &Peer::plain())
}

/// The body step for a route that asked for it.
pub(crate) fn at_body<'p>(
    route: &'p Route,
    request: &Request,
    now: i64,
    store: &dyn SharedStore,
) -> Step<'p> {
    on_body(
        route,
        &RequestHead::new(&request.head()),
        &request.body,
        Stamp::secs(now),
        store,
        CAS,
    )
}

/// Both steps as the filter takes them: the body only if the headers asked for it,
/// with what the headers verified.
pub(crate) fn verdict<'p>(
    policy: &'p Policy,
    request: &Request,
    now: i64,
    store: &dyn SharedStore,
) -> Step<'p> {
    let head = request.head();
    let head = RequestHead::new(&head);
    match on_headers_verified(policy, &head, &Peer::tls()) {
        (Step::NeedBody(route), prior) => on_body_verified(
            route,
            &head,
            &request.body,
            prior,
            Stamp::secs(now),
            store,
            CAS,
        ),
        (step, _) => step,
    }
}

pub(crate) fn needs_body<'p>(step: Step<'p>) -> &'p Route {
    match step {
        Step::NeedBody(route) => route,
        other => panic!("expected NeedBody, got {other:?}"),
    }
}

pub(crate) fn forwarded(step: Step<'_>) -> Accepted<'_> {
    match step {
        Step::Forward(accepted) => accepted,
        other => panic!("expected Forward, got {other:?}"),
    }
}

pub(crate) fn rejected(step: Step<'_>) -> Rejection {
    match step {
        Step::Reject(_, rejection) => rejection,
        other => panic!("expected Reject, got {other:?}"),
    }
}

pub(crate) fn reason(step: Step<'_>) -> Reason {
    rejected(step).reason
}

/// Forwards `request` through both steps and returns its reservation.
pub(crate) fn reserve(
    policy: &Policy,
    request: &Request,
    now: i64,
    store: &dyn SharedStore,
) -> Reserved {
    let accepted = forwarded(verdict(policy, request, now, store));
    accepted.reserved.unwrap()
}

/// What the filter does when the upstream answers (policies of one route).
pub(crate) fn settle(
    policy: &Policy,
    reserved: Reserved,
    outcome: Outcome,
    now: i64,
    store: &MemoryStore,
) {
    let replay = policy.routes[0].replay.as_ref().unwrap();
    let now = u32::try_from(now).unwrap();
    replay
        .cache
        .settle(store, &reserved.id, &reserved.fingerprint, outcome, now)
        .unwrap();
}

/// A store whose every call fails, like a broken host.
pub(crate) struct FailingStore;

impl SharedStore for FailingStore {
    fn get(&self, _: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Err(StoreError::Host)
    }

    fn set(&self, _: &str, _: &[u8], _: u32) -> Result<bool, StoreError> {
        Err(StoreError::Host)
    }
}

// ---- 1. routing ----

#[test]
fn unmatched_path_is_unprotected() {
    let policy = voice(json!({}));
    for path in [
        "/other",
        "/vobiz",
        "/other?to=/vobiz/answer",
        "/static/a%2Fb/logo.png",
    ] {
        let step = at_headers_plain(&policy, &Request::post(path));
        assert!(matches!(step, Step::Unprotected), "{path}: {step:?}");
    }
}

#[test]
fn other_spellings_of_a_protected_path_are_refused_before_anything_else() {
    let policy = voice(json!({}));
    for (path, feature) in [
        ("/VOBIZ/answer", "letter case"),
        ("/vobiz%2Fanswer", "encoded slash"),
        ("/x/..;/vobiz/answer", "dot segment"),
        ("/vobiz/answer/../../admin", "dot segment"),
        ("/vobiz//answer", "repeated slash"),
        ("/vobiz;jsessionid=1/answer", "path parameter"),
    ] {
        // Even correctly signed for the canonical path, and over plain HTTP.
        let request = answer().set(":path", path);
        let rejection = rejected(at_headers_plain(&policy, &request));
        assert_eq!(rejection.reason, Reason::NoncanonicalPath, "{path}");
        assert!(
            rejection.detail.contains(feature),
            "{path}: {}",
            rejection.detail
        );
        assert!(rejection.detail.contains("/vobiz/"), "{}", rejection.detail);
    }
}

#[test]
fn path_override_headers_never_travel_with_a_protected_path() {
    let policy = voice(json!({}));
    let carried = answer().header("x-original-url", "/admin");
    assert_eq!(
        reason(at_headers(&policy, &carried)),
        Reason::NoncanonicalPath
    );
    let pointing = Request::post("/public").header("X-Rewrite-URL", "/vobiz/answer");
    assert_eq!(
        reason(at_headers(&policy, &pointing)),
        Reason::NoncanonicalPath
    );
    let elsewhere = Request::post("/public").header("x-original-url", "/other");
    assert!(matches!(at_headers(&policy, &elsewhere), Step::Unprotected));
}

#[test]
fn a_host_restricted_route_protects_every_spelling_of_its_host() {
    let policy = voice(json!({}));
    for authority in [
        "EXAMPLE.com",
        "example.com.",
        "example.com:1",
        "u@example.com",
    ] {
        let request = answer().set(":authority", authority);
        assert!(
            matches!(at_headers(&policy, &request), Step::NeedBody(_)),
            "{authority}"
        );
    }
    let forwarded = answer()
        .set(":authority", "other.example")
        .header("x-forwarded-host", "Example.com.");
    assert!(matches!(at_headers(&policy, &forwarded), Step::NeedBody(_)));
    let hostless = answer().set(":authority", "");
    assert!(matches!(at_headers(&policy, &hostless), Step::NeedBody(_)));
}

#[test]
fn unmatched_host_is_unprotected() {
    let policy = voice(json!({}));
    let request = answer().set(":authority", "other.example");
    assert!(matches!(at_headers(&policy, &request), Step::Unprotected));
}

#[test]
fn unprotected_requests_never_ask_about_tls() {
    let policy = voice(json!({}));
    let h = Request::post("/other").head();
    let step = on_headers(&policy, &RequestHead::new(&h), &Unreachable);
    assert!(matches!(step, Step::Unprotected));
}

// ---- 2. transport ----

#[test]
fn plain_http_is_refused() {
    let policy = voice(json!({}));
    let rejection = rejected(at_headers_plain(&policy, &answer()));
    assert_eq!(rejection.reason, Reason::TlsRequired);
    assert_eq!(rejection.status(), 403);
}

#[test]
fn untrusted_forwarded_proto_changes_nothing() {
    let policy = voice(json!({}));
    let request = answer().header("x-forwarded-proto", "https");
    assert_eq!(
        reason(at_headers_plain(&policy, &request)),
        Reason::TlsRequired
    );
}

#[test]
fn trusted_forwarded_proto_counts_only_exactly_https() {
    let policy = voice(json!({"trust_x_forwarded_proto": true}));
    for proto in ["https", "HTTPS", "Https"] {
        let request = answer().header("x-forwarded-proto", proto);
        needs_body(at_headers_plain(&policy, &request));
    }
    for proto in [
        "http",
        "",
        " https",
        "https ",
        "https,http",
        "https, http",
        "wss",
    ] {
        let request = answer().header("x-forwarded-proto", proto);
        assert_eq!(
            reason(at_headers_plain(&policy, &request)),
            Reason::TlsRequired,
            "{proto:?}"
        );
    }
    assert_eq!(
        reason(at_headers_plain(&policy, &answer())),
        Reason::TlsRequired,
        "no header at all"
    );
    let twice = answer()
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-proto", "http");
    assert_eq!(
        reason(at_headers_plain(&policy, &twice)),
        Reason::TlsRequired,
        "duplicated header"
    );
}

#[test]
fn trusted_forwarded_proto_still_accepts_real_tls() {
    let policy = voice(json!({"trust_x_forwarded_proto": true}));
    needs_body(at_headers(&policy, &answer()));
}

#[test]
fn allow_plain_http_admits_plain_http_without_asking() {
    let policy = voice(json!({"allow_plain_http": true}));
    let h = answer().head();
    let step = on_headers(&policy, &RequestHead::new(&h), &Unreachable);
    needs_body(step);
}

#[test]
fn allowed_sources_admit_only_listed_peers() {
    let policy = voice(json!({"allowed_sources": ["35.154.59.246", "15.206.6.156/32"]}));
    let head = answer().head();
    let head = RequestHead::new(&head);
    needs_body(on_headers(&policy, &head, &Peer::at(true, "35.154.59.246")));
    let step = on_headers(&policy, &head, &Peer::at(true, "8.8.8.8"));
    assert_eq!(reason(step), Reason::SourceNotAllowed);
    let step = on_headers(
        &policy,
        &head,
        &Peer {
            tls: true,
            address: None,
        },
    );
    assert_eq!(reason(step), Reason::SourceNotAllowed);
}

#[test]
fn behind_a_trusted_proxy_the_forwarded_client_is_the_source() {
    let policy = voice(json!({
        "allowed_sources": ["35.154.59.246"],
        "trusted_proxies": ["10.0.0.0/8"],
    }));
    let via_lb = |xff: &str| {
        let head = answer().header("x-forwarded-for", xff).head();
        on_headers(
            &policy,
            &RequestHead::new(&head),
            &Peer::at(true, "10.1.2.3"),
        )
    };
    needs_body(via_lb("35.154.59.246"));
    assert_eq!(reason(via_lb("8.8.8.8")), Reason::SourceNotAllowed);
    // A client cannot claim an allowed address by writing it left of itself.
    assert_eq!(
        reason(via_lb("35.154.59.246, 8.8.8.8")),
        Reason::SourceNotAllowed
    );
    // From an untrusted peer, x-forwarded-for is not consulted at all.
    let head = answer().header("x-forwarded-for", "35.154.59.246").head();
    let step = on_headers(
        &policy,
        &RequestHead::new(&head),
        &Peer::at(true, "8.8.8.8"),
    );
    assert_eq!(reason(step), Reason::SourceNotAllowed);
}

#[test]
fn forwarded_proto_counts_only_from_trusted_proxies_when_listed() {
    let policy = voice(json!({
        "trust_x_forwarded_proto": true,
        "trusted_proxies": ["10.0.0.0/8"],
    }));
    let head = answer().header("x-forwarded-proto", "https").head();
    let head = RequestHead::new(&head);
    needs_body(on_headers(&policy, &head, &Peer::at(false, "10.9.9.9")));
    let step = on_headers(&policy, &head, &Peer::at(false, "8.8.8.8"));
    assert_eq!(reason(step), Reason::TlsRequired);
}

#[test]
fn debug_signed_string_names_what_was_signed_but_never_the_key() {
    let policy = voice(json!({"debug_signed_string": true, "v3_construction": "docs"}));
    let request = form_post("/vobiz/answer").v3(FORGED, NONCE).body(FORM);
    let rejection = rejected(at_headers(&policy, &request));
    assert_eq!(rejection.reason, Reason::SignatureMismatch);
    assert!(
        rejection
            .detail
            .contains(&format!("v3=\"https://example.com/vobiz/answer.{NONCE}\"")),
        "{}",
        rejection.detail
    );
    assert!(!rejection.detail.contains("test_auth_token"));
    let quiet = voice(json!({"v3_construction": "docs"}));
    let rejection = rejected(at_headers(&quiet, &request));
    assert!(
        !rejection.detail.contains("https://"),
        "{}",
        rejection.detail
    );
}

// ---- 4. voice with replay ----

#[test]
fn replayed_route_waits_for_the_body_then_reserves() {
    let (policy, store) = (voice(json!({})), MemoryStore::new());
    let route = needs_body(at_headers(&policy, &answer()));
    let accepted = forwarded(at_body(route, &answer(), NOW, &store));
    assert_eq!(accepted.scheme, "v3");
    assert_eq!(accepted.key, "own");
    let reserved = accepted.reserved.unwrap();
    assert!(!reserved.retry);
}

#[test]
fn a_signature_verified_at_the_headers_is_not_verified_again_and_judged_alike() {
    let policy = voice(json!({"freshness": {"max_age": "5m"}}));
    let parent = form_post("/vobiz/answer").ma_v3(MA_V3, NONCE);
    let requests = [
        answer(),
        answer().body("Event=Hangup&timestamp=not-a-date"),
        answer().set(":path", "/vobiz/answer?x=1"),
        parent.clone().body(FORM),
        parent
            .header(
                "x-vobiz-signature-v3",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            .body(FORM),
    ];
    for request in &requests {
        let head = request.head();
        let head = RequestHead::new(&head);
        let (step, prior) = on_headers_verified(&policy, &head, &Peer::tls());
        let route = needs_body(step);
        assert!(prior.is_some(), "verified at the headers");
        let (once, twice) = (MemoryStore::new(), MemoryStore::new());
        let now = Stamp::secs(NOW);
        let with_prior = on_body_verified(route, &head, &request.body, prior, now, &once, CAS);
        let without = on_body(route, &head, &request.body, now, &twice, CAS);
        assert_eq!(format!("{with_prior:?}"), format!("{without:?}"));
    }
    // A prior naming no pair of the request is ignored: verified from scratch.
    let forged = answer().set(
        "x-vobiz-signature-v3",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    let head = forged.head();
    let head = RequestHead::new(&head);
    let route = &policy.routes[0];
    let step = on_body_verified(
        route,
        &head,
        &forged.body,
        Some(Prior::Verified("v2", "own")),
        Stamp::secs(NOW),
        &MemoryStore::new(),
        CAS,
    );
    assert_eq!(reason(step), Reason::SignatureMismatch);
}

#[test]
fn repeat_while_in_flight_is_refused() {
    let (policy, store) = (voice(json!({})), MemoryStore::new());
    reserve(&policy, &answer(), NOW, &store);
    let rejection = rejected(verdict(&policy, &answer(), NOW + 1, &store));
    assert_eq!(rejection.reason, Reason::InFlight);
    assert_eq!(rejection.status(), 409);
}

#[test]
fn repeat_after_delivery_is_answered_200_by_default() {
    let (policy, store) = (voice(json!({})), MemoryStore::new());
    let reserved = reserve(&policy, &answer(), NOW, &store);
    settle(&policy, reserved, Outcome::Delivered, NOW + 1, &store);
    let rejection = rejected(verdict(&policy, &answer(), NOW + 2, &store));
    assert_eq!(rejection.reason, Reason::AlreadyDelivered);
    assert_eq!(rejection.status(), 200);
}

#[test]
fn repeat_after_delivery_is_409_with_on_duplicate_reject() {
    let policy = voice(json!({"replay": {"on_duplicate": "reject"}}));
    let store = MemoryStore::new();
    let reserved = reserve(&policy, &answer(), NOW, &store);
    settle(&policy, reserved, Outcome::Delivered, NOW + 1, &store);
    let rejection = rejected(verdict(&policy, &answer(), NOW + 2, &store));
    assert_eq!(rejection.reason, Reason::Duplicate);
    assert_eq!(rejection.status(), 409);
}

#[test]
fn repeat_after_failure_is_forwarded_as_a_retry() {
    let (policy, store) = (voice(json!({})), MemoryStore::new());
    let first = reserve(&policy, &answer(), NOW, &store);
    settle(&policy, first, Outcome::Failed, NOW + 1, &store);
    let retry = reserve(&policy, &answer(), NOW + 2, &store);
    assert!(retry.retry);
    assert_eq!((retry.id, retry.fingerprint), (first.id, first.fingerprint));
}

#[test]
fn same_nonce_with_another_body_is_tampered() {
    let (policy, store) = (voice(json!({})), MemoryStore::new());
    reserve(&policy, &answer(), NOW, &store);
    let swapped = answer().body("CallUUID=abc&Event=Hangup");
    let rejection = rejected(verdict(&policy, &swapped, NOW + 1, &store));
    assert_eq!(rejection.reason, Reason::ReplayTampered);
    assert_eq!(rejection.status(), 409);
}

#[test]
fn same_nonce_with_another_method_or_query_is_tampered() {
    let (policy, store) = (voice(json!({})), MemoryStore::new());
    let reserved = reserve(&policy, &answer(), NOW, &store);
    settle(&policy, reserved, Outcome::Delivered, NOW + 1, &store);
    // The query is not signed, so the signature still verifies; the nonce memory
    // is what refuses it.
    let moved = answer().set(":path", "/vobiz/answer?CallUUID=other");
    assert_eq!(
        reason(verdict(&policy, &moved, NOW + 2, &store)),
        Reason::ReplayTampered
    );
    let as_get = answer().set(":method", "GET");
    assert_eq!(
        reason(verdict(&policy, &as_get, NOW + 2, &store)),
        Reason::ReplayTampered
    );
}

#[test]
fn ma_v3_alone_is_forwarded_with_the_parent_key() {
    let (policy, store) = (voice(json!({})), MemoryStore::new());
    let request = form_post("/vobiz/answer").ma_v3(MA_V3, NONCE).body(FORM);
    let accepted = forwarded(verdict(&policy, &request, NOW, &store));
    assert_eq!((accepted.scheme, accepted.key), ("ma_v3", "parent"));
}

#[test]
fn ma_v3_with_the_same_nonce_is_the_same_identity() {
    let (policy, store) = (voice(json!({})), MemoryStore::new());
    let reserved = reserve(&policy, &answer(), NOW, &store);
    let parent = form_post("/vobiz/answer").ma_v3(MA_V3, NONCE).body(FORM);
    assert_eq!(
        reason(verdict(&policy, &parent, NOW + 1, &store)),
        Reason::InFlight
    );
    settle(&policy, reserved, Outcome::Delivered, NOW + 1, &store);
    assert_eq!(
        reason(verdict(&policy, &parent, NOW + 2, &store)),
        Reason::AlreadyDelivered
    );
    let tampered = parent.body("Event=Hangup");
    assert_eq!(
        reason(verdict(&policy, &tampered, NOW + 3, &store)),
        Reason::ReplayTampered
    );
}

#[test]
fn replay_memory_is_per_route() {
    let base = json!({
        "path_prefix": "/vobiz/",
        "public_origin": ORIGIN,
        "keys": [{"name": "own", "value": "test_auth_token"}],
    });
    let two = json!({"routes": [
        with(base.clone(), json!({"name": "a", "host": "other.example"})),
        with(base, json!({"name": "b", "host": "example.com"})),
    ]});
    let policy = crate::config::parse(two.to_string().as_bytes(), &|_| None).unwrap();
    let store = MemoryStore::new();
    reserve(&policy, &answer(), NOW, &store);
    let other_route = answer().set(":authority", "other.example");
    let accepted = forwarded(verdict(&policy, &other_route, NOW + 1, &store));
    assert_eq!(accepted.route.name, "a");
    assert!(!accepted.reserved.unwrap().retry);
}

// ---- 5. replay window ----

#[test]
fn delivered_request_is_fresh_again_after_the_window() {
    let policy = voice(json!({"replay": {"window": "10s", "in_flight_timeout": "5s"}}));
    let store = MemoryStore::new();
    let reserved = reserve(&policy, &answer(), NOW, &store);
    settle(&policy, reserved, Outcome::Delivered, NOW + 1, &store);
    assert_eq!(
        reason(verdict(&policy, &answer(), NOW + 9, &store)),
        Reason::AlreadyDelivered
    );
    let again = reserve(&policy, &answer(), NOW + 10, &store);
    assert!(!again.retry, "a fresh reservation, not a retry");
}

#[test]
fn lost_in_flight_attempt_lapses_into_a_retry() {
    let policy = voice(json!({"replay": {"window": "10s", "in_flight_timeout": "5s"}}));
    let store = MemoryStore::new();
    reserve(&policy, &answer(), NOW, &store);
    assert_eq!(
        reason(verdict(&policy, &answer(), NOW + 4, &store)),
        Reason::InFlight
    );
    assert!(reserve(&policy, &answer(), NOW + 5, &store).retry);
}

// ---- 6. cache full ----

#[test]
fn full_cache_refuses_new_nonces_with_503() {
    let policy = voice(json!({"replay": {"max_entries": 1}}));
    let store = MemoryStore::new();
    let request = |n: usize| {
        let nonce = format!("{n:020}");
        form_post("/vobiz/answer")
            .v3(&docs_v3("/vobiz/answer", &nonce), &nonce)
            .body(FORM)
    };
    for n in 0..SLOT_ENTRIES {
        reserve(&policy, &request(n), NOW, &store);
    }
    let rejection = rejected(verdict(&policy, &request(SLOT_ENTRIES), NOW, &store));
    assert_eq!(rejection.reason, Reason::ReplayCacheFull);
    assert_eq!(rejection.status(), 503);
    // Nothing live was evicted to make room.
    assert_eq!(
        reason(verdict(&policy, &request(0), NOW + 1, &store)),
        Reason::InFlight
    );
}

#[test]
fn plivo_signs_like_vobiz_under_its_own_header_names() {
    // providers.md §4 rows 7a (V2, the query is not signed) and 7b (V3, the SDK's
    // construction over query and POST parameters), checked by the plivo SDK.
    let plivo = |accept: &str| {
        policy(json!({
            "name": "plivo", "path_prefix": "/answer", "scheme": "plivo",
            "public_origin": "https://example.com", "accept": [accept],
            "keys": [{"name": "token", "value": "MAXXXXXXXXXXXXXXXXXX_test_token"}],
            "replay": {"enabled": false},
        }))
    };
    let nonce = "05429567804466091622";
    let v2 = form_post("/answer/?x=1")
        .header(
            "x-plivo-signature-v2",
            "NXfJq7jiqMh8dwdT9s8Li2O6gt9LQfZ8EBtBDtJncQA=",
        )
        .header("x-plivo-signature-v2-nonce", nonce);
    let v2_policy = plivo("v2");
    let accepted = forwarded(at_headers(&v2_policy, &v2));
    assert_eq!((accepted.scheme, accepted.key), ("v2", "token"));
    let v3 = form_post("/answer?x=1")
        .header(
            "x-plivo-signature-v3",
            "sVFiBGr0N/ItJUqRMLveELKsMZfCcjFfGpN7IV1Ok30=",
        )
        .header("x-plivo-signature-v3-nonce", nonce)
        .body("CallUUID=abc&From=14155550123&To=14155550100");
    let v3_policy = plivo("v3");
    let accepted = forwarded(verdict(&v3_policy, &v3, NOW, &MemoryStore::new()));
    assert_eq!((accepted.scheme, accepted.key), ("v3_sdk", "token"));
    // Vobiz's header names mean nothing on a Plivo route.
    let vobiz = form_post("/answer/?x=1")
        .header(
            "x-vobiz-signature-v2",
            "NXfJq7jiqMh8dwdT9s8Li2O6gt9LQfZ8EBtBDtJncQA=",
        )
        .header("x-vobiz-signature-v2-nonce", nonce);
    assert_eq!(
        reason(at_headers(&v2_policy, &vobiz)),
        Reason::MissingSignature
    );
}

#[test]
fn a_full_cache_may_forget_its_oldest_delivered_callback_instead() {
    let policy =
        voice(json!({"replay": {"max_entries": 1, "when_full": "forget_oldest_delivered"}}));
    let store = MemoryStore::new();
    let request = |n: usize| {
        let nonce = format!("{n:020}");
        form_post("/vobiz/answer")
            .v3(&docs_v3("/vobiz/answer", &nonce), &nonce)
            .body(FORM)
    };
    for n in 0..SLOT_ENTRIES {
        let reserved = reserve(&policy, &request(n), NOW, &store);
        assert!(!reserved.forgot);
        if n < 2 {
            settle(&policy, reserved, Outcome::Delivered, NOW, &store);
        }
    }
    let later = NOW + 1;
    let reserved = reserve(&policy, &request(SLOT_ENTRIES), later, &store);
    assert!(reserved.forgot);
    // The oldest delivered callback was forgotten: it would be taken as new again.
    assert!(reserve(&policy, &request(0), later, &store).forgot);
    // The other delivered one is gone too now; in-flight entries are never forgotten.
    let rejection = rejected(verdict(&policy, &request(SLOT_ENTRIES + 1), later, &store));
    assert_eq!(rejection.reason, Reason::ReplayCacheFull);
    assert_eq!(
        reason(verdict(&policy, &request(5), later, &store)),
        Reason::InFlight
    );
}

// ---- 8. size ----

#[test]
fn declared_length_over_the_limit_is_413_at_headers() {
    let policy = voice(json!({"max_body_bytes": 100}));
    let rejection = rejected(at_headers(
        &policy,
        &answer().header("content-length", "101"),
    ));
    assert_eq!(rejection.reason, Reason::BodyTooLarge);
    assert_eq!(rejection.status(), 413);
    needs_body(at_headers(
        &policy,
        &answer().header("content-length", "100"),
    ));
}

#[test]
fn body_over_the_limit_is_413() {
    let (policy, store) = (voice(json!({"max_body_bytes": 100})), MemoryStore::new());
    let big = answer().body(&"a".repeat(101));
    let route = needs_body(at_headers(&policy, &big));
    let rejection = rejected(at_body(route, &big, NOW, &store));
    assert_eq!(rejection.reason, Reason::BodyTooLarge);
    assert_eq!(rejection.status(), 413);
    assert!(store.written.borrow().is_empty(), "nothing reserved");
    let exact = answer().body(&"a".repeat(100));
    forwarded(at_body(route, &exact, NOW, &store));
}

// ---- 12. store failure ----

#[test]
fn failing_store_fails_closed_with_503() {
    let policy = voice(json!({}));
    let rejection = rejected(verdict(&policy, &answer(), NOW, &FailingStore));
    assert_eq!(rejection.reason, Reason::ReplayStoreUnavailable);
    assert_eq!(rejection.status(), 503);
    for (policy, request) in [
        (whatsapp(), wa_request(WA_SIGNATURE, WA_BODY)),
        (kyc(), kyc_request(KYC_SIGNATURE, KYC_BODY)),
    ] {
        assert_eq!(
            reason(verdict(&policy, &request, NOW + 60, &FailingStore)),
            Reason::ReplayStoreUnavailable
        );
    }
}

#[test]
fn without_replay_no_store_is_consulted() {
    let policy = voice(json!({"replay": no_replay(), "freshness": {"max_age": "5m"}}));
    forwarded(verdict(&policy, &answer(), NOW, &FailingStore));
}

// ---- 13. fleet-wide store (etcd) ----

fn fleet(store: Value) -> Policy {
    let mut store = store;
    store["type"] = "etcd".into();
    store["cluster"] = "etcd".into();
    voice(json!({"replay": {"store": store}}))
}

fn pending(step: Step<'_>) -> Pending {
    match step {
        Step::Reserve(_, pending) => pending,
        other => panic!("expected Reserve, got {other:?}"),
    }
}

fn timing(policy: &Policy) -> replay::Timing {
    policy.routes[0].replay.as_ref().unwrap().cache.timing()
}

/// The fleet's answer for `pending`: `reservation` over `record`.
fn answered<'p>(
    policy: &'p Policy,
    pending: Pending,
    reservation: Reservation,
    record: replay::Record,
    store: &MemoryStore,
) -> Step<'p> {
    let answer = Answer {
        reservation,
        stored: Stored { record, claim: 9 },
        revision: 7,
    };
    on_reservation(&policy.routes[0], pending, Ok(answer), store, CAS)
}

#[test]
fn an_unknown_nonce_is_asked_of_the_fleet_and_nothing_is_written() {
    let (policy, store) = (fleet(json!({})), MemoryStore::new());
    let asked = pending(verdict(&policy, &answer(), NOW, &store));
    assert_eq!(asked.scheme, "v3");
    assert_eq!(asked.key, "own");
    // The whole signed message, the docs' V3 of spec row 2.
    let message = format!("{ORIGIN}/vobiz/answer.{NONCE}");
    let digest: [u8; 32] = blake3::hash(message.as_bytes()).into();
    assert_eq!(
        asked.id,
        replay::replay_id(b"voice", b"vobiz_voice_v3", &digest)
    );
    // Method, path, the bound headers present (content-type), the message's four parts
    // and the unsigned body.
    let mut fingerprint = Digest16::new("cg3/fingerprint");
    fingerprint.part(b"POST");
    fingerprint.part(b"/vobiz/answer");
    fingerprint.part(b"content-type");
    fingerprint.number(1);
    fingerprint.part(b"application/x-www-form-urlencoded");
    fingerprint.number(4);
    for length in [ORIGIN.len(), "/vobiz/answer".len(), 1, NONCE.len()] {
        fingerprint.number(length as u64);
    }
    fingerprint.part(FORM.as_bytes());
    assert_eq!(asked.fingerprint, fingerprint.finish());
    assert_eq!(asked.now, NOW as u32);
    assert!(store.written.borrow().is_empty());
}

#[test]
fn a_fleet_claim_is_forwarded_and_remembered_locally() {
    let (policy, store) = (fleet(json!({})), MemoryStore::new());
    let asked = pending(verdict(&policy, &answer(), NOW, &store));
    let claim = timing(&policy).first_sight(&asked.fingerprint, asked.now);
    let accepted = forwarded(answered(&policy, asked, Reservation::Fresh, claim, &store));
    assert_eq!((accepted.scheme, accepted.key), ("v3", "own"));
    let reserved = accepted.reserved.unwrap();
    assert!(!reserved.retry && !reserved.fail_open);
    assert_eq!(
        reserved.remote,
        Some(Claim {
            revision: 7,
            stored: Stored {
                record: claim,
                claim: 9
            }
        })
    );
    // Local copies now get answers without asking the fleet: in flight, then duplicate.
    assert_eq!(
        reason(verdict(&policy, &answer(), NOW + 1, &store)),
        Reason::InFlight
    );
    let tampered = answer().body("CallUUID=evil");
    assert_eq!(
        reason(verdict(&policy, &tampered, NOW + 1, &store)),
        Reason::ReplayTampered
    );
    settle(&policy, reserved, Outcome::Delivered, NOW + 2, &store);
    assert_eq!(
        reason(verdict(&policy, &answer(), NOW + 3, &store)),
        Reason::AlreadyDelivered
    );
    // A failed local delivery is retried through the fleet, which alone may re-claim.
    let (policy, store) = (fleet(json!({})), MemoryStore::new());
    let asked = pending(verdict(&policy, &answer(), NOW, &store));
    let claim = timing(&policy).first_sight(&asked.fingerprint, asked.now);
    let reserved = forwarded(answered(&policy, asked, Reservation::Fresh, claim, &store))
        .reserved
        .unwrap();
    settle(&policy, reserved, Outcome::Failed, NOW + 1, &store);
    let again = pending(verdict(&policy, &answer(), NOW + 2, &store));
    let reclaim = timing(&policy).reclaim(&claim, NOW as u32 + 2);
    let retry = forwarded(answered(
        &policy,
        again,
        Reservation::Retry,
        reclaim,
        &store,
    ));
    assert!(retry.reserved.unwrap().retry);
}

#[test]
fn fleet_refusals_are_the_same_verdicts_and_are_remembered() {
    let store = MemoryStore::new();
    let policy = fleet(json!({}));
    let asked = pending(verdict(&policy, &answer(), NOW, &store));
    let mine = asked.fingerprint;
    let theirs = replay::Record {
        fingerprint: [9; 16],
        ..timing(&policy).first_sight(&mine, asked.now)
    };
    // Someone else's claim with another fingerprint: tampering, remembered so that
    // tampering is refused here without a round trip, while their own request (same
    // fingerprint as the claim) is still asked of the fleet.
    let refused = answered(
        &policy,
        asked.clone(),
        Reservation::Tampered,
        theirs,
        &store,
    );
    assert_eq!(reason(refused), Reason::ReplayTampered);
    assert_eq!(
        reason(verdict(&policy, &answer(), NOW + 1, &store)),
        Reason::ReplayTampered
    );
    let remembered = policy.routes[0].replay.as_ref().unwrap().cache.peek(
        &store,
        &asked.id,
        &[9; 16],
        NOW as u32 + 1,
    );
    assert_eq!(
        remembered,
        Ok(None),
        "the claim's owner asks the fleet again"
    );

    let mine_record = timing(&policy).first_sight(&mine, asked.now);
    let delivered = replay::Record {
        state: replay::State::Delivered,
        ..mine_record
    };
    for (reservation, record, on_duplicate, expected) in [
        (
            Reservation::Duplicate,
            delivered,
            "ok",
            Reason::AlreadyDelivered,
        ),
        (
            Reservation::Duplicate,
            delivered,
            "reject",
            Reason::Duplicate,
        ),
        (Reservation::InFlight, mine_record, "ok", Reason::InFlight),
    ] {
        let store = MemoryStore::new();
        let policy = voice(json!({"replay": {"on_duplicate": on_duplicate,
            "store": {"type": "etcd", "cluster": "etcd"}}}));
        let step = answered(&policy, asked.clone(), reservation, record, &store);
        assert_eq!(reason(step), expected);
        let again = verdict(&policy, &answer(), NOW + 1, &store);
        if reservation == Reservation::Duplicate {
            // Delivered is a fact this Envoy can answer from.
            assert_eq!(reason(again), expected);
        } else {
            // Someone else's claim ends when the fleet says so: ask it again.
            pending(again);
        }
    }
}

#[test]
fn a_fleet_failure_fails_closed_by_default() {
    let (policy, store) = (fleet(json!({})), MemoryStore::new());
    for error in [
        StoreError::Timeout,
        StoreError::Unavailable("HTTP 503: no healthy upstream".into()),
        StoreError::Corrupt,
    ] {
        let asked = pending(verdict(&policy, &answer(), NOW, &store));
        let rejection = rejected(on_reservation(
            &policy.routes[0],
            asked,
            Err(error.clone()),
            &store,
            CAS,
        ));
        assert_eq!(rejection.reason, Reason::ReplayStoreUnavailable);
        assert_eq!(rejection.status(), 503);
        assert_eq!(rejection.detail, error.to_string());
    }
    assert!(store.written.borrow().is_empty());
}

#[test]
fn fail_open_forwards_judged_by_local_memory_alone() {
    let (policy, store) = (fleet(json!({"on_error": "fail_open"})), MemoryStore::new());
    let down = |request: &Request, now: i64| match verdict(&policy, request, now, &store) {
        Step::Reserve(route, asked) => {
            on_reservation(route, asked, Err(StoreError::Timeout), &store, CAS)
        }
        step => step,
    };
    let accepted = forwarded(down(&answer(), NOW));
    let reserved = accepted.reserved.unwrap();
    assert!(reserved.fail_open && !reserved.retry);
    assert_eq!(reserved.remote, None, "nothing to settle in etcd");
    assert_eq!(reason(down(&answer(), NOW + 1)), Reason::InFlight);
    assert_eq!(
        reason(down(&answer().body("CallUUID=evil"), NOW + 1)),
        Reason::ReplayTampered
    );
    settle(&policy, reserved, Outcome::Delivered, NOW + 2, &store);
    assert_eq!(reason(down(&answer(), NOW + 3)), Reason::AlreadyDelivered);
}

#[test]
fn a_failing_local_memory_leaves_the_decision_to_the_fleet() {
    let policy = fleet(json!({}));
    let asked = pending(verdict(&policy, &answer(), NOW, &FailingStore));
    let claim = timing(&policy).first_sight(&asked.fingerprint, asked.now);
    let answer = Answer {
        reservation: Reservation::Fresh,
        stored: Stored {
            record: claim,
            claim: 9,
        },
        revision: 3,
    };
    let step = on_reservation(&policy.routes[0], asked, Ok(answer), &FailingStore, CAS);
    assert!(forwarded(step).reserved.unwrap().remote.is_some());
}

/// A Slack `url_verification` signed at `signed_at`, as `slack_sdk` signs it.
fn slack_handshake(signed_at: i64, challenge: &str) -> Request {
    let body = format!(r#"{{"token":"t","challenge":"{challenge}","type":"url_verification"}}"#);
    let timestamp = signed_at.to_string();
    let mac =
        test_key("k", "slack-secret").mac(&[b"v0:", timestamp.as_bytes(), b":", body.as_bytes()]);
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    Request::post("/slack/events")
        .header("content-type", JSON_TYPE)
        .header("x-slack-request-timestamp", &timestamp)
        .header("x-slack-signature", &format!("v0={hex}"))
        .body(&body)
}

#[test]
fn a_verified_fresh_handshake_is_answered_and_remembered_as_delivered() {
    let slack = |extra: Value| {
        policy(with(
            json!({"name": "slack", "path_prefix": "/slack/", "scheme": "slack",
                   "keys": [{"name": "k", "value": "slack-secret"}]}),
            extra,
        ))
    };
    let answering = slack(json!({}));
    let store = MemoryStore::default();
    // Answered each time (the provider may not have seen the first answer), the first
    // reserved and settled delivered at once.
    for reserved in [true, false] {
        match verdict(&answering, &slack_handshake(NOW, "abc"), NOW, &store) {
            Step::Reply(_, reply, held) => {
                assert_eq!(reply.body, br#"{"challenge":"abc"}"#);
                assert_eq!(held.is_some(), reserved);
            }
            other => panic!("expected Reply, got {other:?}"),
        }
    }
    assert_eq!(store.sets.get(), 2, "reserved, then settled delivered");
    // Its signed bytes are a delivery now: they cannot come again as another request.
    let moved = slack_handshake(NOW, "abc").set(":path", "/slack/commands");
    assert_eq!(
        reason(verdict(&answering, &moved, NOW, &store)),
        Reason::ReplayTampered
    );
    // Verified and fresh first: a stale or forged one is refused like any delivery.
    assert_eq!(
        reason(verdict(
            &answering,
            &slack_handshake(NOW - 301, "abc"),
            NOW,
            &store
        )),
        Reason::Stale
    );
    let forged =
        slack_handshake(NOW, "abc").body(r#"{"challenge":"evil","type":"url_verification"}"#);
    assert_eq!(
        reason(verdict(&answering, &forged, NOW, &store)),
        Reason::SignatureMismatch
    );
    // With answer_handshakes off, the application gets it like any verified delivery.
    let forwarding = slack(json!({"answer_handshakes": false}));
    assert!(forwarded(verdict(
        &forwarding,
        &slack_handshake(NOW, "abc"),
        NOW,
        &MemoryStore::default()
    ))
    .reserved
    .is_some());
}
// ---- what the application reads is what was judged ----

fn github() -> Policy {
    policy(
        json!({"name": "gh", "path_prefix": "/gh/", "scheme": "github",
                  "keys": [{"name": "k", "value": "gh-secret"}]}),
    )
}

fn github_request(body: &str) -> Request {
    let mac = test_key("k", "gh-secret").mac(&[body.as_bytes()]);
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    Request::post("/gh/events")
        .header("content-type", JSON_TYPE)
        .header("x-hub-signature-256", &format!("sha256={hex}"))
        .header("x-github-event", "push")
        .body(body)
}

#[test]
fn a_body_its_provider_never_sends_is_refused_before_and_after_verification() {
    let store = MemoryStore::new();
    // At the headers: a type the provider never sends, an encoded body.
    for request in [
        answer().set("content-type", "text/plain"),
        answer().set(
            "content-type",
            "application/x-www-form-urlencoded; charset=latin1",
        ),
        answer().header("content-encoding", "gzip"),
    ] {
        let rejection = rejected(at_headers(&voice(json!({})), &request));
        assert_eq!(rejection.reason, Reason::UnsupportedMediaType);
        assert_eq!(rejection.status(), 415);
    }
    // At the body: a body with no type at all.
    let untyped = Request::post("/vobiz/answer").v3(V3, NONCE).body(FORM);
    assert_eq!(
        reason(verdict(&voice(json!({})), &untyped, NOW, &store)),
        Reason::UnsupportedMediaType
    );
    // Verified, but not what its type says: a KYC body that is no JSON object.
    for body in ["https://example.com/vobiz/answer.1", "[1]", "{\"a\":"] {
        let signature = format!("sha256={}", body_mac("test_parent_token", body));
        let request = kyc_request(&signature, body);
        assert_eq!(
            reason(verdict(&kyc(), &request, NOW, &store)),
            Reason::MalformedBody,
            "{body}"
        );
    }
    // What the provider sends, with or without a UTF-8 charset, passes.
    let charset = answer().set(
        "content-type",
        "application/x-www-form-urlencoded; charset=UTF-8",
    );
    assert!(forwarded(verdict(&voice(json!({})), &charset, NOW, &store))
        .reserved
        .is_some());
}

#[test]
fn a_retry_under_another_event_type_or_content_type_is_tampering() {
    let (policy, store) = (github(), MemoryStore::new());
    let body = r#"{"ref":"main"}"#;
    let reserved = reserve(&policy, &github_request(body), NOW, &store);
    settle(&policy, reserved, Outcome::Failed, NOW, &store);
    for changed in [
        github_request(body).set("x-github-event", "delete"),
        github_request(body).header("x-github-delivery", "another"),
        github_request(body).set("content-type", "application/json; charset=utf-8"),
        github_request(body).set(":method", "PUT"),
        github_request(body).set(":path", "/gh/events?x=1"),
    ] {
        assert_eq!(
            reason(verdict(&policy, &changed, NOW + 1, &store)),
            Reason::ReplayTampered
        );
    }
    // The provider's own retry, unchanged, goes through; an unbound header may differ.
    let retry = github_request(body).header("user-agent", "GitHub-Hookshot/abc");
    assert!(reserve(&policy, &retry, NOW + 2, &store).retry);
}

/// A Twilio route (Twilio's documented token), `replay` as given.
fn twilio(replay: Value) -> Policy {
    policy(
        json!({"name": "tw", "path_prefix": "/tw/", "scheme": "twilio",
                  "public_origin": ORIGIN, "keys": [{"name": "k", "value": "12345"}],
                  "replay": replay}),
    )
}

fn twilio_request(body: &str, rendered: &str) -> Request {
    let parts: [&[u8]; 3] = [ORIGIN.as_bytes(), b"/tw/voice", rendered.as_bytes()];
    let mac = test_key("k", "12345").mac_sha1(&parts);
    let signature = base64::engine::general_purpose::STANDARD.encode(mac);
    Request::post("/tw/voice")
        .header("content-type", FORM_TYPE)
        .header("x-twilio-signature", &signature)
        .body(body)
}

#[test]
fn twilios_identical_repeats_are_delivered_and_a_changed_one_is_tampering() {
    let (policy, store) = (twilio(json!({})), MemoryStore::new());
    let replay = policy.routes[0].replay.as_ref().unwrap();
    assert_eq!(replay.on_duplicate, OnDuplicate::Deliver);
    let press = twilio_request("CallSid=CA1&Digits=1", "CallSidCA1Digits1");
    let reserved = reserve(&policy, &press, NOW, &store);
    settle(&policy, reserved, Outcome::Delivered, NOW, &store);
    let again = forwarded(verdict(&policy, &press, NOW + 1, &store));
    assert!(again.repeat && again.reserved.is_none());
    // The same parameters in another order sign alike: another body, one signature.
    let reordered = twilio_request("Digits=1&CallSid=CA1", "CallSidCA1Digits1");
    assert_eq!(
        reason(verdict(&policy, &reordered, NOW + 2, &store)),
        Reason::ReplayTampered
    );
    // With on_duplicate ok, as on any route, a repeat is answered locally.
    let (answering, store) = (twilio(json!({"on_duplicate": "ok"})), MemoryStore::new());
    let reserved = reserve(&answering, &press, NOW, &store);
    settle(&answering, reserved, Outcome::Delivered, NOW, &store);
    assert_eq!(
        reason(verdict(&answering, &press, NOW + 1, &store)),
        Reason::AlreadyDelivered
    );
}

#[test]
fn a_host_servers_read_differently_is_every_host_routes() {
    let policy = voice(json!({}));
    for host in [
        "example.com:443@evil.example",
        "evil.example@example.com",
        "example.com:443:1",
        "exam%70le.com",
        "example.com\\evil",
        "ex\u{e4}mple.com",
    ] {
        let request = form_post("/vobiz/answer").set(":authority", host);
        assert_eq!(
            reason(at_headers(&policy, &request)),
            Reason::MissingSignature,
            "{host}"
        );
    }
    let other = form_post("/vobiz/answer").set(":authority", "evil.example:443");
    assert!(matches!(at_headers(&policy, &other), Step::Unprotected));
}

#[test]
fn a_stale_public_key_request_is_refused_before_its_signature_is_verified() {
    // Discord's key of providers.md §4 row 12; a signature nobody made.
    let policy = policy(
        json!({"name": "d", "path_prefix": "/d/", "scheme": "discord",
        "public_keys": [{"name": "app",
            "value": "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"}]}),
    );
    let forged = |timestamp: &str| {
        Request::post("/d/interactions")
            .header("content-type", "application/json")
            .header("x-signature-ed25519", &"ab".repeat(64))
            .header("x-signature-timestamp", timestamp)
            .body(r#"{"type":2}"#)
    };
    let (store, now) = (MemoryStore::new(), 1_700_000_000);
    // Outside the window either way: refused on its time, no public-key work done.
    for (timestamp, reason) in [
        ("1699999000", Reason::Stale),
        ("1700001000", Reason::Future),
        ("1700000000", Reason::SignatureMismatch),
    ] {
        let refusal = rejected(verdict(&policy, &forged(timestamp), now, &store));
        assert_eq!(refusal.reason, reason, "{timestamp}");
    }
}
