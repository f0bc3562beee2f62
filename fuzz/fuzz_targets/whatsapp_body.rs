//! The JSON envelope parser and the body-MAC schemes (WhatsApp, KYC). Input: a header value
//! line, then the body. Never panics; an accepted envelope agrees with serde_json's own
//! reading; the input's header verifies only when the independent HMAC says so (never under
//! unknown keys); the body signed with the key always verifies (in either hex case); one
//! changed body byte never does.
#![no_main]

mod common;

use callback_guard::keys::Key;
use callback_guard::providers::body_mac::BodyMac;
use callback_guard::providers::vobiz::{kyc, whatsapp};
use callback_guard::request::{Header, RequestHead};
use callback_guard::timestamp;
use callback_guard::verdict::Reason;
use libfuzzer_sys::fuzz_target;

fn key(name: &str, secret: &str) -> Key {
    match Key::new(name, secret.as_bytes()) {
        Ok(key) => key,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

fn check_envelope(body: &[u8]) -> Option<whatsapp::Event> {
    match whatsapp::parse_event(body) {
        Ok(event) => {
            let id = event.event_id.as_bytes();
            assert!((1..=whatsapp::MAX_EVENT_ID_BYTES).contains(&id.len()));
            assert!(id.iter().all(u8::is_ascii_graphic));
            assert!(
                std::str::from_utf8(body).is_ok(),
                "accepted a body that is not UTF-8"
            );
            let value: serde_json::Value = match serde_json::from_slice(body) {
                Ok(value) => value,
                // Skipped fields may hold an escaped lone surrogate (`"\ud800"`): valid JSON
                // grammar (RFC 8259 leaves its meaning open), which `Value` refuses to store.
                Err(e) if e.to_string().contains("surrogate") => return Some(event),
                Err(e) => panic!("accepted an envelope serde_json cannot read: {e}"),
            };
            assert!(value.is_object());
            assert_eq!(value["event_id"].as_str(), Some(event.event_id.as_str()));
            let occurred_at = value["occurred_at"].as_str().map(str::as_bytes);
            assert_eq!(
                occurred_at.and_then(timestamp::parse_rfc3339),
                Some(event.occurred_at)
            );
            Some(event)
        }
        Err(rejection) => {
            assert_eq!(rejection.reason, Reason::MalformedBody);
            common::assert_loggable(&rejection);
            None
        }
    }
}

fn head_with(scheme: &BodyMac, value: &[u8]) -> Vec<Header> {
    vec![
        (scheme.header.to_string(), value.to_vec()),
        ("content-type".to_string(), b"application/json".to_vec()),
    ]
}

fuzz_target!(|data: &[u8]| {
    let (signature, body) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[][..]),
    };
    let event = check_envelope(body);

    // The input's own header value, under the spec's keys and under unknown ones.
    for (secrets, known) in [(&common::known().0, true), (&common::unknown().0, false)] {
        let schemes = [
            (whatsapp::SCHEME, secrets.whatsapp.as_str()),
            (kyc::SCHEME, secrets.parent.as_str()),
        ];
        for (scheme, secret) in schemes {
            let headers = head_with(&scheme, signature);
            let head = RequestHead::new(&headers);
            match scheme.verify(&[key("k", secret)], &head, body) {
                Ok(_) => {
                    assert!(known, "verified under a key no input can know");
                    assert!(common::body_signed(signature, scheme.prefix, secret, body));
                }
                Err(rejection) => {
                    common::assert_loggable(&rejection);
                    assert!(!common::body_signed(signature, scheme.prefix, secret, body));
                }
            }
        }
    }

    // The body signed with the key: WhatsApp verifies (and yields the envelope's event
    // exactly when it parses), KYC verifies; one changed byte verifies in neither.
    let secret = random_looking_secret(signature);
    let keys = [key("old", "previous-secret"), key("current", &secret)];
    let mac = common::hex(&common::hmac(secret.as_bytes(), &[body]));
    for value in [mac.clone(), mac.to_uppercase()] {
        let headers = head_with(&whatsapp::SCHEME, value.as_bytes());
        let verified = whatsapp::verify(&keys, &RequestHead::new(&headers), body);
        match (&verified, &event) {
            (Ok(v), Some(event)) => assert!(v.key == "current" && v.event == *event),
            (Err(r), None) => assert_eq!(r.reason, Reason::MalformedBody),
            _ => panic!("verify {verified:?} disagrees with parse_event {event:?}"),
        }
        let headers = head_with(&kyc::SCHEME, format!("sha256={value}").as_bytes());
        assert_eq!(
            kyc::verify(&keys, &RequestHead::new(&headers), body),
            Ok("current")
        );
    }
    if !body.is_empty() {
        let mut changed = body.to_vec();
        let at = usize::from(signature.first().copied().unwrap_or(0)) % changed.len();
        changed[at] ^= signature.get(1).copied().unwrap_or(1).max(1);
        let headers = head_with(&whatsapp::SCHEME, mac.as_bytes());
        let verified = whatsapp::verify(&keys, &RequestHead::new(&headers), &changed);
        assert_eq!(
            verified.map(|_| ()).map_err(|r| r.reason),
            Err(Reason::SignatureMismatch)
        );
        let headers = head_with(&kyc::SCHEME, format!("sha256={mac}").as_bytes());
        let verified = kyc::verify(&keys, &RequestHead::new(&headers), &changed);
        assert_eq!(
            verified.map_err(|r| r.reason),
            Err(Reason::SignatureMismatch)
        );
    }
});

/// A key that varies with the input (any bytes, any length), never empty.
fn random_looking_secret(seed: &[u8]) -> String {
    format!("k{}", String::from_utf8_lossy(seed))
}
