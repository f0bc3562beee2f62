//! The vector is Google's: the decoded token of "Authenticate push subscriptions"
//! (cloud.google.com/pubsub/docs/authenticate-push-subscriptions), whose signature
//! `jwt_authn` checks; and the push body of "Push subscriptions" (its message id).

use serde_json::{json, Value};

use super::testing::Decoded;
use super::*;
use crate::guard::tests::{settle, Peer};
use crate::guard::{self, Step};
use crate::policy::Policy;
use crate::replay::Outcome;
use crate::request::Header;
use crate::testing::MemoryStore;

const ACCOUNT: &str = "gae-gcp@appspot.gserviceaccount.com";
const AUDIENCE: &str = "https://example.com";
const IAT: i64 = 1_550_182_335;

/// Google's example token's payload.
fn payload() -> serde_json::Map<String, Value> {
    let Value::Object(payload) = json!({"aud": AUDIENCE, "azp": "113774264463038321964",
        "email": ACCOUNT, "sub": "113774264463038321964", "email_verified": true,
        "exp": 1_550_185_935, "iat": IAT, "iss": "https://accounts.google.com"})
    else {
        unreachable!()
    };
    payload
}

fn push(id: &str, data: &str) -> String {
    json!({"message": {"attributes": {"key": "value"}, "data": data, "messageId": id,
        "message_id": id, "publishTime": "2021-02-26T19:13:55.749Z",
        "publish_time": "2021-02-26T19:13:55.749Z"},
        "subscription": "projects/myproject/subscriptions/mysubscription"})
    .to_string()
}

fn policy(jwt: Value) -> Policy {
    let route = json!({"name": "pubsub", "path_prefix": "/pubsub/", "scheme": SCHEME,
        "keys": [{"name": "other", "value": "other@p.iam.gserviceaccount.com"},
                 {"name": "push", "value": ACCOUNT}],
        "jwt": jwt});
    let document = json!({"routes": [route]}).to_string();
    crate::config::parse(document.as_bytes(), &|_| None).unwrap()
}

fn head() -> Vec<Header> {
    [
        (":method", "POST"),
        (":path", "/pubsub/push"),
        ("content-type", "application/json"),
    ]
    .iter()
    .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
    .collect()
}

/// The verdict on a push with `payload` verified by jwt_authn (under `payload`), at
/// `now`; accepted ones settled delivered.
fn judge(
    policy: &Policy,
    attested: &Decoded,
    body: &str,
    now: i64,
    store: &MemoryStore,
) -> Result<(String, [u8; 16]), Reason> {
    let headers = head();
    let head = RequestHead::new(&headers).attested(attested);
    let step = match guard::on_headers(policy, &head, &Peer::tls()) {
        Step::NeedBody(route) => {
            guard::on_body(route, &head, body.as_bytes(), Stamp::secs(now), store, 7)
        }
        step => step,
    };
    match step {
        Step::Forward(accepted) => {
            let reserved = accepted.reserved.expect("every push is reserved");
            settle(policy, reserved, Outcome::Delivered, now, store);
            Ok((accepted.key.to_string(), reserved.id))
        }
        Step::Reject(_, rejection) => Err(rejection.reason),
        other => panic!("{other:?}"),
    }
}

fn example(changes: &[(&str, Value)]) -> Decoded {
    let mut payload = payload();
    for (name, value) in changes {
        match value {
            Value::Null => payload.remove(*name),
            value => payload.insert(name.to_string(), value.clone()),
        };
    }
    Decoded::payload("payload", payload)
}

#[test]
fn googles_example_token_verifies_once_under_its_account() {
    let policy = policy(json!({"audience": AUDIENCE}));
    let store = MemoryStore::new();
    let body = push("2070443601311540", "SGVsbG8=");
    let (key, _) = judge(&policy, &example(&[]), &body, IAT + 10, &store).unwrap();
    assert_eq!(key, "push");
    assert_eq!(
        judge(&policy, &example(&[]), &body, IAT + 20, &store),
        Err(Reason::AlreadyDelivered)
    );
    // Another message under the same token is another delivery; another body under a
    // message id the token delivered is tampering.
    let next = push("2070443601311541", "SGVsbG8=");
    assert!(judge(&policy, &example(&[]), &next, IAT + 30, &store).is_ok());
    let forged = push("2070443601311540", "RXZpbA==");
    assert_eq!(
        judge(&policy, &example(&[]), &forged, IAT + 40, &store),
        Err(Reason::ReplayTampered)
    );
    // The same message pushed by another subscription of its topic is another delivery.
    let other = body.replace("mysubscription", "another");
    assert!(judge(&policy, &example(&[]), &other, IAT + 50, &store).is_ok());
    // The same message under a later token (Pub/Sub's next hour) is new to the memory.
    let later = example(&[("iat", json!(IAT + 3000)), ("exp", json!(IAT + 6600))]);
    assert!(judge(&policy, &later, &body, IAT + 3010, &store).is_ok());
}

