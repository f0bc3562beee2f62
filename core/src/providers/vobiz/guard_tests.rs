//! Vobiz voice, WhatsApp and KYC callbacks through the guard, against the spec's vectors:
//! the headers and body steps, replay and freshness as each scheme has them. The helpers
//! are the guard's tests' ([`crate::guard::tests`]).

use serde_json::{json, Value};

use crate::guard::check_body;
use crate::guard::tests::*;
use crate::keys::test_key;
use crate::policy::Policy;
use crate::providers::StreamedMac;
use crate::providers::{Body, Checks, ContentType, Hashed};
use crate::replay::Outcome;
use crate::request::RequestHead;
use crate::testing::MemoryStore;
use crate::timestamp::Stamp;
use crate::verdict::Reason;

// ---- 3. voice without replay ----

#[test]
fn docs_v3_without_replay_is_forwarded_at_headers() {
    let policy = voice(json!({"replay": no_replay(), "v3_construction": "docs"}));
    let accepted = forwarded(at_headers(&policy, &answer()));
    assert_eq!(accepted.scheme, "v3");
    assert_eq!(accepted.key, "own");
    assert_eq!(accepted.route.name, "voice");
    assert_eq!(accepted.reserved, None);
}

#[test]
fn wrong_v3_without_replay_is_rejected_at_headers() {
    let policy = voice(json!({"replay": no_replay(), "v3_construction": "docs"}));
    let request = form_post("/vobiz/answer").v3(FORGED, NONCE);
    let rejection = rejected(at_headers(&policy, &request));
    assert_eq!(rejection.reason, Reason::SignatureMismatch);
    assert_eq!(rejection.status(), 403);
}

#[test]
fn docs_valid_v3_without_replay_is_forwarded_at_headers_under_either() {
    // Nothing needs the body and the docs' message verified: waiting for the body
    // could only reach the same verdict.
    let policy = voice(json!({"replay": no_replay()}));
    let accepted = forwarded(at_headers(&policy, &answer()));
    assert_eq!(accepted.scheme, "v3");
    assert_eq!(accepted.reserved, None);
}

#[test]
fn sdk_signature_without_replay_still_waits_for_the_body_under_either() {
    let policy = voice(json!({"replay": no_replay(), "path_prefix": "/answer"}));
    let route = needs_body(at_headers(&policy, &sdk_answer()));
    let accepted = forwarded(at_body(route, &sdk_answer(), NOW, &FailingStore));
    assert_eq!(accepted.scheme, "v3_sdk");
    assert_eq!(accepted.reserved, None);
}

#[test]
fn missing_signature_is_rejected_at_headers() {
    let policy = voice(json!({}));
    let rejection = rejected(at_headers(&policy, &form_post("/vobiz/answer")));
    assert_eq!(rejection.reason, Reason::MissingSignature);
    assert_eq!(rejection.status(), 401);
}

// ---- 7. V3 constructions ----

#[test]
fn docs_route_with_replay_rejects_a_wrong_v3_at_headers() {
    let policy = voice(json!({"v3_construction": "docs"}));
    let request = form_post("/vobiz/answer").v3(FORGED, NONCE).body(FORM);
    assert_eq!(
        reason(at_headers(&policy, &request)),
        Reason::SignatureMismatch
    );
}

#[test]
fn docs_route_with_replay_waits_for_the_body_of_a_valid_v3() {
    let (policy, store) = (
        voice(json!({"v3_construction": "docs"})),
        MemoryStore::new(),
    );
    let route = needs_body(at_headers(&policy, &answer()));
    let accepted = forwarded(at_body(route, &answer(), NOW, &store));
    assert_eq!(accepted.scheme, "v3");
    assert!(accepted.reserved.is_some());
}

#[test]
fn either_route_verifies_the_sdk_construction_over_the_body() {
    let (policy, store) = (sdk_voice("either"), MemoryStore::new());
    let route = needs_body(at_headers(&policy, &sdk_answer()));
    let accepted = forwarded(at_body(route, &sdk_answer(), NOW, &store));
    assert_eq!(accepted.scheme, "v3_sdk");
    assert_eq!(accepted.key, "own");
    assert!(!accepted.reserved.unwrap().retry);
}

#[test]
fn either_route_rejects_a_body_the_sdk_signature_does_not_cover() {
    let (policy, store) = (sdk_voice("either"), MemoryStore::new());
    let altered = sdk_answer().body("To=14155550100&From=14155550123&CallUUID=abd");
    needs_body(at_headers(&policy, &altered));
    assert_eq!(
        reason(verdict(&policy, &altered, NOW, &store)),
        Reason::SignatureMismatch
    );
}

