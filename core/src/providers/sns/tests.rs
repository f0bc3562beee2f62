//! The vectors are signed by OpenSSL (`openssl dgst -sha1|-sha256 -sign`) with the demo's
//! key over the string SNS's documentation builds, not by this module's signer.

use super::*;
use crate::guard::tests::Peer;
use crate::guard::{self, Step};
use crate::policy::Policy;
use crate::request::Header;
use crate::testing::MemoryStore;

const NOTIFICATION: &str = include_str!("vector-notification.json");
const CONFIRMATION: &str = include_str!("vector-confirmation.json");
const OTHER_CERTIFICATE: &str = include_str!("other-certificate.pem");
const SMALL_CERTIFICATE: &str = include_str!("small-certificate.pem");
const TOPIC: &str = "arn:aws:sns:us-west-2:123456789012:MyTopic";
/// The notification's `Timestamp`, and the confirmation's.
const SENT: i64 = 1_335_920_046;
const CONFIRMATION_SENT: i64 = 1_335_473_104;

fn policy(extra: serde_json::Value) -> Policy {
    let mut route = serde_json::json!({"name": "sns", "path_prefix": "/sns/", "scheme": "sns",
        "keys": [{"name": "orders", "value": TOPIC}],
        "certificate": {"cluster": "sns_certificates"}});
    route
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let document = serde_json::json!({"routes": [route]}).to_string();
    crate::config::parse(document.as_bytes(), &|_| None).unwrap()
}

fn headers(body: &str) -> Vec<Header> {
    let message: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let mut head: Vec<Header> = vec![
        (":method".into(), b"POST".to_vec()),
        (":path".into(), b"/sns/hook".to_vec()),
        ("content-type".into(), b"text/plain; charset=UTF-8".to_vec()),
    ];
    for (header, field) in [
        ("x-amz-sns-message-type", "Type"),
        ("x-amz-sns-message-id", "MessageId"),
        ("x-amz-sns-topic-arn", "TopicArn"),
    ] {
        if let Some(value) = message[field].as_str() {
            head.push((header.into(), value.as_bytes().to_vec()));
        }
    }
    head
}

/// The verdict on `body` sent with `head` at `now`, the route's certificate served as
/// `served` when the filter fetches it.
fn send(
    policy: &Policy,
    store: &MemoryStore,
    head: &[Header],
    body: &str,
    now: i64,
    served: (Option<u16>, &str),
) -> Result<String, Reason> {
    let head = RequestHead::new(head);
    let route = match guard::on_headers(policy, &head, &Peer::tls()) {
        Step::NeedBody(route) => route,
        Step::Reject(_, rejection) => return Err(rejection.reason),
        other => panic!("{other:?}"),
    };
    let now = Stamp::secs(now);
    let mut step = guard::on_body(route, &head, body.as_bytes(), now, store, 7);
    if let Step::Fetch(_, fetch) = &step {
        assert_eq!(fetch.cluster, "sns_certificates");
        let key = guard::keep_fetched(fetch, served.0, served.1.as_bytes(), now, store)
            .map_err(|rejection| rejection.reason)?;
        let prior = Some(Prior::Fetched(&key));
        step = guard::on_body_verified(route, &head, body.as_bytes(), prior, now, store, 7);
    }
    match step {
        Step::Forward(accepted) => {
            let (reserved, replay) = (accepted.reserved.unwrap(), route.replay.as_ref().unwrap());
            let delivered = crate::replay::Outcome::Delivered;
            let at = now.unix_secs() as u32;
            replay
                .cache
                .settle(store, &reserved.id, &reserved.fingerprint, delivered, at)
                .unwrap();
            Ok(accepted.key.to_string())
        }
        Step::Reject(_, rejection) => Err(rejection.reason),
        other => panic!("{other:?}"),
    }
}

const GENUINE: (Option<u16>, &str) = (Some(200), DEMO_CERTIFICATE);