#[test]
fn only_what_googles_tokens_for_this_route_say_is_accepted() {
    let policy = policy(json!({"audience": AUDIENCE}));
    let body = push("1", "");
    let legacy = example(&[("iss", json!("accounts.google.com"))]);
    assert!(judge(&policy, &legacy, &body, IAT, &MemoryStore::new()).is_ok());
    for (changes, reason) in [
        (
            vec![("iss", json!("https://evil.example"))],
            Reason::SignatureMismatch,
        ),
        (
            vec![("aud", json!("https://example.com/"))],
            Reason::SignatureMismatch,
        ),
        (vec![("aud", json!([AUDIENCE]))], Reason::SignatureMismatch),
        (
            vec![("email", json!("GAE-GCP@appspot.gserviceaccount.com"))],
            Reason::SignatureMismatch,
        ),
        (
            vec![("email", json!("x@evil.example"))],
            Reason::SignatureMismatch,
        ),
        (
            vec![("email_verified", json!(false))],
            Reason::SignatureMismatch,
        ),
        (
            vec![("email_verified", json!("true"))],
            Reason::SignatureMismatch,
        ),
        (
            vec![("email_verified", Value::Null)],
            Reason::MalformedHeader,
        ),
        (vec![("email", Value::Null)], Reason::MalformedHeader),
        (vec![("aud", json!(""))], Reason::MalformedHeader),
        (vec![("iat", Value::Null)], Reason::MalformedHeader),
        (
            vec![("iat", json!(IAT as f64 + 0.5))],
            Reason::MalformedHeader,
        ),
        (
            vec![("iat", json!(format!("{IAT}")))],
            Reason::MalformedHeader,
        ),
        (vec![("exp", json!(IAT + 3601))], Reason::MalformedHeader),
        (vec![("exp", json!(IAT))], Reason::MalformedHeader),
        (vec![("iss", Value::Null)], Reason::MissingSignature),
    ] {
        let attested = example(&changes);
        let verdict = judge(&policy, &attested, &body, IAT, &MemoryStore::new());
        assert_eq!(verdict.err(), Some(reason), "{changes:?}");
    }
}

#[test]
fn without_jwt_authns_payload_nothing_passes() {
    let policy = policy(json!({"audience": AUDIENCE}));
    let body = push("1", "");
    // Another key than the route reads, and no attestation at all.
    let elsewhere = Decoded::payload("google", payload());
    assert_eq!(
        judge(&policy, &elsewhere, &body, IAT, &MemoryStore::new()),
        Err(Reason::MissingSignature)
    );
    let headers = head();
    let bare = RequestHead::new(&headers);
    let Step::Reject(_, rejection) = guard::on_headers(&policy, &bare, &Peer::tls()) else {
        panic!("not refused")
    };
    assert_eq!(rejection.reason, Reason::MissingSignature);
    assert!(
        rejection.detail.contains("jwt_authn"),
        "{}",
        rejection.detail
    );
    // The route's own key.
    let policy = policy_keyed("google");
    assert!(judge(&policy, &elsewhere, &body, IAT, &MemoryStore::new()).is_ok());
}

fn policy_keyed(key: &str) -> Policy {
    policy(json!({"audience": AUDIENCE, "metadata_key": key}))
}

#[test]
fn a_token_is_fresh_for_its_hour_and_a_minute_of_skew() {
    let policy = policy(json!({"audience": AUDIENCE}));
    let body = |n: u32| push(&n.to_string(), "");
    let store = MemoryStore::new();
    assert!(judge(&policy, &example(&[]), &body(1), IAT + 3660, &store).is_ok());
    assert_eq!(
        judge(&policy, &example(&[]), &body(2), IAT + 3661, &store),
        Err(Reason::Stale)
    );
    assert!(judge(&policy, &example(&[]), &body(3), IAT - 60, &store).is_ok());
    assert_eq!(
        judge(&policy, &example(&[]), &body(4), IAT - 61, &store),
        Err(Reason::Future)
    );
}

#[test]
fn a_body_that_is_not_a_wrapped_push_is_refused() {
    let policy = policy(json!({"audience": AUDIENCE}));
    for body in [
        r#"{"message": {"data": "x"}}"#.to_string(),
        r#"{"message": {"messageId": 7}}"#.to_string(),
        push("12a", ""),
        push("", ""),
        push("0123", ""),
        push(&"1".repeat(65), ""),
        r#"{"messageId": "1"}"#.to_string(),
        r#"{"message": {"messageId": "1"}"#.to_string(),
    ] {
        let verdict = judge(&policy, &example(&[]), &body, IAT, &MemoryStore::new());
        assert_eq!(verdict.err(), Some(Reason::MalformedBody), "{body}");
    }
}

