//! Shared by the fuzz targets: the request text format of the seeds, the two fixed
//! policies (one with the spec's keys, so the seeds' signatures verify; one with keys drawn
//! at start-up that no input can know), an in-memory `SharedStore`, and an HMAC oracle
//! written independently of the crate, so a forwarded request can be checked.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::OnceLock;

use base64::Engine;
use callback_guard::config;
use callback_guard::form;
use callback_guard::guard::{Accepted, Downstream};
use callback_guard::policy::{Policy, Route};
use callback_guard::providers::vobiz::sdk_v3;
use callback_guard::providers::vobiz::voice::VoiceScheme;
use callback_guard::request::{Header, RequestHead};
use callback_guard::verdict::Rejection;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// "Now" for every verdict: 2026-03-25T10:00:00Z, the WhatsApp example's `occurred_at`.
pub const NOW: i64 = 1_774_432_800;
/// The registered origin of every voice route (the spec's vectors sign it).
pub const ORIGIN: &str = "https://example.com";
/// A random but fixed `create_cas`, as the filter draws one per request.
pub const CREATE_CAS: u32 = 0x5eed_1234;

/// The secrets a policy was built with.
pub struct Secrets {
    pub own: String,
    pub parent: String,
    pub whatsapp: String,
}

/// Routes for every scheme and transport rule. Voice routes share origin and keys.
///
/// * `/whatsapp/`, `/kyc/`: the body-signed schemes (replay and, for WhatsApp, freshness).
/// * `/src/`: TLS through a trusted proxy and an address allow-list (`x-forwarded-*`).
/// * `/vobiz/`: the spec's vectors; no replay, so the headers alone decide; every family;
///   `debug_signed_string`, so mismatch details carry the signed strings.
/// * `/v2/`: V2 families with replay protection.
/// * everything else under `/`: V3 either construction, replay, voice freshness.
const POLICY: &str = r#"{
  "routes": [
    {"name": "wa", "path_prefix": "/whatsapp/", "scheme": "vobiz_whatsapp",
     "keys": [{"name": "subscription", "env": "WA"}], "replay": {"max_entries": 64}},
    {"name": "kyc", "path_prefix": "/kyc/", "scheme": "vobiz_kyc",
     "keys": [{"name": "parent", "env": "PARENT"}], "replay": {"max_entries": 64}},
    {"name": "src", "path_prefix": "/src/", "public_origin": "https://example.com",
     "trust_x_forwarded_proto": true, "trusted_proxies": ["10.0.0.0/8", "fd00::/8"],
     "allowed_sources": ["35.154.59.246/32", "2001:db8::/32"],
     "keys": [{"name": "own", "env": "TOKEN"}], "replay": {"enabled": false}},
    {"name": "open", "path_prefix": "/vobiz/", "public_origin": "https://example.com",
     "keys": [{"name": "own", "env": "TOKEN"}], "parent_keys": [{"name": "parent", "env": "PARENT"}],
     "replay": {"enabled": false}, "debug_signed_string": true, "max_body_bytes": 4096},
    {"name": "v2", "path_prefix": "/v2/", "public_origin": "https://example.com",
     "keys": [{"name": "own", "env": "TOKEN"}], "parent_keys": [{"name": "parent", "env": "PARENT"}],
     "accept": ["v2", "ma_v2"], "replay": {"max_entries": 64, "on_duplicate": "reject"}},
    {"name": "voice", "path_prefix": "/", "public_origin": "https://example.com",
     "keys": [{"name": "own", "env": "TOKEN"}], "parent_keys": [{"name": "parent", "env": "PARENT"}],
     "replay": {"max_entries": 64}, "freshness": {"max_age": "10m"}}
  ]
}"#;

fn build(secrets: Secrets) -> (Secrets, Policy) {
    let env = |name: &str| match name {
        "TOKEN" => Some(secrets.own.clone()),
        "PARENT" => Some(secrets.parent.clone()),
        "WA" => Some(secrets.whatsapp.clone()),
        _ => None,
    };
    match config::parse(POLICY.as_bytes(), &env) {
        Ok(policy) => (secrets, policy),
        Err(e) => panic!("fuzz policy does not compile: {e}"),
    }
}