#[test]
fn openssl_signed_messages_verify_once_under_the_fetched_certificate() {
    let policy = policy(serde_json::json!({}));
    for (body, sent) in [(NOTIFICATION, SENT), (CONFIRMATION, CONFIRMATION_SENT)] {
        let store = MemoryStore::new();
        let head = headers(body);
        assert_eq!(
            send(&policy, &store, &head, body, sent + 5, GENUINE),
            Ok("orders".into())
        );
        // Kept: the second request needs no fetch (a fetch now would fail).
        let unreachable = (None, "");
        assert_eq!(
            send(&policy, &store, &head, body, sent + 6, unreachable),
            Err(Reason::AlreadyDelivered)
        );
    }
}

#[test]
fn the_certificate_is_fetched_from_the_url_and_kept_for_every_worker() {
    let route_policy = policy(serde_json::json!({}));
    let store = MemoryStore::new();
    let head = headers(NOTIFICATION);
    let route = &route_policy.routes[0];
    let request = RequestHead::new(&head);
    let now = Stamp::secs(SENT);
    let Step::Fetch(_, fetch) =
        guard::on_body(route, &request, NOTIFICATION.as_bytes(), now, &store, 7)
    else {
        panic!("no fetch");
    };
    assert_eq!(fetch.authority, "sns.us-west-2.amazonaws.com");
    assert_eq!(fetch.path, format!("/{DEMO_CERTIFICATE_FILE}"));
    assert_eq!(fetch.timeout_ms, 2_000);
    let certificate = DEMO_CERTIFICATE.as_bytes();
    let key = guard::keep_fetched(&fetch, Some(200), certificate, now, &store).unwrap();
    let kept = store.raw(&fetch.cache_key()).unwrap().0;
    assert_eq!(crate::remote_key::kept(&kept, SENT as u64), Some(&key[..]));
    assert!(matches!(
        guard::on_body(route, &request, NOTIFICATION.as_bytes(), now, &store, 7),
        Step::Forward(_)
    ));
    // A key fetched a day ago is fetched again.
    let old = crate::remote_key::keep(certificate, SENT as u64 - 24 * 3600, &[]).unwrap();
    crate::replay::SharedStore::set(&store, &fetch.cache_key(), &old, 0).unwrap();
    assert!(matches!(
        guard::on_body(route, &request, NOTIFICATION.as_bytes(), now, &store, 7),
        Step::Fetch(..)
    ));
    // Another route's cluster never sees this route's keys.
    let elsewhere = policy(serde_json::json!({"certificate": {"cluster": "other"}}));
    let Step::Fetch(_, other) = guard::on_body(
        &elsewhere.routes[0],
        &request,
        NOTIFICATION.as_bytes(),
        now,
        &store,
        7,
    ) else {
        panic!("another cluster's key was used");
    };
    assert_ne!(other.cache_key(), fetch.cache_key());
}

#[test]
fn no_certificate_no_delivery() {
    let policy = policy(serde_json::json!({}));
    let head = headers(NOTIFICATION);
    for served in [
        (Some(404), DEMO_CERTIFICATE),
        (None, ""),
        (Some(200), "not a certificate"),
        (Some(200), SMALL_CERTIFICATE),
    ] {
        let store = MemoryStore::new();
        assert_eq!(
            send(&policy, &store, &head, NOTIFICATION, SENT, served),
            Err(Reason::KeyUnavailable),
            "{served:?}"
        );
    }
    let store = MemoryStore::new();
    assert_eq!(
        send(
            &policy,
            &store,
            &head,
            NOTIFICATION,
            SENT,
            (Some(200), OTHER_CERTIFICATE)
        ),
        Err(Reason::SignatureMismatch)
    );
}

/// The message's member values as a JSON array, in the order its struct declares them,
/// up to the first one it lacks (the rest default).
fn array_of(message: &str) -> String {
    let message: serde_json::Value = serde_json::from_str(message).unwrap();
    let order = [
        "Type",
        "MessageId",
        "TopicArn",
        "Subject",
        "Message",
        "Timestamp",
        "SignatureVersion",
        "Signature",
        "SigningCertURL",
    ];
    let values: Vec<serde_json::Value> = order
        .iter()
        .map_while(|name| message.get(name).cloned())
        .collect();
    assert_eq!(values.len(), order.len(), "the vector has a Subject");
    serde_json::Value::Array(values).to_string()
}