#[test]
fn either_route_prefers_the_docs_construction() {
    let (policy, store) = (sdk_voice("either"), MemoryStore::new());
    let request = form_post("/answer")
        .v3(DOCS_ONLY_V3, SDK_NONCE)
        .body(SDK_FORM);
    let accepted = forwarded(verdict(&policy, &request, NOW, &store));
    assert_eq!(accepted.scheme, "v3");
}

#[test]
fn docs_route_rejects_the_sdk_construction() {
    let (policy, store) = (sdk_voice("docs"), MemoryStore::new());
    assert_eq!(
        reason(at_headers(&policy, &sdk_answer())),
        Reason::SignatureMismatch
    );
    // Even if the body were offered, docs never accepts the SDK's message.
    let route = &policy.routes[0];
    assert_eq!(
        reason(at_body(route, &sdk_answer(), NOW, &store)),
        Reason::SignatureMismatch
    );
}

#[test]
fn sdk_route_rejects_a_docs_only_signature_when_params_are_signed() {
    let (policy, store) = (sdk_voice("sdk"), MemoryStore::new());
    let request = form_post("/answer")
        .v3(DOCS_ONLY_V3, SDK_NONCE)
        .body(SDK_FORM);
    needs_body(at_headers(&policy, &request));
    assert_eq!(
        reason(verdict(&policy, &request, NOW, &store)),
        Reason::SignatureMismatch
    );
}

#[test]
fn sdk_route_accepts_the_sdk_construction() {
    let (policy, store) = (sdk_voice("sdk"), MemoryStore::new());
    let accepted = forwarded(verdict(&policy, &sdk_answer(), NOW, &store));
    assert_eq!(accepted.scheme, "v3_sdk");
}

#[test]
fn sdk_route_accepts_the_docs_signature_when_nothing_else_is_signed() {
    // Spec 6.2, last row: without params the two constructions coincide.
    let (policy, store) = (sdk_voice("sdk"), MemoryStore::new());
    let bare = form_post("/answer").v3(DOCS_ONLY_V3, SDK_NONCE);
    let accepted = forwarded(verdict(&policy, &bare, NOW, &store));
    assert_eq!(accepted.scheme, "v3_sdk");
}

#[test]
fn sdk_route_still_accepts_v2_which_has_only_the_docs_construction() {
    // Spec 2.7 row 1.
    let policy = voice(json!({
        "v3_construction": "sdk", "accept": ["v2"], "replay": no_replay()
    }));
    let request = form_post("/vobiz/answer")
        .header(
            "x-vobiz-signature-v2",
            "gEPZQ2HmngRWdcHbKGv/eaCNsEC9k9MAaOeKkXAco8A=",
        )
        .header("x-vobiz-signature-v2-nonce", "12345678901234567890");
    let accepted = forwarded(at_headers(&policy, &request));
    assert_eq!(accepted.scheme, "v2");
}

// ---- 9. voice freshness ----

fn fresh_voice(freshness: Value) -> Policy {
    voice(json!({"replay": no_replay(), "freshness": freshness}))
}

fn timestamped(timestamp: &str) -> Request {
    answer().body(&format!("CallUUID=abc&timestamp={timestamp}"))
}

#[test]
fn voice_timestamp_within_max_age_is_fresh() {
    let (policy, store) = (fresh_voice(json!({"max_age": "5m"})), MemoryStore::new());
    let request = timestamped("2026-03-25T10:00:00Z");
    needs_body(at_headers(&policy, &request));
    for now in [NOW, NOW + 300, NOW - 300] {
        forwarded(verdict(&policy, &request, now, &store));
    }
}

#[test]
fn voice_timestamp_older_than_max_age_is_stale() {
    let (policy, store) = (fresh_voice(json!({"max_age": "5m"})), MemoryStore::new());
    let request = timestamped("2026-03-25T10:00:00Z");
    let rejection = rejected(verdict(&policy, &request, NOW + 600, &store));
    assert_eq!(rejection.reason, Reason::Stale);
    assert_eq!(rejection.status(), 403);
}

#[test]
fn voice_timestamp_ahead_of_skew_is_future() {
    let (policy, store) = (fresh_voice(json!({"max_age": "5m"})), MemoryStore::new());
    let request = timestamped("2026-03-25T10:00:00Z");
    assert_eq!(
        reason(verdict(&policy, &request, NOW - 600, &store)),
        Reason::Future
    );
}