/// The spec's keys (sections 2.7, 5 and 5.1): the seeds are signed with these.
pub fn known() -> &'static (Secrets, Policy) {
    static KNOWN: OnceLock<(Secrets, Policy)> = OnceLock::new();
    KNOWN.get_or_init(|| {
        build(Secrets {
            own: "test_auth_token".into(),
            parent: "test_parent_token".into(),
            whatsapp: "your-shared-secret".into(),
        })
    })
}

/// Keys drawn when the process starts: no input can carry a signature made with them.
pub fn unknown() -> &'static (Secrets, Policy) {
    static UNKNOWN: OnceLock<(Secrets, Policy)> = OnceLock::new();
    UNKNOWN.get_or_init(|| {
        build(Secrets {
            own: random_secret(),
            parent: random_secret(),
            whatsapp: random_secret(),
        })
    })
}

/// 128 random bits as hex (std's `RandomState` is keyed from the OS per process).
pub fn random_secret() -> String {
    let word = || {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0x6367_5f66_757a_7a00);
        hasher.finish()
    };
    format!("{:016x}{:016x}", word(), word())
}

/// The seeds' request format: `name: value` lines (a leading `:` belongs to the name, as in
/// `:path: /vobiz/answer`; one space after the separating colon is dropped), an empty line,
/// then the body. Names are read as text (lossily), values as raw bytes.
pub fn parse_request(data: &[u8]) -> (Vec<Header>, &[u8]) {
    let mut headers = Vec::new();
    let mut rest = data;
    loop {
        let (line, tail, last) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..end], &rest[end + 1..], false),
            None => (rest, &[][..], true),
        };
        if line.is_empty() {
            return (headers, tail);
        }
        let (name, value) = match line.iter().skip(1).position(|&b| b == b':') {
            Some(colon) => (&line[..colon + 1], &line[colon + 2..]),
            None => (line, &[][..]),
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        headers.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
        if last {
            return (headers, &[]);
        }
        rest = tail;
    }
}

/// The downstream connection: plain HTTP from a trusted proxy for `/src/`, else TLS from
/// one of Vobiz's documented addresses.
pub struct Conn {
    pub tls: bool,
    pub peer: Option<IpAddr>,
}

impl Conn {
    pub fn for_request(head: &RequestHead) -> Conn {
        if head.path_without_query().starts_with(b"/src/") {
            Conn {
                tls: false,
                peer: Some([10, 0, 0, 5].into()),
            }
        } else {
            Conn {
                tls: true,
                peer: Some([35, 154, 59, 246].into()),
            }
        }
    }
}

impl Downstream for Conn {
    fn tls(&self) -> bool {
        self.tls
    }

    fn peer(&self) -> Option<IpAddr> {
        self.peer
    }
}

/// HMAC-SHA256 straight from the `hmac` crate, not through `callback_guard::keys`.
pub fn hmac(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The one value of `name`, if it occurs exactly once (names compared case-insensitively).
pub fn single<'h>(headers: &'h [Header], name: &str) -> Option<&'h [u8]> {
    let mut found = headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name));
    let first = found.next()?;
    match found.next() {
        Some(_) => None,
        None => Some(&first.1),
    }
}

fn first<'h>(headers: &'h [Header], name: &str) -> &'h [u8] {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map_or(&[][..], |(_, value)| value)
}