/// The notification with `field` set to `value` (`None`: removed).
fn with(field: &str, value: Option<serde_json::Value>) -> String {
    let mut message: serde_json::Value = serde_json::from_str(NOTIFICATION).unwrap();
    let object = message.as_object_mut().unwrap();
    match value {
        Some(value) => object.insert(field.into(), value),
        None => object.remove(field),
    };
    message.to_string()
}

#[test]
fn every_signed_field_is_signed() {
    let policy = policy(serde_json::json!({}));
    for (field, value) in [
        ("Message", "Hello world?"),
        ("MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf325"),
        ("Subject", "My Second Message"),
        ("Timestamp", "2012-05-02T00:54:06.656Z"),
        ("SignatureVersion", "2"),
    ] {
        let body = with(field, Some(value.into()));
        let store = MemoryStore::new();
        assert_eq!(
            send(&policy, &store, &headers(&body), &body, SENT, GENUINE),
            Err(Reason::SignatureMismatch),
            "{field}"
        );
    }
    // Without its Subject, the signed string is another.
    let body = with("Subject", None);
    let store = MemoryStore::new();
    assert_eq!(
        send(&policy, &store, &headers(&body), &body, SENT, GENUINE),
        Err(Reason::SignatureMismatch)
    );
}

#[test]
fn what_is_not_in_sns_format_is_refused_before_any_fetch() {
    let policy = policy(serde_json::json!({}));
    let other_topic = "arn:aws:sns:us-west-2:123456789012:OtherTopic";
    let cases: Vec<(String, Reason)> = vec![
        (
            with("TopicArn", Some(other_topic.into())),
            Reason::SignatureMismatch,
        ),
        (
            with(
                "TopicArn",
                Some("arn:aws:sqs:us-west-2:123456789012:MyTopic".into()),
            ),
            Reason::MalformedBody,
        ),
        (with("Type", Some("Notice".into())), Reason::MalformedBody),
        // Its members' values in order, as an array: a struct's other JSON form.
        (array_of(NOTIFICATION), Reason::MalformedBody),
        (
            with(
                "SigningCertURL",
                Some("https://sns.us-west-2.amazonaws.com/SimpleNotificationService-x.pem".into()),
            ),
            Reason::MalformedBody,
        ),
        (
            with(
                "SigningCertURL",
                Some(
                    format!("https://sns.s3-us-west-2.amazonaws.com/{DEMO_CERTIFICATE_FILE}")
                        .into(),
                ),
            ),
            Reason::MalformedBody,
        ),
        // Read as absent here, as a value by the application: SNS sends neither.
        (
            with("Subject", Some(serde_json::Value::Null)),
            Reason::MalformedBody,
        ),
        (
            with("UnsubscribeURL", Some(serde_json::Value::Null)),
            Reason::MalformedBody,
        ),
        (
            with("MessageAttributes", Some("{}".into())),
            Reason::MalformedBody,
        ),
        (
            with(
                "MessageId",
                Some("22B80B92-FDEA-4C2C-8F9D-BDFB0C7BF324".into()),
            ),
            Reason::MalformedBody,
        ),
        (
            with("Timestamp", Some("2012-05-02T00:54:06Z".into())),
            Reason::MalformedBody,
        ),
        (
            with("SignatureVersion", Some("3".into())),
            Reason::MalformedBody,
        ),
        (
            with("Signature", Some("not base64!".into())),
            Reason::MalformedBody,
        ),
        (
            with(
                "SigningCertURL",
                Some("https://evil.example/SimpleNotificationService-x.pem".into()),
            ),
            Reason::MalformedBody,
        ),
        (
            with(
                "SigningCertURL",
                Some("http://sns.us-west-2.amazonaws.com/x.pem".into()),
            ),
            Reason::MalformedBody,
        ),
        (with("Token", Some("abc".into())), Reason::MalformedBody),
        (with("Extra", Some("x".into())), Reason::MalformedBody),
        (
            with("Message", Some(serde_json::Value::Null)),
            Reason::MalformedBody,
        ),
        (
            with("Message", Some("a\nMessageId\nb".into())),
            Reason::MalformedBody,
        ),
        (
            with("Subject", Some("two\nlines".into())),
            Reason::MalformedBody,
        ),
        (
            NOTIFICATION.replacen("\"Message\":", "\"Message\": \"dup\", \"Message\":", 1),
            Reason::MalformedBody,
        ),
        ("[]".into(), Reason::MalformedBody),
        ("not json".into(), Reason::MalformedBody),
    ];
    for (body, reason) in cases {
        let store = MemoryStore::new();
        // A fetch would panic on the missing certificate: none is asked for.
        let head = headers(&body);
        let head = if head.len() == 3 {
            headers(NOTIFICATION)
        } else {
            head
        };
        assert_eq!(
            send(&policy, &store, &head, &body, SENT, (Some(500), "")),
            Err(reason),
            "{body}"
        );
    }
}