#[test]
fn voice_timestamp_in_the_query_of_a_get() {
    let (policy, store) = (fresh_voice(json!({"max_age": "5m"})), MemoryStore::new());
    let request = Request::new("GET", "/vobiz/answer?timestamp=2026-03-25T10:00:00Z").v3(V3, NONCE);
    forwarded(verdict(&policy, &request, NOW, &store));
    assert_eq!(
        reason(verdict(&policy, &request, NOW + 600, &store)),
        Reason::Stale
    );
    // A GET's parameters are in its query, not its body.
    let request = request
        .set(":path", "/vobiz/answer")
        .header("content-type", FORM_TYPE)
        .body("timestamp=2000-01-01T00:00:00Z");
    forwarded(verdict(&policy, &request, NOW, &store));
}

#[test]
fn absent_voice_timestamp_passes_unless_required() {
    let store = MemoryStore::new();
    let optional = fresh_voice(json!({"max_age": "5m"}));
    forwarded(verdict(&optional, &answer(), NOW, &store));
    let required = fresh_voice(json!({"max_age": "5m", "require": true}));
    let rejection = rejected(verdict(&required, &answer(), NOW, &store));
    assert_eq!(rejection.reason, Reason::MissingTimestamp);
    assert_eq!(rejection.status(), 400);
}

#[test]
fn garbage_voice_timestamp_is_malformed_body() {
    let (policy, store) = (fresh_voice(json!({"max_age": "5m"})), MemoryStore::new());
    for garbage in ["yesterday", "2026-13-25T10:00:00Z", "1774432800", ""] {
        let rejection = rejected(verdict(&policy, &timestamped(garbage), NOW, &store));
        assert_eq!(rejection.reason, Reason::MalformedBody, "{garbage:?}");
        assert_eq!(rejection.status(), 400);
    }
}

#[test]
fn stale_voice_request_reserves_nothing() {
    let policy = voice(json!({"freshness": {"max_age": "5m"}}));
    let store = MemoryStore::new();
    let request = timestamped("2026-03-25T10:00:00Z");
    assert_eq!(
        reason(verdict(&policy, &request, NOW + 600, &store)),
        Reason::Stale
    );
    assert!(store.written.borrow().is_empty());
    forwarded(verdict(&policy, &request, NOW, &store));
}

// ---- 10. WhatsApp ----

#[test]
fn whatsapp_without_signature_is_401_at_headers() {
    let request = Request::post("/wa/events")
        .header("content-type", JSON_TYPE)
        .body(WA_BODY);
    let rejection = rejected(at_headers(&whatsapp(), &request));
    assert_eq!(rejection.reason, Reason::MissingSignature);
    assert_eq!(rejection.status(), 401);
}

#[test]
fn whatsapp_with_malformed_signature_is_400_at_headers() {
    let prefixed = format!("sha256={WA_SIGNATURE}");
    for bad in [&WA_SIGNATURE[..63], "not hex", prefixed.as_str()] {
        let rejection = rejected(at_headers(&whatsapp(), &wa_request(bad, WA_BODY)));
        assert_eq!(rejection.reason, Reason::MalformedHeader, "{bad}");
        assert_eq!(rejection.status(), 400);
    }
}

#[test]
fn whatsapp_spec_example_is_forwarded_after_its_body() {
    let (policy, store) = (whatsapp(), MemoryStore::new());
    let request = wa_request(WA_SIGNATURE, WA_BODY);
    assert_eq!(WA_BODY.len(), 159);
    let route = needs_body(at_headers(&policy, &request));
    let accepted = forwarded(at_body(route, &request, NOW + 60, &store));
    assert_eq!(
        (accepted.scheme, accepted.key),
        ("whatsapp", "subscription")
    );
    assert!(!accepted.reserved.unwrap().retry);
}