/// Whether some voice signature header carries a MAC of the docs' message (or, for V3 and
/// `sdk`, of the SDK's URL) under the family's secret.
pub fn voice_signed(headers: &[Header], body: &[u8], secrets: &Secrets, sdk: bool) -> bool {
    let full_path = first(headers, ":path");
    let path = full_path.split(|&b| b == b'?').next().unwrap_or_default();
    let sdk_url = match sdk_v3::Method::from_bytes(first(headers, ":method")) {
        Some(method) if sdk => {
            let params = match method {
                sdk_v3::Method::Post => form::parse(body, form::MAX_PAIRS).unwrap_or_default(),
                sdk_v3::Method::Get => Vec::new(),
            };
            sdk_v3::signed_url(method, ORIGIN.as_bytes(), full_path, &params).ok()
        }
        _ => None,
    };
    let families: [(&str, &str, &[u8], &str); 4] = [
        (
            "x-vobiz-signature-v3",
            "x-vobiz-signature-v3-nonce",
            b".",
            &secrets.own,
        ),
        (
            "x-vobiz-signature-v2",
            "x-vobiz-signature-v2-nonce",
            b"",
            &secrets.own,
        ),
        (
            "x-vobiz-signature-ma-v3",
            "x-vobiz-signature-v3-nonce",
            b".",
            &secrets.parent,
        ),
        (
            "x-vobiz-signature-ma-v2",
            "x-vobiz-signature-v2-nonce",
            b"",
            &secrets.parent,
        ),
    ];
    families
        .iter()
        .any(|&(sig_header, nonce_header, separator, secret)| {
            let (Some(list), Some(nonce)) =
                (single(headers, sig_header), single(headers, nonce_header))
            else {
                return false;
            };
            let docs = hmac(
                secret.as_bytes(),
                &[ORIGIN.as_bytes(), path, separator, nonce],
            );
            let sdk = match (&sdk_url, separator) {
                (Some(url), b".") => Some(hmac(secret.as_bytes(), &[url, b".", nonce])),
                _ => None,
            };
            list.split(|&b| b == b',').any(|item| {
                let decoded = base64::engine::general_purpose::STANDARD.decode(item.trim_ascii());
                decoded.is_ok_and(|mac| {
                    mac == docs || Some(mac.as_slice()) == sdk.as_ref().map(|m| &m[..])
                })
            })
        })
}

/// Whether `value` is `prefix` followed by the hex HMAC of `body` (either case).
pub fn body_signed(value: &[u8], prefix: &[u8], secret: &str, body: &[u8]) -> bool {
    let expected = hex(&hmac(secret.as_bytes(), &[body]));
    value
        .strip_prefix(prefix)
        .is_some_and(|digits| digits.eq_ignore_ascii_case(expected.as_bytes()))
}

/// A forwarded request must carry a signature that the independent oracle accepts.
pub fn assert_authentic(accepted: &Accepted, headers: &[Header], body: &[u8], secrets: &Secrets) {
    let route: &Route = accepted.route;
    let authentic = match route.scheme {
        "vobiz_voice" => voice_signed(headers, body, secrets, true),
        "vobiz_whatsapp" => single(headers, "x-webhook-signature")
            .is_some_and(|v| body_signed(v, b"", &secrets.whatsapp, body)),
        "vobiz_kyc" => single(headers, "x-vobiz-signature")
            .is_some_and(|v| body_signed(v, b"sha256=", &secrets.parent, body)),
        // The fuzz policies have Vobiz routes only (the other providers' parsers are
        // exercised through their own unit and property tests).
        other => panic!("no oracle for {other:?}"),
    };
    assert!(
        authentic,
        "route {} forwarded ({}) a request the oracle finds unsigned",
        route.name, accepted.scheme
    );
}

/// Rejection details go to log lines: never a control character (no log injection).
pub fn assert_loggable(rejection: &Rejection) {
    assert!(
        !rejection.detail.chars().any(char::is_control),
        "control character in detail {:?}",
        rejection.detail
    );
    assert!((200..600).contains(&rejection.status()));
}

/// The voice scheme of the named route.
pub fn voice<'p>(policy: &'p Policy, name: &str) -> &'p VoiceScheme {
    match policy
        .routes
        .iter()
        .find(|r| r.name == name)
        .and_then(|r| r.provider_as::<VoiceScheme>())
    {
        Some(voice) => voice,
        None => unreachable!("route {name} is a voice route"),
    }
}