#[test]
fn stale_and_future_messages_are_refused_before_any_fetch() {
    let policy = policy(serde_json::json!({}));
    let head = headers(NOTIFICATION);
    let no_fetch = (Some(500), "");
    let store = MemoryStore::new();
    assert_eq!(
        send(&policy, &store, &head, NOTIFICATION, SENT + 3_601, no_fetch),
        Err(Reason::Stale)
    );
    assert_eq!(
        send(&policy, &store, &head, NOTIFICATION, SENT - 301, no_fetch),
        Err(Reason::Future)
    );
    assert_eq!(
        send(&policy, &store, &head, NOTIFICATION, SENT + 3_600, GENUINE),
        Ok("orders".into())
    );
}

#[test]
fn the_headers_say_what_the_signed_body_says() {
    let policy = policy(serde_json::json!({}));
    let genuine = headers(NOTIFICATION);
    let replace = |name: &str, value: Option<&str>| -> Vec<Header> {
        let mut head: Vec<Header> = genuine.iter().filter(|(n, _)| n != name).cloned().collect();
        if let Some(value) = value {
            head.push((name.into(), value.as_bytes().to_vec()));
        }
        head
    };
    let mut twice = genuine.clone();
    twice.push(("x-amz-sns-topic-arn".into(), TOPIC.as_bytes().to_vec()));
    for (head, reason) in [
        (
            replace("x-amz-sns-message-type", None),
            Reason::MissingSignature,
        ),
        (
            replace("x-amz-sns-message-type", Some("SubscriptionConfirmation")),
            Reason::MalformedHeader,
        ),
        (
            replace(
                "x-amz-sns-message-id",
                Some("22b80b92-fdea-4c2c-8f9d-bdfb0c7bf325"),
            ),
            Reason::MalformedHeader,
        ),
        (
            replace(
                "x-amz-sns-topic-arn",
                Some("arn:aws:sns:us-west-2:123456789012:Other"),
            ),
            Reason::MalformedHeader,
        ),
        (twice, Reason::DuplicateHeader),
    ] {
        let store = MemoryStore::new();
        assert_eq!(
            send(&policy, &store, &head, NOTIFICATION, SENT, GENUINE),
            Err(reason)
        );
    }
    // SNS sends all three.
    for name in ["x-amz-sns-message-id", "x-amz-sns-topic-arn"] {
        let store = MemoryStore::new();
        assert_eq!(
            send(
                &policy,
                &store,
                &replace(name, None),
                NOTIFICATION,
                SENT,
                GENUINE
            ),
            Err(Reason::MalformedHeader)
        );
    }
}

