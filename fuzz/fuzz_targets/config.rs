//! `config::parse` on arbitrary bytes. Never panics; an error names a field and a problem
//! and never an environment secret; an accepted policy satisfies every rule the parser
//! promises, and parsing is deterministic and blind to trailing JSON whitespace.
#![no_main]

use std::collections::HashSet;

use callback_guard::config;
use callback_guard::path_view::PathView;
use callback_guard::policy::{host_name, Policy, Protection, Transport};
use callback_guard::providers::vobiz::voice::VoiceScheme;
use callback_guard::providers::Time;
use callback_guard::request::{Header, RequestHead};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzz-env-secret-7f3a";

fn env(name: &str) -> Option<String> {
    match name {
        "VOBIZ_AUTH_TOKEN"
        | "VOBIZ_PARENT_AUTH_TOKEN"
        | "VOBIZ_WHATSAPP_SECRET"
        | "TOKEN"
        | "PARENT" => Some(format!("{SECRET}-{name}")),
        "EMPTY" => Some(String::new()),
        "SPACED" => Some(format!(" {SECRET} ")),
        _ => None,
    }
}

fn identifier(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_policy(policy: &Policy) {
    assert!(!policy.routes.is_empty());
    if let Some(header) = &policy.upstream_header {
        assert!(!header.is_empty());
        assert!(header
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }
    let mut names = HashSet::new();
    for route in &policy.routes {
        assert!(identifier(&route.name), "{:?}", route.name);
        assert!(names.insert(&route.name), "duplicate route {}", route.name);
        let prefix = route.path_prefix.as_str().as_bytes();
        assert_eq!(prefix.first(), Some(&b'/'));
        assert!(prefix
            .iter()
            .all(|b| b.is_ascii_graphic() && !b"?#%;\\".contains(b)));
        assert!(PathView::new(prefix).features().is_empty(), "{prefix:?}");
        if let Some(host) = &route.host {
            assert!(!host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic() && b != b'/'));
            assert_eq!(host_name(host.as_bytes()), Some(host.as_bytes()));
            assert_eq!(host, &host.to_ascii_lowercase());
        }
        assert!(route.max_body_bytes >= 1);
        if let Some(replay) = &route.replay {
            assert!(replay.cache.window_secs() >= 1 && replay.cache.slots() >= 1);
        }
        if let Some(freshness) = route.freshness {
            assert!(freshness.max_age_secs >= 1);
        }
        if !route.trusted_proxies.is_empty() {
            assert!(
                route.transport == Transport::TrustForwardedProto
                    || !route.allowed_sources.is_empty()
            );
        }
        let mut key_names: HashSet<String> = HashSet::new();
        match route.provider_as::<VoiceScheme>() {
            Some(voice) => {
                let origin = voice.origin.as_str();
                let authority = match (
                    origin.strip_prefix("https://"),
                    origin.strip_prefix("http://"),
                ) {
                    (Some(authority), _) => authority,
                    (None, Some(authority)) => {
                        assert_ne!(route.transport, Transport::RequireTls, "{origin}");
                        authority
                    }
                    (None, None) => panic!("origin {origin:?} has no http(s) scheme"),
                };
                assert!(!authority.is_empty());
                assert!(authority
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"/?#@".contains(&b)));
                assert!(!voice.families.is_empty());
                for (i, family) in voice.families.iter().enumerate() {
                    assert!(!voice.families[..i].contains(family), "{family:?} twice");
                    assert!(
                        !voice.keys_for(*family).is_empty(),
                        "{family:?} has no keys"
                    );
                    if route.replay.is_some() {
                        assert_eq!(family.is_v3(), voice.families[0].is_v3());
                    }
                }
                for key in voice.keys.iter().chain(&voice.parent_keys) {
                    assert!(identifier(&key.name));
                    assert!(
                        key_names.insert(key.name.clone()),
                        "duplicate key {}",
                        key.name
                    );
                }
            }
            None => {
                let keys: Vec<&str> = route
                    .provider
                    .schemes()
                    .into_iter()
                    .flat_map(|(_, keys)| keys)
                    .collect();
                assert!(!keys.is_empty());
                for key in keys {
                    assert!(identifier(key));
                    assert!(key_names.insert(key.to_string()), "duplicate key {key}");
                }
            }
        }
        match (route.provider.time(), route.freshness) {
            (Time::Signed(_), Some(freshness)) => {
                assert!(freshness.required);
                if let Some(replay) = &route.replay {
                    let fresh_for =
                        u64::from(freshness.max_age_secs) + u64::from(freshness.max_future_secs);
                    assert!(u64::from(replay.cache.window_secs()) >= fresh_for);
                }
            }
            (Time::Signed(_), None) => panic!("a signed time without freshness"),
            (Time::None, freshness) => assert_eq!(freshness, None),
            (Time::Unsigned, _) => {}
        }
        // Every route is reachable at its own prefix and host.
        let authority = route.host.as_deref().unwrap_or("any.example");
        let prefix = route.path_prefix.as_str();
        let headers: Vec<Header> = vec![
            (":path".into(), prefix.as_bytes().to_vec()),
            (":authority".into(), authority.as_bytes().to_vec()),
        ];
        assert!(matches!(
            policy.protection(&RequestHead::new(&headers)),
            Protection::Route(_)
        ));
    }
}

fuzz_target!(|data: &[u8]| {
    let first = config::parse(data, &env);
    match &first {
        Err(e) => {
            assert!(!e.field.is_empty(), "error without a field: {e:?}");
            assert!(!e.problem.is_empty(), "error without a problem: {e:?}");
            assert_eq!(e.to_string(), format!("{}: {}", e.field, e.problem));
            let echoed = data.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
            assert!(echoed || !e.to_string().contains(SECRET), "secret in {e}");
        }
        Ok(policy) => {
            check_policy(policy);
            // JSON whitespace after the document changes nothing.
            let mut padded = data.to_vec();
            padded.extend_from_slice(b" \n\t\r");
            match config::parse(&padded, &env) {
                Ok(again) => assert_eq!(format!("{policy:?}"), format!("{again:?}")),
                Err(e) => panic!("valid configuration invalid after whitespace: {e}"),
            }
        }
    }
    let again = config::parse(data, &env);
    assert_eq!(format!("{first:?}"), format!("{again:?}"));
});