#[test]
fn a_body_hashed_as_it_arrived_is_judged_as_if_hashed_at_the_end() {
    let cases = [
        (whatsapp(), wa_request(WA_SIGNATURE, WA_BODY)),
        (
            whatsapp(),
            wa_request(WA_SIGNATURE, &WA_BODY.replace("10:00", "10:01")),
        ),
        (whatsapp(), wa_request(&"0".repeat(64), WA_BODY)),
        (kyc(), kyc_request(KYC_SIGNATURE, KYC_BODY)),
        (kyc(), kyc_request(KYC_SIGNATURE, "{}")),
    ];
    for (policy, request) in &cases {
        let route = &policy.routes[0];
        let head = request.head();
        let head = RequestHead::new(&head);
        let streamed = route.provider.streamed_mac(&head).unwrap();
        let mut hasher = streamed.start();
        // As the filter takes the body in: piece by piece.
        for piece in request.body.chunks(7) {
            hasher.update(piece);
        }
        let hashed = hasher.finish();
        let (once, twice) = (MemoryStore::new(), MemoryStore::new());
        let prior = Some(Prior::Hashed(&hashed));
        let now = Stamp::secs(NOW + 60);
        let streamed = on_body_verified(route, &head, &request.body, prior, now, &once, CAS);
        let at_end = on_body(route, &head, &request.body, now, &twice, CAS);
        assert_eq!(format!("{streamed:?}"), format!("{at_end:?}"));
    }
    // MACs of other bytes than the body judged are what decide: they must not verify.
    let (policy, request) = (whatsapp(), wa_request(WA_SIGNATURE, WA_BODY));
    let head = request.head();
    let other = Hashed {
        macs: vec![test_key("subscription", WA_SECRET).mac(&[b"{}"])],
        ..StreamedMac::body(&[]).hash(request.body.as_slice())
    };
    let step = on_body_verified(
        &policy.routes[0],
        &RequestHead::new(&head),
        &request.body,
        Some(Prior::Hashed(&other)),
        Stamp::secs(NOW + 60),
        &MemoryStore::new(),
        CAS,
    );
    assert_eq!(reason(step), Reason::SignatureMismatch);
}

#[test]
fn whatsapp_older_than_an_hour_is_stale() {
    let (policy, store) = (whatsapp(), MemoryStore::new());
    let request = wa_request(WA_SIGNATURE, WA_BODY);
    assert_eq!(
        reason(verdict(&policy, &request, NOW + 60 + 7200, &store)),
        Reason::Stale
    );
}

#[test]
fn whatsapp_from_the_future_is_refused() {
    let (policy, store) = (whatsapp(), MemoryStore::new());
    let request = wa_request(WA_SIGNATURE, WA_BODY);
    assert_eq!(
        reason(verdict(&policy, &request, NOW - 600, &store)),
        Reason::Future
    );
}