#[test]
fn the_body_is_sent_as_sns_sends_it_json_as_text_or_as_json() {
    let policy = policy(serde_json::json!({}));
    let with = |extra: &[(&str, &str)]| -> Vec<Header> {
        let mut head: Vec<Header> = headers(NOTIFICATION)
            .into_iter()
            .filter(|(name, _)| extra.iter().all(|(n, _)| n != name))
            .collect();
        head.extend(
            extra
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
        );
        head
    };
    for (head, verdict) in [
        (with(&[("content-type", "text/plain")]), Ok("orders".into())),
        (
            with(&[("content-type", "application/json")]),
            Ok("orders".into()),
        ),
        (
            with(&[("content-type", "application/x-www-form-urlencoded")]),
            Err(Reason::UnsupportedMediaType),
        ),
        (
            with(&[("content-type", "text/plain; charset=latin1")]),
            Err(Reason::UnsupportedMediaType),
        ),
        (
            with(&[("content-encoding", "gzip")]),
            Err(Reason::UnsupportedMediaType),
        ),
    ] {
        let store = MemoryStore::new();
        assert_eq!(
            send(&policy, &store, &head, NOTIFICATION, SENT, GENUINE),
            verdict,
            "{head:?}"
        );
    }
}

#[test]
fn a_changed_unsigned_member_is_the_same_delivery_tampered_with() {
    let policy = policy(serde_json::json!({}));
    let store = MemoryStore::new();
    let head = headers(NOTIFICATION);
    assert_eq!(
        send(&policy, &store, &head, NOTIFICATION, SENT, GENUINE),
        Ok("orders".into())
    );
    let changed = with(
        "UnsubscribeURL",
        Some("https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe".into()),
    );
    assert_eq!(
        send(&policy, &store, &head, &changed, SENT, GENUINE),
        Err(Reason::ReplayTampered)
    );
}

#[test]
fn the_certificate_block_is_required_and_checked() {
    let document = |route: serde_json::Value| serde_json::json!({"routes": [route]}).to_string();
    let base = serde_json::json!({"name": "sns", "path_prefix": "/sns/", "scheme": "sns",
        "keys": [{"value": TOPIC}]});
    let error = crate::config::parse(document(base.clone()).as_bytes(), &|_| None).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("routes[0].certificate: is required"),
        "{error}"
    );
    let mut hosts = base.clone();
    hosts["certificate"] = serde_json::json!({"cluster": "c", "hosts": ["*.com"]});
    let error = crate::config::parse(document(hosts).as_bytes(), &|_| None).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("routes[0].certificate.hosts[0]:"),
        "{error}"
    );
    let mut github = serde_json::json!({"name": "g", "path_prefix": "/g/", "scheme": "github",
        "keys": [{"value": "s"}]});
    github["certificate"] = serde_json::json!({"cluster": "c"});
    let error = crate::config::parse(document(github).as_bytes(), &|_| None).unwrap_err();
    assert_eq!(
        error.to_string(),
        "routes[0].certificate: applies only to scheme sns or paypal (where its signing certificates are fetched)"
    );
}

#[test]
fn the_signer_signs_what_the_verifier_and_openssl_check() {
    use crate::providers::sign::{KeyMaterial, Outgoing, Signing};
    let signing = Signing::new(KeyMaterial::Secret(TOPIC), SENT);
    let mut out = Outgoing::new("POST", "https://a.example/sns/hook", example(&signing));
    sign(&signing, &mut out).unwrap();
    let body = String::from_utf8(out.body.clone()).unwrap();
    let head = out.head();
    let store = MemoryStore::new();
    let policy = policy(serde_json::json!({}));
    assert_eq!(
        send(&policy, &store, &head, &body, SENT, GENUINE),
        Ok("orders".into())
    );
    let message: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["SignatureVersion"], "1");
    assert_eq!(
        message["SigningCertURL"],
        format!("https://sns.us-west-2.amazonaws.com/{DEMO_CERTIFICATE_FILE}")
    );
    assert_eq!(message["Timestamp"], "2012-05-02T00:54:06.000Z");
}