#[test]
fn a_jwt_block_names_what_is_wrong_with_it() {
    let problem = |route: Value| {
        let mut base = json!({"name": "pubsub", "path_prefix": "/pubsub/", "scheme": SCHEME,
            "keys": [{"value": ACCOUNT}], "jwt": {"audience": AUDIENCE}});
        for (name, value) in route.as_object().unwrap() {
            base[name] = value.clone();
        }
        let document = json!({"routes": [base]}).to_string();
        crate::config::parse(document.as_bytes(), &|_| None)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    for (route, expected) in [
        (json!({"jwt": {}}), "routes[0].jwt.audience: is required"),
        (json!({"jwt": null}), "routes[0].jwt.audience: is required"),
        (
            json!({"jwt": {"audience": "a b"}}),
            "routes[0].jwt.audience: is not",
        ),
        (
            json!({"jwt": {"audience": AUDIENCE, "issuer": "x"}}),
            "unknown field `issuer`",
        ),
        (
            json!({"jwt": {"audience": AUDIENCE, "metadata_key": ""}}),
            "routes[0].jwt.metadata_key",
        ),
        (
            json!({"keys": [{"value": "Push@x.example"}]}),
            "routes[0].keys[0]: is not a service account",
        ),
        (
            json!({"keys": [{"value": "push"}]}),
            "routes[0].keys[0]: is not a service account",
        ),
        (
            json!({"replay": {"enabled": false}}),
            "routes[0].replay.enabled: must stay true",
        ),
    ] {
        let message = problem(route.clone());
        assert!(message.contains(expected), "{route}: {message}");
    }
}

#[test]
fn the_demo_signer_writes_a_token_jwt_authn_reads_as_googles() {
    use crate::providers::sign::{KeyMaterial, Signing};
    let signing = Signing::new(KeyMaterial::Secret(ACCOUNT), IAT);
    let out =
        crate::providers::sign::testing::signed(&SIGNER, &signing, "https://example.com?x=1", None);
    let headers = out.head();
    let decoded = Decoded::of(&RequestHead::new(&headers), "payload");
    let store = MemoryStore::new();
    let verdict = judge(
        &policy(json!({"audience": AUDIENCE})),
        &decoded,
        std::str::from_utf8(&out.body).unwrap(),
        IAT,
        &store,
    );
    assert_eq!(verdict.unwrap().0, "push");
    // Signed with the key of the demo's JWKS.
    let jwks: Value = serde_json::from_str(DEMO_JWKS).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], DEMO_KEY_ID);
}

#[test]
fn no_application_can_read_another_message_id_or_subscription_than_the_filter() {
    let policy = policy(json!({"audience": AUDIENCE}));
    let accepted = [
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "5", "message_id": "5"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"message_id": "5", "messageId": "5", "messageIdx": "6"}, "messages": 1}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "0"}}"#,
    ];
    for body in accepted {
        let verdict = judge(&policy, &example(&[]), body, IAT, &MemoryStore::new());
        assert!(verdict.is_ok(), "{body}: {verdict:?}");
    }
    // Each would let some decoder (Go's, case-insensitive Jackson, ASP.NET's, a snake-case
    // mapper) read an id the filter did not.
    for body in [
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "5", "messageId": "6"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "5", "message_id": "6"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "5", "message_id": "5", "message_id": "6"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "5", "MessageId": "6"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "5", "MESSAGEID": "6"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "5", "message-id": "6"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "5", "me\u017f\u017fageId": "6"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "5", "messageI\u0064": "6"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "5"}, "message": {"messageId": "6"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "message": {"messageId": "5"}, "Message": {"messageId": "6"}}"#,
        r#"{"Message": {"messageId": "6"}, "subscription": "projects/p/subscriptions/s", "message": {"messageId": "5"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s", "Subscription": "projects/p/subscriptions/t", "message": {"messageId": "5"}}"#,
        r#"{"message": {"messageId": "5"}}"#,
        r#"{"subscription": "p/s", "message": {"messageId": "5"}}"#,
        r#"{"subscription": "projects/p/subscriptions/s/x", "message": {"messageId": "5"}}"#,
    ] {
        let verdict = judge(&policy, &example(&[]), body, IAT, &MemoryStore::new());
        assert_eq!(verdict.err(), Some(Reason::MalformedBody), "{body}");
    }
    assert_eq!(folded("Me\u{17f}sage_I\u{212a}-d"), "messageikd");
}