#[test]
fn whatsapp_identity_is_the_whole_signed_body() {
    // The identity is the signed message, never a piece of it: another body signed by
    // the key holder under the same event id is another delivery; a copy of a body is
    // the same delivery, whatever unsigned parts come with it.
    let (policy, store) = (whatsapp(), MemoryStore::new());
    let reserved = reserve(
        &policy,
        &wa_request(WA_SIGNATURE, WA_BODY),
        NOW + 60,
        &store,
    );
    assert_eq!(
        reason(verdict(
            &policy,
            &wa_request(WA_SIGNATURE, WA_BODY),
            NOW + 61,
            &store
        )),
        Reason::InFlight
    );
    settle(&policy, reserved, Outcome::Delivered, NOW + 61, &store);
    assert_eq!(
        reason(verdict(
            &policy,
            &wa_request(WA_SIGNATURE, WA_BODY),
            NOW + 62,
            &store
        )),
        Reason::AlreadyDelivered
    );
    let other = WA_BODY.replace(r#""payload":{}"#, r#""payload":{"text":"hi"}"#);
    let resigned = wa_request(&body_mac(WA_SECRET, &other), &other);
    assert!(forwarded(verdict(&policy, &resigned, NOW + 62, &store))
        .reserved
        .is_some());
}

#[test]
fn whatsapp_event_replayed_to_another_path_is_tampered() {
    let (policy, store) = (whatsapp(), MemoryStore::new());
    reserve(
        &policy,
        &wa_request(WA_SIGNATURE, WA_BODY),
        NOW + 60,
        &store,
    );
    let moved = Request::post("/wa/events?copy=1")
        .header("content-type", JSON_TYPE)
        .header("x-webhook-signature", WA_SIGNATURE)
        .body(WA_BODY);
    assert_eq!(
        reason(verdict(&policy, &moved, NOW + 61, &store)),
        Reason::ReplayTampered
    );
}

#[test]
fn whatsapp_exact_repeat_after_delivery_is_answered_locally() {
    let (policy, store) = (whatsapp(), MemoryStore::new());
    let request = wa_request(WA_SIGNATURE, WA_BODY);
    let reserved = reserve(&policy, &request, NOW + 60, &store);
    settle(&policy, reserved, Outcome::Delivered, NOW + 61, &store);
    assert_eq!(
        reason(verdict(&policy, &request, NOW + 120, &store)),
        Reason::AlreadyDelivered
    );
}

#[test]
fn whatsapp_body_changed_by_one_byte_is_a_mismatch() {
    let (policy, store) = (whatsapp(), MemoryStore::new());
    let altered = WA_BODY.replace("10:00:00Z", "10:00:01Z");
    let rejection = rejected(verdict(
        &policy,
        &wa_request(WA_SIGNATURE, &altered),
        NOW + 60,
        &store,
    ));
    assert_eq!(rejection.reason, Reason::SignatureMismatch);
    assert!(store.written.borrow().is_empty());
}

/// WhatsApp parses its body itself, so the guard skips its own media check there:
/// every body the scheme verifies must be one that check admits.
#[test]
fn a_scheme_that_parses_its_body_verifies_only_what_the_media_check_admits() {
    let policy = whatsapp();
    let provider = policy.routes[0].provider.as_ref();
    assert!(provider.parses_body());
    let envelope = |payload: &[u8]| {
        let head = br#"{"event_id":"e1","occurred_at":"2026-03-25T10:00:00Z","payload":"#;
        [head.as_slice(), payload, b"}"].concat()
    };
    let mut bodies: Vec<Vec<u8>> = [
        b"{}".as_slice(),
        br#""\u00e9""#,
        br#""\ud800""#,
        br#""\uZZZZ""#,
        b"\"\xff\xfe\"",
        b"\"tab\there\"",
        b"[1,2,]",
        b"1e999",
        b"NaN",
        b"{\"a\":1,\"a\":2}",
        b"{\"event_id\":\"inner\"}",
    ]
    .iter()
    .map(|payload| envelope(payload))
    .collect();
    let valid = envelope(b"{}");
    for edit in [
        [valid.as_slice(), b" x"].concat(),
        [valid.as_slice(), b"\n"].concat(),
        [b"\xef\xbb\xbf".as_slice(), &valid].concat(),
        [b" \r\n\t".as_slice(), &valid].concat(),
        [b"[".as_slice(), &valid, b"]"].concat(),
        [br#"{"event_id":"e0","#.as_slice(), &valid[1..]].concat(),
    ] {
        bodies.push(edit);
    }
    let mut verified = 0;
    for body in &bodies {
        let mac = test_key("k", WA_SECRET).mac(&[body]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        let mut request = wa_request(&hex, "");
        request.body = body.clone();
        let head = request.head();
        let head = RequestHead::new(&head);
        if provider
            .at_body(&head, &Body::whole(body), &Checks::default())
            .is_ok()
        {
            verified += 1;
            let checked = check_body(provider.media(), ContentType::of(&head), body);
            assert!(checked.is_ok(), "{:?}", body.escape_ascii().to_string());
        }
    }
    // The corpus holds bodies the scheme verifies, not only ones it refuses.
    assert!(verified >= 4, "{verified}");
}

// ---- 11. KYC ----

#[test]
fn kyc_spec_example_is_forwarded() {
    let (policy, store) = (kyc(), MemoryStore::new());
    let request = kyc_request(KYC_SIGNATURE, KYC_BODY);
    let route = needs_body(at_headers(&policy, &request));
    let accepted = forwarded(at_body(route, &request, NOW, &store));
    assert_eq!((accepted.scheme, accepted.key), ("kyc", "parent"));
    assert!(!accepted.reserved.unwrap().retry);
}

#[test]
fn kyc_exact_repeat_after_delivery_is_answered_locally() {
    let (policy, store) = (kyc(), MemoryStore::new());
    let request = kyc_request(KYC_SIGNATURE, KYC_BODY);
    let reserved = reserve(&policy, &request, NOW, &store);
    settle(&policy, reserved, Outcome::Delivered, NOW + 1, &store);
    assert_eq!(
        reason(verdict(&policy, &request, NOW + 2, &store)),
        Reason::AlreadyDelivered
    );
}

#[test]
fn kyc_header_and_body_failures() {
    let (policy, store) = (kyc(), MemoryStore::new());
    let unprefixed = kyc_request(&KYC_SIGNATURE[7..], KYC_BODY);
    assert_eq!(
        reason(at_headers(&policy, &unprefixed)),
        Reason::MalformedHeader
    );
    let missing = Request::post("/kyc/events")
        .header("content-type", JSON_TYPE)
        .body(KYC_BODY);
    assert_eq!(
        reason(at_headers(&policy, &missing)),
        Reason::MissingSignature
    );
    let altered = kyc_request(KYC_SIGNATURE, r#"{"event":"kyc.failed"}"#);
    assert_eq!(
        reason(verdict(&policy, &altered, NOW, &store)),
        Reason::SignatureMismatch
    );
}