#[test]
fn a_route_that_confirms_subscriptions_answers_them_after_a_get_of_the_signed_url() {
    let confirming = policy(
        serde_json::json!({"certificate": {"cluster": "sns_certificates",
        "confirm_subscriptions": true}}),
    );
    let route = &confirming.routes[0];
    let (head, now) = (headers(CONFIRMATION), Stamp::secs(CONFIRMATION_SENT + 5));
    let request = RequestHead::new(&head);
    let store = MemoryStore::new();
    let Step::Fetch(_, fetch) =
        guard::on_body(route, &request, CONFIRMATION.as_bytes(), now, &store, 7)
    else {
        panic!("no certificate fetch");
    };
    let key =
        guard::keep_fetched(&fetch, Some(200), DEMO_CERTIFICATE.as_bytes(), now, &store).unwrap();
    let prior = Some(Prior::Fetched(&key));
    let step = guard::on_body_verified(
        route,
        &request,
        CONFIRMATION.as_bytes(),
        prior,
        now,
        &store,
        7,
    );
    let Step::Reply(_, reply, Some(_)) = step else {
        panic!("{step:?}");
    };
    let confirm = reply.confirm.expect("a GET of SubscribeURL");
    let message: serde_json::Value = serde_json::from_str(CONFIRMATION).unwrap();
    assert_eq!(confirm.url, message["SubscribeURL"].as_str().unwrap());
    assert_eq!(confirm.cluster, "sns_certificates");
    assert_eq!(confirm.authority, "sns.us-west-2.amazonaws.com");
    assert!(
        confirm
            .path
            .starts_with("/?Action=ConfirmSubscription&TopicArn="),
        "{}",
        confirm.path
    );
    assert_eq!(reply.body, br#"{"result":"confirmed"}"#);
    // A notification on that route goes to the application as ever.
    let head = headers(NOTIFICATION);
    let request = RequestHead::new(&head);
    let now = Stamp::secs(SENT + 5);
    let step = guard::on_body_verified(
        route,
        &request,
        NOTIFICATION.as_bytes(),
        prior,
        now,
        &store,
        7,
    );
    assert!(matches!(step, Step::Forward(_)), "{step:?}");
    // Without the flag, the confirmation goes to the application too.
    let forwarding = policy(serde_json::json!({}));
    let now = Stamp::secs(CONFIRMATION_SENT + 5);
    let head = headers(CONFIRMATION);
    let request = RequestHead::new(&head);
    let step = guard::on_body_verified(
        &forwarding.routes[0],
        &request,
        CONFIRMATION.as_bytes(),
        prior,
        now,
        &MemoryStore::new(),
        7,
    );
    assert!(matches!(step, Step::Forward(_)), "{step:?}");
}

#[test]
fn a_confirmation_that_failed_is_confirmed_on_the_retry_and_only_then_answered_alike() {
    let confirming = policy(
        serde_json::json!({"certificate": {"cluster": "sns_certificates",
        "confirm_subscriptions": true}}),
    );
    let route = &confirming.routes[0];
    let (head, now) = (headers(CONFIRMATION), Stamp::secs(CONFIRMATION_SENT + 5));
    let request = RequestHead::new(&head);
    let store = MemoryStore::new();
    let Step::Fetch(_, fetch) =
        guard::on_body(route, &request, CONFIRMATION.as_bytes(), now, &store, 7)
    else {
        panic!("no certificate fetch");
    };
    let key =
        guard::keep_fetched(&fetch, Some(200), DEMO_CERTIFICATE.as_bytes(), now, &store).unwrap();
    let prior = Some(Prior::Fetched(&key));
    let at = now.unix_secs() as u32;
    let judge = || {
        guard::on_body_verified(
            route,
            &request,
            CONFIRMATION.as_bytes(),
            prior,
            now,
            &store,
            7,
        )
    };
    let replay = route.replay.as_ref().unwrap();
    let Step::Reply(_, reply, Some(reserved)) = judge() else {
        panic!()
    };
    assert!(reply.confirm.is_some());
    replay
        .cache
        .settle(
            &store,
            &reserved.id,
            &reserved.fingerprint,
            crate::replay::Outcome::Failed,
            at,
        )
        .unwrap();
    let step = judge();
    let Step::Reply(_, reply, Some(reserved)) = step else {
        panic!("{step:?}")
    };
    assert!(reply.confirm.is_some());
    replay
        .cache
        .settle(
            &store,
            &reserved.id,
            &reserved.fingerprint,
            crate::replay::Outcome::Delivered,
            at,
        )
        .unwrap();
    let Step::Reply(_, reply, None) = judge() else {
        panic!()
    };
    assert!(reply.confirm.is_none());
}
